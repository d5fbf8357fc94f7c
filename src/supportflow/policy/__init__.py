"""The pure policy: rules as data and functions. No I/O, no clock, no eventsourcing.

Everything that decides — allowed transitions, due instants, what a customer reply
does, what a follow-up copies — lives here, so that the aggregate, the timer worker,
the auditor and the test kit all ask the same questions.
"""

from ._model import Action, ReplyOutcome, Severity, Status, TimerKind
from ._policy import FOLLOW_UP_FIELDS, DueTimer, SupportPolicy
from ._render import transition_table_markdown
from ._time import add_calendar_days, require_aware_utc, validate_zone
from ._transitions import DEFAULT_TRANSITIONS, Transition

__all__ = [
    "DEFAULT_TRANSITIONS",
    "FOLLOW_UP_FIELDS",
    "Action",
    "DueTimer",
    "ReplyOutcome",
    "Severity",
    "Status",
    "SupportPolicy",
    "TimerKind",
    "Transition",
    "add_calendar_days",
    "require_aware_utc",
    "transition_table_markdown",
    "validate_zone",
]
