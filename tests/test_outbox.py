"""Notifications and surveys through the outbox: at least once, never twice by the worker."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from supportflow import ManualClock, SupportDesk
from supportflow.outbox import (
    Notification,
    PermanentDeliveryError,
    deliver_notifications,
    pending_notifications,
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


def test_random_failures_are_retried_until_each_is_delivered_once(desk: SupportDesk) -> None:
    """With a notifier failing half the time, every notification is accepted exactly once."""
    solved_and_closed(desk, 10)
    notifier = Recorder(fail=0.5, seed=7)
    now = T0 + timedelta(days=4)
    for _ in range(60):
        deliver_notifications(desk, notifier, now=now)
        now += timedelta(hours=7)  # past the longest backoff
    counts = Counter(notifier.accepted)
    assert len(counts) == 20
    assert set(counts.values()) == {1}
    assert notifier.calls > 20  # failures happened and were retried
    assert pending_notifications(desk) == []


def test_permanent_failure_is_recorded_and_not_retried(desk: SupportDesk) -> None:
    """A PermanentDeliveryError ends the delivery: recorded as failed, never tried again."""
    solved_and_closed(desk, 1)
    notifier = Recorder(fail=1.0, permanent=True)
    report = deliver_notifications(desk, notifier, now=T0 + timedelta(days=4))
    assert report.failed == 2
    deliver_notifications(desk, notifier, now=T0 + timedelta(days=9))
    assert notifier.calls == 2


def test_retries_stop_after_max_attempts(desk: SupportDesk) -> None:
    """A delivery that keeps failing is given up after max_attempts."""
    solved_and_closed(desk, 1)
    notifier = Recorder(fail=1.0)
    now = T0 + timedelta(days=4)
    for _ in range(10):
        deliver_notifications(desk, notifier, now=now, max_attempts=3)
        now += timedelta(days=1)
    assert notifier.calls == 6  # 2 notifications x 3 attempts


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


def test_concurrent_workers_never_deliver_one_notification_twice(sqlite_url: str) -> None:
    """Four workers on one store claim before delivering: each key is accepted once."""
    with SupportDesk(sqlite_url, clock=ManualClock(T0)) as desk:
        solved_and_closed(desk, 15)
    notifier = Recorder()
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        with SupportDesk(sqlite_url, clock=ManualClock(T0)) as mine:
            barrier.wait()
            deliver_notifications(mine, notifier, now=T0 + timedelta(days=4), worker=f"w{i}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    counts = Counter(notifier.accepted)
    assert len(counts) == 30
    assert set(counts.values()) == {1}


def test_worker_killed_mid_batch_loses_nothing(tmp_path: Path) -> None:
    """kill -9 during a batch, then a restart: every notification is delivered; only the one in
    the notifier's hands at the kill may be delivered twice, and nothing is lost."""
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    log = tmp_path / "delivered.log"
    with SupportDesk(url, clock=ManualClock(T0)) as desk:
        solved_and_closed(desk, 10)
    script = textwrap.dedent(
        f"""
        import time
        from datetime import datetime
        from supportflow import ManualClock, SupportDesk
        from supportflow.outbox import deliver_notifications

        now = datetime.fromisoformat({(T0 + timedelta(days=4)).isoformat()!r})

        class Slow:
            def deliver(self, n):
                with open({str(log)!r}, "a") as f:
                    f.write(n.key + "\\n")
                time.sleep(0.05)

        with SupportDesk({url!r}, clock=ManualClock(now)) as desk:
            deliver_notifications(desk, Slow(), now=now, lease=__import__("datetime").timedelta(0))
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= 5:
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    before = log.read_text().splitlines()
    assert 5 <= len(before) < 20  # killed mid-batch

    notifier = Recorder()
    with SupportDesk(url, clock=ManualClock(T0)) as desk:
        deliver_notifications(desk, notifier, now=T0 + timedelta(days=4))
        assert pending_notifications(desk) == []
    everything = Counter(before + notifier.accepted)
    assert len(everything) == 20
    assert sum(n - 1 for n in everything.values()) <= 1


def test_notifier_without_deliver_is_refused(desk: SupportDesk) -> None:
    """A notifier must have a deliver() method."""
    with pytest.raises(TypeError, match="deliver"):
        deliver_notifications(desk, object())  # type: ignore[arg-type]
