"""What the auditor remembers between events, kept small.

- `TicketState`: one open ticket's record (a few slots; never its events): its lifecycle,
  and who may act as its customer (the requester's and CC addresses' comparison keys).
- `pack` / `unpack`: a finished ticket's record as one `bytes` value (integers for instants,
  the hash as 32 raw bytes, indexes for the policy, status and action), restored exactly when
  a later event of that ticket arrives. A record that does not fit the format (an instant
  that is not UTC, an odd severity) stays a `TicketState`.
- `Ledger`: every ticket seen; the live records of tickets that can still change in memory,
  the packed records of finished ones (CLOSED, broken, or without a known policy) in a
  `Spill` file (a private temporary SQLite database), behind a fixed-size filter so that a
  new ticket costs no look-up. `MessageEffects`: the message ids seen, in the same file.
  Memory does not grow with the number of tickets or message ids.
- `Samples`: count, mean, median and 90th percentile of durations; exact (every sample kept,
  8 bytes each) up to `EXACT_SAMPLES`, then a bounded log-bucket sketch (relative error under
  `SKETCH_ERROR`; the mean stays exact).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import heapq
import math
import sqlite3
import statistics
import struct
from array import array
from collections.abc import Iterator
from uuid import UUID

from ..policy import Action, Status, SupportPolicy
from ._model import Summary

__all__ = [
    "EXACT_SAMPLES",
    "SKETCH_ERROR",
    "Ledger",
    "MessageEffects",
    "Samples",
    "Spill",
    "TicketState",
    "pack",
    "unpack",
]

EXACT_SAMPLES = 1 << 16
"""Samples kept as they are; beyond, the summary comes from the sketch."""

SKETCH_ERROR = 0.0005
"""The sketch's relative error on a quantile (0.05%)."""

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_NONE = -(2**63)
_STATUSES = tuple(Status)
_STATUS_INDEX = {status._name_: i for i, status in enumerate(_STATUSES)}
"""By member name: an enum member hashes in Python, its name in C."""
_ACTIONS = tuple(Action)
_ACTION_INDEX = {action: i for i, action in enumerate(_ACTIONS)}
_NO_INDEX = 0xFFFF

# version, flags, policy, status, reopen action, severity, follow-ups, 8 instants, the byte
# lengths of the assignee and the requester key (_NO_TEXT: none) and the number of CC keys;
# then the hash (32 bytes, when known), the assignee and the requester key (UTF-8), and each
# CC key (its byte length, then UTF-8).
_HEAD = struct.Struct("<qBHBHqq8qIIH")
_LENGTH = struct.Struct("<I")
_NO_TEXT = 0xFFFFFFFF
_BROKEN, _HAS_HASH, _OVERDUE, _HAS_ASSIGNEE, _QUIET = 1, 2, 4, 8, 16


class TicketState:
    """What the auditor remembers of one ticket (a few fields; never its events)."""

    __slots__ = (
        "assignee",
        "broken",
        "cc",
        "close_due",
        "created",
        "first_response",
        "first_solved",
        "follow_ups",
        "last_at",
        "last_hash",
        "policy",
        "reopen_action",
        "requester",
        "seq",
        "severity",
        "solve_due",
        "status",
        "update_due",
        "update_overdue",
        "update_since",
        "version",
    )

    def __init__(self, version: int, last_hash: bytes, at: _dt.datetime) -> None:
        self.version = version
        self.last_hash = last_hash
        """The 32 bytes of the previous event's hash; empty when unknown (undecodable)."""
        self.last_at = at
        self.created = at
        self.broken = False
        self.policy: SupportPolicy | None = None
        self.status = Status.NEW
        self.severity = 0
        self.assignee: str | None = None
        self.solve_due: _dt.datetime | None = None
        self.close_due: _dt.datetime | None = None
        self.follow_ups = 0
        self.first_response: _dt.datetime | None = None
        self.first_solved: _dt.datetime | None = None
        self.reopen_action: Action | None = None
        self.update_due: _dt.datetime | None = None
        self.update_since: _dt.datetime | None = None
        self.update_overdue = False
        self.requester: str | None = None
        """The requester's comparison key (`supportflow.ticket._same_address_key`)."""
        self.cc: tuple[str, ...] = ()
        """The comparison keys of the addresses on the CC list now."""
        self.seq = 0
        """The ticket's rank among the tickets of the log, in order of first appearance."""

    def armed_update_due(self) -> _dt.datetime | None:
        """The update clock's due instant while its breach is not recorded yet."""
        return None if self.update_overdue else self.update_due

    def quiet(self) -> bool:
        """Nothing left for the end of the audit to report: no timer armed, no Reopened
        waiting for its message (or the ticket is not verified at all)."""
        if self.broken or self.policy is None:
            return True
        if self.reopen_action is not None:
            return False
        timer = self.policy.due_timer(
            self.status,
            solve_due_at=self.solve_due,
            close_due_at=self.close_due,
            update_due_at=self.armed_update_due(),
        )
        return timer is None


