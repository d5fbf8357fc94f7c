"""Notifications and surveys through the outbox: what is asked for, keys, backoff (store
independent, in memory). The fault tests on every store are in `test_outbox_stores.py`."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest

from supportflow import SupportDesk
from supportflow.outbox import (
    Notification,
    PermanentDeliveryError,
    deliver_notifications,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class Recorder:
    """A notifier that records what it accepted, and may fail."""

    def __init__(self, fail: float = 0.0, seed: int = 0, permanent: bool = False) -> None:
        self.accepted: list[str] = []
        self.calls = 0
        self.random = random.Random(seed)
        self.fail = fail
        self.permanent = permanent
        self.lock = threading.Lock()

    def deliver(self, notification: Notification) -> None:
        with self.lock:
            self.calls += 1
            if self.random.random() < self.fail:
                if self.permanent:
                    raise PermanentDeliveryError("mailbox does not exist")
                raise ConnectionError("smtp timeout")
            self.accepted.append(notification.key)


def solved_and_closed(desk: SupportDesk, count: int) -> None:
    for i in range(count):
        tid = desk.submit(requester=f"c{i}@example.com", subject=f"s{i}", at=T0)
        desk.solve(tid, agent="bob", solution="x", at=T0)
    desk.run_due_timers(now=T0 + timedelta(days=4))


def test_solved_asks_for_notice_and_closed_for_survey(desk: SupportDesk) -> None:
    """A solved ticket gets a solved notice; a closed one a survey request, with stable keys."""
    solved_and_closed(desk, 1)
    notifier = Recorder()
    report = deliver_notifications(desk, notifier, now=T0 + timedelta(days=4))
    kinds = sorted(key.split(":")[0] for key in notifier.accepted)
    assert kinds == ["solved_notice", "survey_request"]
    assert (report.requested, report.delivered, report.pending) == (2, 2, 0)
    assert deliver_notifications(desk, notifier, now=T0 + timedelta(days=5)).delivered == 0
    assert len(notifier.accepted) == 2


def test_backoff_waits_before_the_next_attempt(desk: SupportDesk) -> None:
    """A failed delivery is not retried before its backoff has passed."""
    solved_and_closed(desk, 1)
    notifier = Recorder(fail=1.0)
    now = T0 + timedelta(days=4)
    deliver_notifications(desk, notifier, now=now, base_delay=timedelta(minutes=10))
    deliver_notifications(desk, notifier, now=now + timedelta(minutes=9))
    assert notifier.calls == 2
    deliver_notifications(desk, notifier, now=now + timedelta(minutes=10))
    assert notifier.calls == 4


def test_notifier_without_deliver_is_refused(desk: SupportDesk) -> None:
    """A notifier must have a deliver() method."""
    with pytest.raises(TypeError, match="deliver"):
        deliver_notifications(desk, object())  # type: ignore[arg-type]
