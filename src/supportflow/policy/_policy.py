"""`SupportPolicy`: every number and rule of the default policy, as one frozen value."""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._actors import (
    DEFAULT_PERMISSIONS,
    Permission,
    Role,
    StrangerReplies,
    permission_map,
)
from ._calendar import ALWAYS_OPEN, BUSINESS_HOURS, BusinessCalendar, OpeningHours
from ._model import Action, ReplyOutcome, Severity, Status, TimerKind
from ._sla import DEFAULT_UPDATE_TARGETS, UpdateTarget
from ._time import add_calendar_days, validate_zone
from ._transitions import DEFAULT_TRANSITIONS, Transition, transition_map

__all__ = ["FOLLOW_UP_FIELDS", "DueTimer", "SupportPolicy"]

FOLLOW_UP_FIELDS: frozenset[str] = frozenset(
    {"requester", "subject", "severity", "channel", "product", "tags"}
)
"""The fields of a ticket a follow-up may copy from the closed ticket it follows."""

_DEFAULT_FOLLOW_UP_COPIES = frozenset({"requester", "subject", "severity", "product", "tags"})


def _same(value: object) -> object:
    return value


@attrs.frozen(kw_only=True)
class DueTimer:
    """A timer the policy has armed on a ticket: what it does and the instant it fires."""

    kind: TimerKind
    due_at: _dt.datetime

    @property
    def action(self) -> Action:
        """The transition-table action this timer performs."""
        return Action(self.kind.value)


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


_UPDATE_CLOCK_RUNS = frozenset({Status.NEW, Status.OPEN})

_DEFAULT_CHANNEL_HOURS: tuple[tuple[str, str], ...] = (
    ("api", ALWAYS_OPEN),
    ("email", ALWAYS_OPEN),
    ("phone", BUSINESS_HOURS),
    ("web", ALWAYS_OPEN),
)


def _to_targets(value: Iterable[UpdateTarget]) -> tuple[UpdateTarget, ...]:
    return tuple(value)


def _targets(
    instance: object, attribute: attrs.Attribute[Any], value: tuple[UpdateTarget, ...]
) -> None:
    if not value:
        return  # no update SLA
    severities = [t.severity for t in value if isinstance(t, UpdateTarget)]
    if len(severities) != len(value) or sorted(severities) != sorted(Severity):
        msg = (
            "update_targets needs exactly one UpdateTarget per severity (CRITICAL .. LOW), "
            "or none at all for no update SLA"
        )
        raise ValueError(msg)


def _to_channel_hours(
    value: Mapping[str, str] | Iterable[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), str(v)) for k, v in pairs))


def _channel_hours(
    instance: object, attribute: attrs.Attribute[Any], value: tuple[tuple[str, str], ...]
) -> None:
    for channel, hours in value:
        if hours not in (ALWAYS_OPEN, BUSINESS_HOURS):
            msg = f"channel {channel!r}: hours must be 'always' or 'business', got {hours!r}"
            raise ValueError(msg)


