"""Deliver solved notices and survey requests through the outbox, with a flaky notifier."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from supportflow import ManualClock, SupportDesk
from supportflow.outbox import Notification, deliver_notifications


class FlakyMailer:
    """Fails a third of the time, like a busy SMTP relay."""

    def __init__(self) -> None:
        self.random = random.Random(3)
        self.sent: list[str] = []

    def deliver(self, notification: Notification) -> None:
        if self.random.random() < 1 / 3:
            raise ConnectionError("relay busy, try later")
        self.sent.append(f"{notification.kind:15} to {notification.requester}")


def main() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    mailer = FlakyMailer()
    with SupportDesk(clock=clock) as desk:
        for i in range(3):
            tid = desk.submit(requester=f"customer{i}@example.com", subject=f"Question {i}")
            desk.solve(tid, agent="bob", solution="Here is how")
        clock.advance(days=4)
        desk.run_due_timers()
        for round_number in range(1, 8):
            report = deliver_notifications(desk, mailer)
            print(f"run {round_number}: {report}")
            if report.pending == 0:
                break
            clock.advance(hours=7)  # past the backoff
    print("\n".join(mailer.sent))


if __name__ == "__main__":
    main()
