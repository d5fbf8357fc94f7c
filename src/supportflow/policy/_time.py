"""Validation and conversion of instants. Pure: never reads a clock."""

from __future__ import annotations

import datetime as _dt
import functools

import pendulum

__all__ = ["add_calendar_days", "require_aware_utc", "timezone", "validate_zone"]

UTC = _dt.UTC


def require_aware_utc(value: object, *, name: str = "at") -> _dt.datetime:
    """Return `value` as a plain `datetime` in UTC, refusing anything naive.

    `pendulum.DateTime` and other `datetime` subclasses are converted to the plain
    type, so that what is stored in events round-trips exactly.
    """
    if not isinstance(value, _dt.datetime):
        msg = f"{name} must be an aware datetime, got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    offset = value.utcoffset()
    if value.tzinfo is None or offset is None:
        msg = (
            f"{name}={value.isoformat()} is a naive datetime; pass an aware one, "
            "e.g. datetime(2026, 3, 2, 15, 0, tzinfo=UTC)"
        )
        raise ValueError(msg)
    utc = (value.replace(tzinfo=None) - offset).replace(tzinfo=UTC)
    return _dt.datetime(
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
        utc.microsecond,
        tzinfo=UTC,
    )


@functools.cache
def timezone(zone: str) -> pendulum.Timezone:
    """pendulum's zone object for `zone`, loaded once (loading reads the zone database)."""
    return pendulum.timezone(zone)


def validate_zone(zone: str) -> str:
    """Return `zone` if it is an IANA time zone name pendulum knows, else raise `ValueError`."""
    try:
        timezone(zone)
    except Exception:  # pendulum raises its own InvalidTimezone / zoneinfo errors
        msg = f"unknown time zone {zone!r}; use an IANA name such as 'America/Chicago'"
        raise ValueError(msg) from None
    return zone


def add_calendar_days(instant: _dt.datetime, days: int, zone: str) -> _dt.datetime:
    """The instant `days` calendar days after `instant`, keeping the wall-clock time in `zone`.

    Across a DST change this is 71 or 73 elapsed hours for 3 days, not 72. A wall-clock
    time that does not exist on the target day (a spring-forward gap) moves forward by the
    size of the gap; a wall-clock time that exists twice (a fall-back fold) is the later of
    the two occurrences. The result is aware UTC.
    """
    local = pendulum.instance(require_aware_utc(instant, name="instant")).in_timezone(
        timezone(zone)
    )
    return require_aware_utc(local.add(days=days), name="due")
