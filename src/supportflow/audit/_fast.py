"""The auditor's hot paths, computed faster with the same answers.

- `EventHasher`: `supportflow._chain.event_hash`, with the rendering of the plain types ticket
  events carry (text, numbers, aware datetimes, UUIDs, lists, text-keyed dicts) dispatched on
  the exact type; anything else (enums, sets, dates, ``$`` keys, subclasses) goes through
  `_chain.render` itself, and the first event of each class is hashed both ways: if the two
  ever differ, that class keeps using `_chain.event_hash`.
- `EventReader`: a stored ticket event decoded and hashed in one pass: the JSON state (after
  the mapper's cipher and compressor) is parsed once by the C scanner, with no hook; the
  transcoded values (``datetime_iso``, ``uuid_hex``) are looked for at the top-level keys
  where the event's class has held them, and the number of ``"_type_"`` in the text proves
  none is nested deeper (else a parse that tags every dict handles it). Each becomes its
  canonical tag in the tree that is hashed (one C-encoder call) and its decoded value in the
  event. Anything unusual (another transcoding, a naive time, a ``$`` in the text or an
  escape that could hide one or a ``_type_`` key, an upcast, bytes the mapper would refuse)
  returns None and the caller uses the mapper and `EventHasher`; the first event of each
  class is read both ways and a class whose event or bytes differ keeps the mapper.
- `DueInstants`: `SupportPolicy.close_due_at` / `solve_due_at` (and the due instant of
  `due_timer`, without building the `DueTimer`) for one policy, with the
  calendar-day addition done by the standard library's `zoneinfo` (the same tz database
  pendulum reads) when the resulting wall-clock time exists exactly once in the zone; a time
  in a DST gap or fold, a policy subclass or a datetime subclass goes to the policy's own
  method; `update_due_at` is the policy's, asked once per (severity, instant). A small cache
  per question keeps repeated questions free.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import json.scanner
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    Notification,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic, resolve_topic

from .._chain import _datetime, canonical_bytes, event_hash, render
from ..policy import Severity, Status, SupportPolicy
from ..policy._policy import _UPDATE_CLOCK_RUNS
from ._scan import Row

_CLOCK_RUNS = tuple(_UPDATE_CLOCK_RUNS)
"""The same statuses as a tuple: `in` finds a member by identity, without hashing it."""

__all__ = ["DueInstants", "EventHasher", "EventReader"]

_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)
"""The same settings as `_chain.canonical_bytes`."""

_CACHE_LIMIT = 4096
"""Entries kept per policy and question; the cache is emptied when full (memory stays flat)."""


_UTC_ZONES = (_dt.UTC,)
_PLAIN = frozenset({str, int, bool, float, type(None)})


def _render_datetime(value: _dt.datetime) -> Any:
    if value.tzinfo in _UTC_ZONES:  # the common case: `isoformat` gives +00:00, we want Z
        return {"$datetime": value.isoformat(timespec="microseconds")[:-6] + "Z"}
    return _datetime(value)


def _render_dict(value: Any) -> Any:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key.__class__ is not str or key[:1] == "$":
            return render(value)  # the generic rules (escaped keys, the error for non-text)
        cls = item.__class__
        if cls in _PLAIN:
            out[key] = item
        elif cls is _dt.datetime:
            out[key] = _render_datetime(item)
        elif cls is UUID:
            out[key] = {"$uuid": str(item)}
        elif cls is dict:
            out[key] = _render_dict(item)
        elif cls is list or cls is tuple:
            out[key] = _render_list(item)
        else:
            out[key] = render(item)
    return out


def _render_list(value: Any) -> list[Any]:
    out: list[Any] = []
    for item in value:
        cls = item.__class__
        if cls in _PLAIN:
            out.append(item)
        elif cls is dict:
            out.append(_render_dict(item))
        else:
            out.append(render(item))  # rare in ticket events: the generic rules
    return out


class EventHasher:
    """`event_hash(event)` with a fast path, checked against `_chain` once per event class."""

    def __init__(self) -> None:
        self._topics: dict[type, str] = {}
        self._trusted: dict[type, bool] = {}

    def _bytes(self, event: object, cls: type) -> bytes:
        topic = self._topics.get(cls)
        if topic is None:
            topic = self._topics[cls] = get_topic(cls)
        fields = _render_dict(vars(event))
        text = _ENCODER.encode({"topic": topic, "fields": fields})
        return text.encode("ascii")

    def __call__(self, event: object) -> str:
        return self.digest(event).hex()

    def digest(self, event: object) -> bytes:
        """The 32 bytes of the SHA-256 `event_hash(event)` is the hex of."""
        cls = type(event)
        trusted = self._trusted.get(cls)
        if trusted is None:
            try:
                same = self._bytes(event, cls) == canonical_bytes(event)
            except (TypeError, ValueError):
                same = False
            trusted = self._trusted[cls] = same
        if not trusted:
            return bytes.fromhex(event_hash(event))
        return hashlib.sha256(self._bytes(event, cls)).digest()


class _Tag(dict[str, str]):
    """A transcoded value in its canonical form (``{"$datetime": ...}``, ``{"$uuid": ...}``),
    carrying the value the mapper would have decoded."""

    __slots__ = ("value",)
    value: Any


class _Unusual(Exception):
    """The stored state needs the mapper (another transcoding, odd data)."""


def _tag_datetime(data: Any) -> _Tag:
    if data.__class__ is not str:
        raise _Unusual
    value = _dt.datetime.fromisoformat(data)  # what `DatetimeAsISO.decode` does
    tag = _Tag()
    if value.tzinfo in _UTC_ZONES:
        tag["$datetime"] = value.isoformat(timespec="microseconds")[:-6] + "Z"
    else:
        tag.update(_datetime(value))
    tag.value = value
    return tag


def _tag_uuid(data: Any) -> _Tag:
    if data.__class__ is not str:
        raise _Unusual
    value = UUID(data)  # what `UUIDAsHex.decode` does
    tag = _Tag()
    tag["$uuid"] = str(value)
    tag.value = value
    return tag


_TAGGERS: dict[str, Callable[[Any], _Tag]] = {
    "datetime_iso": _tag_datetime,
    "uuid_hex": _tag_uuid,
}


def _hook(d: dict[str, Any]) -> Any:
    """`JSONTranscoder._decode_obj`, giving tags; other transcodings are unusual."""
    if len(d) == 2 and "_type_" in d and "_data_" in d:
        tagger = _TAGGERS.get(d["_type_"]) if d["_type_"].__class__ is str else None
        if tagger is None:
            raise _Unusual
        return tagger(d["_data_"])
    return d


_ESCAPED = re.compile(r"\\u00(?:24|5[fF]|74|79|70|65)")
"""A ``$``, ``_``, ``t``, ``y``, ``p`` or ``e`` written as an escape: ``$`` keys are escaped
by `_chain.render`, and an escaped ``_type_`` key would escape the count of transcoded values
below; such states are left to the mapper."""
_scan_once: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]  # typeshed names the class, not a decoder
)
"""The JSON decoder's scanner without `decode`'s whitespace handling: ``(value, end)``."""
_encode = _ENCODER.encode
_sha256 = hashlib.sha256
_new = object.__new__
_setattr = object.__setattr__
_fromisoformat = _dt.datetime.fromisoformat
_UTC = _dt.UTC
_utc_iso = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?\+00:00"
).fullmatch
"""Text exactly as `datetime.isoformat` writes an aware UTC instant: when `fromisoformat`
accepts it, the same digits are the instant's canonical text (no `isoformat` needed)."""


