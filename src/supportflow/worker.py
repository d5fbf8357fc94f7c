"""The timer worker: sweeps the due timers of a desk every `interval` seconds until stopped.

>>> from supportflow import SupportDesk
>>> from supportflow.worker import run_worker
>>> lines = []
>>> with SupportDesk() as desk:
...     run_worker(desk, once=True, log=lines.append)
0
>>> [line.split()[2] for line in lines]
['event=start', 'event=sweep', 'event=stop']

Embed it in your own process with `run_worker(desk, stop=event)` in a thread and
`event.set()` to stop, or run ``supportflow worker --store URL`` (SIGTERM/SIGINT stop it
after the ticket in hand). Several workers may share one store: on PostgreSQL they claim
due rows with ``FOR UPDATE SKIP LOCKED``; on SQLite the ticket's optimistic concurrency keeps
every timer firing once.
"""

from __future__ import annotations

import datetime as _dt
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from ._recorders import DueRow
from ._store import redact
from .desk import SupportDesk
from .errors import InvalidCommand

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_INTERVAL", "run_worker", "stop_on_signals"]

DEFAULT_INTERVAL = 30.0
"""Seconds between sweeps."""

DEFAULT_BATCH_SIZE = 200
"""Due rows claimed per transaction."""


def _value(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if not text or any(c in text for c in ' "=\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
    return text


def format_line(level: str, event: str, **fields: object) -> str:
    """One ``key=value`` log line: time, level and event first."""
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    parts = [f"ts={now}", f"level={level}", f"event={event}"]
    parts.extend(f"{key}={_value(value)}" for key, value in fields.items())
    return " ".join(parts)


def run_worker(
    desk: SupportDesk,
    *,
    interval: float = DEFAULT_INTERVAL,
    batch_size: int = DEFAULT_BATCH_SIZE,
    once: bool = False,
    now: Callable[[], _dt.datetime] | None = None,
    stop: threading.Event | None = None,
    log: Callable[[str], None] = print,
    log_tickets: bool = False,
) -> int:
    """Sweep `desk`'s due timers until `stop` is set (or once). Returns the exit status:
    0, or 1 when `once` and a ticket failed (failed tickets stay due and are retried).

    `now` gives the sweep instant (default: the desk's clock); a fixed instant lets cron
    or tests catch up on a known time. `log` receives one ``key=value`` line per sweep
    (and per ticket with `log_tickets`); lines never contain credentials.
    """
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
        raise InvalidCommand(f"interval must be a number of seconds >= 0, got {interval!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidCommand(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    stop = stop if stop is not None else threading.Event()
    clock = now if now is not None else desk.clock.now
    worker = f"{socket.gethostname()}-{os.getpid()}"
    log(
        format_line(
            "info",
            "start",
            worker=worker,
            store=redact(desk.store),
            interval=interval,
            batch_size=batch_size,
            once=once,
        )
    )

    def fired(row: DueRow, count: int) -> None:
        log(
            format_line(
                "info",
                "ticket",
                worker=worker,
                ticket=row.ticket_id,
                kind=row.kind,
                due_at=row.due_at.isoformat(),
                written=count,
            )
        )

    status = 0
    while True:
        started = time.perf_counter()
        when = clock()
        sweep = desk._sweep(
            desk._at(when),
            batch_size=batch_size,
            should_stop=stop.is_set,
            on_ticket=fired if log_tickets else None,
        )
        for failure in sweep.failures:
            log(format_line("error", "ticket_failed", worker=worker, error=failure))
        log(
            format_line(
                "info" if not sweep.failures else "warning",
                "sweep",
                worker=worker,
                now=when.isoformat(),
                written=sweep.written,
                tickets=sweep.tickets,
                failed=len(sweep.failures),
                stopped=sweep.stopped,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
        )
        if once:
            status = 1 if sweep.failures else 0
            break
        if stop.wait(interval):
            break
    log(format_line("info", "stop", worker=worker, reason="once" if once else "stop"))
    return status


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT set `stop` (main thread only)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
