"""Quickstart: one ticket from submission to a follow-up, on a SQLite file.

Run it: ``python examples/quickstart.py [path/to/tickets.db]``
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from supportflow import ManualClock, Severity, SupportDesk, SupportPolicy


def main(db_path: Path) -> None:
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    policy = SupportPolicy(zone="America/Chicago", close_after_days=3, pending_solve_after_days=7)
    with SupportDesk(store=f"sqlite:///{db_path}", clock=clock, policy=policy) as desk:
        tid = desk.submit(
            requester="ann@example.com",
            subject="Cannot restore",
            description="Restore fails at 12%",
            severity=Severity.CRITICAL,
            message_id="<m1@mail>",
        )
        desk.assign(tid, agent="bob")
        desk.reply(tid, agent="bob", body="Looking into it")
        desk.request_info(tid, agent="bob", body="Which version?")
        desk.customer_reply(tid, body="4.2", message_id="<m2@mail>")
        desk.customer_reply(tid, body="Out of office", auto_submitted=True)
        desk.solve(tid, agent="bob", solution="Reinstall 4.2.1")
        clock.advance(days=4)
        desk.run_due_timers()
        new = desk.customer_reply(tid, body="It broke again", message_id="<m3@mail>")

        view = desk.get(tid)
        print(
            f"ticket {view.id}: {view.status.name}, follow-ups {[str(f) for f in view.follow_ups]}"
        )
        print(f"follow-up {new}: {desk.get(new).status.name}, follows {desk.get(new).follow_up_of}")
        for event in desk.history(tid):
            print(f"  {event.timestamp:%Y-%m-%d %H:%M} UTC  {type(event).__name__}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(Path(folder) / "tickets.db")