def _documented_encode(value: Any, _level: int) -> tuple[str]:
    return (_ENCODER.encode(value),)


def _one_shot_encoder() -> Callable[[Any, int], Sequence[str]]:
    """`_ENCODER.encode` without its per-call set-up: the standard library's C encoder made
    once, with the same settings and no check for circular references (parsed JSON has
    none); it returns the text in chunks. `_ENCODER.encode` itself where the C encoder is
    missing or answers otherwise."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _documented_encode
    try:
        encoder: Callable[[Any, int], Sequence[str]] = make(
            None,  # markers: no circular-reference check
            _ENCODER.default,
            json.encoder.encode_basestring_ascii,
            None,  # indent
            ":",
            ",",
            True,  # sort_keys
            False,  # skipkeys
            False,  # allow_nan
        )
        sample = {"b": [1, 2.5, None, True, "\u00e9\n"], "a": {"$u": "x", "c": {"z": 1, "y": 2}}}
        if "".join(encoder(sample, 0)) != _ENCODER.encode(sample):
            return _documented_encode
    except Exception:  # another C signature: the documented way
        return _documented_encode
    return encoder


_encode_chunks = _one_shot_encoder()


def _tagged(fields: dict[str, Any]) -> list[str]:
    """The top-level keys whose value is a transcoded value (``_type_`` / ``_data_``)."""
    return [
        key
        for key, value in fields.items()
        if value.__class__ is dict and len(value) == 2 and "_type_" in value
    ]


def _untag(fields: dict[str, Any], values: dict[str, Any], keys: Iterable[str]) -> int:
    """Replace the transcoded values at `keys`: their canonical tag in `fields`, the decoded
    value in `values`; the number replaced. `_Unusual` for what the mapper must judge (a
    naive time, another transcoding, odd data)."""
    done = 0
    for key in keys:
        value = fields.get(key)
        if value.__class__ is not dict or len(value) != 2 or "_type_" not in value:
            continue
        kind = value["_type_"]
        data = value["_data_"]  # KeyError: the mapper decides
        if data.__class__ is not str:
            raise _Unusual
        if kind == "datetime_iso":
            decoded: Any = _fromisoformat(data)
            zone = decoded.tzinfo
            if zone is _UTC:
                if _utc_iso(data) is not None:  # `isoformat`'s own digits: the tag from them
                    fields[key] = {
                        "$datetime": data[:19] + ".000000Z" if len(data) == 25 else data[:26] + "Z"
                    }
                else:  # isoformat gives ...SS+00:00 or ...SS.ffffff+00:00
                    iso = decoded.isoformat()
                    fields[key] = {
                        "$datetime": iso[:19] + ".000000Z" if len(iso) == 25 else iso[:26] + "Z"
                    }
            elif zone is None:
                raise _Unusual  # naive: the mapper's event goes through the auditor's check
            else:
                fields[key] = _datetime(decoded)
        elif kind == "uuid_hex":
            decoded = UUID(data)
            fields[key] = {"$uuid": str(decoded)}
        else:
            raise _Unusual
        values[key] = decoded
        done += 1
    return done


def _row(n: Notification) -> Row:
    return (n.id, n.originator_id, n.originator_version, n.topic, n.state)


class EventReader:
    """Ticket events decoded from their stored state and hashed in one pass, with the same
    event (`vars`) and the same `_chain.event_hash` as the mapper and `EventHasher` give.

    `read(notification)` returns ``(event, digest)`` or None when the mapper must decide
    (then the caller decodes with the mapper, which also reports what it cannot decode).
    Nested transcoded values (inside a dict or list field) stay as tags in the event: the
    auditor's checks read top-level fields only.
    """

    def __init__(self, mapper: Any, topics: Iterable[str]) -> None:
        self._mapper = mapper
        transcoder = getattr(mapper, "transcoder", None)
        names = getattr(transcoder, "names", {})
        self.enabled = (
            type(mapper) is Mapper
            and type(transcoder) is JSONTranscoder
            and type(names.get("datetime_iso")) is DatetimeAsISO
            and type(names.get("uuid_hex")) is UUIDAsHex
        )
        self._cipher = getattr(mapper, "cipher", None)
        self._compressor = getattr(mapper, "compressor", None)
        self._decoder = json.JSONDecoder(object_hook=_hook)
        self._topics = frozenset(topics)
        self._classes: dict[str, tuple[type, str] | None] = {}
        self._trusted: dict[str, bool] = {}
        self.ready: dict[str, tuple[type, str]] = {}
        """Per topic, the classes read both ways once and found the same: (class, topic);
        ``read_row(row, *ready[topic])`` is then `read` of the row's notification."""
        self._hasher = EventHasher()
        self._keys: dict[str, tuple[str, ...]] = {}
        """Per topic, the top-level keys seen holding a transcoded value."""
        self._ids: dict[int, str] = {}
        """Recent originator ids' text (a ticket's events are near each other in the log)."""

    def _class(self, topic: str) -> tuple[type, str] | None:
        if topic in self._classes:
            return self._classes[topic]
        found: tuple[type, str] | None = None
        if topic in self._topics:
            try:
                cls = resolve_topic(topic)
            except Exception:  # the mapper reports it
                cls = None
            if isinstance(cls, type) and getattr(cls, "class_version", 1) == 1:
                found = (cls, get_topic(cls))
        self._classes[topic] = found
        return found

    def _id_text(self, oid: UUID) -> str:
        key = oid.int
        text = self._ids.get(key)
        if text is None:
            if len(self._ids) >= _CACHE_LIMIT:
                self._ids.clear()
            text = self._ids[key] = str(oid)
        return text

    def read_row(self, row: Row, cls: type, topic: str) -> tuple[Any, bytes] | None:
        """`read` of a notification given as a `Row` tuple whose topic is in `ready`
        (`cls`, `topic`: its entry)."""
        _, oid, version, _, state = row
        if oid.__class__ is not UUID:
            return None
        try:
            if self._cipher:
                state = self._cipher.decrypt(state)
            if self._compressor:
                state = self._compressor.decompress(state)
            text = state.decode("utf8")
            if "$" in text or ("\\u" in text and _ESCAPED.search(text)):
                return None  # `$` keys (escaped by `_chain.render`), hidden `_type_`: the mapper
            fields, end = _scan_once(text, 0)
            if end != len(text) or fields.__class__ is not dict or "class_version" in fields:
                return None
            values: dict[str, Any] = {}  # the decoded values where `fields` gets tags
            transcoded = text.count('"_type_"')
            if transcoded:
                keys = self._keys.get(topic, ())
                done = _untag(fields, values, keys)
                if done != transcoded:
                    keys = self._keys[topic] = tuple(
                        {**dict.fromkeys(keys), **dict.fromkeys(_tagged(fields))}
                    )
                    if done + _untag(fields, values, keys) != transcoded:
                        return self._nested(text, oid, version, cls, topic)
            ids = self._ids
            id_text = ids.get(oid.int)
            if id_text is None:
                id_text = self._id_text(oid)
            fields["originator_id"] = {"$uuid": id_text}  # (the mapper's order)
            fields["originator_version"] = version
            canonical = "".join(_encode_chunks({"fields": fields, "topic": topic}, 0))
        except Exception:  # _Unusual, or anything the mapper must judge
            return None
        # the same dict becomes the event's: the decoded values back where the tags were
        # (updating a key keeps its place: the mapper's order, the stored one, then the ids)
        fields.update(values)
        fields["originator_id"] = oid
        event: Any = _new(cls)
        _setattr(event, "__dict__", fields)
        return event, _sha256(canonical.encode("ascii")).digest()

    def _nested(
        self, text: str, oid: UUID, version: int, cls: type, topic: str
    ) -> tuple[Any, bytes] | None:
        """A transcoded value below the top level: parse again, tagging every dict."""
        fields = self._decoder.decode(text)
        if fields.__class__ is not dict:
            return None
        tag = _Tag()
        tag["$uuid"] = str(oid)
        tag.value = oid
        fields["originator_id"] = tag
        fields["originator_version"] = version
        canonical = "".join(_encode_chunks({"fields": fields, "topic": topic}, 0))
        values = {k: (v.value if v.__class__ is _Tag else v) for k, v in fields.items()}
        if any(v.__class__ is _dt.datetime and v.tzinfo is None for v in values.values()):
            return None  # naive: the mapper's event goes through the auditor's check
        event: Any = _new(cls)
        _setattr(event, "__dict__", values)
        return event, _sha256(canonical.encode("ascii")).digest()

    def read(self, n: Notification) -> tuple[Any, bytes] | None:
        """``(event, 32-byte hash)`` of a ticket event, or None: use the mapper."""
        ready = self.ready.get(n.topic)
        if ready is not None:
            return self.read_row(_row(n), ready[0], ready[1])
        if not self.enabled:
            return None
        found = self._class(n.topic)
        if found is None:
            return None
        got = self.read_row(_row(n), *found)
        if got is None:
            return None
        trusted = self._trusted.get(n.topic)
        if trusted is None:  # the first of its class: read it both ways
            try:
                event = self._mapper.to_domain_event(n)
                trusted = vars(event) == vars(got[0]) and self._hasher.digest(event) == got[1]
            except Exception:
                trusted = False
            self._trusted[n.topic] = trusted
            if trusted:
                self.ready[n.topic] = found
        return got if trusted else None


