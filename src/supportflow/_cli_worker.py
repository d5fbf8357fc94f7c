"""`supportflow migrate` and `supportflow worker`: the store's schema and the timer worker."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import threading

from ._cli_common import STORE_ENV, add_store_argument, instant
from ._store import redact
from .desk import SupportDesk
from .errors import SupportflowError
from .worker import DEFAULT_BATCH_SIZE, DEFAULT_INTERVAL, run_worker, stop_on_signals

__all__ = ["register"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _store(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    if not args.store:
        parser.error(f"--store URL is required (or set ${STORE_ENV})")
    store: str = args.store
    return store


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `migrate` and `worker` sub-commands."""
    migrate = commands.add_parser(
        "migrate",
        help="create the store's tables and index the pending timers (idempotent)",
        description=(
            "Create the tables and indexes of a store and index the pending timers of the "
            "tickets it already holds. Idempotent; concurrent runs wait for each other. "
            "Run it once before desks or workers use a PostgreSQL store."
        ),
    )
    add_store_argument(migrate)
    migrate.set_defaults(handler=_migrate)

    worker = commands.add_parser(
        "worker",
        help="run the timer worker: write due auto-solve and auto-close events",
        description=(
            "Sweep the due timers every --interval seconds until SIGTERM or SIGINT (the "
            "ticket in hand is finished, then it exits 0). Several workers may share a store. "
            "One key=value log line per sweep on stdout; never the password."
        ),
    )
    add_store_argument(worker)
    worker.add_argument(
        "--interval",
        type=_seconds,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help="pause between sweeps (default: %(default)s)",
    )
    worker.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="due timers claimed per transaction (default: %(default)s)",
    )
    worker.add_argument("--once", action="store_true", help="one sweep, then exit (for cron)")
    worker.add_argument(
        "--now",
        type=instant,
        metavar="ISO",
        help="sweep as of this instant instead of the system clock (catch-up, tests)",
    )
    worker.add_argument(
        "--log-tickets", action="store_true", help="also log one line per ticket handled"
    )
    worker.add_argument(
        "--snapshot-every",
        type=_positive,
        metavar="N",
        help="store a ticket snapshot each time a ticket the worker writes reaches a multiple "
        "of N events (default: no snapshots; see docs/operations.md)",
    )
    worker.set_defaults(handler=_worker)


def _migrate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    store = _store(parser, args)
    try:
        count = SupportDesk.migrate(store)
    except SupportflowError as error:
        print(f"supportflow migrate: error: {error}", file=sys.stderr)
        return 1
    print(f"migrated {redact(store)}: {count} pending timer(s) indexed")
    return 0


def _worker(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    store = _store(parser, args)
    stop = threading.Event()
    fixed: _dt.datetime | None = args.now

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        with SupportDesk(store, snapshot_every=args.snapshot_every) as desk, stop_on_signals(stop):
            return run_worker(
                desk,
                interval=args.interval,
                batch_size=args.batch_size,
                once=args.once,
                now=(lambda: fixed) if fixed is not None else None,
                stop=stop,
                log=log,
                log_tickets=args.log_tickets,
            )
    except SupportflowError as error:
        print(f"supportflow worker: error: {error}", file=sys.stderr)
        return 1
