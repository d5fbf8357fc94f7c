"""Ticket rebuild throughput (events/s) against a bare eventsourcing aggregate, in one run.

For tickets of 5, 50 and 500 events, on ``memory://`` and on a SQLite file, this measures

- **bare**: a plain ``eventsourcing.application.Application`` on the same persistence module,
  rebuilding a trivial aggregate (each event sets one attribute) with ``app.repository.get(id)``,
  the library's default path;
- **get**: ``SupportDesk.get(tid)``, the public query (rebuild, timer catch-up check, view);
- **rebuild**: ``SupportDesk._load(tid)``, the raw rebuild of the ``Ticket`` aggregate;

and prints each next to the bare figure as a ratio (ours / bare; the goal is >= 1.0).

Run it from the repository root: ``python bench/rebuild.py`` (``make bench``). ``--quick`` makes
the rounds tiny (a smoke run, figures meaningless); ``--json`` prints machine-readable output.
The figures are never asserted anywhere: see docs/performance.md for how to read them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from uuid import UUID

from attrs import frozen
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from supportflow import ManualClock, SupportDesk
from supportflow._store import store_env

__all__ = ["Bare", "Row", "main", "measure"]

SIZES: tuple[int, ...] = (5, 50, 500)
"""Events per ticket."""

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class Bare(Aggregate):
    """The baseline: a trivial aggregate whose events only set an attribute."""

    value: int

    def __init__(self) -> None:
        self.value = 0

    class Changed(Aggregate.Event):
        """Sets `value`."""

        value: int

        def apply(self, aggregate: Any) -> None:
            aggregate.value = self.value

    def change(self, value: int) -> None:
        self.trigger_event(self.Changed, value=value)


@frozen(kw_only=True)
class Settings:
    """How long to measure: `rounds` timed rounds of at least `round_seconds` each."""

    rounds: int
    round_seconds: float
    warmup_calls: int


FULL = Settings(rounds=9, round_seconds=0.04, warmup_calls=20)
QUICK = Settings(rounds=2, round_seconds=0.0, warmup_calls=1)


@frozen(kw_only=True)
class Row:
    """Throughputs for one store and one ticket size, in events per second."""

    store: str
    events: int
    bare: float
    get: float
    rebuild: float

    @property
    def get_ratio(self) -> float:
        return self.get / self.bare

    @property
    def rebuild_ratio(self) -> float:
        return self.rebuild / self.bare

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "events": self.events,
            "bare_events_per_s": self.bare,
            "get_events_per_s": self.get,
            "get_ratio": self.get_ratio,
            "rebuild_events_per_s": self.rebuild,
            "rebuild_ratio": self.rebuild_ratio,
        }


# -- building the histories -------------------------------------------------------------------


def build_ticket(desk: SupportDesk, clock: ManualClock, events: int) -> UUID:
    """A ticket with exactly `events` events, made through the public API: submit, then
    reply / request_info / customer_reply in turn, one minute apart (no timer comes due)."""
    if events < 1:
        raise ValueError(f"a ticket has at least one event, asked for {events}")
    tid = desk.submit(requester="ann@example.com", subject="Cannot restore", at=clock.now())
    steps: tuple[Callable[[], object], ...] = (
        lambda: desk.reply(tid, agent="bob", body="Looking into it"),
        lambda: desk.request_info(tid, agent="bob", body="Which version?"),
        lambda: desk.customer_reply(tid, body="4.2"),
    )
    for number in range(events - 1):
        clock.advance(minutes=1)
        steps[number % len(steps)]()
    recorded = len(desk.history(tid))
    if recorded != events:
        raise RuntimeError(f"built a ticket with {recorded} events, wanted {events}")
    return tid


def build_bare(app: Application[UUID], events: int) -> UUID:
    """A `Bare` aggregate with exactly `events` events (the creation plus `events - 1`)."""
    aggregate = Bare()
    for number in range(events - 1):
        aggregate.change(number)
    app.save(aggregate)
    rebuilt: Aggregate = app.repository.get(aggregate.id)
    if rebuilt.version != events:
        raise RuntimeError(f"built a bare aggregate with {rebuilt.version} events, wanted {events}")
    return aggregate.id


# -- timing -----------------------------------------------------------------------------------


def _calls_per_round(func: Callable[[], object], seconds: float) -> int:
    """How many calls of `func` take at least `seconds` (at least one)."""
    calls = 1
    while True:
        started = time.perf_counter()
        for _ in range(calls):
            func()
        if time.perf_counter() - started >= seconds:
            return calls
        calls *= 2


@contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def seconds_per_call(
    funcs: dict[str, Callable[[], object]], settings: Settings
) -> dict[str, float]:
    """The best (lowest) time of one call of each function over the rounds: other load on the
    machine only ever adds time, so the minimum is the least noisy estimate. Rounds interleave
    the functions, so a slow patch of the machine hits all of them alike."""
    for func in funcs.values():
        for _ in range(settings.warmup_calls):
            func()
    calls = {name: _calls_per_round(func, settings.round_seconds) for name, func in funcs.items()}
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    with _gc_paused():
        for _ in range(settings.rounds):
            for name, func in funcs.items():
                started = time.perf_counter()
                for _ in range(calls[name]):
                    func()
                samples[name].append((time.perf_counter() - started) / calls[name])
    return {name: min(values) for name, values in samples.items()}


def measure(store_name: str, url: str, sizes: Sequence[int], settings: Settings) -> list[Row]:
    """One row per size for the store at `url` (the desk and the bare application share it)."""
    clock = ManualClock(START)
    rows: list[Row] = []
    with SupportDesk(url, clock=clock) as desk:
        bare_app: Application[UUID] = Application(env=store_env(url))
        try:
            for size in sizes:
                tid = build_ticket(desk, clock, size)
                bare_id = build_bare(bare_app, size)
                per_call = seconds_per_call(
                    {
                        "bare": partial(bare_app.repository.get, bare_id),
                        "get": partial(desk.get, tid),
                        "rebuild": partial(desk._load, tid),
                    },
                    settings,
                )
                rows.append(
                    Row(
                        store=store_name,
                        events=size,
                        bare=size / per_call["bare"],
                        get=size / per_call["get"],
                        rebuild=size / per_call["rebuild"],
                    )
                )
        finally:
            bare_app.close()
    return rows


# -- output -----------------------------------------------------------------------------------


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:  # e.g. run from a source tree on PYTHONPATH
        return "unknown"


def environment() -> dict[str, Any]:
    """Python and library versions and the machine (no host name)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "optimize": sys.flags.optimize,
        "eventsourcing": _version("eventsourcing"),
        "supportflow": _version("supportflow"),
        "system": platform.system(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }


