"""A property-based test kit for supportflow lifecycles (needs ``supportflow[testing]``).

- strategies: `severities()`, `aware_datetimes(zones=...)`, `policies(...)`,
  `transition_tables()`, `commands(...)`, `steps(...)`, `histories(policy=...)`;
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
from .machine import DeskFactory, ExtraInvariant, LifecycleMachine, lifecycle_machine
from .strategies import (
    ZONES,
    aware_datetimes,
    commands,
    dst_changes,
    histories,
    policies,
    severities,
    steps,
    transition_tables,
)

__all__ = [
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
    "aware_datetimes",
    "commands",
    "dst_changes",
    "facts",
    "histories",
    "lifecycle_machine",
    "model",
    "perform",
    "play",
    "policies",
    "severities",
    "steps",
    "transition_tables",
]
