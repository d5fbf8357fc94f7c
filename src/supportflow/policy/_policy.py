"""`SupportPolicy`: every number and rule of the default policy, as one frozen value."""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._model import Action, ReplyOutcome, Status, TimerKind
from ._time import add_calendar_days, validate_zone
from ._transitions import DEFAULT_TRANSITIONS, Transition, transition_map

__all__ = ["FOLLOW_UP_FIELDS", "DueTimer", "SupportPolicy"]

FOLLOW_UP_FIELDS: frozenset[str] = frozenset(
    {"requester", "subject", "severity", "channel", "product", "tags"}
)
"""The fields of a ticket a follow-up may copy from the closed ticket it follows."""

_DEFAULT_FOLLOW_UP_COPIES = frozenset({"requester", "subject", "severity", "product", "tags"})


@attrs.frozen(kw_only=True)
class DueTimer:
    """A timer the policy has armed on a ticket: what it does and the instant it fires."""

    kind: TimerKind
    due_at: _dt.datetime

    @property
    def action(self) -> Action:
        """The transition-table action this timer performs."""
        return Action.AUTO_SOLVE if self.kind is TimerKind.AUTO_SOLVE else Action.AUTO_CLOSE


def _non_negative_days(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"{attribute.name} must be a whole number of calendar days >= 0, got {value!r}"
        raise ValueError(msg)


def _zone(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    validate_zone(value)


def _to_field_set(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        msg = f"follow_up_copies must be a collection of field names, not the string {value!r}"
        raise TypeError(msg)
    return frozenset(value)


def _to_rows(value: Iterable[Transition]) -> tuple[Transition, ...]:
    return tuple(value)


def _name(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        msg = f"policy name must be non-empty text, got {value!r}"
        raise ValueError(msg)


def _copies(instance: object, attribute: attrs.Attribute[frozenset[str]], value: object) -> None:
    unknown = set(value) - FOLLOW_UP_FIELDS  # type: ignore[call-overload]
    if unknown:
        msg = (
            f"follow_up_copies has unknown field(s) {sorted(unknown)}; "
            f"allowed: {sorted(FOLLOW_UP_FIELDS)}"
        )
        raise ValueError(msg)


def _table(
    instance: object, attribute: attrs.Attribute[Any], value: tuple[Transition, ...]
) -> None:
    transition_map(value)  # raises on duplicate rows


@attrs.frozen(kw_only=True)
class SupportPolicy:
    """The rules a desk applies. Frozen and versioned: `version` is a fingerprint of every field.

    A changed policy applies to tickets submitted after it takes effect; each ticket records
    the `version` it runs under, so a replay uses the rules that were in force.

    >>> SupportPolicy().close_after_days
    3
    """

    name: str = attrs.field(default="default", validator=_name)
    """A label for people; part of the fingerprint."""
    zone: str = attrs.field(default="America/Chicago", validator=_zone)
    """IANA time zone of the desk; calendar-day timers keep wall-clock time here."""
    close_after_days: int = attrs.field(default=3, validator=_non_negative_days)
    """Calendar days from `Solved` to the automatic `Closed`."""
    pending_solve_after_days: int = attrs.field(default=7, validator=_non_negative_days)
    """Calendar days a `PENDING` ticket waits for the customer before it is solved automatically."""
    follow_up_copies: frozenset[str] = attrs.field(
        default=_DEFAULT_FOLLOW_UP_COPIES, converter=_to_field_set, validator=_copies
    )
    """Fields a follow-up copies from the closed ticket (never the conversation or assignee)."""
    transitions: tuple[Transition, ...] = attrs.field(
        default=DEFAULT_TRANSITIONS, converter=_to_rows, validator=_table
    )
    """The transition table (see `supportflow.policy.DEFAULT_TRANSITIONS`)."""

    # -- identity ---------------------------------------------------------------------------

    @functools.cached_property
    def version(self) -> str:
        """A stable fingerprint of every field: equal policies have equal versions."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return f"{self.name}:{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the policy, the inverse of `from_dict`."""
        return {
            "name": self.name,
            "zone": self.zone,
            "close_after_days": self.close_after_days,
            "pending_solve_after_days": self.pending_solve_after_days,
            "follow_up_copies": sorted(self.follow_up_copies),
            "transitions": [
                {
                    "status": t.status.value,
                    "action": t.action.value,
                    "to": t.to.value,
                    "reopens": t.reopens,
                    "records": t.records,
                    "follows_up": t.follows_up,
                }
                for t in self.transitions
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SupportPolicy:
        """Build a policy from `to_dict()` output; unknown keys are refused."""
        known = {f.name for f in attrs.fields(cls)}
        unknown = set(data) - known
        if unknown:
            msg = f"unknown policy field(s) {sorted(unknown)}; known: {sorted(known)}"
            raise ValueError(msg)
        kwargs = dict(data)
        if "transitions" in kwargs:
            kwargs["transitions"] = tuple(
                Transition(
                    status=Status(row["status"]),
                    action=Action(row["action"]),
                    to=Status(row["to"]),
                    reopens=bool(row.get("reopens", False)),
                    records=bool(row.get("records", True)),
                    follows_up=bool(row.get("follows_up", False)),
                )
                for row in kwargs["transitions"]
            )
        return cls(**kwargs)

    # -- the transition table ---------------------------------------------------------------

    def transition(self, status: Status, action: Action) -> Transition | None:
        """The row for `action` in `status`, or None when the policy forbids it."""
        return self._transition_map.get((status, action))

    @functools.cached_property
    def _transition_map(self) -> Mapping[tuple[Status, Action], Transition]:
        return transition_map(self.transitions)

    def is_allowed(self, status: Status, action: Action) -> bool:
        """Whether `action` may happen to a ticket in `status`."""
        return self.transition(status, action) is not None

    def allowed_actions(self, status: Status) -> tuple[Action, ...]:
        """The actions allowed in `status`, in table order."""
        return tuple(t.action for t in self.transitions if t.status is status)

    # -- timers -----------------------------------------------------------------------------

    def close_due_at(self, solved_at: _dt.datetime) -> _dt.datetime:
        """When a ticket solved at `solved_at` closes: `close_after_days` calendar days later,
        same wall-clock time in `zone` (71 or 73 elapsed hours across a DST change)."""
        return add_calendar_days(solved_at, self.close_after_days, self.zone)

    def solve_due_at(self, pending_since: _dt.datetime) -> _dt.datetime:
        """When a ticket that became `PENDING` at `pending_since` is solved automatically."""
        return add_calendar_days(pending_since, self.pending_solve_after_days, self.zone)

    def due_timer(
        self,
        status: Status,
        *,
        solve_due_at: _dt.datetime | None,
        close_due_at: _dt.datetime | None,
    ) -> DueTimer | None:
        """The timer armed in `status`, given the due instants recorded on the ticket."""
        if status is Status.PENDING and solve_due_at is not None:
            return DueTimer(kind=TimerKind.AUTO_SOLVE, due_at=solve_due_at)
        if status is Status.SOLVED and close_due_at is not None:
            return DueTimer(kind=TimerKind.AUTO_CLOSE, due_at=close_due_at)
        return None

    @staticmethod
    def is_due(timer: DueTimer, at: _dt.datetime) -> bool:
        """A timer fires *at* its due instant: at `due` or later it has fired."""
        return timer.due_at <= at

    # -- customer replies and follow-ups ----------------------------------------------------

    def reply_outcome(self, status: Status, *, auto_submitted: bool = False) -> ReplyOutcome:
        """What a customer's message does to a ticket in `status`."""
        if auto_submitted:
            return ReplyOutcome.IGNORE_AUTO_SUBMITTED
        row = self.transition(status, Action.CUSTOMER_REPLY)
        if row is None:  # a custom table may forbid it; then it is only recorded
            return ReplyOutcome.RECORD
        if row.follows_up:
            return ReplyOutcome.FOLLOW_UP
        if row.reopens:
            return ReplyOutcome.REOPEN
        if row.to is not status:
            return ReplyOutcome.REACTIVATE
        return ReplyOutcome.RECORD

    def follow_up_fields(self, ticket_fields: Mapping[str, Any]) -> dict[str, Any]:
        """The fields a follow-up copies from the closed ticket, per `follow_up_copies`."""
        return {k: ticket_fields[k] for k in sorted(self.follow_up_copies) if k in ticket_fields}
