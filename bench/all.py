"""Every benchmark of `bench/` in one run, printed as one report: `make bench`.

Runs ``bench/rebuild.py``, ``bench/commands.py``, ``bench/timers.py`` and ``bench/audit.py``
one after the other, each in its own Python process with ``--json`` (so one benchmark's
memory and caches never colour the next; the audit's memory figures need a fresh process),
on one throwaway PostgreSQL cluster started here as the tests start theirs (tests/_pg.py) or
on ``SUPPORTFLOW_TEST_POSTGRES_URL``. Then it prints the machine line, one summary table with
a row per goal and store (figure, goal, met or not), and each benchmark's own tables.

    python bench/all.py [--quick] [--json] [--only rebuild,commands,timers,audit]

``--quick`` passes ``--quick`` on (tiny sizes: a smoke run, figures meaningless). The full
run takes 4-5 minutes on 2 cores; the sizes are each script's defaults (see
docs/performance.md). No figure is asserted anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import audit, commands, rebuild, timers

__all__ = ["BENCHMARKS", "main", "render", "run", "summary"]

BENCHMARKS = ("rebuild", "commands", "timers", "audit")
ROOT = Path(__file__).resolve().parents[1]
NEEDS_POSTGRES = frozenset({"rebuild", "commands", "timers"})
PG_ENV = "SUPPORTFLOW_TEST_POSTGRES_URL"


@contextlib.contextmanager
def postgres_env() -> Iterator[dict[str, str]]:
    """The environment for the children: one PostgreSQL server for all of them."""
    env = dict(os.environ)
    if env.get(PG_ENV):
        yield env
        return
    from tests._pg import _start_cluster

    server = _start_cluster()
    try:
        env[PG_ENV] = server.url()
        yield env
    finally:
        server.stop()


def run(name: str, quick: bool, env: dict[str, str]) -> dict[str, Any]:
    """One benchmark in its own process; its JSON document (``error`` if it failed)."""
    command = [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--json"]
    if quick:
        command.append("--quick")
    print(f"running bench/{name}.py ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    print(f"  bench/{name}.py took {elapsed:.0f} s", file=sys.stderr, flush=True)
    if result.returncode != 0:
        return {"error": f"exit status {result.returncode}", "stderr": result.stderr[-4000:]}
    document: dict[str, Any] = json.loads(result.stdout)
    document["wall_seconds"] = elapsed
    return document


def _row(
    benchmark: str, store: str, figure: str, value: float, goal: str, met: bool | None
) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "store": store,
        "figure": figure,
        "value": value,
        "goal": goal,
        "met": met,
    }


FLAT = 1.5
"""'Flat' for the snapshot rebuild: the biggest history costs at most 1.5 x the smallest."""


def _rebuild_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    stores = list(dict.fromkeys(r["store"] for r in doc["rows"]))
    for store in stores:
        rows = sorted((r for r in doc["rows"] if r["store"] == store), key=lambda r: r["events"])
        sizes = f"{rows[0]['events']}-{rows[-1]['events']} events"
        worst = min(r["rebuild_over_bare"] for r in rows)
        out.append(
            _row("rebuild", store, f"rebuild / bare, worst of {sizes}", worst, ">= 1.0", worst >= 1)
        )
        floor = min(r["rebuild_over_fold"] for r in rows)
        out.append(
            _row("rebuild", store, f"rebuild / dict fold, worst of {sizes}", floor, "-", None)
        )
        seconds = [r["seconds_per_call"]["rebuild_snapshot"] for r in rows]
        growth = seconds[-1] / seconds[0]
        out.append(
            _row(
                "rebuild",
                store,
                f"with snapshot: time at {rows[-1]['events']} / at {rows[0]['events']} events",
                growth,
                f"<= {FLAT} (flat)",
                growth <= FLAT,
            )
        )
    return out


def _commands_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _row(
            "commands",
            r["store"],
            "desk / bare load+save",
            r["ratio_load_save"],
            ">= 0.8",
            r["ratio_load_save"] >= 0.8,
        )
        for r in doc["rows"]
    ]


def _timers_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for store in dict.fromkeys(r["store"] for r in doc["rows"]):
        biggest = max((r for r in doc["rows"] if r["store"] == store), key=lambda r: r["tickets"])
        figure = f"sweep at {biggest['tickets']:,} tickets / smallest desk"
        out.append(
            _row("timers", store, figure, biggest["ratio"], "<= 1.5", biggest["ratio"] <= 1.5)
        )
    return out


def _audit_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    ratio, split_ratio = doc["ratio"], doc["split_ratio"]
    workers = doc["split"]["workers"]
    rows = [
        _row("audit", "sqlite", "audit / raw log read, one process", ratio, "-", None),
        _row(
            "audit",
            "sqlite",
            f"audit / raw log read, split over {workers} processes (auto)",
            split_ratio,
            ">= 0.5",
            split_ratio >= 0.5 and doc["split"]["same_report"],
        ),
    ]
    for name, key in (("one process", "memory"), ("split", "split_memory")):
        added = doc[key][-1]["added_mb"]
        events = doc[key][-1]["events"]
        rows.append(
            _row(
                "audit",
                "sqlite",
                f"MB of RSS added auditing {events:,} events, {name}",
                added,
                "< 50",
                added < 50,
            )
        )
    return rows


SUMMARIES: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "rebuild": _rebuild_rows,
    "commands": _commands_rows,
    "timers": _timers_rows,
    "audit": _audit_rows,
}


def summary(documents: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per goal and store, from the benchmarks that ran."""
    rows = []
    for name, doc in documents.items():
        if "error" in doc:
            rows.append(_row(name, "-", f"failed: {doc['error']}", float("nan"), "-", False))
        else:
            rows.extend(SUMMARIES[name](doc))
    return rows


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "rebuild": rebuild.render,
    "commands": commands.render,
    "timers": timers.render,
    "audit": audit.render,
}

