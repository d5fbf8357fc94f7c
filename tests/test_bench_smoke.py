"""Smoke tests of `bench/rebuild.py`: it runs and reports a consistent table. No timings are
asserted: throughputs depend on the machine and are only compared inside one run."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "rebuild.py"
STORES = ("memory", "sqlite")
SIZES = (5, 50, 500)


def _load_bench() -> ModuleType:
    # Registered in sys.modules so eventsourcing can resolve the topic of its `Bare` aggregate.
    name = "supportflow_bench_rebuild"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The JSON document of one quick run of `main`."""
    bench = _load_bench()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = bench.main(["--quick", "--json"])
    assert status == 0
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def test_rows_cover_every_store_and_size_in_quick_json(report: dict[str, Any]) -> None:
    """There is exactly one row per (store, events per ticket)."""
    keys = [(row["store"], row["events"]) for row in report["rows"]]
    assert sorted(keys) == sorted((store, size) for store in STORES for size in SIZES)


def test_throughputs_are_positive_in_quick_json(report: dict[str, Any]) -> None:
    """Every measured throughput is a positive number of events per second."""
    for row in report["rows"]:
        for key in ("bare_events_per_s", "get_events_per_s", "rebuild_events_per_s"):
            assert isinstance(row[key], float)
            assert row[key] > 0, (row["store"], row["events"], key)


def test_ratios_are_ours_over_bare_in_quick_json(report: dict[str, Any]) -> None:
    """Each ratio is supportflow's throughput divided by the bare aggregate's, same row."""
    for row in report["rows"]:
        bare = row["bare_events_per_s"]
        assert row["get_ratio"] == pytest.approx(row["get_events_per_s"] / bare, rel=1e-12)
        assert row["rebuild_ratio"] == pytest.approx(row["rebuild_events_per_s"] / bare, rel=1e-12)


def test_environment_names_the_versions_in_quick_json(report: dict[str, Any]) -> None:
    """The report says which Python and eventsourcing produced it, and marks itself quick."""
    env = report["environment"]
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["eventsourcing"].startswith("9.")
    assert report["quick"] is True


def test_script_prints_table_when_run_from_repo_root() -> None:
    """`python bench/rebuild.py --quick` (what `make bench` runs, minus --quick) exits 0 and
    prints the header and one table line per store and size."""
    result = subprocess.run(
        [sys.executable, "bench/rebuild.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "eventsourcing" in lines[0]
    rows = [line for line in lines if line.startswith(("| memory |", "| sqlite |"))]
    assert len(rows) == len(STORES) * len(SIZES)
