"""The PostgreSQL recorder with the due-timer table (needs the ``postgres`` extra: psycopg 3).

Timer rows are inserted in the events' transaction (eventsourcing's ``_insert_events`` hook,
which runs inside the same transaction as the event insert). Sweeps lock due rows with
``FOR UPDATE SKIP LOCKED`` for the length of one batch, so concurrent workers never handle the
same row at once; a worker killed mid-batch loses its connection, its locks are released and
the rows it had not deleted are handled again (the ticket re-check makes that harmless).

The key table (``{events_table_name}_keys``, see `KeyTable`) is created by the same
migration. `destroy_key` deletes the row, then rewrites the table with ``VACUUM (FULL)``: a
plain VACUUM marks the dead tuple's space free but leaves its bytes in the heap file, whereas
VACUUM FULL copies only the live rows into a new file and drops the old one. The write-ahead
log keeps the INSERT record until its segment is recycled (and archived WAL, base backups and
replicas keep it for as long as they are kept): that is outside the table's files.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.errors import Diagnostic
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from ._recorders import Claim, DueRow

__all__ = ["PostgresTimerRecorder"]

_MIGRATION_LOCK = 0x5F5355505046  # pg_advisory_lock key: one migration at a time


class PostgresTimerRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL application recorder plus the due-timer table."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.timers_table_name = f"{events_table_name}_timers"
        self.check_identifier_length(f"{self.timers_table_name}_due")
        schema = Identifier(datastore.schema)
        table = Identifier(self.timers_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "due_at timestamptz NOT NULL, ticket_id uuid NOT NULL, version bigint NOT NULL, "
                "kind text NOT NULL, PRIMARY KEY (ticket_id, version))"
            ).format(schema=schema, table=table)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} "
                "(due_at, ticket_id, version)"
            ).format(index=Identifier(f"{self.timers_table_name}_due"), schema=schema, table=table)
        )
        self._lock_timeout = SQL("SET LOCAL lock_timeout = '{0}s'").format(datastore.lock_timeout)
        self._insert_rows = SQL(
            "INSERT INTO {schema}.{table} (due_at, ticket_id, version, kind) "
            "SELECT * FROM unnest(%s::timestamptz[], %s::uuid[], %s::bigint[], %s::text[]) "
            "ON CONFLICT DO NOTHING"
        ).format(schema=schema, table=table)
        self._select_due = SQL("SELECT * FROM {schema}.{table} WHERE due_at <= %s").format(
            schema=schema, table=table
        )
        self._delete_row = SQL(
            "DELETE FROM {schema}.{table} WHERE ticket_id = %s AND version = %s"
        ).format(schema=schema, table=table)
        self._count = SQL("SELECT count(*) AS n FROM {schema}.{table}").format(
            schema=schema, table=table
        )
        self._init_keys(datastore, events_table_name)

    def _init_keys(self, datastore: PostgresDatastore, events_table_name: str) -> None:
        self.keys_table_name = f"{events_table_name}_keys"
        self.check_identifier_length(f"{self.keys_table_name}_lookup_key")
        schema = Identifier(datastore.schema)
        table = Identifier(self.keys_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                "key_id uuid PRIMARY KEY, lookup text NOT NULL UNIQUE, key bytea NOT NULL, "
                "created_at timestamptz NOT NULL DEFAULT now())"
            ).format(schema=schema, table=table)
        )
        self._insert_key = SQL(
            "INSERT INTO {schema}.{table} (key_id, lookup, key) VALUES (%s, %s, %s) "
            "ON CONFLICT (lookup) DO NOTHING"
        ).format(schema=schema, table=table)
        self._select_key_for = SQL(
            "SELECT key_id, key FROM {schema}.{table} WHERE lookup = %s"
        ).format(schema=schema, table=table)
        self._select_key = SQL("SELECT key FROM {schema}.{table} WHERE key_id = %s").format(
            schema=schema, table=table
        )
        self._delete_key = SQL("DELETE FROM {schema}.{table} WHERE key_id = %s").format(
            schema=schema, table=table
        )
        self._count_keys = SQL("SELECT count(*) AS n FROM {schema}.{table}").format(
            schema=schema, table=table
        )
        self._vacuum_keys = SQL("VACUUM (FULL) {schema}.{table}").format(schema=schema, table=table)
        self._session_lock_timeout = SQL("SET lock_timeout = '{0}s'").format(datastore.lock_timeout)

    # -- schema -----------------------------------------------------------------------------

    def create_table(self) -> None:
        """Create tables, type and indexes; concurrent migrations wait for each other."""
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))

    def schema_ready(self) -> bool:
        """Whether the migration has created this recorder's tables."""
        names = [
            f'"{self.datastore.schema}"."{name}"'
            for name in (self.events_table_name, self.timers_table_name, self.keys_table_name)
        ]
        with self.datastore.get_connection() as conn:
            row = conn.execute(
                "SELECT bool_and(to_regclass(name) IS NOT NULL) AS ok FROM unnest(%s::text[]) name",
                [names],
            ).fetchone()
        return bool(row and row["ok"])

    # -- writes with the events -------------------------------------------------------------

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        rows: Sequence[DueRow] = kwargs.get("due_timers") or ()
        if rows:
            curs.execute(self._lock_timeout, prepare=True)
            curs.execute(self._insert_rows, self._columns(rows), prepare=True)

    @staticmethod
    def _columns(rows: Sequence[DueRow]) -> list[list[Any]]:
        return [
            [r.due_at for r in rows],
            [r.ticket_id for r in rows],
            [r.version for r in rows],
            [r.kind for r in rows],
        ]

    def add_timers(self, rows: Sequence[DueRow]) -> None:
        if not rows:
            return
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._lock_timeout)
            curs.execute(self._insert_rows, self._columns(rows))

    def count_timers(self) -> int:
        with self.datastore.get_connection() as conn:
            row = conn.execute(self._count).fetchone()
        return int(row["n"]) if row else 0

    # -- sweeps -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def claim_due(
        self, now: _dt.datetime, *, limit: int, after: DueRow | None = None
    ) -> Iterator[Claim]:
        statement: Composed = self._select_due
        params: list[Any] = [now]
        if after is not None:
            statement += SQL(" AND (due_at, ticket_id, version) > (%s, %s, %s)")
            params.extend([after.due_at, after.ticket_id, after.version])
        statement += SQL(" ORDER BY due_at, ticket_id, version LIMIT %s FOR UPDATE SKIP LOCKED")
        params.append(limit)
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute(self._lock_timeout)
            found = conn.execute(statement, params).fetchall()
            rows = [
                DueRow(
                    r["due_at"].astimezone(_dt.UTC), r["ticket_id"], int(r["version"]), r["kind"]
                )
                for r in found
            ]

            def delete(row: DueRow) -> None:
                # on the claiming connection: also keeps it from idling in its transaction
                conn.execute(self._delete_row, (row.ticket_id, row.version))

            yield Claim(rows, on_done=delete)

    # -- keys -------------------------------------------------------------------------------

    def create_key(self, key_id: UUID, lookup: str, key: bytes) -> tuple[UUID, bytes]:
        # READ COMMITTED: the INSERT waits for a concurrent insert of the same lookup and
        # does nothing once it commits; the SELECT (a new snapshot) then sees the winner.
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._lock_timeout)
            curs.execute(self._insert_key, (key_id, lookup, bytes(key)))
            row = curs.execute(self._select_key_for, (lookup,)).fetchone()
        assert row is not None
        return row["key_id"], bytes(row["key"])

    def find_key(self, key_id: UUID) -> bytes | None:
        with self.datastore.get_connection() as conn:
            row = conn.execute(self._select_key, (key_id,)).fetchone()
        return None if row is None else bytes(row["key"])

    def key_for(self, lookup: str) -> tuple[UUID, bytes] | None:
        with self.datastore.get_connection() as conn:
            row = conn.execute(self._select_key_for, (lookup,)).fetchone()
        return None if row is None else (row["key_id"], bytes(row["key"]))

    def destroy_key(self, key_id: UUID) -> bool:
        """Delete the row, then ``VACUUM (FULL)`` the key table (autocommit, outside any
        transaction; it holds the table's ACCESS EXCLUSIVE lock while it copies the live
        keys). The VACUUM runs even when no key was deleted, so a retry completes an
        interrupted destroy. Raises OperationalError if the server skipped the VACUUM
        (the store's user does not own the key table)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._lock_timeout)
            curs.execute(self._delete_key, (key_id,))
            deleted = curs.rowcount > 0
        self._vacuum()
        return deleted

    def _vacuum(self) -> None:
        warnings: list[str] = []

        def on_notice(diagnostic: Diagnostic) -> None:
            if diagnostic.severity_nonlocalized == "WARNING":
                warnings.append(diagnostic.message_primary or "")

        with self.datastore.get_connection() as conn:
            assert conn.autocommit  # VACUUM cannot run inside a transaction block
            conn.add_notice_handler(on_notice)
            try:
                conn.execute(self._session_lock_timeout)
                conn.execute(self._vacuum_keys)
            finally:
                conn.remove_notice_handler(on_notice)
                if not conn.closed:
                    conn.execute("RESET lock_timeout")
        if warnings:
            raise OperationalError(
                f"VACUUM of the key table {self.keys_table_name} was skipped: {'; '.join(warnings)}"
            )

    def count_keys(self) -> int:
        with self.datastore.get_connection() as conn:
            row = conn.execute(self._count_keys).fetchone()
        return int(row["n"]) if row else 0
