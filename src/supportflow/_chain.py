"""The per-ticket hash chain: a canonical encoding of events and their hashes.

Every ticket event carries `previous_hash`, the hash of the ticket's previous event (the
first event carries `GENESIS`). The hash is SHA-256 over `canonical_bytes(event)`: sorted-key
JSON of the event's topic and every field (originator id, version, timestamp, the facts and
its own `previous_hash`), with values rendered so that an event and the same event read back
from any store (compressed, encrypted, JSON-transcoded) encode to the same bytes:

- `UUID` -> ``{"$uuid": "<canonical text>"}``; aware `datetime` -> ``{"$datetime":
  "YYYY-MM-DDTHH:MM:SS.ffffffZ"}`` in UTC (a naive one -> ``{"$naive": ...}``);
  `date` -> ``{"$date": ...}``; `timedelta` -> ``{"$timedelta": [days, seconds, us]}``;
  `bytes` -> ``{"$bytes": hex}``; `Decimal` -> ``{"$decimal": text}``;
- an `Enum` renders as its value (the transcoder gives a `StrEnum` back as `str`);
- tuples and lists are lists (the transcoder gives tuples back as lists); sets are sorted lists;
- mapping keys must be text; a key starting with ``$`` gets one more ``$`` so that no mapping
  can imitate a tagged value.

A ticket remembers its chain's head as the last event it applied (hashed only when a new event
follows) or, when it was restored from a snapshot, as a `ChainHead`: the hash alone.
`event_hash` accepts both.

Pure: no I/O, no clock. Used by `supportflow.ticket` (to chain new events) and by the auditor.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import hashlib
import json
from collections.abc import Mapping
from typing import Any, final
from uuid import UUID

from eventsourcing.utils import get_topic

__all__ = ["GENESIS", "ChainHead", "canonical_bytes", "event_hash", "render"]

GENESIS = "0" * 64
"""The `previous_hash` of a ticket's first event."""

_UTC = _dt.UTC


@final
class ChainHead:
    """The head of a ticket's chain known only by its hash (a ticket restored from a
    snapshot, which stores the hash of its last event, not the event)."""

    __slots__ = ("hash",)

    def __init__(self, digest: str) -> None:
        if len(digest) != len(GENESIS) or digest.strip("0123456789abcdef"):
            msg = f"a chain head is 64 lower-case hex digits, got {digest!r}"
            raise ValueError(msg)
        self.hash = digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChainHead) and other.hash == self.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return f"ChainHead({self.hash!r})"


def _datetime(value: _dt.datetime) -> dict[str, str]:
    offset = value.utcoffset()
    if value.tzinfo is None or offset is None:
        return {"$naive": value.isoformat(timespec="microseconds")}
    utc = (value.replace(tzinfo=None) - offset).isoformat(timespec="microseconds")
    return {"$datetime": f"{utc}Z"}


def _same(value: Any) -> Any:
    return value


def _render_uuid(value: UUID) -> dict[str, str]:
    return {"$uuid": str(value)}


def _render_sequence(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [render(item) for item in value]


_EXACT: dict[type, Any] = {
    str: _same,
    type(None): _same,
    bool: _same,
    int: _same,
    float: _same,
    _dt.datetime: _datetime,
    UUID: _render_uuid,
    list: _render_sequence,
    tuple: _render_sequence,
}
"""The common exact types, rendered without walking the isinstance chain below (subclasses,
such as enums, take the full path)."""


def render(value: Any) -> Any:
    """`value` as plain JSON data (see the module docstring for the rules)."""
    exact = _EXACT.get(type(value))
    if exact is not None:
        return exact(value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return render(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value
    if isinstance(value, _dt.datetime):
        return _datetime(value)
    if isinstance(value, _dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, UUID):
        return {"$uuid": str(value)}
    if isinstance(value, _dt.timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"mapping keys must be text to be hashed, got {key!r}"
                raise TypeError(msg)
            out[f"${key}" if key.startswith("$") else key] = render(item)
        return out
    if isinstance(value, list | tuple):
        return [render(item) for item in value]
    if isinstance(value, set | frozenset):
        rendered = [render(item) for item in value]
        return sorted(rendered, key=lambda item: json.dumps(item, sort_keys=True))
    msg = f"cannot hash a value of type {type(value).__name__}: {value!r}"
    raise TypeError(msg)


def canonical_bytes(event: object) -> bytes:
    """The canonical encoding of a domain event: its topic and every field."""
    document = {"topic": get_topic(type(event)), "fields": render(vars(event))}
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return text.encode("ascii")


def event_hash(event: object | None) -> str:
    """The SHA-256 (hex) of `canonical_bytes(event)`; `GENESIS` for None (no previous event);
    the stored hash for a `ChainHead`."""
    if event is None:
        return GENESIS
    if type(event) is ChainHead:
        return event.hash
    return hashlib.sha256(canonical_bytes(event)).hexdigest()
