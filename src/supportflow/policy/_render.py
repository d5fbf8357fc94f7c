"""Render the transition table for people (docs, CLI). Pure: strings only."""

from __future__ import annotations

from ._model import Action, Status
from ._policy import SupportPolicy

__all__ = ["transition_table_markdown"]


def _cell(policy: SupportPolicy, status: Status, action: Action) -> str:
    row = policy.transition(status, action)
    if row is None:
        return "—"
    if row.follows_up:
        return "follow-up"
    if not row.records:
        return "= (nothing recorded)"
    text = "=" if row.to is status else row.to.name
    return f"`Reopened`, {text}" if row.reopens else text


def transition_table_markdown(policy: SupportPolicy | None = None) -> str:
    """The policy's transition table as a Markdown table: actions down, statuses across.

    `=` keeps the status, `—` is refused with `TransitionRejected`.
    """
    policy = policy or SupportPolicy()
    statuses = list(Status)
    lines = [
        "| action ↓ / status → | " + " | ".join(s.name for s in statuses) + " |",
        "| --- |" + " --- |" * len(statuses),
    ]
    for action in Action:
        cells = [_cell(policy, status, action) for status in statuses]
        if all(cell == "—" for cell in cells):
            continue
        lines.append(f"| `{action.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
