"""Business calendars: weekly opening hours in an IANA zone, minus holidays. Pure.

All arithmetic is done on the real instants of each day's opening and closing (aware UTC),
so a business hour is always an elapsed hour, also on a day whose clocks change.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Iterable, Iterator

import attrs
import holidays
import pendulum

from ._time import require_aware_utc, timezone, validate_zone

__all__ = ["BusinessCalendar", "OpeningHours"]

_MAX_DAYS_SEARCHED = 366 * 5
"""How far ahead a calendar looks for its next opening before it gives up."""


def _hhmm(value: str) -> _dt.time:
    try:
        hours, minutes = value.split(":")
        return _dt.time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        msg = f"opening times are 'HH:MM' strings, got {value!r}"
        raise ValueError(msg) from None


@attrs.frozen(kw_only=True)
class OpeningHours:
    """Open on `weekday` (0 = Monday) from `opens` to `closes`, local wall-clock 'HH:MM'."""

    weekday: int = attrs.field(validator=attrs.validators.in_(range(7)))
    opens: str
    closes: str

    def __attrs_post_init__(self) -> None:
        if _hhmm(self.opens) >= _hhmm(self.closes):
            msg = f"opening hours must close after they open, got {self.opens}-{self.closes}"
            raise ValueError(msg)


def _weekdays(opens: str, closes: str, days: range = range(5)) -> tuple[OpeningHours, ...]:
    return tuple(OpeningHours(weekday=d, opens=opens, closes=closes) for d in days)


@functools.cache
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[_dt.date]:
    table = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(table.keys())


def _check_country(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or value not in holidays.list_supported_countries():
        msg = f"unknown holiday country {value!r}; use an ISO code such as 'US' or 'GB'"
        raise ValueError(msg)


def _check_hours(
    instance: object,
    attribute: attrs.Attribute[tuple[OpeningHours, ...]],
    rows: tuple[OpeningHours, ...],
) -> None:
    if not rows:
        msg = "a business calendar needs at least one opening (or always_open=True)"
        raise ValueError(msg)
    seen: set[int] = set()
    for row in rows:
        if not isinstance(row, OpeningHours):
            msg = f"hours must be OpeningHours values, got {row!r}"
            raise TypeError(msg)
        if row.weekday in seen:
            msg = f"weekday {row.weekday} has two openings; one interval per day is supported"
            raise ValueError(msg)
        seen.add(row.weekday)


def _to_hours(value: Iterable[OpeningHours]) -> tuple[OpeningHours, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class BusinessCalendar:
    """When the desk is open: weekly `hours` in `zone`, closed on the holidays of
    `holiday_country` (the `holidays` package; None for no holidays).

    >>> from datetime import UTC, datetime, timedelta
    >>> cal = BusinessCalendar()   # Mon-Fri 09:00-17:00 America/Chicago, US federal holidays
    >>> friday_4pm = datetime(2026, 3, 6, 22, 0, tzinfo=UTC)
    >>> cal.add_business_time(friday_4pm, timedelta(hours=4))  # Mon 12:00 CDT
    datetime.datetime(2026, 3, 9, 17, 0, tzinfo=datetime.timezone.utc)
    """

    zone: str = attrs.field(default="America/Chicago", validator=lambda i, a, v: validate_zone(v))
    hours: tuple[OpeningHours, ...] = attrs.field(
        factory=lambda: _weekdays("09:00", "17:00"), converter=_to_hours, validator=_check_hours
    )
    holiday_country: str | None = attrs.field(default="US", validator=_check_country)
    holiday_subdivision: str | None = None

    # -- days -------------------------------------------------------------------------------

    def is_holiday(self, day: _dt.date) -> bool:
        """Whether the local date `day` is a holiday of the calendar's country."""
        if self.holiday_country is None:
            return False
        return day in _holiday_dates(self.holiday_country, self.holiday_subdivision, day.year)

    def opening_on(self, day: _dt.date) -> tuple[_dt.datetime, _dt.datetime] | None:
        """The (opens, closes) instants of the local date `day` in aware UTC, or None if closed."""
        return _opening(self, day)

    def _opening_uncached(self, day: _dt.date) -> tuple[_dt.datetime, _dt.datetime] | None:
        if self.is_holiday(day):
            return None
        for row in self.hours:
            if row.weekday == day.weekday():
                return (self._instant(day, row.opens), self._instant(day, row.closes))
        return None

    def _instant(self, day: _dt.date, hhmm: str) -> _dt.datetime:
        t = _hhmm(hhmm)
        local = pendulum.datetime(
            day.year, day.month, day.day, t.hour, t.minute, tz=timezone(self.zone)
        )
        return require_aware_utc(local, name="opening")

    def _local_date(self, at: _dt.datetime) -> _dt.date:
        local = at.astimezone(timezone(self.zone))  # pendulum's zone is a zoneinfo zone
        return _dt.date(local.year, local.month, local.day)

    def _openings_from(self, at: _dt.datetime) -> Iterator[tuple[_dt.datetime, _dt.datetime]]:
        """Each opening interval that ends after `at`, in order (starting on `at`'s local day)."""
        day = self._local_date(at) - _dt.timedelta(days=1)
        for _ in range(_MAX_DAYS_SEARCHED):
            day += _dt.timedelta(days=1)
            interval = self.opening_on(day)
            if interval is not None and interval[1] > at:
                yield interval
        msg = f"the calendar has no opening within {_MAX_DAYS_SEARCHED} days of {at.isoformat()}"
        raise ValueError(msg)

    # -- questions --------------------------------------------------------------------------

    def is_business_time(self, at: _dt.datetime) -> bool:
        """Whether the desk is open at `at` (opening instant included, closing excluded)."""
        at = require_aware_utc(at)
        interval = self.opening_on(self._local_date(at))
        return interval is not None and interval[0] <= at < interval[1]

    def next_opening(self, at: _dt.datetime) -> _dt.datetime:
        """`at` itself if the desk is open then, else the next instant it opens."""
        at = require_aware_utc(at)
        opens, _ = next(self._openings_from(at))
        return max(opens, at)

    def add_business_time(self, at: _dt.datetime, amount: _dt.timedelta) -> _dt.datetime:
        """The instant when `amount` of open time has passed since `at`.

        Adding zero returns `at` unchanged. A result that uses up a day exactly is that day's
        closing instant.
        """
        at = require_aware_utc(at)
        if amount < _dt.timedelta(0):
            msg = f"business time to add must be >= 0, got {amount}"
            raise ValueError(msg)
        if amount == _dt.timedelta(0):
            return at
        remaining = amount
        for opens, closes in self._openings_from(at):
            start = max(opens, at)
            available = closes - start
            if remaining <= available:
                return start + remaining
            remaining -= available
        raise AssertionError("unreachable")  # pragma: no cover - _openings_from raises first

    def business_time_between(self, start: _dt.datetime, end: _dt.datetime) -> _dt.timedelta:
        """Open time in [start, end); zero if `end` is not after `start`."""
        start = require_aware_utc(start, name="start")
        end = require_aware_utc(end, name="end")
        total = _dt.timedelta(0)
        if end <= start:
            return total
        for opens, closes in self._openings_from(start):
            if opens >= end:
                break
            total += min(closes, end) - max(opens, start)
        return total

    def add_business_days(self, at: _dt.datetime, days: int) -> _dt.datetime:
        """The same point of the business day, `days` business days later.

        From a closed instant, counting starts at the next opening. The point of the day is
        the open time elapsed since that day's opening, capped at the target day's length.
        """
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            msg = f"business days must be a whole number >= 0, got {days!r}"
            raise ValueError(msg)
        start = self.next_opening(at)
        openings = self._openings_from(start)
        opens, _ = next(openings)
        offset = start - opens
        target = (opens, opens)
        for _ in range(days):
            target = next(openings)
        if days == 0:
            return start
        return min(target[0] + offset, target[1])


@functools.lru_cache(maxsize=8192)
def _opening(calendar: BusinessCalendar, day: _dt.date) -> tuple[_dt.datetime, _dt.datetime] | None:
    return calendar._opening_uncached(day)


ALWAYS_OPEN = "always"
"""`channel_hours` value of a channel that is open around the clock."""
BUSINESS_HOURS = "business"
"""`channel_hours` value of a channel that is open only in the business calendar's hours."""
