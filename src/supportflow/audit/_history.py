"""Ticket events, described for people: who did what, when, automatic or not."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from typing import Any

import pendulum

from .._pii import is_sealed
from ..policy import Severity, Status, SupportPolicy
from ..ticket import PERSONAL_FIELDS, Ticket
from ._model import HistoryEntry, TicketHistory

__all__ = ["build_history", "describe", "iso", "local_text", "status_after"]


def iso(instant: _dt.datetime) -> str:
    """``2026-03-09T15:00:00Z`` (microseconds only when there are some)."""
    return instant.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def local_text(instant: _dt.datetime, zone: str) -> str:
    """``2026-03-09 10:00:00 CDT``: the instant on the desk's wall clock."""
    local = pendulum.instance(instant).in_timezone(zone)
    return f"{local.format('YYYY-MM-DD HH:mm:ss')} {local.tzname()}"


def _short(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _severity(value: int) -> str:
    try:
        return Severity(value).name
    except ValueError:
        return str(value)


def status_after(event: Any, status: str) -> str:
    """The ticket's status (a `Status` value) after `event`, given the status before it."""
    if isinstance(event, Ticket.Submitted):
        return Status.NEW.value
    if isinstance(event, Ticket.Assigned | Ticket.Responded):
        return str(event.status)
    if isinstance(event, Ticket.Solved):
        return Status.SOLVED.value
    if isinstance(event, Ticket.Reopened):
        return Status.OPEN.value
    if isinstance(event, Ticket.Closed):
        return Status.CLOSED.value
    return status


Reveal = Callable[[str], str]
"""Turns a stored personal field into what people read (opened, or ``[erased]``)."""


def sealed_text(value: str) -> str:
    """The fallback `Reveal` when no key table is at hand: sealed fields read ``[sealed]``."""
    return "[sealed]" if is_sealed(value) else value


class _Revealed:
    """An event whose personal fields read through `reveal`."""

    def __init__(self, event: Any, reveal: Reveal) -> None:
        self._event = event
        self._reveal = reveal
        self._fields = PERSONAL_FIELDS.get(type(event), ())

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._event, name)
        if name in self._fields and isinstance(value, str):
            return self._reveal(value)
        return value


def describe(
    event: Any, policy: SupportPolicy | None, reveal: Reveal = sealed_text
) -> tuple[str, str, bool]:
    """`(who, what, automatic)` for one ticket event (personal fields through `reveal`)."""
    who, what, automatic = _describe(_Revealed(event, reveal), type(event), policy)
    return who, what, automatic


