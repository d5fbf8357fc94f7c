"""Read-only views of tickets, as returned by `SupportDesk.get`."""

from __future__ import annotations

import datetime as _dt
from uuid import UUID

import attrs

from .policy import Severity, Status

__all__ = ["EscalationRequest", "StrangerMessageView", "TicketView"]


@attrs.frozen(kw_only=True)
class EscalationRequest:
    """A customer's escalation request waiting for a manager's review."""

    by: str
    reason: str
    requested_severity: int | None
    contact: str | None
    at: _dt.datetime


@attrs.frozen(kw_only=True)
class TicketView:
    """A ticket as of one instant: frozen, hashable, safe to hand to templates.

    Timers already due at that instant are shown as applied even if no worker has written
    them yet; `unwritten_timer_events` says how many such events the store does not hold yet.
    """

    id: UUID
    status: Status
    severity: Severity
    requester: str
    subject: str
    description: str
    channel: str
    product: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]
    assignee: str | None
    created_at: _dt.datetime
    updated_at: _dt.datetime
    close_due_at: _dt.datetime | None
    solve_due_at: _dt.datetime | None
    solved_at: _dt.datetime | None
    first_response_at: _dt.datetime | None
    follow_up_of: UUID | None
    follow_ups: tuple[UUID, ...]
    reopen_count: int
    policy_version: str
    version: int
    """Number of events the store holds for this ticket (up to `as_of`)."""
    as_of: _dt.datetime
    """The instant this view describes."""
    unwritten_timer_events: int = 0
    product_version: str | None = None
    supported: bool | None = None
    """False when `product_version` is older than the supported majors; None if unknown."""
    update_due_at: _dt.datetime | None = None
    """When the next agent update is due (None while PENDING, SOLVED or CLOSED)."""
    update_overdue_at: _dt.datetime | None = None
    """When the current update clock was breached (recorded as `UpdateOverdue`), if it was."""
    sla_breaches: int = 0
    pending_escalation: EscalationRequest | None = None
    escalations: int = 0
    bugs: tuple[str, ...] = ()
    survey_rating: int | None = None
    survey_comment: str | None = None
    cc: tuple[str, ...] = ()
    """Addresses on the CC list: they may reply as the customer."""
    erased_at: _dt.datetime | None = None
    """When the requester's personal data was erased; every personal field then reads
    ``[erased]``."""

    @property
    def sla_breached(self) -> bool:
        """Whether the current update clock is breached."""
        return self.update_overdue_at is not None

    @property
    def is_closed(self) -> bool:
        """CLOSED is final."""
        return self.status is Status.CLOSED

    @property
    def product_fields(self) -> dict[str, str]:
        """`product` as a dict (e.g. product name, OS, app version)."""
        return dict(self.product)


@attrs.frozen(kw_only=True)
class StrangerMessageView:
    """A message that answered a ticket from an address neither its requester nor CC'd."""

    id: UUID
    ticket_id: UUID
    """The ticket the message answered (it never landed there)."""
    sender: str
    """The sender's address (``[erased]`` once that sender was forgotten)."""
    outcome: str
    """``new_ticket``, ``refused`` or ``dropped`` (an auto-submitted message)."""
    new_ticket_id: UUID | None
    message_id: str | None
    auto_submitted: bool
    at: _dt.datetime
