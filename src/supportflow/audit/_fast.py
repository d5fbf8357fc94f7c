"""The auditor's hot paths, computed faster with the same answers.

- `EventHasher`: `supportflow._chain.event_hash`, with the rendering of the plain types ticket
  events carry (text, numbers, aware datetimes, UUIDs, lists, text-keyed dicts) dispatched on
  the exact type; anything else (enums, sets, dates, ``$`` keys, subclasses) goes through
  `_chain.render` itself, and the first event of each class is hashed both ways: if the two
  ever differ, that class keeps using `_chain.event_hash`.
- `DueInstants`: `SupportPolicy.close_due_at` / `solve_due_at` for one policy, with the
  calendar-day addition done by the standard library's `zoneinfo` (the same tz database
  pendulum reads) when the resulting wall-clock time exists exactly once in the zone; a time
  in a DST gap or fold, a policy subclass or a datetime subclass goes to the policy's own
  method. A small cache per instant keeps repeated questions free.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.utils import get_topic

from .._chain import _datetime, canonical_bytes, event_hash, render
from ..policy import SupportPolicy

__all__ = ["DueInstants", "EventHasher"]

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
        cls = type(event)
        trusted = self._trusted.get(cls)
        if trusted is None:
            try:
                same = self._bytes(event, cls) == canonical_bytes(event)
            except (TypeError, ValueError):
                same = False
            trusted = self._trusted[cls] = same
        if not trusted:
            return event_hash(event)
        return hashlib.sha256(self._bytes(event, cls)).hexdigest()


class DueInstants:
    """`policy.close_due_at(at)` and `policy.solve_due_at(at)`, the same answers faster."""

    def __init__(self, policy: SupportPolicy) -> None:
        self.policy = policy
        self._plain = type(policy) is SupportPolicy
        self._zone = ZoneInfo(policy.zone) if self._plain else None
        self._close: dict[_dt.datetime, _dt.datetime] = {}
        self._solve: dict[_dt.datetime, _dt.datetime] = {}

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
