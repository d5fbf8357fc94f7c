"""The business calendar: opening hours, holidays, business time, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from supportflow.policy._calendar import BusinessCalendar, OpeningHours

CHICAGO = BusinessCalendar()
LONDON = BusinessCalendar(zone="Europe/London", holiday_country="GB")
CALENDARS = st.sampled_from([CHICAGO, LONDON])
INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)
AMOUNTS = st.integers(min_value=0, max_value=80 * 3600).map(lambda s: timedelta(seconds=s))

# DST changes: US 2026-03-08 and 2026-11-01; UK 2026-03-29 and 2026-10-25.
DST_EDGES = [
    datetime(2026, 3, 6, 22, 0, tzinfo=UTC),  # Fri 16:00 CST before the US change
    datetime(2026, 10, 30, 21, 0, tzinfo=UTC),  # Fri 16:00 CDT before the US fall-back
    datetime(2026, 3, 27, 16, 0, tzinfo=UTC),  # Fri 16:00 GMT before the UK change
    datetime(2026, 10, 23, 15, 0, tzinfo=UTC),  # Fri 16:00 BST before the UK fall-back
]


def closing_or_open(calendar: BusinessCalendar, at: datetime) -> bool:
    if calendar.is_business_time(at):
        return True
    local_day = calendar._local_date(at)
    interval = calendar.opening_on(local_day)
    return interval is not None and interval[1] == at


@given(calendar=CALENDARS, start=INSTANTS, amount=AMOUNTS)
@example(calendar=CHICAGO, start=DST_EDGES[0], amount=timedelta(hours=4))
@example(calendar=CHICAGO, start=DST_EDGES[1], amount=timedelta(hours=4))
@example(calendar=LONDON, start=DST_EDGES[2], amount=timedelta(hours=4))
@example(calendar=LONDON, start=DST_EDGES[3], amount=timedelta(hours=4))
def test_adding_then_measuring_business_time_round_trips(
    calendar: BusinessCalendar, start: datetime, amount: timedelta
) -> None:
    """The business time between `at` and `add_business_time(at, d)` is exactly `d`."""
    end = calendar.add_business_time(start, amount)
    assert calendar.business_time_between(start, end) == amount


@given(calendar=CALENDARS, start=INSTANTS, amount=AMOUNTS.filter(lambda d: d > timedelta(0)))
def test_added_business_time_never_lands_outside_business_hours(
    calendar: BusinessCalendar, start: datetime, amount: timedelta
) -> None:
    """A result is inside opening hours, or exactly a closing instant that used a day up."""
    assert closing_or_open(calendar, calendar.add_business_time(start, amount))


@given(calendar=CALENDARS, start=INSTANTS)
def test_next_opening_is_open_and_nothing_is_open_before_it(
    calendar: BusinessCalendar, start: datetime
) -> None:
    """`next_opening` is business time, and no business time lies between `at` and it."""
    opening = calendar.next_opening(start)
    assert opening >= start
    assert calendar.is_business_time(opening)
    assert calendar.business_time_between(start, opening) == timedelta(0)


def test_business_hours_are_elapsed_hours_across_the_dst_change() -> None:
    """Fri 16:00 CST + 4 business hours is Mon 12:00 CDT (1 h Friday, 3 h Monday)."""
    end = CHICAGO.add_business_time(DST_EDGES[0], timedelta(hours=4))
    assert end == datetime(2026, 3, 9, 17, 0, tzinfo=UTC)


def test_us_federal_holidays_are_skipped() -> None:
    """Wed 16:00 before Thanksgiving + 2 business hours is Fri 10:00 (Thursday is a holiday)."""
    wednesday_4pm = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)  # CST
    assert CHICAGO.add_business_time(wednesday_4pm, timedelta(hours=2)) == datetime(
        2026, 11, 27, 16, 0, tzinfo=UTC
    )
    assert not CHICAGO.is_business_time(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))


def test_weekend_is_closed_and_monday_opens_at_nine() -> None:
    """Saturday is closed; the next opening is Monday 09:00 local."""
    saturday = datetime(2026, 3, 7, 18, 0, tzinfo=UTC)
    assert not CHICAGO.is_business_time(saturday)
    assert CHICAGO.next_opening(saturday) == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # 09:00 CDT


def test_business_days_keep_the_point_of_the_day() -> None:
    """Fri 10:00 + 1 business day is Mon 10:00 (local), whatever the DST change did."""
    friday_10 = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)  # CST
    assert CHICAGO.add_business_days(friday_10, 1) == datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


def test_calendar_without_holidays_is_open_on_thanksgiving() -> None:
    """`holiday_country=None` means no holidays."""
    calendar = BusinessCalendar(holiday_country=None)
    assert calendar.is_business_time(datetime(2026, 11, 26, 16, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hours": ()}, "at least one opening"),
        ({"holiday_country": "XX"}, "unknown holiday country"),
        ({"zone": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_bad_calendar_is_refused(kwargs: dict[str, object], message: str) -> None:
    """A calendar with no hours, an unknown country or zone is refused with a clear error."""
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**kwargs)  # type: ignore[arg-type]


def test_opening_hours_must_close_after_they_open() -> None:
    """An interval that closes before it opens is refused."""
    with pytest.raises(ValueError, match="close after"):
        OpeningHours(weekday=0, opens="17:00", closes="09:00")
