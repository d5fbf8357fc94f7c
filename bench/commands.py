"""Command throughput (commands/s) on memory, SQLite and PostgreSQL, next to raw eventsourcing
writes of the same number of events in the same run.

Every command writes exactly one event. For each store:

- **desk**: ``desk.reply(tid, agent=..., body=..., at=...)`` round-robin over 500 open
  tickets: validate, load the ticket (rebuild from its events), ask the policy, trigger one
  `Responded` (hash-chained), save it with the ticket's due-timer row in one transaction;
- **bare load+save**: what a plain eventsourcing application does for one command: a trivial
  `Aggregate` (one attribute) round-robin over 500 aggregates, ``app.repository.get(id)``,
  trigger one event, ``app.save(aggregate)``; eventsourcing's own recorder for the store
  (``eventsourcing.popo``, ``eventsourcing.sqlite`` on its own file, ``eventsourcing.postgres``
  on the same schema), no due-timer index;
- **bare append**: the same without the load: the aggregates stay in memory and each command
  only triggers and saves one event (the pure append cost of the store).

Ratios are desk / bare (goal: desk / bare load+save >= 0.8). Each figure is the best of 3
rounds of N commands (rounds interleave desk and bare). The aggregates' histories grow by the
same number of events on both sides.

    python bench/commands.py [--commands 1000] [--store memory|sqlite|postgresql] [--quick]
                             [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.application import Application

from supportflow import ManualClock, SupportDesk
from supportflow._store import store_env

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.rebuild import Bare
from bench.timers import STORES, emit, postgres_url, store_url

__all__ = ["main", "measure", "render"]

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
AGGREGATES = 500
ROUNDS = 3


def bare_env(url: str, tmp: str) -> dict[str, str]:
    """eventsourcing's own recorder for the store behind `url` (tables created)."""
    env = store_env(url)
    kind = env.pop("SUPPORTFLOW_STORE_KIND")
    env.pop("APPLICATION_RECORDER_TOPIC", None)
    env["CREATE_TABLE"] = "y"
    if kind == "memory":
        env["PERSISTENCE_MODULE"] = "eventsourcing.popo"
    elif kind == "sqlite":
        env["SQLITE_DBNAME"] = str(Path(tmp) / f"bare-{uuid.uuid4().hex[:8]}.db")
    return env


def _timed(func: Callable[[int], None], commands: int, offset: int) -> float:
    started = time.perf_counter()
    for i in range(commands):
        func(offset + i)
    return time.perf_counter() - started


def measure(url: str, tmp: str, commands: int, aggregates: int = AGGREGATES) -> dict[str, float]:
    """Best commands/s of the desk and both baselines on one store."""
    with contextlib.ExitStack() as stack:
        desk = stack.enter_context(SupportDesk(url, clock=ManualClock(START)))
        bare: Application[Any] = Application(env=bare_env(url, tmp))
        stack.callback(bare.close)
        tickets = [
            desk.submit(requester=f"c{i}@example.com", subject="bench", at=START)
            for i in range(aggregates)
        ]
        for tid in tickets:
            desk.assign(tid, agent="bob", at=START)
        counters = [Bare() for _ in range(aggregates)]
        bare.save(*counters)
        ids = [c.id for c in counters]

        def command(i: int) -> None:
            desk.reply(
                tickets[i % aggregates],
                agent="bob",
                body="Looking into it",
                at=START + timedelta(seconds=i),
            )

        def load_and_save(i: int) -> None:
            counter: Bare = bare.repository.get(ids[i % aggregates])
            counter.change(i)
            bare.save(counter)

        def append(i: int) -> None:
            counter = counters[i % aggregates]
            counter.change(i)
            bare.save(counter)

        funcs = {"desk": command, "bare_load_save": load_and_save, "bare_append": append}
        best = {name: float("inf") for name in funcs}
        offset = 1
        for _ in range(ROUNDS):
            for name, func in funcs.items():
                if name == "bare_append":  # the in-memory copies must be at the stored version
                    counters[:] = [bare.repository.get(i) for i in ids]
                best[name] = min(best[name], _timed(func, commands, offset))
            offset += commands
        written = sum(len(desk.history(tid)) for tid in tickets)
        expected = aggregates * 2 + ROUNDS * commands
        if written != expected:
            raise RuntimeError(f"the desk wrote {written} events, expected {expected}")
    rates = {f"{name}_per_s": commands / seconds for name, seconds in best.items()}
    rates["ratio_load_save"] = rates["desk_per_s"] / rates["bare_load_save_per_s"]
    rates["ratio_append"] = rates["desk_per_s"] / rates["bare_append_per_s"]
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--commands", type=int, default=None, help="commands per round")
    parser.add_argument("--store", action="append", choices=STORES, help="default: all three")
    parser.add_argument("--quick", action="store_true", help="a few commands (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    commands = args.commands or (20 if args.quick else 1000)
    stores = args.store or list(STORES)
    aggregates = 10 if args.quick else AGGREGATES
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="supportflow-bench-"))
        pg = stack.enter_context(postgres_url()) if "postgresql" in stores else None
        for store in stores:
            url = store_url(store, tmp, "commands", pg)
            rates = measure(url, tmp, commands, aggregates)
            rows.append({"store": store, "commands": commands, "aggregates": aggregates, **rates})
    document = {
        "quick": args.quick,
        "rounds": ROUNDS,
        "seconds": time.perf_counter() - started,
        "rows": rows,
    }
    return emit(document, render(document), as_json=args.json, quick=args.quick)


def render(document: dict[str, Any]) -> list[str]:
    """The report of a JSON document from `main` as Markdown lines."""
    rows = document["rows"]
    commands, aggregates = rows[0]["commands"], rows[0]["aggregates"]
    lines = [
        f"{commands:,} commands per round, one event each, round-robin over {aggregates} "
        f"tickets / aggregates; best of {document['rounds']} rounds; "
        "goal: desk / bare load+save >= 0.8",
        "",
        "| store | desk cmd/s | bare load+save ev/s | desk / load+save "
        "| bare append ev/s | desk / append |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines.extend(
        f"| {r['store']} | {r['desk_per_s']:,.0f} | {r['bare_load_save_per_s']:,.0f} "
        f"| {r['ratio_load_save']:.2f} | {r['bare_append_per_s']:,.0f} "
        f"| {r['ratio_append']:.2f} |"
        for r in rows
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
