"""A property-based test kit for supportflow lifecycles (needs ``supportflow[testing]``).

- strategies: `severities()`, `aware_datetimes(zones=...)`, `policies(...)`,
  `transition_tables()`, `permission_tables()`, `roles()`, `addresses()`,
  `same_address(a)`, `look_alikes(a)`, `commands(...)`, `steps(...)`, `histories(policy=...)`;
- histories: `play(history, clock, *desks)` runs one on desks in lockstep; `facts()`;
- `LifecycleMachine` / `lifecycle_machine(policy=..., desk_factory=...)`: a hypothesis
  state machine over a whole desk, checked at every step against
- `supportflow.testing.model`: a small reference model written from the rules alone.

Importing `supportflow` never imports hypothesis; only this package does.
"""

try:
    import hypothesis  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        "supportflow.testing needs hypothesis: pip install 'supportflow[testing]'"
    ) from error

from . import model
from .history import (
    Agent,
    Command,
    CustomerReply,
    Outcome,
    Step,
    Submit,
    Wait,
    WaitForDue,
    facts,
    perform,
    play,
)
from .machine import DEFAULT_STAFF, DeskFactory, ExtraInvariant, LifecycleMachine, lifecycle_machine
from .strategies import (
    ZONES,
    addresses,
    aware_datetimes,
    commands,
    dst_changes,
    histories,
    look_alikes,
    permission_tables,
    policies,
    roles,
    same_address,
    severities,
    steps,
    transition_tables,
)

__all__ = [
    "DEFAULT_STAFF",
    "ZONES",
    "Agent",
    "Command",
    "CustomerReply",
    "DeskFactory",
    "ExtraInvariant",
    "LifecycleMachine",
    "Outcome",
    "Step",
    "Submit",
    "Wait",
    "WaitForDue",
    "addresses",
    "aware_datetimes",
    "commands",
    "dst_changes",
    "facts",
    "histories",
    "lifecycle_machine",
    "look_alikes",
    "model",
    "perform",
    "permission_tables",
    "play",
    "policies",
    "roles",
    "same_address",
    "severities",
    "steps",
    "transition_tables",
]
