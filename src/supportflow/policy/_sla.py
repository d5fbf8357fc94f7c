"""Update targets: how often agents must update an active ticket. Pure."""

from __future__ import annotations

import datetime as _dt
import enum

import attrs

from ._calendar import BusinessCalendar
from ._model import Severity
from ._time import require_aware_utc

__all__ = ["DEFAULT_UPDATE_TARGETS", "TimeUnit", "UpdateTarget"]


class TimeUnit(enum.Enum):
    """How an amount of time is counted."""

    HOURS = "hours"
    """Elapsed hours, around the clock."""
    BUSINESS_HOURS = "business_hours"
    """Hours while the business calendar is open."""
    BUSINESS_DAYS = "business_days"
    """Business days: the same point of the business day, N open days later."""


def _positive(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{attribute.name} must be a whole number >= 1, got {value!r}"
        raise ValueError(msg)


def _severity(value: object) -> Severity:
    return Severity.parse(value)


@attrs.frozen(kw_only=True)
class UpdateTarget:
    """Tickets of `severity` get an agent update at least every `amount` `unit`."""

    severity: Severity = attrs.field(converter=_severity)
    amount: int = attrs.field(validator=_positive)
    unit: TimeUnit = attrs.field(converter=TimeUnit)

    def due_after(self, since: _dt.datetime, calendar: BusinessCalendar) -> _dt.datetime:
        """When the next update is due if the clock (re)started at `since`."""
        since = require_aware_utc(since, name="since")
        if self.unit is TimeUnit.HOURS:
            return since + _dt.timedelta(hours=self.amount)
        if self.unit is TimeUnit.BUSINESS_HOURS:
            return calendar.add_business_time(since, _dt.timedelta(hours=self.amount))
        return calendar.add_business_days(since, self.amount)

    def describe(self) -> str:
        unit = self.unit.value.replace("_", " ")
        if self.amount == 1:
            unit = unit.rstrip("s")
        return f"{self.severity.name}: every {self.amount} {unit}"


DEFAULT_UPDATE_TARGETS: tuple[UpdateTarget, ...] = (
    UpdateTarget(severity=Severity.CRITICAL, amount=4, unit=TimeUnit.HOURS),
    UpdateTarget(severity=Severity.HIGH, amount=4, unit=TimeUnit.BUSINESS_HOURS),
    UpdateTarget(severity=Severity.MEDIUM, amount=1, unit=TimeUnit.BUSINESS_DAYS),
    UpdateTarget(severity=Severity.LOW, amount=1, unit=TimeUnit.BUSINESS_DAYS),
)
"""DESIGN §1: CRITICAL every 4 hours around the clock, HIGH every 4 business hours, MEDIUM and
LOW every business day."""
