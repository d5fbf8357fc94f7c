"""The log in order, in batches, read with less Python per row on SQLite.

`read_batch(recorder, start, limit, topics)` returns what
``recorder.select_notifications(start=start, limit=limit, topics=topics)`` returns. On
eventsourcing's own SQLite recorder (its `select_notifications` and `convert_originator_id`
not overridden, UUID ids) it runs the same query through the recorder's datastore with plain
tuples instead of `sqlite3.Row` objects, and builds each `Notification` without the frozen
dataclass's per-field `__setattr__` (and each id without `UUID.__init__`'s text clean-up):
the same objects, about a third of the cost per row.
Any other recorder (PostgreSQL, a subclass that changes the query) is asked as usual.
`read_rows` gives the same notifications as tuples (`Row`), and `notification(row)` the
object: the audit's common path needs no `Notification` at all.

`read_rows` can also read one share of the log (`Share`): the rows whose originator id's last
byte, modulo the number of shares, is the share's index (every event of an aggregate is in
the same share), up to a last position. SQLite and PostgreSQL pick the rows in the query;
another recorder's rows are picked here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID, SafeUUID

from eventsourcing.persistence import Notification
from eventsourcing.sqlite import SQLiteApplicationRecorder

__all__ = [
    "Row",
    "Share",
    "as_uuid",
    "notification",
    "read_batch",
    "read_rows",
    "share_of",
]

Share = tuple[int, int, int]
"""One share of the log: (index, number of shares, last log position)."""

_HEX = "0123456789abcdef"
_SQLITE_SHARE = (
    "AND rowid<=? AND CASE WHEN typeof(originator_id)='text' AND length(originator_id)=32 "
    "AND length(CAST(originator_id AS BLOB))=32 AND originator_id NOT GLOB '*[^0-9a-f]*' "
    f"THEN ((instr('{_HEX}', substr(originator_id, -1)) - 1) + 16 * "
    f"(instr('{_HEX}', substr(originator_id, -2, 1)) - 1)) % ? = ? ELSE 1 END "
)
"""A share's rows on SQLite: those of an id stored as 32 lower-case hex digits (as the
recorder writes it) whose last byte is the share's; any row whose id is stored otherwise
(altered) is read by every share and placed by `share_of` once decoded."""


def share_of(originator_id: object, shares: int) -> int:
    """The share (0 to `shares` - 1) of a row whose originator id is `originator_id`: a
    UUID's last byte modulo `shares` (what the SQL of `read_rows` computes); share 0 for an
    id that is not a UUID (a row the audit reports as altered)."""
    if isinstance(originator_id, UUID):
        return (originator_id.int & 0xFF) % shares
    return 0


_SELECT = SQLiteApplicationRecorder.select_notifications
_CONVERT = SQLiteApplicationRecorder.convert_originator_id


def _plain_sqlite(recorder: Any) -> bool:
    cls = type(recorder)
    return (
        isinstance(recorder, SQLiteApplicationRecorder)
        and cls.select_notifications is _SELECT
        and cls.convert_originator_id is _CONVERT
        and getattr(recorder.datastore, "originator_id_type", None) == "uuid"
        and hasattr(Notification, "__dataclass_fields__")
        and not hasattr(Notification, "__slots__")
    )


_SET = object.__setattr__
_UNKNOWN = SafeUUID.unknown
_RECENT_IDS: dict[object, Any] = {}
"""Recently read originator ids by their stored text (an aggregate's events are near each
other in the log): the same immutable `UUID` again. Emptied when full."""
_RECENT_LIMIT = 4096


def as_uuid(text: Any) -> Any:
    """`UUID(text)` for the 32 hex digits the recorder stores, without `UUID.__init__`'s
    string clean-up (what it does last is the same: ``int(text, 16)`` and two slots). A
    stored id that is no UUID at all (an altered row) is given back as it is."""
    try:
        if text.__class__ is not str or len(text) != 32 or not text.isalnum():
            return UUID(text)  # dashes, braces, signs: the constructor decides
        number = int(text, 16)
        if f"{number:032x}" != text.lower():  # e.g. a "0x" prefix, which `UUID` refuses
            return UUID(text)
    except (TypeError, ValueError, AttributeError):
        return text
    value = object.__new__(UUID)
    _SET(value, "int", number)
    _SET(value, "is_safe", _UNKNOWN)
    return value


Row = tuple[int, Any, int, str, Any]
"""A notification's fields as a tuple: (id, originator_id, originator_version, topic, state)."""


