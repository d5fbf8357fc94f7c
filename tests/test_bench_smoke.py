"""Smoke tests of `bench/`: `bench/all.py --quick --json` (what `make bench` runs, in its quick
mode) runs every benchmark once, and the tests check the shape of the combined document and
of each benchmark's part. No timings are asserted: throughputs depend on the machine and are
only compared inside one run."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from supportflow import ManualClock, SupportDesk
from supportflow._chain import event_hash

from ._pg import PgServer

ROOT = Path(__file__).resolve().parents[1]
SIZES = (5, 50, 500)
ALL_STORES = ("memory", "sqlite", "postgresql")
BENCHMARKS = ("rebuild", "commands", "timers", "audit")


def _load_bench(script: str) -> ModuleType:
    # Registered in sys.modules so eventsourcing can resolve the topics of its classes.
    name = f"supportflow_bench_{script}"
    if name in sys.modules:
        return sys.modules[name]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{script}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def combined(pg_server: PgServer) -> dict[str, Any]:
    """The JSON document of one `python bench/all.py --quick --json`, run from the repository
    root on the test session's PostgreSQL server."""
    env = {**os.environ, "SUPPORTFLOW_TEST_POSTGRES_URL": pg_server.url()}
    result = subprocess.run(
        [sys.executable, "bench/all.py", "--quick", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.fixture(scope="module")
def rebuild_report(combined: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = combined["benchmarks"]["rebuild"]
    return report


# -- bench/all.py -------------------------------------------------------------------------------


def test_every_benchmark_ran_without_error_in_quick_json(combined: dict[str, Any]) -> None:
    """The combined document holds one successful report per benchmark, marked quick."""
    assert list(combined["benchmarks"]) == list(BENCHMARKS)
    assert all("error" not in doc for doc in combined["benchmarks"].values())
    assert combined["quick"] is True


def test_summary_has_the_goal_rows_of_every_store_in_quick_json(combined: dict[str, Any]) -> None:
    """The summary has, per store, 3 rebuild rows (vs bare, vs the fold, snapshot growth),
    one command row and one timer row, plus the audit's throughput and memory rows (one
    process, and split over processes)."""
    counts: dict[tuple[str, str], int] = {}
    for row in combined["summary"]:
        key = (row["benchmark"], row["store"])
        counts[key] = counts.get(key, 0) + 1
    expected = {("audit", "sqlite"): 4}
    for store in ALL_STORES:
        expected |= {("rebuild", store): 3, ("commands", store): 1, ("timers", store): 1}
    assert counts == expected


def _goal_met(goal: str, value: float) -> bool | None:
    operator, _, bound = goal.partition(" ")
    threshold = float(bound.split(" ")[0]) if bound else math.nan
    checks = {">=": value >= threshold, "<=": value <= threshold, "<": value < threshold}
    return checks.get(operator)


def test_summary_met_follows_value_and_goal_in_quick_json(combined: dict[str, Any]) -> None:
    """Each summary row's `met` is its value checked against its stated goal (rows without a
    goal say nothing)."""
    for row in combined["summary"]:
        assert row["met"] == _goal_met(row["goal"], row["value"]), row


def test_summary_values_come_from_the_benchmarks_in_quick_json(combined: dict[str, Any]) -> None:
    """The rebuild row of each store is the worst rebuild / bare ratio of that store's sizes,
    and each command row is that store's desk / bare load+save ratio."""
    rebuild_rows = combined["benchmarks"]["rebuild"]["rows"]
    command_rows = {r["store"]: r for r in combined["benchmarks"]["commands"]["rows"]}
    for row in combined["summary"]:
        if row["benchmark"] == "rebuild" and row["figure"].startswith("rebuild / bare"):
            worst = min(r["rebuild_over_bare"] for r in rebuild_rows if r["store"] == row["store"])
            assert row["value"] == worst
        if row["benchmark"] == "commands":
            assert row["value"] == command_rows[row["store"]]["ratio_load_save"]


def test_report_prints_machine_line_summary_and_sections_for_quick_document(
    combined: dict[str, Any],
) -> None:
    """The printed report starts with the machine line, has one summary line per summary
    row and one section per benchmark, and says the figures are not meaningful."""
    lines = _load_bench("all").render(combined)
    assert "eventsourcing" in lines[0]
    assert lines[2] == "| benchmark | store | figure | value | goal | met |"
    summary_lines = [line for line in lines[4:] if line.startswith("| ")]
    assert len(summary_lines) >= len(combined["summary"])
    assert [line for line in lines if line.startswith("## ")] == [
        "## Ticket rebuild (bench/rebuild.py)",
        "## Command throughput (bench/commands.py)",
        "## Due-timer sweeps (bench/timers.py)",
        "## Audit throughput and memory (bench/audit.py)",
    ]
    assert "not meaningful" in lines[-1]


def test_unknown_benchmark_is_refused_by_only() -> None:
    """`--only` with a name that is not a benchmark stops with a usage error."""
    with pytest.raises(SystemExit) as stopped:
        _load_bench("all").main(["--only", "rebuild,nonsense"])
    assert stopped.value.code == 2


# -- bench/timers.py, bench/commands.py, bench/audit.py (their parts of the document) ----------


def test_timer_rows_cover_every_store_and_size_in_quick_json(combined: dict[str, Any]) -> None:
    """There is one row per (store, desk size), for memory, SQLite and PostgreSQL."""
    rows = combined["benchmarks"]["timers"]["rows"]
    sizes = sorted({row["tickets"] for row in rows})
    assert len(sizes) == 2
    keys = [(row["store"], row["tickets"]) for row in rows]
    assert sorted(keys) == sorted((store, size) for store in ALL_STORES for size in sizes)


def test_timer_sweep_is_median_of_its_sweeps_in_quick_json(combined: dict[str, Any]) -> None:
    """Each desk was swept `sweeps` times, and the reported sweep time is their median."""
    timers = combined["benchmarks"]["timers"]
    for row in timers["rows"]:
        assert len(row["sweeps_s"]) == timers["sweeps"]
        assert all(seconds > 0 for seconds in row["sweeps_s"])
        assert row["sweep_s"] == sorted(row["sweeps_s"])[len(row["sweeps_s"]) // 2]


def test_timer_ratio_is_over_smallest_desk_of_same_store_in_quick_json(
    combined: dict[str, Any],
) -> None:
    """Each ratio is the row's sweep time over the smallest desk's sweep on the same store."""
    for store in ALL_STORES:
        rows = sorted(
            (r for r in combined["benchmarks"]["timers"]["rows"] if r["store"] == store),
            key=lambda r: r["tickets"],
        )
        for row in rows:
            assert row["ratio"] == pytest.approx(row["sweep_s"] / rows[0]["sweep_s"], rel=1e-12)


def test_command_ratios_are_desk_over_bare_on_every_store_in_quick_json(
    combined: dict[str, Any],
) -> None:
    """One row per store; throughputs are positive and each ratio is the desk's over the
    baseline's, same row."""
    rows = combined["benchmarks"]["commands"]["rows"]
    assert sorted(row["store"] for row in rows) == sorted(ALL_STORES)
    for row in rows:
        for key in ("desk_per_s", "bare_load_save_per_s", "bare_append_per_s"):
            assert row[key] > 0, (row["store"], key)
        desk = row["desk_per_s"]
        assert row["ratio_load_save"] == pytest.approx(desk / row["bare_load_save_per_s"])
        assert row["ratio_append"] == pytest.approx(desk / row["bare_append_per_s"])


def test_audit_reads_every_built_event_in_quick_json(combined: dict[str, Any]) -> None:
    """The audit verified every event of the log and found it clean; the ratio is the
    audit's events/s over the raw notification-log read's."""
    audit = combined["benchmarks"]["audit"]
    assert audit["audit"]["events"] == audit["events"]
    assert audit["audit"]["clean"] is True
    rates = audit["audit"]["events_per_s"] / audit["raw"]["events_per_s"]
    assert audit["ratio"] == pytest.approx(rates)


def test_split_audit_reports_the_same_in_quick_json(combined: dict[str, Any]) -> None:
    """The audit split over processes verified every event and gave the same report; its
    ratio is its events/s over the raw read's; its memory rows count its processes."""
    audit = combined["benchmarks"]["audit"]
    split = audit["split"]
    assert split["events"] == audit["events"]
    assert split["same_report"] is True
    assert split["workers"] >= 1
    assert audit["split_ratio"] == pytest.approx(
        split["events_per_s"] / audit["raw"]["events_per_s"]
    )
    for row in audit["split_memory"]:
        assert row["workers"] == split["workers"]
        assert row["added_mb"] >= row["shares_mb"] >= 0


# -- bench/rebuild.py ---------------------------------------------------------------------------


def test_rebuild_rows_cover_every_store_and_size_in_quick_json(
    rebuild_report: dict[str, Any],
) -> None:
    """There is exactly one row per (store, events per ticket), on all three stores."""
    keys = [(row["store"], row["events"]) for row in rebuild_report["rows"]]
    assert sorted(keys) == sorted((store, size) for store in ALL_STORES for size in SIZES)


def test_rebuild_throughput_is_events_over_seconds_in_quick_json(
    rebuild_report: dict[str, Any],
) -> None:
    """Every column (fold, bare, rebuild, get and both snapshot rebuilds) has a positive time
    per call, and its throughput is the ticket's events over that time."""
    for row in rebuild_report["rows"]:
        seconds = row["seconds_per_call"]
        assert set(seconds) == {
            "fold",
            "bare",
            "rebuild",
            "get",
            "bare_snapshot",
            "rebuild_snapshot",
        }
        for column, value in seconds.items():
            assert value > 0, (row["store"], row["events"], column)
            assert row["events_per_s"][column] == pytest.approx(row["events"] / value)


def test_rebuild_ratios_are_throughput_over_throughput_in_quick_json(
    rebuild_report: dict[str, Any],
) -> None:
    """Each ratio is one column's throughput over another's in the same row."""
    for row in rebuild_report["rows"]:
        rate = row["events_per_s"]
        assert row["rebuild_over_bare"] == pytest.approx(rate["rebuild"] / rate["bare"])
        assert row["get_over_bare"] == pytest.approx(rate["get"] / rate["bare"])
        assert row["rebuild_over_fold"] == pytest.approx(rate["rebuild"] / rate["fold"])
        assert row["snapshot_speedup"]["rebuild"] == pytest.approx(
            rate["rebuild_snapshot"] / rate["rebuild"]
        )


def test_rebuild_snapshot_leaves_a_short_tail_in_quick_json(
    rebuild_report: dict[str, Any],
) -> None:
    """The snapshot is taken `snapshot_tail` events before the head (the first event for a
    history no longer than that)."""
    tail = rebuild_report["snapshot_tail"]
    for row in rebuild_report["rows"]:
        assert row["snapshot_tail"] == min(tail, row["events"] - 1)


def test_rebuild_environment_names_the_versions_in_quick_json(
    rebuild_report: dict[str, Any],
) -> None:
    """The report says which Python and eventsourcing produced it."""
    env = rebuild_report["environment"]
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["eventsourcing"].startswith("9.")


def _ticket_with_history(desk: SupportDesk, clock: ManualClock) -> Any:
    tid = desk.submit(requester="ann@example.com", subject="Cannot restore", tags=["backup"])
    desk.reply(tid, agent="bob", body="Which version?")
    clock.advance(minutes=5)
    desk.customer_reply(tid, body="4.2")
    return tid


def test_ticket_snapshot_round_trips_through_the_store_mapper() -> None:
    """The benchmark's prototype `TicketSnapshot`, stored and read back through the desk's
    mapper, rebuilds the same ticket state, with the same chain head, as the full history."""
    bench = _load_bench("rebuild")
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    with SupportDesk(clock=clock, env=bench.NO_CACHE) as desk:
        tid = _ticket_with_history(desk, clock)
        ticket = desk._load(tid)
        mapper = desk.application.mapper
        stored = mapper.to_stored_event(bench.TicketSnapshot.take(ticket))
        read_back: Any = mapper.to_domain_event(stored)
        restored = read_back.mutate(None)
    expected = {k: v for k, v in vars(ticket).items() if k not in {"_chain_last"}}
    actual = {k: v for k, v in vars(restored).items() if k not in {"_chain_last"}}
    assert actual == expected
    assert type(restored.status) is type(ticket.status)
    assert event_hash(restored._chain_last) == event_hash(ticket._chain_last)


def test_ticket_rebuilds_from_stored_snapshot_plus_tail_on_snapshotting_desk() -> None:
    """On a desk with snapshotting enabled, a ticket whose snapshot was stored one command
    ago rebuilds to the same state as its full history, and keeps accepting commands."""
    bench = _load_bench("rebuild")
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    with SupportDesk(clock=clock, env=bench.SNAPSHOTS) as desk:
        tid = _ticket_with_history(desk, clock)
        snapshots = desk.application.snapshots
        assert snapshots is not None
        snapshots.put([bench.TicketSnapshot.take(desk._load(tid))])
        desk.reply(tid, agent="bob", body="Fixed in 4.3")
        full = bench._project(None, desk.application.events.get(tid))
        assert bench._same_ticket(full, desk._load(tid))
        desk.solve(tid, agent="bob", solution="Upgrade to 4.3")
        assert desk.get(tid).status.name == "SOLVED"
