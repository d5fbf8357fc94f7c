"""Enumerations of the lifecycle: severities, statuses, actions, outcomes."""

from __future__ import annotations

import enum

__all__ = ["Action", "ReplyOutcome", "Severity", "Status", "TimerKind"]


class Severity(enum.IntEnum):
    """How badly the customer is affected; 1 is the worst.

    The definitions follow the vendor support page the default policy comes from.
    """

    CRITICAL = 1
    HIGH = 2
    MEDIUM = 3
    LOW = 4

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(self.name, spec)

    @property
    def definition(self) -> str:
        """A sentence an agent can read to the customer."""
        return _SEVERITY_DEFINITIONS[self]

    @classmethod
    def parse(cls, value: object) -> Severity:
        """Accept a `Severity`, its number (1-4) or its name (case-insensitive).

        Raises `ValueError` naming the accepted values for anything else.
        """
        if isinstance(value, Severity):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        if isinstance(value, str):
            text = value.strip()
            if text.isdigit() and int(text) in cls._value2member_map_:
                return cls(int(text))
            try:
                return cls[text.upper()]
            except KeyError:
                pass
        accepted = ", ".join(f"{s.value} {s.name}" for s in cls)
        msg = f"unknown severity {value!r}; expected one of: {accepted}"
        raise ValueError(msg)


_SEVERITY_DEFINITIONS = {
    Severity.CRITICAL: (
        "You cannot reasonably continue your work: a complete loss of service, such as "
        "being unable to restore from backup, unable to renew the account, or an expired account."
    ),
    Severity.HIGH: (
        "A severe loss of service: work continues in a restricted fashion and there is "
        "no temporary workaround."
    ),
    Severity.MEDIUM: (
        "A minor, partial loss of functionality; the impact is an inconvenience and a "
        "workaround exists."
    ),
    Severity.LOW: (
        "A request for information, a documentation error, or a suggestion; no loss of service."
    ),
}


class Status(enum.Enum):
    """Where a ticket is in its lifecycle. A ticket never returns to `NEW`; `CLOSED` is final."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"


class Action(enum.Enum):
    """Everything that can happen to a ticket after it is submitted.

    Commands of people and timers of the policy. Which status each is allowed in is the
    transition table (`DEFAULT_TRANSITIONS`); who may perform it is the permission table
    (`DEFAULT_PERMISSIONS`). The CC actions are not lifecycle transitions: they only have
    permissions.
    """

    ASSIGN = "assign"
    REPLY = "reply"
    REQUEST_INFO = "request_info"
    SOLVE = "solve"
    CHANGE_SEVERITY = "change_severity"
    CUSTOMER_REPLY = "customer_reply"
    AUTO_REPLY = "auto_reply"
    """A customer message marked auto-submitted (RFC 3834): out-of-office, bounces."""
    AUTO_SOLVE = "auto_solve"
    AUTO_CLOSE = "auto_close"
    UPDATE_OVERDUE = "update_overdue"
    """Timer: an active ticket went without an agent update past its update target."""
    REQUEST_ESCALATION = "request_escalation"
    REVIEW_ESCALATION = "review_escalation"
    LINK_BUG = "link_bug"
    ANSWER_SURVEY = "answer_survey"
    ADD_CC = "add_cc"
    """Add an address to the ticket's CC list (not a lifecycle transition: any status)."""
    REMOVE_CC = "remove_cc"
    """Remove an address from the ticket's CC list (any status)."""


class ReplyOutcome(enum.Enum):
    """What a customer's message does to the ticket it answers."""

    RECORD = "record"
    """Recorded; the status stays as it is."""
    REACTIVATE = "reactivate"
    """A `PENDING` ticket becomes `OPEN`."""
    REOPEN = "reopen"
    """A `SOLVED` ticket is reopened (`Reopened`, then `OPEN`); its close timer is cancelled."""
    FOLLOW_UP = "follow_up"
    """The ticket is `CLOSED`: the message starts a new follow-up ticket linked to it."""
    IGNORE_AUTO_SUBMITTED = "ignore_auto_submitted"
    """An auto-submitted message: recorded, but it never changes a status or opens a ticket."""


class TimerKind(enum.Enum):
    """The timers the policy arms."""

    AUTO_SOLVE = "auto_solve"
    """A `PENDING` ticket the customer did not answer is solved automatically."""
    AUTO_CLOSE = "auto_close"
    """A `SOLVED` ticket is closed automatically."""
    UPDATE_OVERDUE = "update_overdue"
    """An active ticket's agent update is overdue: the breach is recorded (once per clock)."""
