"""Snapshots: a desk that stores a snapshot of each ticket every 50 events, on a SQLite file.

A ticket with a long history (here 300 events) is rebuilt from its latest snapshot plus the
few events after it, by any desk on the store; the view is the same as from all its events,
`get(as_of=...)` still replays the events, and the audit still reads the whole event log.

Run it: ``python examples/snapshots.py [path/to/tickets.db]``
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from supportflow import ManualClock, SupportDesk
from supportflow.audit import Auditor

EVENTS = 300
"""Events on the example ticket."""


def main(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    clock = ManualClock(start)
    with SupportDesk(url, clock=clock, snapshot_every=50) as desk:
        tid = desk.submit(requester="ann@example.com", subject="Nightly backup fails")
        for number in range(EVENTS - 1):
            clock.advance(minutes=1)
            if number % 2:
                desk.customer_reply(tid, body=f"log {number}")
            else:
                desk.reply(tid, agent="bob", body=f"try {number}")
        snapshots = desk.application.snapshots
        assert snapshots is not None
        versions = [s.originator_version for s in snapshots.recorder.select_events(tid)]
        print(f"ticket {tid}: {len(desk.history(tid))} events, snapshots at versions {versions}")

    # A cold desk (another process, a worker): each load is one snapshot plus the events
    # after it. The aggregate cache is off here so that every `get` rebuilds.
    cold = {"AGGREGATE_CACHE_MAXSIZE": ""}
    with (
        SupportDesk(url, clock=clock, snapshot_every=50, env=cold) as snapping,
        SupportDesk(url, clock=clock, env=cold) as plain,
    ):
        for name, reader in (("with snapshots", snapping), ("without snapshots", plain)):
            started = time.perf_counter()
            view = reader.get(tid)
            took = (time.perf_counter() - started) * 1e3
            print(f"{name:>18}: {view.status.name}, version {view.version} ({took:.1f} ms)")
        if snapping.get(tid) != plain.get(tid):
            raise SystemExit("the snapshot gave another view than the events")
        early = start + timedelta(minutes=10)
        print(f"as of {early:%H:%M}: version {snapping.get(tid, as_of=early).version}")
        report = Auditor(snapping).audit()
        print(f"audit: {'clean' if report.clean else 'violations'}, {report.metrics.events} events")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp) / "tickets.db")
