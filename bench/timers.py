"""The cost of `run_due_timers` as the desk grows: desks of 10,000 and 200,000 tickets with
the same 1,000 due timers, on memory, SQLite and PostgreSQL. The sweep reads only due rows of
the timer index, so its time should stay flat (ratio <= 1.5) instead of growing with the
number of tickets.

Each desk is built once: the bulk of its tickets are submitted (status NEW, nothing due
before the sweeps), plus 3 groups of 1,000 tickets solved one day apart, so that group r's
automatic close is due at day r + 3 and nothing else is. Sweep r runs
``desk.run_due_timers(now)`` at group r's due instant + 1 minute and must write exactly 1,000
`Closed` events: 3 sweeps of the same desk, each over 1,000 due timers, and the median
counts. Tickets are made with the aggregate's command methods under the desk's policy and
saved 500 at a time through the desk's application, so the events, hash chains and due-timer
rows are exactly what the desk writes.

    python bench/timers.py [--sizes 10000,200000] [--due 1000] [--store memory|sqlite|postgresql]
                           [--quick] [--json]

PostgreSQL: a throwaway cluster is started as the tests do (tests/_pg.py; or set
SUPPORTFLOW_TEST_POSTGRES_URL), one fresh schema per desk. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from supportflow import ManualClock, Severity, SupportDesk
from supportflow.policy import SupportPolicy
from supportflow.ticket import Ticket

__all__ = ["STORES", "build", "main", "memo_policy", "postgres_url", "render", "store_url"]

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
BULK_AT = START + timedelta(days=30)
"""The bulk tickets are submitted after every sweep instant: none of their timers is due."""
SWEEPS = 3
BATCH = 500
STORES = ("memory", "sqlite", "postgresql")


class _MemoPolicy(SupportPolicy):
    """The same rules and version, with the due instants of one (question, instant) computed
    once: the bulk tickets all ask the same questions, and the build should not be dominated
    by recomputing them. Only used to build the benchmark's tickets."""

    def __getattribute__(self, name: str) -> Any:
        found = super().__getattribute__(name)
        if name in {"update_due_at", "close_due_at", "solve_due_at"}:
            return _memoized(found)
        return found


@functools.cache
def _memoized_call(method: Any, *args: Any) -> Any:
    return method(*args)


def _memoized(method: Any) -> Any:
    return functools.partial(_memoized_call, method)


def memo_policy(policy: SupportPolicy) -> SupportPolicy:
    """`policy` as a `_MemoPolicy` (same fields, hence the same version)."""
    fields = {field.name: getattr(policy, field.name) for field in attrs.fields(SupportPolicy)}
    memo = _MemoPolicy(**fields)
    if memo.version != policy.version:
        raise RuntimeError("the memoizing policy must have the policy's version")
    return memo


def _submit(policy: SupportPolicy, at: datetime, i: int) -> Ticket:
    return Ticket.submit(
        ticket_id=uuid.uuid4(),
        policy=policy,
        at=at,
        requester=f"c{i % 997}@example.com",
        subject="bench",
        description="",
        severity=Severity.MEDIUM,
        channel="web",
        product={},
        tags=[],
    )


def build(desk: SupportDesk, tickets: int, due: int) -> None:
    """`tickets` tickets on `desk`: SWEEPS groups of `due` solved ones, the rest NEW."""
    policy = memo_policy(desk.policy)
    app = desk.application
    batch: list[Ticket] = []

    def add(ticket: Ticket) -> None:
        batch.append(ticket)
        if len(batch) == BATCH:
            app.save(*batch)
            batch.clear()

    for group in range(SWEEPS):
        at = START + timedelta(days=group)
        for i in range(due):
            ticket = _submit(policy, at, i)
            ticket.solve(policy, agent="bob", solution="x", at=at + timedelta(minutes=1))
            add(ticket)
    for i in range(tickets - SWEEPS * due):
        add(_submit(policy, BULK_AT, i))
    if batch:
        app.save(*batch)


def sweep_instants(desk: SupportDesk) -> list[datetime]:
    """When each group's close is due, + 1 minute."""
    policy = desk.policy
    return [
        policy.close_due_at(START + timedelta(days=g, minutes=1)) + timedelta(minutes=1)
        for g in range(SWEEPS)
    ]


