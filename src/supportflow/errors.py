"""Every exception supportflow raises on purpose, rooted at `SupportflowError`.

Library exceptions (eventsourcing, sqlite3) are translated once, at the desk's boundary.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

__all__ = [
    "ConcurrencyConflict",
    "CorruptedHistory",
    "InvalidCommand",
    "PermissionDenied",
    "SupportflowError",
    "TicketNotFound",
    "TransitionRejected",
    "UnknownPolicyVersion",
]


class SupportflowError(Exception):
    """Root of supportflow's exceptions."""


class TicketNotFound(SupportflowError, LookupError):
    """No ticket has this id (or it did not exist yet at the requested instant)."""

    def __init__(self, ticket_id: object, *, detail: str = "") -> None:
        self.ticket_id = ticket_id
        msg = f"no ticket {ticket_id}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class InvalidCommand(SupportflowError, ValueError):
    """The command is malformed: a naive datetime, an unknown severity, an empty field,
    or a time before the ticket's last event. Nothing was recorded."""

    def __init__(self, message: str, *, ticket_id: UUID | None = None) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"ticket {ticket_id}: {message}" if ticket_id else message)


class TransitionRejected(SupportflowError):
    """The policy forbids this command in the ticket's current status. Nothing was recorded
    (timers that were already due were applied first and are kept)."""

    def __init__(
        self,
        ticket_id: UUID,
        *,
        status: object,
        action: object,
        allowed: Iterable[object],
    ) -> None:
        self.ticket_id = ticket_id
        self.status = status
        self.action = action
        self.allowed = tuple(allowed)
        status_name = getattr(status, "name", str(status))
        action_name = getattr(action, "value", str(action))
        names = ", ".join(getattr(a, "value", str(a)) for a in self.allowed) or "nothing"
        super().__init__(
            f"ticket {ticket_id} is {status_name}: {action_name} is not allowed; allowed: {names}"
        )


class PermissionDenied(SupportflowError):
    """The actor's role on this ticket may not perform this action (the policy's permission
    table), or a stranger's reply was refused. Nothing was recorded on the ticket."""

    def __init__(
        self,
        ticket_id: UUID,
        *,
        actor: str,
        role: object,
        action: object,
        allowed: Iterable[object],
    ) -> None:
        self.ticket_id = ticket_id
        self.actor = actor
        self.role = role
        self.action = action
        self.allowed = tuple(allowed)
        role_name = getattr(role, "value", str(role))
        action_name = getattr(action, "value", str(action))
        names = ", ".join(sorted(getattr(r, "value", str(r)) for r in self.allowed)) or "nobody"
        super().__init__(
            f"ticket {ticket_id}: {actor!r} acts as {role_name} and may not {action_name}; "
            f"allowed: {names}"
        )


class ConcurrencyConflict(SupportflowError):
    """Other writers kept changing this ticket; the command gave up after bounded retries.
    Nothing of this command was recorded; it is safe to retry."""

    def __init__(self, ticket_id: UUID, *, attempts: int) -> None:
        self.ticket_id = ticket_id
        self.attempts = attempts
        super().__init__(
            f"ticket {ticket_id} changed under this command {attempts} times in a row; "
            "nothing was recorded, retry the command"
        )


class UnknownPolicyVersion(SupportflowError, LookupError):
    """A ticket records a policy version this desk does not know and the store does not hold."""

    def __init__(self, version: str, *, ticket_id: UUID) -> None:
        self.version = version
        self.ticket_id = ticket_id
        super().__init__(
            f"ticket {ticket_id} runs under policy {version!r}, which this store does not hold; "
            "pass that policy to SupportDesk(policies=[...])"
        )


class CorruptedHistory(SupportflowError):
    """A stored event of this ticket cannot be read (an altered row, an unknown event class, a
    wrong cipher key). Nothing was changed; `supportflow audit` names the event."""

    def __init__(self, ticket_id: object, *, detail: str) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"ticket {ticket_id}: a stored event cannot be read ({detail})")
