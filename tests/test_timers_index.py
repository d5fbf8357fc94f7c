"""The due-timer index: rows written with the events, claimed in due order, and
eventsourcing's own recorder contract on every recorder supportflow customises."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from supportflow import ManualClock, SupportDesk, SupportPolicy
from supportflow._pg_recorder import PostgresTimerRecorder
from supportflow._recorders import DueRow, MemoryTimerRecorder, SQLiteTimerRecorder

from ._pg import PgServer, fresh_schema_url

FRI = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
NO_SLA = SupportPolicy(update_targets=())
"""These tests are about the close and auto-solve timers: no update-SLA timers in the way."""


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tickets.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def desk(store: str) -> Iterator[SupportDesk]:
    with SupportDesk(store, policy=NO_SLA, clock=ManualClock(FRI)) as d:
        yield d


def test_solve_writes_one_index_row_with_the_close_due_instant(desk: SupportDesk) -> None:
    """Solving a ticket indexes its auto-close timer at the ticket's close instant."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    assert desk._timers.count_timers() == 0
    desk.solve(tid, agent="bob", solution="x")
    with desk._timers.claim_due(FRI + timedelta(days=30), limit=10) as claim:
        assert [(r.ticket_id, r.kind, r.due_at) for r in claim.rows] == [
            (tid, "auto_close", desk.get(tid).close_due_at)
        ]


def test_claim_returns_only_due_rows_in_due_order(desk: SupportDesk) -> None:
    """A claim holds the rows due at `now`, earliest first, none later than `now`."""
    tids = []
    for day in (2, 0, 1):
        tid = desk.submit(requester="a@example.com", subject="x", at=FRI + timedelta(days=day))
        desk.solve(tid, agent="bob", solution="x", at=FRI + timedelta(days=day))
        tids.append(tid)
    cutoff = desk.get(tids[2]).close_due_at
    assert cutoff is not None
    with desk._timers.claim_due(cutoff, limit=10) as claim:
        assert [r.ticket_id for r in claim.rows] == [tids[1], tids[2]]


def test_failed_save_writes_no_index_row(desk: SupportDesk) -> None:
    """A save that loses its version race leaves no timer row behind (same transaction)."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    stale = desk._load(tid)
    desk.reply(tid, agent="bob", body="first")
    stale.solve(desk.policy, agent="bob", solution="x", at=FRI)
    with pytest.raises(IntegrityError):
        desk.application.save(stale)
    assert desk._timers.count_timers() == 0


def test_stale_row_after_reopen_is_dropped_without_event(desk: SupportDesk) -> None:
    """A row armed before a reopen fires nothing and leaves the index."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.solve(tid, agent="bob", solution="x")
    desk.customer_reply(tid, body="not fixed")
    assert desk.run_due_timers(now=FRI + timedelta(days=30)) == 0
    assert desk._timers.count_timers() == 0
    assert [type(e).__name__ for e in desk.history(tid)][-1] == "Responded"


def test_sweep_visits_only_due_rows_not_every_ticket(desk: SupportDesk) -> None:
    """With many tickets and few due timers, the sweep loads only the due tickets."""
    for i in range(30):
        desk.submit(requester=f"c{i}@example.com", subject="x")
    due = [desk.submit(requester="d@example.com", subject="x") for _ in range(3)]
    for tid in due:
        desk.solve(tid, agent="bob", solution="x")
    loaded: list[Any] = []
    original = desk._load

    def counting_load(ticket_id: Any) -> Any:
        loaded.append(ticket_id)
        return original(ticket_id)

    desk._load = counting_load  # type: ignore[method-assign]
    assert desk.run_due_timers(now=FRI + timedelta(days=4)) == 3
    assert sorted(loaded) == sorted(due)


def test_migrate_backfills_tickets_stored_before_the_index(tmp_path: Path) -> None:
    """An SQLite file whose timer table is missing gets its pending timers indexed on open."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with SupportDesk(url, policy=NO_SLA, clock=ManualClock(FRI)) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="x")
    import sqlite3

    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("DROP TABLE stored_events_timers")
    with SupportDesk(url, policy=NO_SLA, clock=ManualClock(FRI)) as desk:
        assert desk._timers.count_timers() == 1
        assert desk.run_due_timers(now=FRI + timedelta(days=4)) == 1
    assert SupportDesk.migrate(url) == 0  # idempotent: nothing pending any more


def test_sqlite_timer_rows_are_removed_only_when_done(tmp_path: Path) -> None:
    """Rows a claim did not mark done stay in the index."""
    recorder = SQLiteTimerRecorder(SQLiteDatastore(str(tmp_path / "r.db")))
    recorder.create_table()
    rows = [DueRow(FRI + timedelta(minutes=i), _uuid(i), 1, "auto_close") for i in range(3)]
    recorder.add_timers(rows)
    with recorder.claim_due(FRI + timedelta(hours=1), limit=10) as claim:
        claim.done(claim.rows[1])
    assert recorder.count_timers() == 2


def _uuid(i: int) -> Any:
    from uuid import UUID

    return UUID(int=i + 1)


# -- eventsourcing's recorder contract on our recorders --------------------------------------


class TestMemoryRecorderContract(ApplicationRecorderTestCase[MemoryTimerRecorder]):
    def create_recorder(self) -> MemoryTimerRecorder:
        return MemoryTimerRecorder()


class TestSQLiteRecorderContract(ApplicationRecorderTestCase[SQLiteTimerRecorder]):
    def create_recorder(self) -> SQLiteTimerRecorder:
        directory = tempfile.mkdtemp()
        recorder = SQLiteTimerRecorder(SQLiteDatastore(os.path.join(directory, "r.db")))
        recorder.create_table()
        return recorder


class TestPostgresRecorderContract(ApplicationRecorderTestCase[PostgresTimerRecorder]):
    EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False  # DESIGN 5: rejected writes leave gaps
    server: PgServer

    @pytest.fixture(autouse=True)
    def _server(self, pg_server: PgServer) -> None:
        type(self).server = pg_server

    def create_recorder(self) -> PostgresTimerRecorder:
        schema = fresh_schema_url(self.server).split("schema=")[1]
        datastore = PostgresDatastore(
            dbname=self.server.dbname,
            host=self.server.host,
            port=self.server.port,
            user=self.server.user,
            password=self.server.password,
            schema=schema,
            lock_timeout=5,
            pool_size=4,
            max_overflow=8,
        )
        recorder = PostgresTimerRecorder(datastore)
        recorder.create_table()
        return recorder

    def test_timer_rows_commit_with_events(self) -> None:
        """Rows handed to insert_events are stored; a conflicting insert stores none."""
        recorder = self.create_recorder()
        row = DueRow(FRI, _uuid(7), 1, "auto_close")
        event = StoredEvent(originator_id=row.ticket_id, originator_version=1, topic="t", state=b"")
        recorder.insert_events([event], due_timers=[row])
        with pytest.raises(IntegrityError):
            recorder.insert_events(
                [event], due_timers=[DueRow(FRI, row.ticket_id, 2, "auto_close")]
            )
        with recorder.claim_due(FRI, limit=5) as claim:
            assert claim.rows == [row]