TITLES = {
    "rebuild": "Ticket rebuild (bench/rebuild.py)",
    "commands": "Command throughput (bench/commands.py)",
    "timers": "Due-timer sweeps (bench/timers.py)",
    "audit": "Audit throughput and memory (bench/audit.py)",
}


def _value(row: dict[str, Any]) -> str:
    value: float = row["value"]
    return "-" if value != value else f"{value:.2f}"  # NaN: the benchmark failed


def render(document: dict[str, Any]) -> list[str]:
    """The whole report as Markdown lines: machine line, summary table, each benchmark."""
    lines = [
        rebuild.header(document["environment"]),
        "",
        "| benchmark | store | figure | value | goal | met |",
        "| --- | --- | --- | ---: | --- | --- |",
    ]
    met = {True: "yes", False: "**no**", None: ""}
    lines.extend(
        f"| {r['benchmark']} | {r['store']} | {r['figure']} | {_value(r)} | {r['goal']} "
        f"| {met[r['met']]} |"
        for r in document["summary"]
    )
    for name, doc in document["benchmarks"].items():
        lines += ["", f"## {TITLES[name]}", ""]
        if "error" in doc:
            lines += [f"failed ({doc['error']}):", "", "```text", doc["stderr"].rstrip(), "```"]
        else:
            lines += RENDERERS[name](doc)
    quick = " (--quick: figures are not meaningful)" if document["quick"] else ""
    lines += ["", f"make bench took {document['seconds']:.0f} s{quick}"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the report")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="benchmarks to run")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown or not names:
        parser.error(f"--only takes some of {', '.join(BENCHMARKS)}; got {args.only!r}")
    started = time.perf_counter()
    documents: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        env = (
            stack.enter_context(postgres_env())
            if NEEDS_POSTGRES.intersection(names)
            else dict(os.environ)
        )
        for name in names:
            documents[name] = run(name, args.quick, env)
    document = {
        "environment": rebuild.environment(),
        "quick": args.quick,
        "seconds": time.perf_counter() - started,
        "summary": summary(documents),
        "benchmarks": documents,
    }
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print("\n".join(render(document)))
    return 1 if any("error" in doc for doc in documents.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
