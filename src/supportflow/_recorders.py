"""Recorders that keep the due-timer index in the same transaction as the events.

Each save of a ticket hands the recorder (through ``Application.save(..., due_timers=...)``
and ``insert_events(stored_events, due_timers=...)``) at most one row per ticket: the timer
the ticket has pending after the save, keyed by (ticket id, ticket version). Rows are only
ever inserted by saves and deleted by the sweep that handled them, so a row is never
updated: a stale row (the ticket was reopened or solved again since) is harmless, the sweep
re-checks the ticket and drops it.

`claim_due` hands out due rows in (due instant, ticket id, version) order. On PostgreSQL the
rows are locked ``FOR UPDATE SKIP LOCKED`` until the claim ends, so several workers share
the due rows without handling one twice; on SQLite and in memory concurrent sweeps may
handle the same row, and the ticket's optimistic concurrency keeps the outcome exactly-once.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as _dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

__all__ = [
    "Claim",
    "DueRow",
    "MemoryFactory",
    "MemoryTimerRecorder",
    "SQLiteTimerRecorder",
    "TimerIndex",
]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def _micros(at: _dt.datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(value: int) -> _dt.datetime:
    return _EPOCH + _dt.timedelta(microseconds=value)


class DueRow(NamedTuple):
    """One row of the due-timer index: after `version`, ticket `ticket_id` had a `kind`
    timer pending, due at `due_at` (aware UTC)."""

    due_at: _dt.datetime
    ticket_id: UUID
    version: int
    kind: str

    @property
    def key(self) -> tuple[int, str, int]:
        """The sort key (due instant, ticket id, version)."""
        return (_micros(self.due_at), self.ticket_id.hex, self.version)


class Claim:
    """Due rows handed to one sweep; `done(row)` removes the row when the claim ends."""

    def __init__(
        self, rows: Sequence[DueRow], on_done: Callable[[DueRow], None] | None = None
    ) -> None:
        self.rows: list[DueRow] = list(rows)
        self.finished: list[DueRow] = []
        self._on_done = on_done

    def done(self, row: DueRow) -> None:
        """The sweep handled `row` (fired its timer, or found it stale)."""
        if self._on_done is not None:
            self._on_done(row)
        self.finished.append(row)


@runtime_checkable
class TimerIndex(Protocol):
    """What the desk needs from a recorder that keeps the due-timer index."""

    def claim_due(
        self, now: _dt.datetime, *, limit: int, after: DueRow | None = None
    ) -> contextlib.AbstractContextManager[Claim]:
        """Up to `limit` rows due at or before `now`, after `after` in index order."""

    def add_timers(self, rows: Sequence[DueRow]) -> None:
        """Insert rows outside a save (migration backfill); existing keys are kept."""

    def count_timers(self) -> int:
        """How many rows the index holds (due or not)."""


def _rows(kwargs: dict[str, Any]) -> Sequence[DueRow]:
    rows: Sequence[DueRow] = kwargs.get("due_timers") or ()
    return rows


# -- memory ---------------------------------------------------------------------------------


class MemoryTimerRecorder(POPOApplicationRecorder):
    """eventsourcing's in-memory recorder plus a sorted due-timer index."""

    def __init__(self) -> None:
        super().__init__()
        self._timer_keys: list[tuple[int, str, int]] = []
        self._timers: dict[tuple[int, str, int], DueRow] = {}

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # Runs under the database lock, after the uniqueness check: atomic with the events.
        ids = super()._update_table(stored_events, **kwargs)
        self._add(_rows(kwargs))
        return ids

    def _add(self, rows: Sequence[DueRow]) -> None:
        for row in rows:
            key = row.key
            if key not in self._timers:
                self._timers[key] = row
                bisect.insort(self._timer_keys, key)

    def add_timers(self, rows: Sequence[DueRow]) -> None:
        with self._database_lock:
            self._add(rows)

    def count_timers(self) -> int:
        with self._database_lock:
            return len(self._timers)

    @contextlib.contextmanager
    def claim_due(
        self, now: _dt.datetime, *, limit: int, after: DueRow | None = None
    ) -> Iterator[Claim]:
        with self._database_lock:
            stop = bisect.bisect_right(self._timer_keys, (_micros(now), "\U0010ffff", 2**63))
            start = 0 if after is None else bisect.bisect_right(self._timer_keys, after.key)
            keys = self._timer_keys[start : min(stop, start + limit)]
            claim = Claim([self._timers[k] for k in keys])
        yield claim
        with self._database_lock:
            for row in claim.finished:
                key = row.key
                if self._timers.pop(key, None) is not None:
                    del self._timer_keys[bisect.bisect_left(self._timer_keys, key)]


class MemoryFactory(POPOFactory):
    """``memory://``: eventsourcing's POPO store with the due-timer index."""

    def application_recorder(self) -> MemoryTimerRecorder:
        return MemoryTimerRecorder()


# -- SQLite ---------------------------------------------------------------------------------


class SQLiteTimerRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite recorder plus a due-timer table written in the same
    transaction as the events."""

    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        self.timers_table_name = f"{events_table_name}_timers"
        super().__init__(datastore, events_table_name)
        self.created_timer_table = False

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {self.timers_table_name} ("
            "due_at INTEGER NOT NULL, ticket_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "kind TEXT NOT NULL, PRIMARY KEY (ticket_id, version))"
        )
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {self.timers_table_name}_due "
            f"ON {self.timers_table_name} (due_at, ticket_id, version)"
        )
        return statements

    def _create_table(self, c: SQLiteCursor) -> None:
        c.execute(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?",
            (self.timers_table_name,),
        )
        existed = bool(c.fetchone()[0])
        super()._create_table(c)
        self.created_timer_table = not existed

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        self._insert_rows(c, _rows(kwargs))
        return ids

    def _insert_rows(self, c: SQLiteCursor, rows: Sequence[DueRow]) -> None:
        if rows:
            c.executemany(
                f"INSERT OR IGNORE INTO {self.timers_table_name} VALUES (?,?,?,?)",
                [(_micros(r.due_at), r.ticket_id.hex, r.version, r.kind) for r in rows],
            )

    def add_timers(self, rows: Sequence[DueRow]) -> None:
        with self.datastore.transaction(commit=True) as c:
            self._insert_rows(c, rows)

    def count_timers(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) FROM {self.timers_table_name}")
            return int(c.fetchone()[0])

    @contextlib.contextmanager
    def claim_due(
        self, now: _dt.datetime, *, limit: int, after: DueRow | None = None
    ) -> Iterator[Claim]:
        statement = f"SELECT * FROM {self.timers_table_name} WHERE due_at <= ?"
        params: list[Any] = [_micros(now)]
        if after is not None:
            statement += " AND (due_at, ticket_id, version) > (?, ?, ?)"
            params.extend(after.key)
        statement += " ORDER BY due_at, ticket_id, version LIMIT ?"
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            claim = Claim(
                [
                    DueRow(_from_micros(r["due_at"]), UUID(r["ticket_id"]), r["version"], r["kind"])
                    for r in c.fetchall()
                ]
            )
        yield claim
        if claim.finished:
            with self.datastore.transaction(commit=True) as c:
                c.executemany(
                    f"DELETE FROM {self.timers_table_name} WHERE ticket_id = ? AND version = ?",
                    [(r.ticket_id.hex, r.version) for r in claim.finished],
                )
