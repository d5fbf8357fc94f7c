"""Ticket rebuild throughput next to a bare eventsourcing aggregate and a plain-dict fold,
with and without snapshots, in one run.

For tickets of 5, 50 and 500 events, on ``memory://``, on a SQLite file and on PostgreSQL (a
throwaway cluster as the tests start one, or ``SUPPORTFLOW_TEST_POSTGRES_URL``), this times

- **fold**: the floor: read the ticket's stored rows from the desk's recorder, ``json.loads``
  each row's state and update one plain dict per event (no domain objects at all);
- **bare**: a plain ``eventsourcing.application.Application`` on the same store, rebuilding a
  trivial aggregate (each event sets one attribute) with ``app.repository.get(id)``, the
  library's default path;
- **rebuild**: ``SupportDesk._load(tid)``, the raw rebuild of the ``Ticket`` aggregate, on a
  desk whose aggregate cache is off (the default desk keeps recently used tickets in memory,
  which would time a cache hit, not a rebuild);
- **get**: ``SupportDesk.get(tid)`` on the same desk: the public query (rebuild, timer
  catch-up check, view);

and, on a second store of the same kind with ``IS_SNAPSHOTTING_ENABLED``, the same bare and
ticket rebuilds from a snapshot taken 4 events before the head (so every rebuild reads one
snapshot and 4 events, whatever the history). The ticket's snapshot is the core's
`Ticket.Snapshot`, stored by eventsourcing's ``take_snapshot`` (what a desk with
``snapshot_every`` stores after a save) and read back through the desk's snapshot store
(`supportflow._timers.TicketSnapshots`); each one is checked to rebuild the same ticket, with
the same chain head, as the full history.

Run it from the repository root: ``python bench/rebuild.py`` (``make bench`` runs it through
``bench/all.py``). ``--quick`` makes the rounds tiny (a smoke run, figures meaningless);
``--json`` prints machine-readable output; ``--store`` picks stores. No figure is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
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
from pathlib import Path
from typing import Any
from uuid import UUID

from attrs import frozen
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from supportflow import ManualClock, SupportDesk
from supportflow._chain import event_hash
from supportflow._store import store_env
from supportflow._timers import project as _project
from supportflow.ticket import Ticket

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.timers import STORES, emit, postgres_url, store_url

__all__ = [
    "Bare",
    "Row",
    "TicketSnapshot",
    "environment",
    "header",
    "main",
    "measure",
    "render",
    "snapshot_refusal",
]

SIZES: tuple[int, ...] = (5, 50, 500)
"""Events per ticket."""

SNAPSHOT_TAIL = 4
"""Events stored after the snapshot: a rebuild from a snapshot reads it and these."""

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

NO_CACHE = {"AGGREGATE_CACHE_MAXSIZE": ""}
"""eventsourcing reads an empty cache size as "no cache": every `_load` rebuilds."""

SNAPSHOTS = {**NO_CACHE, "IS_SNAPSHOTTING_ENABLED": "y"}


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


# -- the ticket's snapshot ------------------------------------------------------------------

TicketSnapshot = Ticket.Snapshot
"""The ticket's snapshot class (this name once held the benchmark's own prototype)."""


def snapshot_refusal(desk: SupportDesk, ticket_id: UUID, at: int) -> str:
    """What eventsourcing's own snapshotting says when asked to snapshot a `Ticket` at
    version `at`: ``"stored"`` (it uses `Ticket.Snapshot`), or the library's error."""
    try:
        desk.application.take_snapshot(ticket_id, version=at, projector_func=_project)
    except Exception as error:  # the report quotes whatever the library raises
        return f"{type(error).__name__}: {error}"
    return "stored"


def _same_ticket(full: Ticket, restored: Ticket) -> bool:
    """The snapshot rebuilt the ticket: same state and the chain continues the same."""

    def comparable(ticket: Ticket) -> dict[str, Any]:
        state = dict(vars(ticket))
        state.pop("_pending_events")
        state.pop("_chain_last")
        return state

    return comparable(full) == comparable(restored) and event_hash(full._chain_last) == event_hash(
        restored._chain_last
    )


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


def snapshot_version(events: int) -> int:
    """Where the snapshot of an `events`-long history is taken."""
    return max(1, events - SNAPSHOT_TAIL)