def _micros(value: _dt.datetime | None) -> int:
    if value is None:
        return _NONE
    if value.__class__ is not _dt.datetime or value.tzinfo is not _dt.UTC:
        raise ValueError("not a UTC instant")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _instant(micros: int) -> _dt.datetime | None:
    if micros == _NONE:
        return None
    return _EPOCH + _dt.timedelta(microseconds=micros)


def pack(state: TicketState, policies: dict[int, int], known: list[SupportPolicy]) -> bytes | None:
    """`state` as bytes (`unpack` restores it exactly), or None when it does not fit.

    `policies` maps `id(policy)` to its index in `known` (both grow as policies are seen)."""
    try:
        if state.policy is None:
            policy = _NO_INDEX
        else:
            index = policies.get(id(state.policy))
            if index is None:
                index = policies[id(state.policy)] = len(known)
                known.append(state.policy)
            policy = index
        if policy >= _NO_INDEX:
            return None
        if type(state.severity) is not int or type(state.version) is not int:
            return None
        if type(state.follow_ups) is not int or state.broken not in (True, False):
            return None
        if state.update_overdue not in (True, False):
            return None
        flags = (
            (_BROKEN if state.broken is True else 0)
            | (_OVERDUE if state.update_overdue is True else 0)
            | (_QUIET if state.quiet() else 0)
        )
        tail = b""
        if len(state.last_hash) == 32:
            flags |= _HAS_HASH
            tail = state.last_hash
        elif state.last_hash:
            return None
        assignee = b""
        if state.assignee is not None:
            if type(state.assignee) is not str:
                return None
            flags |= _HAS_ASSIGNEE
            assignee = state.assignee.encode("utf-8")
        requester = b""
        if state.requester is not None:
            if type(state.requester) is not str:
                return None
            requester = state.requester.encode("utf-8")
        if type(state.cc) is not tuple or any(type(key) is not str for key in state.cc):
            return None
        cc = [key.encode("utf-8") for key in state.cc]
        reopen = _NO_INDEX if state.reopen_action is None else _ACTION_INDEX[state.reopen_action]
        head = _HEAD.pack(
            state.version,
            flags,
            policy,
            _STATUS_INDEX[state.status._name_],
            reopen,
            state.severity,
            state.follow_ups,
            _micros(state.last_at),
            _micros(state.created),
            _micros(state.solve_due),
            _micros(state.close_due),
            _micros(state.first_response),
            _micros(state.first_solved),
            _micros(state.update_due),
            _micros(state.update_since),
            len(assignee),
            _NO_TEXT if state.requester is None else len(requester),
            len(cc),
        )
        tail += assignee + requester + b"".join(_LENGTH.pack(len(key)) + key for key in cc)
    except (ValueError, KeyError, OverflowError, UnicodeError, struct.error):
        return None
    return head + tail


def unpack(data: bytes, known: list[SupportPolicy]) -> TicketState:
    """The `TicketState` that `pack` made `data` from."""
    (
        version,
        flags,
        policy,
        status,
        reopen,
        severity,
        follow_ups,
        last_at,
        created,
        solve_due,
        close_due,
        first_response,
        first_solved,
        update_due,
        update_since,
        assignee_length,
        requester_length,
        cc_count,
    ) = _HEAD.unpack_from(data)
    offset = _HEAD.size
    last_hash = b""
    if flags & _HAS_HASH:
        last_hash = data[offset : offset + 32]
        offset += 32
    at = _instant(last_at)
    assert at is not None
    state = TicketState(version, last_hash, at)
    state.created = _instant(created) or at  # never None: packed from an instant
    state.broken = bool(flags & _BROKEN)
    state.update_overdue = bool(flags & _OVERDUE)
    state.policy = None if policy == _NO_INDEX else known[policy]
    state.status = _STATUSES[status]
    state.reopen_action = None if reopen == _NO_INDEX else _ACTIONS[reopen]
    state.severity = severity
    state.follow_ups = follow_ups
    if flags & _HAS_ASSIGNEE:
        state.assignee = data[offset : offset + assignee_length].decode("utf-8")
    offset += assignee_length
    if requester_length != _NO_TEXT:
        state.requester = data[offset : offset + requester_length].decode("utf-8")
        offset += requester_length
    cc = []
    for _ in range(cc_count):
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        cc.append(data[offset : offset + length].decode("utf-8"))
        offset += length
    state.cc = tuple(cc)
    state.solve_due = _instant(solve_due)
    state.close_due = _instant(close_due)
    state.first_response = _instant(first_response)
    state.first_solved = _instant(first_solved)
    state.update_due = _instant(update_due)
    state.update_since = _instant(update_since)
    return state


