"""Clocks: the only place supportflow reads the time. Inject one into `SupportDesk`."""

from __future__ import annotations

import datetime as _dt
import threading
from typing import Protocol, runtime_checkable

from .errors import InvalidCommand
from .policy import require_aware_utc as _require_aware_utc

__all__ = ["Clock", "FixedClock", "ManualClock", "SystemClock"]


def require_aware_utc(value: object, *, name: str) -> _dt.datetime:
    try:
        return _require_aware_utc(value, name=name)
    except (TypeError, ValueError) as error:
        raise InvalidCommand(str(error)) from None


@runtime_checkable
class Clock(Protocol):
    """Anything with `now()` returning an aware datetime."""

    def now(self) -> _dt.datetime:
        """The current instant, aware."""
        ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> _dt.datetime:
        return _dt.datetime.now(_dt.UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """Always the same instant."""

    def __init__(self, at: _dt.datetime) -> None:
        self._at = require_aware_utc(at, name="at")

    def now(self) -> _dt.datetime:
        return self._at

    def __repr__(self) -> str:
        return f"FixedClock({self._at.isoformat()})"


class ManualClock:
    """A clock you move by hand: `advance(days=4)` adds elapsed time, `set(t)` jumps.

    Thread-safe. It may be set backwards (a desk still refuses commands dated before
    a ticket's last event).
    """

    def __init__(self, start: _dt.datetime) -> None:
        self._now = require_aware_utc(start, name="start")
        self._lock = threading.Lock()

    def now(self) -> _dt.datetime:
        with self._lock:
            return self._now

    def advance(
        self,
        delta: _dt.timedelta | None = None,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
    ) -> _dt.datetime:
        """Move forward by elapsed time (a `timedelta`: `days=1` is 24 hours). Returns now."""
        step = _dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if delta is not None:
            step += delta
        if step < _dt.timedelta(0):
            msg = f"advance() moves forward only; got {step}. Use set() to jump back."
            raise InvalidCommand(msg)
        with self._lock:
            self._now = self._now + step
            return self._now

    def set(self, at: _dt.datetime) -> _dt.datetime:
        """Jump to `at` (aware). Returns now."""
        value = require_aware_utc(at, name="at")
        with self._lock:
            self._now = value
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"
