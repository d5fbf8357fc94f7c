"""The pure policy: rules as data and functions. No I/O, no clock, no eventsourcing.

Everything that decides — allowed transitions, due instants, what a customer reply
does, what a follow-up copies — lives here, so that the aggregate, the timer worker,
the auditor and the test kit all ask the same questions.
"""

from ._actors import (
    DEFAULT_PERMISSIONS,
    Permission,
    Role,
    StrangerReplies,
    normalize_address,
)
from ._calendar import ALWAYS_OPEN, BUSINESS_HOURS, BusinessCalendar, OpeningHours
from ._model import Action, ReplyOutcome, Severity, Status, TimerKind
from ._policy import FOLLOW_UP_FIELDS, DueTimer, SupportPolicy
from ._render import (
    permission_table_markdown,
    transition_diagram_mermaid,
    transition_table_markdown,
)
from ._sla import DEFAULT_UPDATE_TARGETS, TimeUnit, UpdateTarget
from ._time import add_calendar_days, require_aware_utc, validate_zone
from ._transitions import DEFAULT_TRANSITIONS, Transition

__all__ = [
    "ALWAYS_OPEN",
    "BUSINESS_HOURS",
    "DEFAULT_PERMISSIONS",
    "DEFAULT_TRANSITIONS",
    "DEFAULT_UPDATE_TARGETS",
    "FOLLOW_UP_FIELDS",
    "Action",
    "BusinessCalendar",
    "DueTimer",
    "OpeningHours",
    "Permission",
    "ReplyOutcome",
    "Role",
    "Severity",
    "Status",
    "StrangerReplies",
    "SupportPolicy",
    "TimeUnit",
    "TimerKind",
    "Transition",
    "UpdateTarget",
    "add_calendar_days",
    "normalize_address",
    "permission_table_markdown",
    "require_aware_utc",
    "transition_diagram_mermaid",
    "transition_table_markdown",
    "validate_zone",
]