def packed_status(data: bytes) -> tuple[bool, Status]:
    """(verified, status) of a packed record, without unpacking it: verified when the
    ticket's policy is known and its record is not broken."""
    _, flags, policy, status = struct.unpack_from("<qBHB", data)
    return (not flags & _BROKEN and policy != _NO_INDEX), _STATUSES[status]


def packed_quiet(data: bytes) -> bool:
    """Whether the end of the audit has nothing to check on this packed record."""
    return bool(data[8] & _QUIET)


class Samples:
    """Durations in seconds, summarised as count, mean, median and 90th percentile.

    Exact (the same figures as sorting every sample) up to `EXACT_SAMPLES`; beyond, the
    samples move into a sketch of logarithmic buckets (a quantile within `SKETCH_ERROR` of the
    exact one, memory bounded by the range of the values, not their number) and the mean is
    computed from the exact sum of microseconds.
    """

    __slots__ = ("_buckets", "_count", "_micros", "_samples", "_zero")

    _GAMMA = (1 + SKETCH_ERROR) / (1 - SKETCH_ERROR)
    _LOG_GAMMA = math.log(_GAMMA)

    def __init__(self) -> None:
        self._samples: array[float] | None = array("d")
        self._buckets: dict[int, int] = {}
        self._zero = 0
        self._count = 0
        self._micros = 0

    def add(self, delta: _dt.timedelta) -> None:
        """One duration."""
        self._count += 1
        self._micros += (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        samples = self._samples
        if samples is not None:
            samples.append(delta.total_seconds())
            if len(samples) > EXACT_SAMPLES:
                self._samples = None
                for value in samples:
                    self._bucket(value)
            return
        self._bucket(delta.total_seconds())

    def merge(self, other: Samples) -> None:
        """Add every sample of `other` (the summary is the same as if each had been added
        here: it does not depend on the order of the samples)."""
        self._count += other._count
        self._micros += other._micros
        mine, theirs = self._samples, other._samples
        if mine is not None and theirs is not None and len(mine) + len(theirs) <= EXACT_SAMPLES:
            mine.extend(theirs)
            return
        self._samples = None  # beyond the exact limit (here, there, or both): the sketch
        for values in (mine, theirs):
            for value in values or ():
                self._bucket(value)
        self._zero += other._zero
        for key, count in other._buckets.items():
            self._buckets[key] = self._buckets.get(key, 0) + count

    def _bucket(self, value: float) -> None:
        if value == 0:
            self._zero += 1
            return
        key = math.ceil(math.log(abs(value)) / self._LOG_GAMMA)
        key = key if value > 0 else -key - (1 << 40)  # negative durations: their own keys
        self._buckets[key] = self._buckets.get(key, 0) + 1

    def _value(self, key: int) -> float:
        if key < -(1 << 39):
            return -self._value(-(key + (1 << 40)))
        return 2 * self._GAMMA**key / (self._GAMMA + 1)

    def _ranked(self, ranks: list[int]) -> list[float]:
        """The values at 0-based `ranks` (ascending) in sorted order, from the sketch."""
        entries: list[tuple[float, int]] = [(self._value(k), c) for k, c in self._buckets.items()]
        if self._zero:
            entries.append((0.0, self._zero))
        entries.sort()
        out: list[float] = []
        seen = 0
        i = 0
        for value, count in entries:
            seen += count
            while i < len(ranks) and ranks[i] < seen:
                out.append(value)
                i += 1
        return out

    def summary(self) -> Summary:
        if not self._count:
            return Summary(count=0, mean=None, median=None, p90=None)
        n = self._count
        samples = self._samples
        if samples is not None:
            ordered = sorted(samples)
            p90 = ordered[min(n - 1, round(0.9 * (n - 1)))]
            return Summary(
                count=n,
                mean=round(statistics.fmean(samples), 3),
                median=round(statistics.median(ordered), 3),
                p90=round(p90, 3),
            )
        middle = [(n - 1) // 2, n // 2]
        p90_rank = min(n - 1, round(0.9 * (n - 1)))
        low, high, p90 = self._three(middle[0], middle[1], p90_rank)
        return Summary(
            count=n,
            mean=round(self._micros / n / 1_000_000, 3),
            median=round((low + high) / 2, 3),
            p90=round(p90, 3),
        )

    def _three(self, a: int, b: int, c: int) -> tuple[float, float, float]:
        ranks = sorted({a, b, c})
        values = dict(zip(ranks, self._ranked(ranks), strict=True))
        return values[a], values[b], values[c]


class _Filter:
    """A fixed-size Bloom filter (two bit positions per key): `maybe(key)` is False only for
    a key never added. Its memory does not grow with the keys; more keys only make a
    false "maybe" (a wasted look-up) more likely."""

    __slots__ = ("_bits", "_mask")

    def __init__(self, bits_log2: int = 23) -> None:
        self._bits = bytearray(1 << (bits_log2 - 3))
        self._mask = (1 << bits_log2) - 1

    def add(self, key: int) -> None:
        bits, mask = self._bits, self._mask
        a, b = key & mask, (key >> 32) & mask
        bits[a >> 3] |= 1 << (a & 7)
        bits[b >> 3] |= 1 << (b & 7)

    def maybe(self, key: int) -> bool:
        bits, mask = self._bits, self._mask
        a, b = key & mask, (key >> 32) & mask
        return bool(bits[a >> 3] & (1 << (a & 7))) and bool(bits[b >> 3] & (1 << (b & 7)))


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


_FLUSH = 2048
"""Records kept in memory before they are written to the spill file in one statement."""


class Spill:
    """A private temporary SQLite database (deleted when closed): where the ledger keeps the
    records of finished tickets and the message ids seen, so that the audit's memory does not
    grow with the log. Its page cache is bounded (`cache_kib`)."""

    def __init__(self, cache_kib: int = 1024) -> None:
        self.db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
        self.db.execute("PRAGMA temp_store=FILE")
        # Rows in order of first appearance (appended), found by id through a small index.
        self.db.execute(
            "CREATE TABLE ticket (seq INTEGER PRIMARY KEY, id BLOB NOT NULL, quiet INTEGER NOT "
            "NULL, verified INTEGER NOT NULL, status INTEGER NOT NULL, record BLOB NOT NULL)"
        )
        self.db.execute("CREATE INDEX ticket_id ON ticket (id)")
        self.db.execute(
            "CREATE TABLE effect (mid TEXT PRIMARY KEY, landed BLOB NOT NULL, kind TEXT NOT NULL)"
            " WITHOUT ROWID"
        )
        self.db.execute("BEGIN")

    def close(self) -> None:
        self.db.close()


class Ledger:
    """Every ticket seen, by id: live `TicketState`s for tickets that can still change, and
    the packed records (`pack`) of finished ones (CLOSED, broken, or without a known policy)
    in the `Spill` file. A later event of a finished ticket (a survey answer, a bug link, a
    follow-up, a re-inserted row) unpacks its record exactly, so every check still sees it;
    `in_log_order()` gives back the records the end of the audit must look at, in the order
    their tickets first appeared. Memory: the live tickets, a fixed-size filter, and at most
    `_FLUSH` records waiting to be written."""

    def __init__(self, spill: Spill, *, flush: int = _FLUSH) -> None:
        self._db = spill.db
        self._flush_at = flush
        # Keyed by `UUID.int`: an int hashes in C, a UUID in Python.
        self._live: dict[int, TicketState] = {}
        self.live = self._live
        """The live records by `UUID.int` (read-only for callers: `get` also finds the
        finished ones)."""
        self._pending: dict[int, tuple[int, int, int, int, bytes]] = {}
        self._spilled = _Filter()
        self._policies: dict[int, int] = {}
        self._known: list[SupportPolicy] = []
        self.count = 0
        """Tickets seen."""

    def get(self, tid: UUID) -> TicketState | None:
        """The ticket's record (live again if it was finished), None for a ticket not seen."""
        key = tid.int
        state = self._live.get(key)
        if state is not None:
            return state
        row = self._pending.pop(key, None)
        if row is None:
            if not self._spilled.maybe(key):
                return None
            found = self._db.execute(
                "SELECT seq, record FROM ticket WHERE id=?", (tid.bytes,)
            ).fetchone()
            if found is None:
                return None
            seq, record = found
            self._db.execute("DELETE FROM ticket WHERE seq=?", (seq,))
        else:
            seq, record = row[0], row[4]
        state = unpack(record, self._known)
        state.seq = seq
        self._live[key] = state
        return state

    def add(self, tid: UUID, state: TicketState, *, seq: int | None = None) -> None:
        """A ticket seen for the first time (`get(tid)` was None). `seq` orders it among the
        tickets (`in_log_order`): the log position of its first row, or by default the
        number of tickets added before it."""
        state.seq = self.count if seq is None else seq
        self.count += 1
        self._live[tid.int] = state

    def settle(self, tid: UUID) -> None:
        """After an event of the ticket: a finished ticket (CLOSED, broken, or without a known
        policy) leaves memory for the spill file."""
        key = tid.int
        state = self._live.get(key)
        if state is None or (
            state.status is not Status.CLOSED and not state.broken and state.policy is not None
        ):
            return
        packed = pack(state, self._policies, self._known)
        if packed is None:
            return  # does not fit the format: it stays live
        del self._live[key]
        verified, status = packed_status(packed)
        self._pending[key] = (
            state.seq,
            packed_quiet(packed),
            verified,
            _STATUS_INDEX[status._name_],
            packed,
        )
        if len(self._pending) >= self._flush_at:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        add = self._spilled.add
        rows = []
        for key, (seq, quiet, verified, status, record) in self._pending.items():
            add(key)
            rows.append((seq, key.to_bytes(16, "big"), quiet, verified, status, record))
        self._db.executemany("INSERT OR REPLACE INTO ticket VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._pending.clear()

    def in_log_order(self) -> Iterator[tuple[UUID, TicketState]]:
        """Every live ticket and every finished one the end of the audit must check (not
        quiet), in the order the tickets first appeared in the log."""
        self._flush()
        live = sorted(self._live.items(), key=lambda item: item[1].seq)  # few: still open
        cursor = self._db.execute("SELECT seq, id, record FROM ticket WHERE quiet=0 ORDER BY seq")
        spilled = ((seq, UUID(bytes=key), record) for seq, key, record in cursor)
        merged = heapq.merge(
            ((state.seq, UUID(int=key), state) for key, state in live),
            ((seq, tid, unpack(record, self._known)) for seq, tid, record in spilled),
            key=lambda item: item[0],
        )
        for _, tid, state in merged:
            yield tid, state

    def status_counts(self) -> dict[Status, int]:
        """Verified tickets (a known policy, not broken) by status."""
        self._flush()
        counts = dict.fromkeys(Status, 0)
        for state in self._live.values():
            if state.policy is not None and not state.broken:
                counts[state.status] += 1
        rows = self._db.execute(
            "SELECT status, count(*) FROM ticket WHERE verified=1 GROUP BY status"
        )
        for status, count in rows:
            counts[_STATUSES[status]] += count
        return counts


class MessageEffects:
    """Which ticket each inbound message id took effect on, for the whole log: `get(mid)`
    and ``effects[mid] = (ticket id, kind)``, kept in the `Spill` file behind a fixed-size
    filter and a small write buffer (memory does not grow with the message ids)."""

    def __init__(self, spill: Spill, *, flush: int = _FLUSH) -> None:
        self._db = spill.db
        self._flush_at = flush
        self._pending: dict[str, tuple[UUID, str]] = {}
        self._seen = _Filter()

    def get(self, mid: str) -> tuple[UUID, str] | None:
        found = self._pending.get(mid)
        if found is not None:
            return found
        if not self._seen.maybe(_key(mid)):
            return None
        row = self._db.execute("SELECT landed, kind FROM effect WHERE mid=?", (mid,)).fetchone()
        return None if row is None else (UUID(bytes=row[0]), row[1])

    def __setitem__(self, mid: str, value: tuple[UUID, str]) -> None:
        self._pending[mid] = value
        if len(self._pending) >= self._flush_at:
            add = self._seen.add
            rows = []
            for key, (landed, kind) in self._pending.items():
                add(_key(key))
                rows.append((key, landed.bytes, kind))
            self._db.executemany("INSERT OR REPLACE INTO effect VALUES (?, ?, ?)", rows)
            self._pending.clear()
