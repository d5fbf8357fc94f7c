"""The outbox's fault tests on every store: a notifier failing at random, permanent failures,
concurrent workers, a restart, and a delivery process killed with SIGKILL mid-batch.
Nothing is lost, and the worker itself never delivers one notification twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from supportflow import ManualClock, SupportDesk
from supportflow.outbox import deliver_notifications, pending_notifications

from .test_outbox import T0, Recorder, solved_and_closed

DUE = T0 + timedelta(days=4)
"""Every ticket of `solved_and_closed` is solved and closed by then."""
TICKETS = 8
NOTIFICATIONS = 2 * TICKETS
"""A solved notice and a survey request per ticket."""


def store_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'outbox.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store supportflow supports."""
    return store_url(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The stores several processes can share."""
    return store_url(request.param, request, tmp_path)


@pytest.fixture
def desk(store: str) -> Iterator[SupportDesk]:
    with SupportDesk(store, clock=ManualClock(T0)) as d:
        solved_and_closed(d, TICKETS)
        yield d


def exactly_once(accepted: list[str]) -> bool:
    counts = Counter(accepted)
    return len(counts) == NOTIFICATIONS and set(counts.values()) == {1}


# -- failures ---------------------------------------------------------------------------------


def test_random_failures_are_retried_until_each_is_delivered_once(desk: SupportDesk) -> None:
    """With a notifier failing half the time, retries (after backoff) deliver every
    notification, each accepted exactly once, and none is left pending."""
    notifier = Recorder(fail=0.5, seed=7)
    now = DUE
    for _ in range(40):
        report = deliver_notifications(desk, notifier, now=now)
        if report.pending == 0 and report.retried == 0:
            break
        now += timedelta(hours=7)  # past the longest backoff
    assert exactly_once(notifier.accepted)
    assert notifier.calls > NOTIFICATIONS  # failures happened and were retried
    assert pending_notifications(desk) == []


def test_permanent_failure_is_recorded_and_not_retried(desk: SupportDesk) -> None:
    """A `PermanentDeliveryError` ends each delivery: counted as failed, never tried again."""
    notifier = Recorder(fail=1.0, permanent=True)
    report = deliver_notifications(desk, notifier, now=DUE)
    assert report.failed == NOTIFICATIONS
    deliver_notifications(desk, notifier, now=DUE + timedelta(days=5))
    assert notifier.calls == NOTIFICATIONS
    assert pending_notifications(desk) == []


def test_retries_stop_after_max_attempts(desk: SupportDesk) -> None:
    """A delivery that keeps failing is given up after `max_attempts` attempts."""
    notifier = Recorder(fail=1.0)
    now = DUE
    for _ in range(6):
        deliver_notifications(desk, notifier, now=now, max_attempts=3)
        now += timedelta(days=1)
    assert notifier.calls == NOTIFICATIONS * 3
    assert pending_notifications(desk) == []


def test_batch_size_leaves_the_rest_for_the_next_run(desk: SupportDesk) -> None:
    """A run delivers at most `batch_size`; the next run delivers the rest, none twice."""
    notifier = Recorder()
    first = deliver_notifications(desk, notifier, now=DUE, batch_size=5)
    assert (first.delivered, first.pending) == (5, NOTIFICATIONS - 5)
    deliver_notifications(desk, notifier, now=DUE)
    assert exactly_once(notifier.accepted)


# -- several workers -------------------------------------------------------------------------------


def test_concurrent_workers_never_deliver_one_notification_twice(store: str) -> None:
    """Four workers at once (threads; on SQLite and PostgreSQL each with its own desk, in
    memory sharing the one desk) claim before delivering: each key is accepted once."""
    shared = SupportDesk(store, clock=ManualClock(T0))
    solved_and_closed(shared, TICKETS)
    notifier = Recorder()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            if store == "memory://":
                barrier.wait()
                deliver_notifications(shared, notifier, now=DUE, worker=f"w{i}")
                return
            with SupportDesk(store, clock=ManualClock(T0)) as mine:
                barrier.wait()
                deliver_notifications(mine, notifier, now=DUE, worker=f"w{i}")
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert exactly_once(notifier.accepted)
    finally:
        shared.close()


def test_restarted_worker_does_not_resend_what_was_delivered(shared_store: str) -> None:
    """A new desk and worker on the same store after a full delivery sends nothing again."""
    with SupportDesk(shared_store, clock=ManualClock(T0)) as desk:
        solved_and_closed(desk, TICKETS)
        first = Recorder()
        deliver_notifications(desk, first, now=DUE)
    again = Recorder()
    with SupportDesk(shared_store, clock=ManualClock(T0)) as desk:
        report = deliver_notifications(desk, again, now=DUE + timedelta(days=1))
    assert exactly_once(first.accepted)
    assert (again.calls, report.delivered, report.requested) == (0, 0, 0)


# -- a delivery process killed mid-batch -------------------------------------------------------

CHILD = """
import sys
import time
from datetime import datetime, timedelta

from supportflow import ManualClock, SupportDesk
from supportflow.outbox import deliver_notifications

url, log, now = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])


class Slow:
    def deliver(self, n):
        with open(log, "a") as f:
            f.write(n.key + "\\n")
        time.sleep(0.05)


with SupportDesk(url, clock=ManualClock(now)) as desk:
    deliver_notifications(desk, Slow(), now=now, lease=timedelta(0))
"""


def test_worker_killed_mid_batch_loses_nothing(shared_store: str, tmp_path: Path) -> None:
    """SIGKILL during a batch, then a restarted worker: every notification is delivered,
    nothing is lost, and only the one in the notifier's hands at the kill may be delivered
    twice (at least once, with its stable key for the receiver to dedupe)."""
    with SupportDesk(shared_store, clock=ManualClock(T0)) as desk:
        solved_and_closed(desk, TICKETS)
    log = tmp_path / "delivered.log"
    script = tmp_path / "deliver.py"
    script.write_text(textwrap.dedent(CHILD))
    child = subprocess.Popen([sys.executable, str(script), shared_store, str(log), DUE.isoformat()])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if log.exists() and len(log.read_text().splitlines()) >= 4:
                break
            time.sleep(0.01)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    before = log.read_text().splitlines()
    assert 4 <= len(before) < NOTIFICATIONS  # killed mid-batch

    notifier = Recorder()
    with SupportDesk(shared_store, clock=ManualClock(T0)) as desk:
        deliver_notifications(desk, notifier, now=DUE)
        assert pending_notifications(desk) == []
    everything = Counter(before + notifier.accepted)
    assert len(everything) == NOTIFICATIONS
    assert sum(n - 1 for n in everything.values()) <= 1
