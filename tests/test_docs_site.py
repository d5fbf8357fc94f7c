"""The docs site's generated parts: the lifecycle diagram and the doctest fences."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from supportflow.policy import (
    DEFAULT_TRANSITIONS,
    Action,
    Permission,
    Role,
    Status,
    SupportPolicy,
    permission_table_markdown,
    transition_diagram_mermaid,
)

ROOT = Path(__file__).resolve().parent.parent
ARROW = re.compile(r"^    (\S+) --> (\w+): (.+)$", re.M)


def arrows(diagram: str) -> set[tuple[str, str, str]]:
    """Every labelled `source --> target: action` of a diagram, one action per item."""
    return {
        (source, target, label)
        for source, target, labels in ARROW.findall(diagram)
        for label in labels.split(", ")
    }


def without(*keys: tuple[Status, Action]) -> SupportPolicy:
    rows = tuple(row for row in DEFAULT_TRANSITIONS if (row.status, row.action) not in keys)
    return SupportPolicy(transitions=rows)


def load_griffe_extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "griffe_doctests", ROOT / "scripts" / "griffe_doctests.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_lifecycle_diagram_matches_policy() -> None:
    """The diagram in docs/policy.md is exactly the one generated from the default policy."""
    text = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    start_marker = "<!-- transition-diagram:start -->\n"
    start = text.index(start_marker) + len(start_marker)
    end = text.index("<!-- transition-diagram:end -->")
    assert text[start:end] == "```mermaid\n" + transition_diagram_mermaid() + "```\n"


def test_diagram_has_one_arrow_per_status_change_in_the_table_default_policy() -> None:
    """Each row that changes the status is an arrow labelled with its action; nothing else is."""
    policy = SupportPolicy()
    roles = (Role.REQUESTER, Role.CC, Role.AGENT, Role.MANAGER, Role.SYSTEM)

    def who(action: Action) -> str:
        return "[" + "/".join(r.value for r in roles if policy.may(r, action)) + "]"

    expected = {("[*]", "NEW", "submit [anyone]")} | {
        (
            row.status.name,
            row.to.name,
            row.action.value + (" (reopens)" if row.reopens else "") + f" {who(row.action)}",
        )
        for row in DEFAULT_TRANSITIONS
        if row.to is not row.status and row.records and not row.follows_up
    }
    assert arrows(transition_diagram_mermaid()) == expected


def test_diagram_drops_an_arrow_when_the_table_drops_its_row() -> None:
    """A policy without the reopening agent reply has no `reply (reopens)` arrow."""
    diagram = transition_diagram_mermaid(without((Status.SOLVED, Action.REPLY)))
    assert ("SOLVED", "OPEN", "reply (reopens) [agent]") not in arrows(diagram)
    assert ("SOLVED", "OPEN", "customer_reply (reopens) [requester/cc]") in arrows(diagram)


def test_diagram_marks_only_closed_final_default_policy() -> None:
    """With the default table only CLOSED has no way out, so only it leads to `[*]`."""
    assert re.findall(r"^    (\w+) --> \[\*\]$", transition_diagram_mermaid(), re.M) == ["CLOSED"]


def test_diagram_marks_a_status_final_when_no_row_leaves_it() -> None:
    """A table in which nothing leaves SOLVED draws SOLVED as a final state."""
    policy = without(
        (Status.SOLVED, Action.REPLY),
        (Status.SOLVED, Action.REQUEST_INFO),
        (Status.SOLVED, Action.CUSTOMER_REPLY),
        (Status.SOLVED, Action.AUTO_CLOSE),
    )
    assert "    SOLVED --> [*]\n" in transition_diagram_mermaid(policy)


def test_diagram_notes_the_follow_up_rule_only_when_the_table_has_it() -> None:
    """The follow-up note on CLOSED comes from its row: without the row there is no note."""
    note = "note right of CLOSED: customer_reply [requester/cc] starts a linked follow-up ticket"
    assert note in transition_diagram_mermaid()
    assert note not in transition_diagram_mermaid(without((Status.CLOSED, Action.CUSTOMER_REPLY)))


def test_griffe_extension_fences_doctest_blocks_in_docstrings() -> None:
    """Doctest lines and their output are wrapped in a pycon fence; prose stays outside."""
    fence = load_griffe_extension().fence_doctests
    text = "Intro.\n\n>>> 1 + 1\n2\n\nMore prose."
    assert fence(text) == "Intro.\n\n```pycon\n>>> 1 + 1\n2\n```\n\nMore prose."


def test_griffe_extension_leaves_fenced_doctests_alone() -> None:
    """A doctest already inside a code fence is not fenced a second time."""
    fence = load_griffe_extension().fence_doctests
    text = "```pycon\n>>> 1 + 1\n2\n```"
    assert fence(text) == text


def test_docs_permission_table_matches_policy() -> None:
    """The permission table in docs/security.md is exactly the default policy's."""
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    start_marker = "<!-- permission-table:start -->\n"
    start = text.index(start_marker) + len(start_marker)
    end = text.index("<!-- permission-table:end -->")
    assert text[start:end] == permission_table_markdown()


def test_diagram_labels_follow_the_permission_table() -> None:
    """A policy that lets managers solve draws `solve [agent/manager]`."""
    rows = [p for p in SupportPolicy().permissions if p.action is not Action.SOLVE]
    rows.append(Permission(action=Action.SOLVE, roles={Role.AGENT, Role.MANAGER}))
    diagram = transition_diagram_mermaid(SupportPolicy(permissions=rows))
    assert ("OPEN", "SOLVED", "solve [agent/manager]") in arrows(diagram)
    assert ("OPEN", "SOLVED", "solve [agent]") in arrows(transition_diagram_mermaid())
