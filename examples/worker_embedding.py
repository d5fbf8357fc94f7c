"""Embed the timer worker in your own process: a thread sweeps the due timers of a desk
until you stop it. Runs on SQLite (or memory://); PostgreSQL works the same way after
``supportflow migrate --store URL``.

Run it: ``python examples/worker_embedding.py [path/to/tickets.db]``
"""

from __future__ import annotations

import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

from supportflow import ManualClock, SupportDesk
from supportflow.worker import run_worker


def main(db_path: Path) -> None:
    clock = ManualClock(datetime(2026, 3, 6, 16, 0, tzinfo=UTC))  # Friday 10:00 in Chicago
    with SupportDesk(f"sqlite:///{db_path}", clock=clock) as desk:
        tid = desk.submit(requester="ann@example.com", subject="Cannot restore")
        desk.solve(tid, agent="bob", solution="Reinstall 4.2.1")
        clock.advance(days=4)  # the close timer (3 calendar days) is now due

        stop = threading.Event()
        lines: list[str] = []

        def log(line: str) -> None:
            lines.append(line)
            if "event=sweep" in line:
                stop.set()  # one sweep is enough for this example

        thread = threading.Thread(
            target=run_worker, args=(desk,), kwargs={"interval": 0.05, "stop": stop, "log": log}
        )
        thread.start()
        thread.join()
        for line in lines:
            print(line)
        closed = desk.history(tid)[-1]
        print(f"ticket {tid}: {desk.get(tid).status.name}, closed at {closed.timestamp}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp) / "tickets.db")
