"""Render the transition table for people (docs, CLI). Pure: strings only."""

from __future__ import annotations

from ._model import Action, Status
from ._policy import SupportPolicy

__all__ = ["transition_diagram_mermaid", "transition_table_markdown"]


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


def transition_diagram_mermaid(policy: SupportPolicy | None = None) -> str:
    """The policy's lifecycle as a Mermaid `stateDiagram-v2`, generated from its transition table.

    One arrow per pair of different statuses, labelled with the actions that lead from one to
    the other (in `Action` order; `(reopens)` marks a row that records `Reopened` first).
    Actions that keep the status are left out; a status no action leaves is final (`[*]`), and a
    customer reply that starts a follow-up ticket is a note on its status.
    """
    policy = policy or SupportPolicy()
    edges: dict[tuple[Status, Status], list[str]] = {}
    follow_ups: list[Status] = []
    for status in Status:
        for action in Action:
            row = policy.transition(status, action)
            if row is None:
                continue
            if row.follows_up:
                follow_ups.append(status)
            elif row.records and row.to is not status:
                label = f"{action.value} (reopens)" if row.reopens else action.value
                edges.setdefault((status, row.to), []).append(label)
    lines = ["stateDiagram-v2", f"    [*] --> {Status.NEW.name}: submit"]
    lines += [
        f"    {source.name} --> {target.name}: {', '.join(labels)}"
        for (source, target), labels in edges.items()
    ]
    leaving = {source for source, _ in edges}
    lines += [f"    {status.name} --> [*]" for status in Status if status not in leaving]
    lines += [
        f"    note right of {status.name}: customer_reply starts a linked follow-up ticket"
        for status in follow_ups
    ]
    return "\n".join(lines) + "\n"
