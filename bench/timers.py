"""The cost of `run_due_timers` as the desk grows: desks of 10, 1,000 and 10,000 tickets of
which the same 10 are due. The sweep reads only due rows of the timer index, so its time
should stay flat (ratio ~1) instead of growing with the number of tickets.

    python bench/timers.py [--sizes 10,1000,10000] [--due 10] [--store memory|sqlite|URL]

Prints one line per (store, size): build time, sweep time, and the sweep's ratio to the
smallest desk's sweep in the same run. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from supportflow import ManualClock, Severity, SupportDesk
from supportflow._timers import IndexedApplication
from supportflow.ticket import Ticket

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
REPEATS = 3


def build(store: str, tickets: int, due: int) -> SupportDesk:
    """A desk with `tickets` tickets, `due` of them solved (their close is due at +4 days)."""
    desk = SupportDesk(store, clock=ManualClock(START))
    policy = desk.policy
    batch: list[Ticket] = []
    app = desk.application
    assert isinstance(app, IndexedApplication)
    for i in range(tickets):
        ticket = Ticket.submit(
            ticket_id=Ticket.create_id(),
            policy=policy,
            at=START,
            requester=f"c{i}@example.com",
            subject="bench",
            description="",
            severity=Severity.MEDIUM,
            channel="web",
            product={},
            tags=[],
        )
        if i < due:
            ticket.solve(policy, agent="bob", solution="x", at=START)
        batch.append(ticket)
        if len(batch) == 500:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)
    return desk


def measure(store: str, tickets: int, due: int) -> tuple[float, float]:
    """(build seconds, median sweep seconds) for one size; each sweep on a fresh desk."""
    builds, sweeps = [], []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'b.db'}" if store == "sqlite" else store
            url = "memory://" if store == "memory" else url
            if url.startswith("postgres"):
                SupportDesk.migrate(url)
            started = time.perf_counter()
            desk = build(url, tickets, due)
            builds.append(time.perf_counter() - started)
            started = time.perf_counter()
            written = desk.run_due_timers(now=START + timedelta(days=4))
            sweeps.append(time.perf_counter() - started)
            assert written == due, written
            desk.close()
        if url.startswith("postgres"):
            break  # one run: the tables are shared, later builds would add up
    return statistics.median(builds), statistics.median(sweeps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--due", type=int, default=10)
    parser.add_argument("--store", action="append", help="memory, sqlite or a postgresql URL")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    stores = args.store or ["memory", "sqlite"]
    print(f"run_due_timers with {args.due} due timers; median of {REPEATS} fresh desks")
    print("| store | tickets | build s | sweep ms | sweep / smallest |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for store in stores:
        baseline = None
        for size in sizes:
            built, swept = measure(store, size, args.due)
            baseline = baseline or swept
            name = store.split(":", 1)[0]
            print(
                f"| {name} | {size} | {built:.2f} | {swept * 1000:.2f} | {swept / baseline:.2f} |"
            )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