def fold(app: Application[UUID], ticket_id: UUID) -> dict[str, Any]:
    """The floor: the stored rows of one ticket folded into a plain dict."""
    state: dict[str, Any] = {}
    for row in app.recorder.select_events(ticket_id):
        state.update(json.loads(row.state))
        state["version"] = row.originator_version
    return state


def bare_app(url: str, env: dict[str, str] | None = None) -> Application[UUID]:
    """A plain application on the store at `url` (its own tables on PostgreSQL)."""
    settings = store_env(url)
    if settings.pop("SUPPORTFLOW_STORE_KIND") == "postgresql":
        settings.pop("APPLICATION_RECORDER_TOPIC")
        settings["CREATE_TABLE"] = "y"
    return Application(env={**settings, **(env or {})})


# -- timing -----------------------------------------------------------------------------------


@frozen(kw_only=True)
class Settings:
    """How long to measure: `rounds` timed rounds of at least `round_seconds` each."""

    rounds: int
    round_seconds: float
    warmup_calls: int


FULL = Settings(rounds=9, round_seconds=0.04, warmup_calls=20)
QUICK = Settings(rounds=2, round_seconds=0.0, warmup_calls=1)


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


COLUMNS = ("fold", "bare", "rebuild", "get", "bare_snapshot", "rebuild_snapshot")


@frozen(kw_only=True)
class Row:
    """Best seconds per call for one store and one ticket size."""

    store: str
    events: int
    seconds: dict[str, float]

    def per_s(self, column: str) -> float:
        """Events of the history rebuilt per second."""
        return self.events / self.seconds[column]

    def ratio(self, column: str, over: str = "bare") -> float:
        """`column`'s throughput over `over`'s (same row)."""
        return self.seconds[over] / self.seconds[column]

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "events": self.events,
            "snapshot_tail": min(SNAPSHOT_TAIL, self.events - 1),
            "seconds_per_call": dict(self.seconds),
            "events_per_s": {column: self.per_s(column) for column in COLUMNS},
            "rebuild_over_bare": self.ratio("rebuild"),
            "get_over_bare": self.ratio("get"),
            "rebuild_over_fold": self.ratio("rebuild", over="fold"),
            "bare_over_fold": self.ratio("bare", over="fold"),
            "snapshot_speedup": {
                "bare": self.ratio("bare_snapshot", over="bare"),
                "rebuild": self.ratio("rebuild_snapshot", over="rebuild"),
            },
        }


def measure(
    store_name: str, urls: tuple[str, str], sizes: Sequence[int], settings: Settings
) -> tuple[list[Row], str]:
    """One row per size: `urls[0]` holds the histories without snapshots, `urls[1]` (a second
    store of the same kind) the same histories with snapshots. Also returns what
    eventsourcing's own snapshotting said about a `Ticket`."""
    plain_url, snap_url = urls
    clock = ManualClock(START)
    rows: list[Row] = []
    refusal = ""
    with contextlib.ExitStack() as stack:
        desk = stack.enter_context(SupportDesk(plain_url, clock=clock, env=NO_CACHE))
        snap_desk = stack.enter_context(SupportDesk(snap_url, clock=clock, env=SNAPSHOTS))
        bare = bare_app(plain_url)
        stack.callback(bare.close)
        snap_bare = bare_app(snap_url, SNAPSHOTS)
        stack.callback(snap_bare.close)
        snap_store = snap_desk.application.snapshots
        if snap_store is None:
            raise RuntimeError("IS_SNAPSHOTTING_ENABLED gave the desk no snapshot store")
        for size in sizes:
            tid = build_ticket(desk, clock, size)
            bare_id = build_bare(bare, size)
            snap_tid = build_ticket(snap_desk, clock, size)
            snap_bare_id = build_bare(snap_bare, size)
            at = snapshot_version(size)
            said = snapshot_refusal(snap_desk, snap_tid, at)
            refusal = refusal or said
            if said != "stored":
                raise RuntimeError(f"the desk could not snapshot a ticket: {said}")
            stored = list(snap_store.get(snap_tid, desc=True, limit=1))
            if [s.originator_version for s in stored] != [at]:
                raise RuntimeError(f"no usable snapshot of the ticket at version {at}")
            snap_bare.take_snapshot(snap_bare_id, version=at)
            full = _project(None, snap_desk.application.events.get(snap_tid))
            if not _same_ticket(full, snap_desk._load(snap_tid)):
                raise RuntimeError("the ticket rebuilt from its snapshot differs")
            per_call = seconds_per_call(
                {
                    "fold": partial(fold, desk.application, tid),
                    "bare": partial(bare.repository.get, bare_id),
                    "rebuild": partial(desk._load, tid),
                    "get": partial(desk.get, tid),
                    "bare_snapshot": partial(snap_bare.repository.get, snap_bare_id),
                    "rebuild_snapshot": partial(snap_desk._load, snap_tid),
                },
                settings,
            )
            rows.append(Row(store=store_name, events=size, seconds=per_call))
    return rows, refusal


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
    """The machine line."""
    optimize = f" -{'O' * env['optimize']}" if env["optimize"] else ""
    return (
        f"{env['implementation']} {env['python']}{optimize}, "
        f"eventsourcing {env['eventsourcing']}, "
        f"supportflow {env['supportflow']}; {env['system']} {env['processor']}, "
        f"{env['cpus']} CPUs"
    )