def header(env: dict[str, Any]) -> str:
    optimize = f" -{'O' * env['optimize']}" if env["optimize"] else ""
    return (
        f"{env['implementation']} {env['python']}{optimize}, "
        f"eventsourcing {env['eventsourcing']}, "
        f"supportflow {env['supportflow']}; {env['system']} {env['processor']}, "
        f"{env['cpus']} CPUs"
    )


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (it pastes into docs/performance.md as is)."""
    lines = [
        "| store | events/ticket | bare ev/s | get ev/s | get / bare "
        "| rebuild ev/s | rebuild / bare |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines.extend(
        f"| {r.store} | {r.events} | {r.bare:,.0f} | {r.get:,.0f} | {r.get_ratio:.2f} "
        f"| {r.rebuild:,.0f} | {r.rebuild_ratio:.2f} |"
        for r in rows
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny rounds (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="supportflow-bench-") as tmp:
        rows = [
            *measure("memory", "memory://", SIZES, settings),
            *measure("sqlite", f"sqlite:///{os.path.join(tmp, 'bench.db')}", SIZES, settings),
        ]
    elapsed = time.perf_counter() - started
    env = environment()
    if args.json:
        document = {
            "environment": env,
            "quick": args.quick,
            "seconds": elapsed,
            "rows": [row.to_dict() for row in rows],
        }
        print(json.dumps(document, indent=2))
        return 0
    print(header(env))
    print()
    print(table(rows))
    print()
    print(
        f"ev/s = events rebuilt per second (best of {settings.rounds} rounds); ratio = "
        f"supportflow / bare eventsourcing, goal >= 1.0; {elapsed:.1f} s"
        + (" (--quick: figures are not meaningful)" if args.quick else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
