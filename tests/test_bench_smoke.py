"""Smoke tests of the scripts in `bench/`: each runs in its `--quick` mode and reports a
consistent JSON document. No timings are asserted: throughputs depend on the machine and are
only compared inside one run."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ._pg import PgServer

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "rebuild.py"
STORES = ("memory", "sqlite")
SIZES = (5, 50, 500)
ALL_STORES = ("memory", "sqlite", "postgresql")


def _load_bench(script: str = "rebuild") -> ModuleType:
    # Registered in sys.modules so eventsourcing can resolve the topics of its aggregates.
    name = f"supportflow_bench_{script}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{script}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The JSON document of one quick run of `main`."""
    return _quick_json("rebuild")


def _quick_json(script: str) -> dict[str, Any]:
    bench = _load_bench(script)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = bench.main(["--quick", "--json"])
    assert status == 0
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


@pytest.fixture(scope="module")
def on_test_postgres(pg_server: PgServer) -> Iterator[None]:
    """The bench scripts use the test session's PostgreSQL server instead of starting one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SUPPORTFLOW_TEST_POSTGRES_URL", pg_server.url())
        yield


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


# -- bench/timers.py ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timers_report(on_test_postgres: None) -> dict[str, Any]:
    """The JSON document of one quick run of `bench/timers.py` on all three stores."""
    return _quick_json("timers")


def test_timer_rows_cover_every_store_and_size_in_quick_json(timers_report: dict[str, Any]) -> None:
    """There is one row per (store, desk size), for memory, SQLite and PostgreSQL."""
    keys = [(row["store"], row["tickets"]) for row in timers_report["rows"]]
    sizes = sorted({row["tickets"] for row in timers_report["rows"]})
    assert len(sizes) == 2
    assert sorted(keys) == sorted((store, size) for store in ALL_STORES for size in sizes)


def test_timer_sweep_is_median_of_its_sweeps_in_quick_json(timers_report: dict[str, Any]) -> None:
    """Each desk was swept `sweeps` times, and the reported sweep time is their median."""
    for row in timers_report["rows"]:
        assert len(row["sweeps_s"]) == timers_report["sweeps"]
        assert all(seconds > 0 for seconds in row["sweeps_s"])
        assert row["sweep_s"] == sorted(row["sweeps_s"])[len(row["sweeps_s"]) // 2]


def test_timer_ratio_is_over_smallest_desk_of_same_store_in_quick_json(
    timers_report: dict[str, Any],
) -> None:
    """Each ratio is the row's sweep time over the smallest desk's sweep on the same store."""
    for store in ALL_STORES:
        rows = sorted(
            (r for r in timers_report["rows"] if r["store"] == store), key=lambda r: r["tickets"]
        )
        for row in rows:
            assert row["ratio"] == pytest.approx(row["sweep_s"] / rows[0]["sweep_s"], rel=1e-12)


# -- bench/commands.py --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def commands_report(on_test_postgres: None) -> dict[str, Any]:
    """The JSON document of one quick run of `bench/commands.py` on all three stores."""
    return _quick_json("commands")


def test_command_rows_cover_every_store_in_quick_json(commands_report: dict[str, Any]) -> None:
    """There is exactly one row per store: memory, SQLite and PostgreSQL."""
    assert sorted(row["store"] for row in commands_report["rows"]) == sorted(ALL_STORES)


def test_command_ratios_are_desk_over_bare_in_quick_json(commands_report: dict[str, Any]) -> None:
    """Throughputs are positive and each ratio is the desk's over the baseline's, same row."""
    for row in commands_report["rows"]:
        for key in ("desk_per_s", "bare_load_save_per_s", "bare_append_per_s"):
            assert row[key] > 0, (row["store"], key)
        desk = row["desk_per_s"]
        assert row["ratio_load_save"] == pytest.approx(desk / row["bare_load_save_per_s"])
        assert row["ratio_append"] == pytest.approx(desk / row["bare_append_per_s"])


# -- bench/audit.py -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit_report() -> dict[str, Any]:
    """The JSON document of one quick run of `bench/audit.py`."""
    return _quick_json("audit")


def test_audit_reads_every_built_event_in_quick_json(audit_report: dict[str, Any]) -> None:
    """The log has at least 5 events per ticket; the audit verified them all and found it
    clean, and the raw read saw them plus the desk's policy record."""
    assert audit_report["events"] >= 5 * audit_report["tickets"]
    assert audit_report["audit"]["events"] == audit_report["events"]
    assert audit_report["audit"]["clean"] is True
    assert audit_report["raw"]["events"] == audit_report["events"] + 1


def test_audit_ratio_is_audit_over_raw_in_quick_json(audit_report: dict[str, Any]) -> None:
    """The ratio is the audit's events/s over the raw notification-log read's, same run."""
    raw, audit = audit_report["raw"], audit_report["audit"]
    assert raw["events_per_s"] == pytest.approx(raw["events"] / raw["seconds"])
    assert audit["events_per_s"] == pytest.approx(audit["events"] / audit["seconds"])
    assert audit_report["ratio"] == pytest.approx(audit["events_per_s"] / raw["events_per_s"])


def test_audit_memory_is_measured_at_two_log_sizes_in_quick_json(
    audit_report: dict[str, Any],
) -> None:
    """Peak memory is reported for a small and the full log, each from its own audit."""
    memory = audit_report["memory"]
    assert [row["events"] for row in memory] == sorted({row["events"] for row in memory})
    assert len(memory) == 2
    assert memory[-1]["events"] == audit_report["events"]
    for row in memory:
        assert row["after_kib"] >= row["before_kib"] > 0
        assert row["traced_peak_mb"] > 0
