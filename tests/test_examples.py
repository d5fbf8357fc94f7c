"""The README's code and every file in `examples/` run as tests."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def python_blocks(markdown: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown.read_text(encoding="utf-8"), re.S)


def test_readme_has_python_example() -> None:
    """The README shows at least one Python example."""
    assert python_blocks(ROOT / "README.md")


@pytest.mark.parametrize("block", python_blocks(ROOT / "README.md"))
def test_readme_code_block_runs(block: str) -> None:
    """Each README code block runs without error."""
    exec(compile(block, "README.md", "exec"), {"__name__": "readme"})


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