def _sqlite_rows(
    recorder: Any, start: int, limit: int, topics: Sequence[str], share: Share | None = None
) -> list[Row]:
    statement = (
        "SELECT rowid, originator_id, originator_version, topic, state "
        f"FROM {recorder.events_table_name} WHERE rowid>=? "
    )
    params: list[int | str] = [start]
    if share is not None:
        index, shares, last = share
        statement += _SQLITE_SHARE
        params += [last, shares, index]
    if topics:
        statement += f"AND topic IN ({','.join('?' * len(topics))}) "
        params += list(topics)
    statement += "ORDER BY rowid LIMIT ?"
    params.append(limit)
    with recorder.datastore.transaction(commit=False) as wrapped:
        cursor = getattr(wrapped, "sqlite_cursor", None)
        if cursor is None:  # not the cursor this module knows: rows as the recorder reads them
            wrapped.execute(statement, params)
            rows = [tuple(row) for row in wrapped.fetchall()]
        else:
            cursor.row_factory = None  # plain tuples, for this cursor only
            cursor.execute(statement, params)
            rows = cursor.fetchall()
    out: list[Row] = []
    append = out.append
    ids = _RECENT_IDS
    for rowid, oid, version, topic, state in rows:
        uuid = ids.get(oid)
        if uuid is None:
            if len(ids) >= _RECENT_LIMIT:
                ids.clear()
            uuid = ids[oid] = as_uuid(oid)
        if share is not None and share_of(uuid, share[1]) != share[0]:
            continue  # an altered id every share read: another share's
        append((rowid, uuid, version, topic, state))
    return out


def notification(row: Row) -> Notification:
    """The `Notification` of a row (`read_rows`), without the frozen dataclass's per-field
    `__setattr__` on eventsourcing's own class (its constructor otherwise)."""
    rowid, oid, version, topic, state = row
    if not _PLAIN_NOTIFICATION:
        return Notification(
            id=rowid, originator_id=oid, originator_version=version, topic=topic, state=state
        )
    n = _new(Notification)
    _SET(
        n,
        "__dict__",
        {
            "originator_id": oid,
            "originator_version": version,
            "topic": topic,
            "state": state,
            "id": rowid,
        },
    )
    return n


_new = object.__new__
_PLAIN_NOTIFICATION = hasattr(Notification, "__dataclass_fields__") and not hasattr(
    Notification, "__slots__"
)


def read_rows(
    recorder: Any, start: int, limit: int, topics: Sequence[str], share: Share | None = None
) -> list[Row]:
    """`read_batch` as tuples (the audit builds a `Notification` only where it needs one).
    With `share`, only that share's rows (an empty list past its last position)."""
    if _plain_sqlite(recorder):
        return _sqlite_rows(recorder, start, limit, topics, share)
    if share is not None and _plain_postgres(recorder):
        return _postgres_share(recorder, start, limit, topics, share)
    if share is None:
        return [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in recorder.select_notifications(start=start, limit=limit, topics=list(topics))
        ]
    while True:
        if start > share[2]:
            return []
        batch = recorder.select_notifications(
            start=start, limit=limit, stop=share[2], topics=list(topics)
        )
        rows = [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in batch
            if share_of(n.originator_id, share[1]) == share[0]
        ]
        if rows or not batch:
            return rows
        start = batch[-1].id + 1  # none of this batch is in the share: read on


def _plain_postgres(recorder: Any) -> bool:
    """Whether `recorder` is eventsourcing's own PostgreSQL recorder on UUID ids (its query
    is the one `_postgres_share` narrows to a share)."""
    try:
        from eventsourcing.postgres import PostgresApplicationRecorder
    except ImportError:  # psycopg is not installed: not a PostgreSQL store
        return False
    return (
        isinstance(recorder, PostgresApplicationRecorder)
        and type(recorder).select_notifications is PostgresApplicationRecorder.select_notifications
        and getattr(recorder.datastore, "originator_id_type", "uuid") == "uuid"
    )


def _postgres_share(
    recorder: Any, start: int, limit: int, topics: Sequence[str], share: Share
) -> list[Row]:
    """One share's rows, picked by PostgreSQL (the same rows as the generic path)."""
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL, Identifier

    index, shares, last = share
    statement = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state "
        "FROM {schema}.{table} WHERE notification_id>=%s AND notification_id<=%s "
        "AND get_byte(uuid_send(originator_id), 15) %% %s = %s"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    params: list[Any] = [start, last, shares, index]
    if topics:
        statement += SQL(" AND topic = ANY(%s)")
        params.append(list(topics))
    statement += SQL(" ORDER BY notification_id LIMIT %s")
    params.append(limit)
    with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
        curs.execute(statement, params, prepare=True)
        return [
            (rowid, oid, version, topic, bytes(state))
            for rowid, oid, version, topic, state in curs.fetchall()
        ]


def read_batch(recorder: Any, start: int, limit: int, topics: Sequence[str]) -> list[Notification]:
    """Up to `limit` notifications from log position `start`, in order (only `topics`, if
    given): the same as the recorder's `select_notifications`."""
    if _plain_sqlite(recorder):
        return [notification(row) for row in _sqlite_rows(recorder, start, limit, topics)]
    batch: list[Notification] = recorder.select_notifications(
        start=start, limit=limit, topics=list(topics)
    )
    return batch
