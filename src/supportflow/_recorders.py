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

Next to it every recorder keeps a key table (`KeyTable`, ``{events_table_name}_keys``): one
random key per requester, found by an opaque ``lookup`` string, for crypto-shredding. It is
created with the timer table, and `destroy_key` deletes a key so that the store's files no
longer hold it (SQLite: ``secure_delete`` and a truncating WAL checkpoint).
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as _dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteConnection, SQLiteCursor

__all__ = [
    "Claim",
    "DueRow",
    "KeyTable",
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


@runtime_checkable
class KeyTable(Protocol):
    """What the desk needs from a recorder that keeps the per-requester keys.

    `lookup` is an opaque string the caller computes (e.g. a digest of a normalised e-mail
    address); a key is random bytes. One key per lookup, one lookup per key id."""

    def create_key(self, key_id: UUID, lookup: str, key: bytes) -> tuple[UUID, bytes]:
        """Store `key` under `key_id` for `lookup` unless a key for `lookup` exists; return
        the stored (key_id, key): the existing one if another writer (thread or process)
        stored one first."""

    def find_key(self, key_id: UUID) -> bytes | None:
        """The key stored under `key_id`, or None (never created, or destroyed)."""

    def key_for(self, lookup: str) -> tuple[UUID, bytes] | None:
        """The (key_id, key) stored for `lookup`, or None."""

    def destroy_key(self, key_id: UUID) -> bool:
        """Delete the key so that it cannot be recovered from the store's files; True if a
        key was deleted, False if there was none under `key_id`."""

    def count_keys(self) -> int:
        """How many keys the table holds."""


def _rows(kwargs: dict[str, Any]) -> Sequence[DueRow]:
    rows: Sequence[DueRow] = kwargs.get("due_timers") or ()
    return rows


# -- memory ---------------------------------------------------------------------------------


class _KeyRow(NamedTuple):
    lookup: str
    key: bytes
    created_at: _dt.datetime


class MemoryTimerRecorder(POPOApplicationRecorder):
    """eventsourcing's in-memory recorder plus a sorted due-timer index and a key table."""

    def __init__(self) -> None:
        super().__init__()
        self._timer_keys: list[tuple[int, str, int]] = []
        self._timers: dict[tuple[int, str, int], DueRow] = {}
        self._keys: dict[UUID, _KeyRow] = {}
        self._key_ids: dict[str, UUID] = {}

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

    # -- keys -------------------------------------------------------------------------------

    def create_key(self, key_id: UUID, lookup: str, key: bytes) -> tuple[UUID, bytes]:
        with self._database_lock:
            existing = self._key_ids.get(lookup)
            if existing is not None:
                return existing, self._keys[existing].key
            if key_id in self._keys:
                raise IntegrityError(f"key id {key_id} is already stored for another lookup")
            self._keys[key_id] = _KeyRow(lookup, bytes(key), _dt.datetime.now(_dt.UTC))
            self._key_ids[lookup] = key_id
            return key_id, self._keys[key_id].key

    def find_key(self, key_id: UUID) -> bytes | None:
        with self._database_lock:
            row = self._keys.get(key_id)
            return None if row is None else row.key

    def key_for(self, lookup: str) -> tuple[UUID, bytes] | None:
        with self._database_lock:
            key_id = self._key_ids.get(lookup)
            return None if key_id is None else (key_id, self._keys[key_id].key)

    def destroy_key(self, key_id: UUID) -> bool:
        with self._database_lock:
            row = self._keys.pop(key_id, None)
            if row is None:
                return False
            del self._key_ids[row.lookup]
            return True

    def count_keys(self) -> int:
        with self._database_lock:
            return len(self._keys)


class MemoryFactory(POPOFactory):
    """``memory://``: eventsourcing's POPO store with the due-timer index."""

    def application_recorder(self) -> MemoryTimerRecorder:
        return MemoryTimerRecorder()


# -- SQLite ---------------------------------------------------------------------------------


class SQLiteTimerRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite recorder plus a due-timer table written in the same
    transaction as the events, and a key table."""

    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        self.timers_table_name = f"{events_table_name}_timers"
        self.keys_table_name = f"{events_table_name}_keys"
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
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {self.keys_table_name} ("
            "key_id TEXT PRIMARY KEY, lookup TEXT NOT NULL UNIQUE, key BLOB NOT NULL, "
            "created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
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

    # -- keys -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _secure_writer(self) -> Iterator[SQLiteConnection]:
        """A writer connection with ``secure_delete`` on: SQLite overwrites deleted cells
        and freed pages with zeros, and page splits leave no stale copies of a key behind.
        The connection's previous setting is restored for the pool."""
        with self.datastore.get_connection(commit=True) as conn:
            c = conn.cursor()
            c.execute("PRAGMA secure_delete")
            previous = int(c.fetchone()[0])
            c.execute("PRAGMA secure_delete = ON")
            try:
                yield conn
            finally:
                c.execute(f"PRAGMA secure_delete = {previous}")

    def create_key(self, key_id: UUID, lookup: str, key: bytes) -> tuple[UUID, bytes]:
        with self._secure_writer() as conn, conn.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {self.keys_table_name} (key_id, lookup, key) VALUES (?, ?, ?) "
                "ON CONFLICT (lookup) DO NOTHING",
                (key_id.hex, lookup, bytes(key)),
            )
            c.execute(f"SELECT key_id, key FROM {self.keys_table_name} WHERE lookup = ?", (lookup,))
            row = c.fetchone()
        return UUID(row["key_id"]), bytes(row["key"])

    def find_key(self, key_id: UUID) -> bytes | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT key FROM {self.keys_table_name} WHERE key_id = ?", (key_id.hex,))
            row = c.fetchone()
        return None if row is None else bytes(row["key"])

    def key_for(self, lookup: str) -> tuple[UUID, bytes] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT key_id, key FROM {self.keys_table_name} WHERE lookup = ?", (lookup,))
            row = c.fetchone()
        return None if row is None else (UUID(row["key_id"]), bytes(row["key"]))

    def destroy_key(self, key_id: UUID) -> bool:
        """Delete with ``secure_delete`` on (the page is rewritten with zeros), then a
        truncating WAL checkpoint: the zeroed page reaches the database file and the WAL,
        which still holds the frames written when the key was stored, is emptied. The
        checkpoint runs even when no key was deleted, so a retry completes an interrupted
        destroy. Raises OperationalError if readers kept the checkpoint from finishing."""
        with self._secure_writer() as conn:
            with conn.transaction(commit=True) as c:
                c.execute(f"DELETE FROM {self.keys_table_name} WHERE key_id = ?", (key_id.hex,))
                c.execute("SELECT changes()")
                deleted = int(c.fetchone()[0]) > 0
            c = conn.cursor()
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy = int(c.fetchone()[0])
        if busy:
            raise OperationalError(
                f"the key {key_id} is deleted but the WAL checkpoint could not finish "
                "(readers kept it busy); destroy it again to complete the checkpoint"
            )
        return deleted

    def count_keys(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) FROM {self.keys_table_name}")
            return int(c.fetchone()[0])