def _describe(event: Any, kind: type, policy: SupportPolicy | None) -> tuple[str, str, bool]:
    if issubclass(kind, Ticket.Submitted):
        what = f'submitted "{_short(event.subject)}" ({_severity(event.severity)}, {event.channel})'
        if event.follow_up_of is not None:
            what += f", a follow-up of ticket {event.follow_up_of}"
        return event.requester, what, False
    if issubclass(kind, Ticket.Assigned):
        what = f"took the ticket (status {event.status})"
        if event.previous:
            what += f", from {event.previous}"
        return event.agent, what, False
    if issubclass(kind, Ticket.Responded):
        if event.role == "agent":
            verb = "asked the customer for input" if event.asks_for_input else "replied"
            return event.by, f'{verb}: "{_short(event.body)}"', False
        if event.auto_submitted:
            return event.by, f'auto-reply received, changes nothing: "{_short(event.body)}"', False
        return event.by, f'customer replied: "{_short(event.body)}"', False
    if issubclass(kind, Ticket.Solved):
        if event.automatic:
            days = "" if policy is None else f" within {policy.pending_solve_after_days} days"
            return "system", f"solved automatically: no answer from the customer{days}", True
        return event.by, f'solved: "{_short(event.solution)}"', False
    if issubclass(kind, Ticket.Reopened):
        return event.by, f"reopened ({event.reason.replace('_', ' ')})", False
    if issubclass(kind, Ticket.Closed):
        days = "" if policy is None else f", {policy.close_after_days} days after it was solved"
        return "system", f"closed automatically{days}", bool(event.automatic)
    if issubclass(kind, Ticket.FollowUpCreated):
        return event.by, f"replied after closure: follow-up ticket {event.follow_up_id}", False
    if issubclass(kind, Ticket.SeverityChanged):
        what = (
            f"changed severity {_severity(event.previous)} -> {_severity(event.severity)}: "
            f'"{_short(event.reason)}"'
        )
        return event.by, what, False
    if issubclass(kind, Ticket.UpdateOverdue):
        what = f"no agent update by {event.due_at.isoformat()}: update SLA breached"
        return "system", what, True
    if issubclass(kind, Ticket.EscalationRequested):
        what = f'asked for escalation: "{_short(event.reason)}"'
        if event.requested_severity is not None:
            what += f" (to {_severity(event.requested_severity)})"
        return event.by, what, False
    if issubclass(kind, Ticket.EscalationReviewed):
        verdict = "accepted" if event.accepted else "declined"
        return event.manager, f'{verdict} the escalation: "{_short(event.note)}"', False
    if issubclass(kind, Ticket.BugLinked):
        return event.by, f"linked bug {event.reference}", False
    if issubclass(kind, Ticket.SurveyAnswered):
        return event.by, f'answered the survey: {event.rating}/5 "{_short(event.comment)}"', False
    if issubclass(kind, Ticket.CcAdded):
        return event.by, f"added {event.address} to the CC list", False
    if issubclass(kind, Ticket.CcRemoved):
        return event.by, f"removed {event.address} from the CC list", False
    if issubclass(kind, Ticket.Erased):
        return event.by, "erased the requester's personal data (key destroyed)", False
    return "?", kind.__name__, False


def build_history(
    ticket_id: Any,
    events: Sequence[Any],
    *,
    policy: SupportPolicy | None,
    as_of: _dt.datetime | None,
    zone: str,
    reveal: Reveal = sealed_text,
) -> TicketHistory:
    """The timeline of one ticket's events (those stamped at or before `as_of`)."""
    entries: list[HistoryEntry] = []
    status = Status.NEW.value
    solve_due: _dt.datetime | None = None
    close_due: _dt.datetime | None = None
    first = events[0]
    for event in events:
        if as_of is not None and event.timestamp > as_of:
            break
        status = status_after(event, status)
        if isinstance(event, Ticket.Responded):
            solve_due = event.solve_due_at
        elif isinstance(event, Ticket.Solved):
            solve_due, close_due = None, event.close_due_at
        elif isinstance(event, Ticket.Reopened | Ticket.Closed):
            close_due = None
        who, what, automatic = describe(event, policy, reveal)
        entries.append(
            HistoryEntry(
                position=event.originator_version,
                kind=type(event).__name__,
                at=event.timestamp,
                local=local_text(event.timestamp, zone),
                who=who,
                what=what,
                automatic=automatic,
                status=status,
                written_at=getattr(event, "written_at", None),
            )
        )
    next_timer = None
    if policy is not None and entries:
        timer = policy.due_timer(Status(status), solve_due_at=solve_due, close_due_at=close_due)
        if timer is not None:
            name = timer.kind.value.replace("_", "-")
            next_timer = f"{name} due {iso(timer.due_at)} ({local_text(timer.due_at, zone)})" + (
                " - due by then, not yet written" if as_of and timer.due_at <= as_of else ""
            )
    return TicketHistory(
        ticket_id=ticket_id,
        subject=reveal(str(getattr(first, "subject", ""))),
        requester=reveal(str(getattr(first, "requester", ""))),
        zone=zone,
        policy_version=str(getattr(first, "policy_version", "")),
        as_of=as_of,
        entries=tuple(entries),
        next_timer=next_timer,
    )