@contextlib.contextmanager
def postgres_url() -> Iterator[Any]:
    """A function giving a fresh, migrated PostgreSQL schema URL per call, on a throwaway
    cluster (stopped at the end) or on SUPPORTFLOW_TEST_POSTGRES_URL's server."""
    import os

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests._pg import _external, _start_cluster, fresh_schema_url

    external = os.environ.get("SUPPORTFLOW_TEST_POSTGRES_URL")
    server = _external(external) if external else _start_cluster()

    def fresh() -> str:
        url = fresh_schema_url(server)
        SupportDesk.migrate(url)
        return url

    try:
        yield fresh
    finally:
        if not external:
            server.stop()


def store_url(store: str, tmp: str, name: str, pg: Any) -> str:
    """A fresh, empty store of kind `store`."""
    if store == "memory":
        return "memory://"
    if store == "sqlite":
        return f"sqlite:///{Path(tmp) / f'{name}.db'}"
    url: str = pg()
    return url


def measure(url: str, tickets: int, due: int) -> dict[str, Any]:
    """Build one desk, sweep it SWEEPS times; build seconds and sweep seconds."""
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        started = time.perf_counter()
        build(desk, tickets, due)
        built = time.perf_counter() - started
        sweeps = []
        for now in sweep_instants(desk):
            started = time.perf_counter()
            written = desk.run_due_timers(now=now)
            sweeps.append(time.perf_counter() - started)
            if written != due:
                raise RuntimeError(f"the sweep wrote {written} events, expected {due}")
    return {"tickets": tickets, "build_s": built, "sweeps_s": sweeps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default=None, help="ticket counts, comma-separated")
    parser.add_argument("--due", type=int, default=None, help="due timers per sweep")
    parser.add_argument("--store", action="append", choices=STORES, help="default: all three")
    parser.add_argument("--quick", action="store_true", help="tiny desks (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    sizes = [
        int(s) for s in (args.sizes or ("400,800" if args.quick else "10000,200000")).split(",")
    ]
    due = args.due or (20 if args.quick else 1000)
    if min(sizes) < SWEEPS * due:
        parser.error(f"every size needs at least {SWEEPS * due} tickets")
    stores = args.store or list(STORES)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="supportflow-bench-"))
        pg = stack.enter_context(postgres_url()) if "postgresql" in stores else None
        for store in stores:
            for size in sizes:
                row = measure(store_url(store, tmp, f"t{size}", pg), size, due)
                row["store"] = store
                row["sweep_s"] = statistics.median(row["sweeps_s"])
                smallest = next((r for r in rows if r["store"] == store), row)
                row["ratio"] = row["sweep_s"] / smallest["sweep_s"]
                rows.append(row)
                if not args.json:
                    print(f"built {store} {size:,} in {row['build_s']:.1f} s", file=sys.stderr)
    document = {
        "quick": args.quick,
        "due": due,
        "sweeps": SWEEPS,
        "seconds": time.perf_counter() - started,
        "rows": rows,
    }
    return emit(document, render(document), as_json=args.json, quick=args.quick)


def emit(document: dict[str, Any], lines: list[str], *, as_json: bool, quick: bool) -> int:
    """Print a benchmark's JSON `document`, or its report `lines` and the time it took."""
    if as_json:
        print(json.dumps(document, indent=2))
        return 0
    print("\n".join(lines))
    print()
    note = " (--quick: figures are not meaningful)" if quick else ""
    print(f"{document['seconds']:.1f} s{note}")
    return 0


def render(document: dict[str, Any]) -> list[str]:
    """The report of a JSON document from `main` as Markdown lines."""
    due = document["due"]
    lines = [
        f"run_due_timers writing {due:,} due timers; median of {document['sweeps']} sweeps "
        "per desk; goal: sweep / smallest desk <= 1.5",
        "",
        "| store | tickets | build s | sweep ms | ms per timer | sweep / smallest desk |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines.extend(
        f"| {r['store']} | {r['tickets']:,} | {r['build_s']:.1f} | {r['sweep_s'] * 1000:.0f} "
        f"| {r['sweep_s'] * 1000 / due:.2f} | {r['ratio']:.2f} |"
        for r in document["rows"]
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
