"""`supportflow notify`: deliver the outbox's notifications and surveys."""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
from typing import Any

from ._cli_common import add_store_argument, instant, require_store
from .clock import FixedClock
from .desk import SupportDesk
from .errors import SupportflowError
from .outbox import Notification, Notifier, deliver_notifications

__all__ = ["StdoutNotifier", "load_notifier", "register"]


class StdoutNotifier:
    """Writes each notification as one JSON line on stdout (for trying things out and piping)."""

    def deliver(self, notification: Notification) -> None:
        record = {
            "key": notification.key,
            "kind": notification.kind,
            "ticket_id": str(notification.ticket_id),
            "requester": notification.requester,
            "subject": notification.subject,
            "requested_at": notification.requested_at.isoformat(),
        }
        print(json.dumps(record), flush=True)


def load_notifier(spec: str) -> Notifier:
    """``stdout`` or ``package.module:factory`` (a class or a function returning a notifier)."""
    if spec == "stdout":
        return StdoutNotifier()
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        msg = f"--notifier must be 'stdout' or 'package.module:factory', got {spec!r}"
        raise ValueError(msg)
    try:
        factory: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        msg = f"cannot load notifier {spec!r}: {error}"
        raise ValueError(msg) from None
    notifier = factory()
    if not isinstance(notifier, Notifier):
        msg = f"{spec} did not give an object with a deliver(notification) method"
        raise ValueError(msg)
    return notifier


def _notify(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        notifier = load_notifier(args.notifier)
    except ValueError as error:
        parser.error(str(error))
    now = args.now
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        clock = FixedClock(now) if now is not None else None
        with SupportDesk(require_store(parser, args.store), clock=clock) as desk:
            while True:
                report = deliver_notifications(desk, notifier, batch_size=args.batch_size)
                print(
                    f"event=notify requested={report.requested} delivered={report.delivered} "
                    f"retried={report.retried} failed={report.failed} pending={report.pending}",
                    file=sys.stderr,
                    flush=True,
                )
                if args.once or stop.wait(args.interval):
                    return 0
    except SupportflowError as error:
        print(f"supportflow notify: {error}", file=sys.stderr)
        return 1


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notify = commands.add_parser(
        "notify",
        help="deliver solved notices and survey requests from the outbox",
        description=(
            "Deliver the outbox's notifications through a notifier, at least once, with "
            "retries and backoff. Runs until SIGTERM/SIGINT, or once with --once."
        ),
    )
    add_store_argument(notify)
    notify.add_argument(
        "--notifier",
        default="stdout",
        help="'stdout' (JSON lines) or 'package.module:factory' (default: %(default)s)",
    )
    notify.add_argument("--once", action="store_true", help="one pass, then exit (for cron)")
    notify.add_argument(
        "--interval", type=float, default=10.0, help="seconds between passes (default: 10)"
    )
    notify.add_argument("--batch-size", type=int, default=100, help="deliveries per pass")
    notify.add_argument(
        "--now", type=instant, help="ISO instant to act at (default: the system clock)"
    )
    notify.set_defaults(handler=_notify)
