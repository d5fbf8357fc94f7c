"""supportflow: an event-sourced engine for the lifecycle of support tickets.

Every ticket is rebuilt from its events; a pure policy decides every transition, timer and
follow-up, so histories replay deterministically and can be verified.
"""

from .clock import Clock, FixedClock, ManualClock, SystemClock
from .desk import SupportDesk
from .errors import (
    ConcurrencyConflict,
    CorruptedHistory,
    InvalidCommand,
    PermissionDenied,
    SupportflowError,
    TicketNotFound,
    TransitionRejected,
    UnknownPolicyVersion,
)
from .policy import Action, ReplyOutcome, Role, Severity, Status, SupportPolicy
from .ticket import Ticket
from .views import TicketView

__all__ = [
    "Action",
    "Clock",
    "ConcurrencyConflict",
    "CorruptedHistory",
    "FixedClock",
    "InvalidCommand",
    "ManualClock",
    "PermissionDenied",
    "ReplyOutcome",
    "Role",
    "Severity",
    "Status",
    "SupportDesk",
    "SupportPolicy",
    "SupportflowError",
    "SystemClock",
    "Ticket",
    "TicketNotFound",
    "TicketView",
    "TransitionRejected",
    "UnknownPolicyVersion",
]