def _optional_major(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        msg = f"current_major_version must be a whole number >= 0 or None, got {value!r}"
        raise ValueError(msg)


def _positive_count(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{attribute.name} must be a whole number >= 1, got {value!r}"
        raise ValueError(msg)


def _major(version: str) -> int | None:
    text = version.strip().lstrip("vV")
    digits = ""
    for char in text:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else None


def _calendar_dict(calendar: BusinessCalendar) -> dict[str, Any]:
    out: dict[str, Any] = {
        "zone": calendar.zone,
        "hours": [
            {"weekday": h.weekday, "opens": h.opens, "closes": h.closes} for h in calendar.hours
        ],
    }
    if calendar.holiday_country is not None:
        out["holiday_country"] = calendar.holiday_country
    if calendar.holiday_subdivision is not None:
        out["holiday_subdivision"] = calendar.holiday_subdivision
    return out


def _calendar_from(data: Mapping[str, Any]) -> BusinessCalendar:
    known = {"zone", "hours", "holiday_country", "holiday_subdivision"}
    unknown = set(data) - known
    if unknown:
        msg = f"unknown calendar field(s) {sorted(unknown)}; known: {sorted(known)}"
        raise ValueError(msg)
    kwargs: dict[str, Any] = {k: data[k] for k in ("zone", "holiday_subdivision") if k in data}
    kwargs["holiday_country"] = data.get("holiday_country")
    if "hours" in data:
        kwargs["hours"] = tuple(OpeningHours(**h) for h in data["hours"])
    return BusinessCalendar(**kwargs)


def _permissions_list(rows: tuple[Permission, ...]) -> list[dict[str, Any]]:
    return [{"action": p.action.value, "roles": sorted(r.value for r in p.roles)} for p in rows]


def _to_permissions(value: Iterable[Permission | Mapping[str, Any]]) -> tuple[Permission, ...]:
    return tuple(
        p if isinstance(p, Permission) else Permission(action=p["action"], roles=p["roles"])
        for p in value
    )


def _permissions(
    instance: object, attribute: attrs.Attribute[Any], value: tuple[Permission, ...]
) -> None:
    permission_map(value)  # raises on duplicate rows and on timers fired by people


_ADDED_WITH_DEFAULTS: dict[str, object] = {
    "max_subject_length": 250,
    "max_body_length": 100_000,
    "max_tags": 30,
    "max_tag_length": 64,
    "max_message_id_length": 998,
    "permissions": DEFAULT_PERMISSIONS,
    "stranger_replies": StrangerReplies.NEW_TICKET,
}
"""Fields added after policies were first stored, with the default they were added with. They
appear in `to_dict` (hence in the `version` fingerprint) only when they differ from it, so a
policy stored before they existed keeps its version when it is read back. Every field added
from now on goes here, with its default (and in `_ENCODE` if it is not plain JSON)."""

_ENCODE: dict[str, Any] = {
    "permissions": _permissions_list,
    "stranger_replies": lambda value: value.value,
}


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
    calendar: BusinessCalendar = attrs.field(
        default=attrs.Factory(lambda self: BusinessCalendar(zone=self.zone), takes_self=True),
        validator=attrs.validators.instance_of(BusinessCalendar),
    )
    """Business hours and holidays (default: Mon-Fri 09:00-17:00 in `zone`, US federal holidays)."""
    update_targets: tuple[UpdateTarget, ...] = attrs.field(
        default=DEFAULT_UPDATE_TARGETS, converter=_to_targets, validator=_targets
    )
    """How often agents must update an active ticket, one target per severity."""
    channel_hours: tuple[tuple[str, str], ...] = attrs.field(
        default=_DEFAULT_CHANNEL_HOURS, converter=_to_channel_hours, validator=_channel_hours
    )
    """When each inbound channel is open: ``always`` (24/7) or ``business`` (calendar hours)."""
    current_major_version: int | None = attrs.field(default=None, validator=_optional_major)
    """The newest major version of the customer's software; None: versions are not checked."""
    supported_major_versions: int = attrs.field(default=2, validator=_positive_count)
    """How many of the most recent major versions are supported."""
    max_subject_length: int = attrs.field(default=250, validator=_positive_count)
    """Longest subject a ticket accepts (characters)."""
    max_body_length: int = attrs.field(default=100_000, validator=_positive_count)
    """Longest description, message body, solution, reason, note or comment (characters)."""
    max_tags: int = attrs.field(default=30, validator=_positive_count)
    """Most tags on one ticket."""
    max_tag_length: int = attrs.field(default=64, validator=_positive_count)
    """Longest tag (characters)."""
    max_message_id_length: int = attrs.field(default=998, validator=_positive_count)
    """Longest inbound message id (RFC 5322's line limit)."""
    permissions: tuple[Permission, ...] = attrs.field(
        default=DEFAULT_PERMISSIONS, converter=_to_permissions, validator=_permissions
    )
    """Who may do what (see `supportflow.policy.DEFAULT_PERMISSIONS`)."""
    stranger_replies: StrangerReplies = attrs.field(
        default=StrangerReplies.NEW_TICKET, converter=StrangerReplies
    )
    """What a reply from an address that is neither the requester nor CC'd does: a new ticket
    of its own (default) or a refusal. Either way it never lands on the ticket it answers."""

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
            "calendar": _calendar_dict(self.calendar),
            "update_targets": [
                {"severity": t.severity.name, "amount": t.amount, "unit": t.unit.value}
                for t in self.update_targets
            ],
            "channel_hours": dict(self.channel_hours),
            **(
                {}
                if self.current_major_version is None
                else {"current_major_version": self.current_major_version}
            ),
            "supported_major_versions": self.supported_major_versions,
            **{
                name: _ENCODE.get(name, _same)(getattr(self, name))
                for name, default in _ADDED_WITH_DEFAULTS.items()
                if getattr(self, name) != default
            },
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
        if "calendar" in kwargs:
            kwargs["calendar"] = _calendar_from(kwargs["calendar"])
        if "update_targets" in kwargs:
            kwargs["update_targets"] = tuple(
                UpdateTarget(severity=t["severity"], amount=t["amount"], unit=t["unit"])
                for t in kwargs["update_targets"]
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

    # -- the permission table ---------------------------------------------------------------

    @functools.cached_property
    def _permission_map(self) -> Mapping[Action, frozenset[Role]]:
        return permission_map(self.permissions)

    def roles_for(self, action: Action) -> frozenset[Role]:
        """The roles that may perform `action` (empty: nobody may)."""
        return self._permission_map.get(action, frozenset())

    def may(self, role: Role, action: Action) -> bool:
        """Whether an actor in `role` may perform `action` (in a status where it is allowed)."""
        return role in self._permission_map.get(action, ())

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
        update_due_at: _dt.datetime | None = None,
    ) -> DueTimer | None:
        """The timer armed in `status`, given the due instants recorded on the ticket.

        At most one timer is armed at a time: the update clock runs while NEW or OPEN (pass
        `update_due_at=None` once its breach is recorded), the auto-solve while PENDING, the
        auto-close while SOLVED.
        """
        if status is Status.PENDING and solve_due_at is not None:
            return DueTimer(kind=TimerKind.AUTO_SOLVE, due_at=solve_due_at)
        if status is Status.SOLVED and close_due_at is not None:
            return DueTimer(kind=TimerKind.AUTO_CLOSE, due_at=close_due_at)
        if status in _UPDATE_CLOCK_RUNS and update_due_at is not None:
            return DueTimer(kind=TimerKind.UPDATE_OVERDUE, due_at=update_due_at)
        return None

    @staticmethod
    def update_clock_runs(status: Status) -> bool:
        """Whether the agent-update clock runs in `status` (it pauses while PENDING and stops
        at SOLVED)."""
        return status in _UPDATE_CLOCK_RUNS

    @staticmethod
    def is_due(timer: DueTimer, at: _dt.datetime) -> bool:
        """A timer fires *at* its due instant: at `due` or later it has fired."""
        return timer.due_at <= at

    # -- business hours, update SLA, versions ------------------------------------------------

    def update_target(self, severity: Severity) -> UpdateTarget | None:
        """The update target of `severity` (None when the policy has no update SLA)."""
        for target in self.update_targets:
            if target.severity is severity:
                return target
        return None

    def update_due_at(self, severity: Severity, since: _dt.datetime) -> _dt.datetime | None:
        """When an agent update is due for a ticket of `severity` whose update clock
        (re)started at `since`; None when the policy has no update SLA."""
        target = self.update_target(severity)
        return None if target is None else target.due_after(since, self.calendar)

    def is_open(self, channel: str, at: _dt.datetime) -> bool:
        """Whether `channel` takes requests at `at` (``always`` channels: 24/7; ``business``
        channels: the calendar's hours). Channels not listed are always open."""
        hours = dict(self.channel_hours).get(channel, ALWAYS_OPEN)
        return hours == ALWAYS_OPEN or self.calendar.is_business_time(at)

    def is_supported_version(self, version: str | None) -> bool | None:
        """Whether software `version` (e.g. ``"4.2.1"``) is among the supported majors.

        None when it cannot be told: no `current_major_version` set, or no version given or
        no leading major number in it. An unsupported version is flagged, never refused.
        """
        if self.current_major_version is None or version is None:
            return None
        major = _major(version)
        if major is None:
            return None
        oldest = self.current_major_version - self.supported_major_versions + 1
        return major >= oldest

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