def render(document: dict[str, Any]) -> list[str]:
    """The report of a JSON document from `main` as Markdown lines (no machine line)."""
    rows = document["rows"]
    lines = [
        f"Ticket rebuild, events rebuilt per second (best of {document['rounds']} rounds); "
        "ratios are throughput over throughput, goal rebuild / bare >= 1.0",
        "",
        "| store | events/ticket | fold ev/s | bare ev/s | rebuild ev/s | rebuild / bare "
        "| get ev/s | get / bare | rebuild / fold |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        rate = r["events_per_s"]
        lines.append(
            f"| {r['store']} | {r['events']} | {rate['fold']:,.0f} | {rate['bare']:,.0f} "
            f"| {rate['rebuild']:,.0f} | {r['rebuild_over_bare']:.2f} | {rate['get']:,.0f} "
            f"| {r['get_over_bare']:.2f} | {r['rebuild_over_fold']:.2f} |"
        )
    lines += [
        "",
        f"Rebuild from a snapshot {SNAPSHOT_TAIL} events before the head, microseconds per "
        "rebuild (flat = snapshots work; ticket snapshot: "
        + ("Ticket.Snapshot" if document["ticket_snapshot"] == "stored" else "none")
        + ")",
        "",
        "| store | events/ticket | bare µs | bare + snapshot µs | rebuild µs "
        "| rebuild + snapshot µs | rebuild + snapshot / bare + snapshot |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        us = {name: seconds * 1e6 for name, seconds in r["seconds_per_call"].items()}
        lines.append(
            f"| {r['store']} | {r['events']} | {us['bare']:,.0f} | {us['bare_snapshot']:,.0f} "
            f"| {us['rebuild']:,.0f} | {us['rebuild_snapshot']:,.0f} "
            f"| {us['bare_snapshot'] / us['rebuild_snapshot']:.2f} |"
        )
    if document["ticket_snapshot"] != "stored":
        lines += ["", f"eventsourcing's Snapshot of a Ticket: {document['ticket_snapshot']}"]
    return lines


def _urls(store: str, tmp: str, pg: Any) -> tuple[str, str]:
    plain = store_url(store, tmp, "rebuild", pg)
    snap = store_url(store, tmp, "rebuild-snapshots", pg)
    if store == "postgresql":  # the snapshot table: a migration with snapshotting enabled
        SupportDesk.migrate(snap, env={"IS_SNAPSHOTTING_ENABLED": "y"})
    return plain, snap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--store", action="append", choices=STORES, help="default: all three")
    parser.add_argument("--quick", action="store_true", help="tiny rounds (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    stores = args.store or list(STORES)
    started = time.perf_counter()
    rows: list[Row] = []
    refusal = ""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="supportflow-bench-"))
        pg = stack.enter_context(postgres_url()) if "postgresql" in stores else None
        for store in stores:
            measured, said = measure(store, _urls(store, tmp, pg), SIZES, settings)
            rows.extend(measured)
            refusal = refusal or said
    document = {
        "environment": environment(),
        "quick": args.quick,
        "rounds": settings.rounds,
        "snapshot_tail": SNAPSHOT_TAIL,
        "ticket_snapshot": refusal,
        "seconds": time.perf_counter() - started,
        "rows": [row.to_dict() for row in rows],
    }
    lines = [header(document["environment"]), "", *render(document)]
    return emit(document, lines, as_json=args.json, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
