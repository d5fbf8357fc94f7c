"""The README's code and every file in `examples/` run as tests."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from supportflow.policy import transition_table_markdown


def python_blocks_of(markdown: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown.read_text(encoding="utf-8"), re.S)


ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(doc, block) for doc in DOCS for block in python_blocks_of(doc)]


def test_readme_has_python_example() -> None:
    """The README shows at least one Python example."""
    assert python_blocks_of(ROOT / "README.md")


@pytest.mark.parametrize(
    ("doc", "block"), BLOCKS, ids=[f"{d.name}-{i}" for i, (d, _) in enumerate(BLOCKS)]
)
def test_docs_code_block_runs(doc: Path, block: str) -> None:
    """Each Python code block in the README and docs/ runs without error."""
    exec(compile(block, str(doc.name), "exec"), {"__name__": "docs"})


def test_docs_transition_table_matches_policy() -> None:
    """The table in docs/policy.md is exactly the one generated from the default policy."""
    text = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    start = text.index("<!-- transition-table:start -->\n") + len(
        "<!-- transition-table:start -->\n"
    )
    end = text.index("<!-- transition-table:end -->")
    assert text[start:end] == transition_table_markdown()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path: Path, tmp_path: Path) -> None:
    """Each example runs as a script and exits 0."""
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_quickstart_example_prints_closed_ticket_and_follow_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The quickstart ends with the ticket CLOSED and a NEW follow-up."""
    module = runpy.run_path(str(ROOT / "examples" / "quickstart.py"))
    module["main"](tmp_path / "q.db")
    out = capsys.readouterr().out
    assert ": CLOSED, follow-ups" in out
    assert ": NEW, follows" in out


def test_security_example_shows_refusals_and_a_clean_erasure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The security example: the look-alike reply does not land, the customer cannot solve,
    the erased store audits clean and its raw file holds neither address nor text."""
    module = runpy.run_path(str(ROOT / "examples" / "security.py"))
    module["main"]()
    out = capsys.readouterr().out
    assert "look-alike reply landed on the ticket: False" in out
    assert "acts as stranger and may not solve" in out
    assert "audit after erasure: CLEAN" in out
    assert "address in the raw file: False" in out
    assert "message text in the raw file: False" in out