class DueInstants:
    """`policy.close_due_at(at)` and `policy.solve_due_at(at)`, the same answers faster."""

    def __init__(self, policy: SupportPolicy) -> None:
        self.policy = policy
        self._plain = type(policy) is SupportPolicy
        self._zone = ZoneInfo(policy.zone) if self._plain else None
        self._close: dict[_dt.datetime, _dt.datetime] = {}
        self._solve: dict[_dt.datetime, _dt.datetime] = {}
        self._update: dict[tuple[int, _dt.datetime], _dt.datetime | None] = {}

    def timer_due_at(
        self,
        status: Status,
        solve_due_at: _dt.datetime | None,
        close_due_at: _dt.datetime | None,
        update_due_at: _dt.datetime | None,
    ) -> _dt.datetime | None:
        """``policy.due_timer(status, ...).due_at`` (None when no timer is armed), without
        making the `DueTimer` on the plain policy (a subclass is asked)."""
        if not self._plain:
            timer = self.policy.due_timer(
                status,
                solve_due_at=solve_due_at,
                close_due_at=close_due_at,
                update_due_at=update_due_at,
            )
            return None if timer is None else timer.due_at
        if status is Status.PENDING and solve_due_at is not None:
            return solve_due_at
        if status is Status.SOLVED and close_due_at is not None:
            return close_due_at
        if status in _CLOCK_RUNS:
            return update_due_at
        return None

    def update_due_at(self, severity: int, since: _dt.datetime) -> _dt.datetime | None:
        """`policy.update_due_at(Severity(severity), since)`, asked once per (severity,
        instant) while the answer is in the bounded cache (the business calendar is the slow
        part). `severity` is the recorded value (a `Severity` or its number)."""
        key = (int(severity), since)
        if key in self._update:
            return self._update[key]
        due = self.policy.update_due_at(Severity(severity), since)
        if len(self._update) >= _CACHE_LIMIT:
            self._update.clear()
        self._update[key] = due
        return due

    def close_due_at(self, at: _dt.datetime) -> _dt.datetime:
        found = self._close.get(at)
        if found is None:
            found = self._add(at, self.policy.close_after_days)
            if found is None:
                found = self.policy.close_due_at(at)
            self._remember(self._close, at, found)
        return found

    def solve_due_at(self, at: _dt.datetime) -> _dt.datetime:
        found = self._solve.get(at)
        if found is None:
            found = self._add(at, self.policy.pending_solve_after_days)
            if found is None:
                found = self.policy.solve_due_at(at)
            self._remember(self._solve, at, found)
        return found

    @staticmethod
    def _remember(
        cache: dict[_dt.datetime, _dt.datetime], at: _dt.datetime, due: _dt.datetime
    ) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[at] = due

    def _add(self, at: _dt.datetime, days: int) -> _dt.datetime | None:
        """`days` calendar days after `at` at the same wall-clock time in the zone, as aware
        UTC; None when the answer needs the policy's own rules (gap, fold, subclasses)."""
        zone = self._zone
        if zone is None or type(at) is not _dt.datetime or at.utcoffset() is None:
            return None
        wall = at.astimezone(zone).replace(tzinfo=None) + _dt.timedelta(days=days)
        offset = wall.replace(tzinfo=zone).utcoffset()
        if offset is None or wall.replace(tzinfo=zone, fold=1).utcoffset() != offset:
            return None  # in a DST gap or fold: pendulum's rules decide
        return (wall - offset).replace(tzinfo=_dt.UTC)
