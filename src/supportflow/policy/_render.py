"""Render the transition table for people (docs, CLI). Pure: strings only."""

from __future__ import annotations

from ._actors import Role
from ._model import Action, Status
from ._policy import SupportPolicy

__all__ = ["permission_table_markdown", "transition_diagram_mermaid", "transition_table_markdown"]

_ROLES = (Role.REQUESTER, Role.CC, Role.AGENT, Role.MANAGER, Role.SYSTEM)


def _who(policy: SupportPolicy, action: Action) -> str:
    """`[agent/manager]`: the roles that may perform `action` (`[nobody]` if none)."""
    roles = policy.roles_for(action)
    return "[" + ("/".join(r.value for r in _ROLES if r in roles) or "nobody") + "]"


def permission_table_markdown(policy: SupportPolicy | None = None) -> str:
    """The policy's permission table as a Markdown table: actions down, roles across.

    `✓` may perform the action (in a status where the transition table allows it); `—` is
    refused with `PermissionDenied`. A stranger may do nothing and is not shown.
    """
    policy = policy or SupportPolicy()
    lines = [
        "| action ↓ / role → | " + " | ".join(r.value for r in _ROLES) + " |",
        "| --- |" + " --- |" * len(_ROLES),
    ]
    for action in Action:
        roles = policy.roles_for(action)
        cells = ["✓" if role in roles else "—" for role in _ROLES]
        lines.append(f"| `{action.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
    the other and, in brackets, the roles that may perform them (the permission table), in
    `Action` order; `(reopens)` marks a row that records `Reopened` first.
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
                edges.setdefault((status, row.to), []).append(f"{label} {_who(policy, action)}")
    lines = ["stateDiagram-v2", f"    [*] --> {Status.NEW.name}: submit [anyone]"]
    lines += [
        f"    {source.name} --> {target.name}: {', '.join(labels)}"
        for (source, target), labels in edges.items()
    ]
    leaving = {source for source, _ in edges}
    lines += [f"    {status.name} --> [*]" for status in Status if status not in leaving]
    lines += [
        f"    note right of {status.name}: customer_reply "
        f"{_who(policy, Action.CUSTOMER_REPLY)} starts a linked follow-up ticket"
        for status in follow_ups
    ]
    return "\n".join(lines) + "\n"
