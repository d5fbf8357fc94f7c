"""Timer workers and concurrent writers as real processes, on SQLite and PostgreSQL.

Every test here starts OS processes (`supportflow worker`, or a small agent script) against
one store and checks the stored histories afterwards: exactly one event per version, every
due timer written once, stamped with its due instant.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from supportflow import ManualClock, Severity, Status, SupportDesk, SupportPolicy
from supportflow._timers import IndexedApplication
from supportflow.ticket import Ticket
from supportflow.worker import run_worker

FRI = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
NO_SLA = SupportPolicy(update_targets=())
"""These tests are about the close and auto-solve timers: no update-SLA timers in the way."""
DUE_TICKETS = 500

AGENT = """
import sys
from datetime import datetime
from uuid import UUID
from supportflow import InvalidCommand, SupportDesk, SupportPolicy
url, mode, name, count, at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
when = datetime.fromisoformat(at)
# no update SLA: follow-ups run under this desk's policy, and these tests are about races
with SupportDesk(url, policy=SupportPolicy(update_targets=())) as desk:
    for tid in sys.argv[6:]:
        for i in range(count):
            try:
                if mode == "reply":
                    desk.reply(UUID(tid), agent=name, body=f"{name} {i}", at=when)
                    print("ok", tid)
                else:
                    landed = desk.customer_reply(
                        UUID(tid), body="late", message_id="<m@x>", at=when
                    )
                    print("landed", tid, landed)
            except InvalidCommand as error:
                print("refused", tid, str(error).replace(chr(10), " "))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tickets.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def agents(store: str, mode: str, count: int, at: datetime, tids: list[UUID], n: int) -> list[str]:
    """Run `n` agent processes at once; return their stdout lines."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", AGENT, store, mode, f"p{i}", str(count), at.isoformat()]
            + [str(t) for t in tids],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    lines: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines.extend(out.splitlines())
    return lines


def worker(store: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "supportflow", "worker", "--store", store, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> list[str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out.splitlines()


def written(lines: list[str]) -> int:
    return sum(
        int(m.group(1))
        for line in lines
        for m in [re.search(r" written=(\d+)", line)]
        if m and "event=sweep" in line
    )


def solved_tickets(store: str, count: int, at: datetime) -> list[UUID]:
    """`count` tickets solved at `at`, saved in batches (setup, not under test)."""
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(at)) as desk:
        policy = desk.policy
        tickets = []
        for i in range(count):
            ticket = Ticket.submit(
                ticket_id=Ticket.create_id(),
                policy=policy,
                at=at,
                requester=f"c{i}@example.com",
                subject="x",
                description="",
                severity=Severity.MEDIUM,
                channel="web",
                product={},
                tags=[],
            )
            ticket.solve(policy, agent="bob", solution="done", at=at)
            tickets.append(ticket)
        app = desk.application
        assert isinstance(app, IndexedApplication)
        for start in range(0, count, 100):
            app.save(*tickets[start : start + 100])
        return [t.id for t in tickets]


def kinds(desk: SupportDesk, tid: UUID) -> list[str]:
    return [type(e).__name__ for e in desk.history(tid)]


def test_processes_replying_to_one_ticket_lose_no_event(store: str) -> None:
    """4 processes replying 8 times each to one ticket: versions 1..33, every reply once."""
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI)) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
    agents(store, "reply", 8, FRI + timedelta(hours=1), [tid], n=4)
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI)) as desk:
        events = desk.history(tid)
        assert [e.originator_version for e in events] == list(range(1, 34))
        bodies = sorted(e.body for e in events[1:])  # type: ignore[attr-defined]
        assert bodies == sorted(f"p{p} {i}" for p in range(4) for i in range(8))


def test_same_late_message_from_8_processes_makes_one_follow_up(store: str) -> None:
    """One inbound reply to a closed ticket, delivered by 8 processes at once: one follow-up."""
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI)) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="done")
    lines = agents(store, "customer", 1, FRI + timedelta(days=5), [tid], n=8)
    landed = {line.split()[2] for line in lines if line.startswith("landed")}
    assert len(landed) == 1
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI + timedelta(days=5))) as desk:
        assert [str(f) for f in desk.get(tid).follow_ups] == list(landed)
        assert kinds(desk, UUID(landed.pop())) == ["Submitted"]


def test_concurrent_workers_close_every_ticket_once(store: str) -> None:
    """4 workers (PostgreSQL) or 2 (SQLite) started together on 500 due tickets close each
    exactly once, and their logs add up to 500 events."""
    tids = solved_tickets(store, DUE_TICKETS, FRI)
    now = (FRI + timedelta(days=4)).isoformat()
    count = 4 if store.startswith("postgresql") else 2
    procs = [worker(store, "--once", "--now", now, "--batch-size", "50") for _ in range(count)]
    lines = [line for proc in procs for line in finish(proc)]
    assert written(lines) == DUE_TICKETS
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI + timedelta(days=4))) as desk:
        for tid in tids:
            assert kinds(desk, tid) == ["Submitted", "Solved", "Closed"]
        assert desk._timers.count_timers() == 0


def test_killed_worker_then_restart_fires_every_timer_once(store: str) -> None:
    """kill -9 of a worker mid-batch, then a restart: every ticket closed exactly once."""
    tids = solved_tickets(store, DUE_TICKETS, FRI)
    now = (FRI + timedelta(days=4)).isoformat()
    proc = worker(store, "--once", "--now", now, "--batch-size", "100", "--log-tickets")
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        seen += "event=ticket " in line
        if seen == 30:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI)) as desk:
        closed = sum(kinds(desk, t)[-1] == "Closed" for t in tids)
    assert 30 <= closed < DUE_TICKETS  # killed in the middle
    lines = finish(worker(store, "--once", "--now", now))
    assert written(lines) == DUE_TICKETS - closed
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI + timedelta(days=4))) as desk:
        for tid in tids:
            assert kinds(desk, tid) == ["Submitted", "Solved", "Closed"]
        assert desk._timers.count_timers() == 0


def test_worker_down_for_days_fires_each_timer_once_at_its_due_instant(store: str) -> None:
    """Worker runs at jumping (and once backward-stepping) instants: every timer is written
    once, stamped with its due instant, never early."""
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI)) as desk:
        pending = desk.submit(requester="ann@example.com", subject="p")
        desk.request_info(pending, agent="bob", body="?")
        solved = desk.submit(requester="bo@example.com", subject="s")
        desk.solve(solved, agent="bob", solution="x")
        solve_due = desk.get(pending).solve_due_at
        close_due = desk.get(solved).close_due_at
    assert solve_due is not None
    assert close_due is not None
    for days in (1, 5, 2):  # 5 -> 2: the worker's clock steps back
        finish(worker(store, "--once", "--now", (FRI + timedelta(days=days)).isoformat()))
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI)) as desk:
        assert kinds(desk, pending) == ["Submitted", "Responded"]  # nothing early
        assert kinds(desk, solved) == ["Submitted", "Solved", "Closed"]
        close_after_solve = desk.get(pending, as_of=solve_due).close_due_at
    for days in (8, 40, 40):
        finish(worker(store, "--once", "--now", (FRI + timedelta(days=days)).isoformat()))
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI + timedelta(days=40))) as desk:
        auto = [e for e in desk.history(pending) if type(e).__name__ in {"Solved", "Closed"}]
        assert [(type(e).__name__, e.timestamp) for e in auto] == [
            ("Solved", solve_due),
            ("Closed", close_after_solve),
        ]
        closes = [e for e in desk.history(solved) if type(e).__name__ == "Closed"]
        assert [e.timestamp for e in closes] == [close_due]
        assert desk._timers.count_timers() == 0


def test_reply_racing_auto_close_in_two_processes_gives_one_outcome(store: str) -> None:
    """Customer replies at due - 1 s in one process while a worker closes in another: each
    ticket is either reopened (no Closed) or closed (reply refused, no Reopened)."""
    tids = solved_tickets(store, 20, FRI)
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI)) as desk:
        due = desk.get(tids[0]).close_due_at
    assert due is not None
    proc = worker(store, "--once", "--now", (due + timedelta(hours=1)).isoformat())
    lines = agents(store, "customer", 1, due - timedelta(seconds=1), tids, n=1)
    finish(proc)
    outcome = {UUID(line.split()[1]): line.split()[0] for line in lines}
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(due - timedelta(seconds=1))) as desk:
        for tid in tids:
            history = kinds(desk, tid)
            if outcome[tid] == "landed":
                assert "Reopened" in history
                assert "Closed" not in history
            else:
                assert outcome[tid] == "refused"
                assert history == ["Submitted", "Solved", "Closed"]


def test_worker_stops_gracefully_on_sigterm_with_exit_0(tmp_path: Path) -> None:
    """SIGTERM to a long-running worker: it logs its stop and exits 0."""
    store = f"sqlite:///{tmp_path / 't.db'}"
    SupportDesk.migrate(store)
    proc = worker(store, "--interval", "60")
    assert proc.stdout is not None
    assert "event=start" in proc.stdout.readline()
    assert "event=sweep" in proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    lines = finish(proc)
    assert "event=stop" in lines[-1]


def test_embedded_worker_stops_when_event_set(tmp_path: Path) -> None:
    """`run_worker` in a thread sweeps until its stop event is set, then returns 0."""
    clock = ManualClock(FRI)
    with SupportDesk(f"sqlite:///{tmp_path / 't.db'}", policy=NO_SLA, clock=clock) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="x")
        clock.advance(days=4)
        stop = threading.Event()
        lines: list[str] = []
        result: list[int] = []

        def log(line: str) -> None:
            lines.append(line)
            if "event=sweep" in line:
                stop.set()

        thread = threading.Thread(
            target=lambda: result.append(run_worker(desk, interval=0.01, stop=stop, log=log))
        )
        thread.start()
        thread.join(timeout=30)
        assert result == [0]
        assert desk.get(tid).status is Status.CLOSED
        assert written(lines) == 1


def test_worker_with_snapshot_every_stores_snapshots_of_the_tickets_it_writes(
    tmp_path: Path,
) -> None:
    """`supportflow worker --snapshot-every 3`: the close the worker writes is the ticket's
    third event, so the worker stores its snapshot, and a desk reads the ticket from it."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 't.db'}"
    with SupportDesk(url, policy=NO_SLA, clock=ManualClock(FRI)) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="done")
    now = (FRI + timedelta(days=4)).isoformat()
    finish(worker(url, "--once", "--now", now, "--snapshot-every", "3"))
    with sqlite3.connect(tmp_path / "t.db") as connection:
        (count,) = connection.execute("SELECT count(*) FROM stored_snapshots").fetchone()
    connection.close()
    assert count == 1
    with SupportDesk(url, policy=NO_SLA, clock=ManualClock(FRI), snapshot_every=3) as desk:
        assert desk.get(tid).status is Status.CLOSED
