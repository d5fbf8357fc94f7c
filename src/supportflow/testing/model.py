"""A reference model of the default lifecycle: statuses, the two timers and follow-ups.

Written from the rules in DESIGN §1 alone, so that it can judge the engine: it imports nothing
from `supportflow.policy` and computes due instants itself with `zoneinfo` (PEP 495 folds),
while the policy uses pendulum. It takes a policy's *numbers* (zone and day counts) as input
(`Rules.of(policy)`), never its functions or its transition table: it models the default
table only.

>>> from datetime import UTC, datetime
>>> solved = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)  # Fri 10:00 CST
>>> calendar_days_later(solved, 3, "America/Chicago")  # Mon 10:00 CDT: 71 hours later
datetime.datetime(2026, 3, 9, 15, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo

import attrs

__all__ = [
    "AGENT_COMMANDS",
    "CLOSED",
    "NEW",
    "NEW_FOLLOW_UP",
    "OPEN",
    "PENDING",
    "SOLVED",
    "Model",
    "ModelTicket",
    "Rules",
    "calendar_days_later",
]

UTC = _dt.UTC

NEW: Final = "NEW"
OPEN: Final = "OPEN"
PENDING: Final = "PENDING"
SOLVED: Final = "SOLVED"
CLOSED: Final = "CLOSED"

AGENT_COMMANDS: Final = ("assign", "reply", "request_info", "solve", "change_severity")

NEW_FOLLOW_UP: Final = "new follow-up"
"""`Model.customer_reply` result: the message starts a new follow-up ticket."""


def calendar_days_later(instant: _dt.datetime, days: int, zone: str) -> _dt.datetime:
    """`days` calendar days after `instant`, at the same wall-clock time in `zone`, as UTC.

    A wall time that does not exist that day (spring forward) is pushed forward by the gap;
    an ambiguous one (fall back) is its later occurrence. Both are the later of the two
    PEP 495 readings (`fold=0`, `fold=1`) of the wall time. Zero days is `instant` itself.
    """
    if days == 0:  # no calendar day to add: due at once (even inside a fall-back fold)
        return instant.astimezone(UTC)
    tz = ZoneInfo(zone)
    wall = instant.astimezone(tz)
    target = _dt.datetime.combine(wall.date() + _dt.timedelta(days=days), wall.time(), tzinfo=tz)
    return max(target.replace(fold=fold).astimezone(UTC) for fold in (0, 1))


@attrs.frozen(kw_only=True)
class Rules:
    """The numbers the model needs: the desk's zone and the two calendar-day counts."""

    zone: str = "America/Chicago"
    close_after_days: int = 3
    pending_solve_after_days: int = 7

    @classmethod
    def of(cls, policy: Any) -> Rules:
        """The numbers of a `SupportPolicy` (read as plain attributes)."""
        return cls(
            zone=policy.zone,
            close_after_days=policy.close_after_days,
            pending_solve_after_days=policy.pending_solve_after_days,
        )


@attrs.define(kw_only=True)
class ModelTicket:
    """One ticket of the model."""

    rules: Rules
    status: str = NEW
    solve_due: _dt.datetime | None = None
    close_due: _dt.datetime | None = None
    follow_ups: list[UUID] = attrs.field(factory=list)
    fired: list[tuple[str, _dt.datetime]] = attrs.field(factory=list)
    """The automatic events so far: ("Solved" or "Closed", the due instant it is stamped with)."""

    def catch_up(self, now: _dt.datetime) -> None:
        """Fire the timers due at or before `now` (a timer fires *at* its due instant)."""
        if self.status == PENDING and self.solve_due is not None and self.solve_due <= now:
            self.status, due, self.solve_due = SOLVED, self.solve_due, None
            self.close_due = calendar_days_later(due, self.rules.close_after_days, self.rules.zone)
            self.fired.append(("Solved", due))
        if self.status == SOLVED and self.close_due is not None and self.close_due <= now:
            self.status, due, self.close_due = CLOSED, self.close_due, None
            self.fired.append(("Closed", due))

    def next_due(self) -> _dt.datetime | None:
        """The due instant of the armed timer, if any."""
        if self.status == PENDING:
            return self.solve_due
        if self.status == SOLVED:
            return self.close_due
        return None

    def agent(self, command: str, now: _dt.datetime) -> bool:
        """Apply an agent command; False when it must be refused (the ticket is CLOSED)."""
        if self.status == CLOSED:
            return False
        if command == "assign" and self.status == NEW:
            self.status = OPEN
        elif command == "reply":
            self.status, self.solve_due, self.close_due = OPEN, None, None
        elif command == "request_info":
            self.status, self.close_due = PENDING, None
            days = self.rules.pending_solve_after_days
            self.solve_due = calendar_days_later(now, days, self.rules.zone)
        elif command == "solve" and self.status != SOLVED:
            self.status, self.solve_due = SOLVED, None
            self.close_due = calendar_days_later(now, self.rules.close_after_days, self.rules.zone)
        return True

    def customer(self) -> None:
        """A customer message (not auto-submitted) on a ticket that is not CLOSED."""
        if self.status in (PENDING, SOLVED):
            self.status, self.solve_due, self.close_due = OPEN, None, None


@attrs.define
class Model:
    """Every ticket of one desk. Ticket ids come from the desk; the model decides the rest."""

    rules: Rules = attrs.field(factory=Rules)
    tickets: dict[UUID, ModelTicket] = attrs.field(factory=dict)

    def at(self, tid: UUID, now: _dt.datetime) -> ModelTicket:
        """Ticket `tid` with its timers caught up to `now`."""
        ticket = self.tickets[tid]
        ticket.catch_up(now)
        return ticket

    def submit(self, tid: UUID) -> None:
        """A new ticket (also a follow-up) with id `tid`."""
        if tid in self.tickets:
            raise AssertionError(f"{tid} is not a new ticket id")
        self.tickets[tid] = ModelTicket(rules=self.rules)

    def agent(self, tid: UUID, command: str, now: _dt.datetime) -> bool:
        """Apply an agent command at `now`; False when it must be refused."""
        return self.at(tid, now).agent(command, now)

    def customer_reply(self, tid: UUID, now: _dt.datetime, *, auto_submitted: bool) -> UUID | str:
        """Where a (first delivery of a) customer message lands: a ticket id, or
        `NEW_FOLLOW_UP` (then tell the model the new id with `follow_up_created`)."""
        ticket = self.at(tid, now)
        if auto_submitted:
            return tid
        if ticket.status != CLOSED:
            ticket.customer()
            return tid
        latest = ticket.follow_ups[-1] if ticket.follow_ups else None
        while latest is not None:  # the first follow-up down the chain that is not CLOSED
            follow_up = self.at(latest, now)
            if follow_up.status != CLOSED:
                follow_up.customer()
                return latest
            latest = follow_up.follow_ups[-1] if follow_up.follow_ups else None
        return NEW_FOLLOW_UP

    def follow_up_created(self, closed: UUID, new: UUID) -> None:
        """The desk created follow-up `new` of the closed ticket `closed`."""
        self.submit(new)
        self.tickets[closed].follow_ups.append(new)

    def due_instants(self, now: _dt.datetime) -> list[_dt.datetime]:
        """Every armed timer's due instant after catching up to `now`, soonest first."""
        dues = (self.at(tid, now).next_due() for tid in self.tickets)
        return sorted(due for due in dues if due is not None)
