"""The `supportflow` command line: parses arguments and prints; the work is done elsewhere."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from . import _cli_audit, _cli_notify, _cli_security, _cli_worker, _demo

__all__ = ["Handler", "main"]

Handler = Callable[[argparse.ArgumentParser, argparse.Namespace], int]
"""A sub-command: gets the parser (for `parser.error`) and the parsed arguments; returns the
exit status. Each sub-command module registers its parsers with `set_defaults(handler=...)`."""

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

_REGISTRARS: list[Registrar] = [
    _cli_notify.register,
    _cli_worker.register,
    _cli_audit.register,
    _cli_security.register,
]
"""Functions adding sub-commands from other modules (`register(commands)`), in help order."""

DEFAULT_DB = "supportflow-demo.db"


def _at_least(minimum: int) -> type[int]:
    """An argparse `type` accepting whole numbers >= `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse  # type: ignore[return-value]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="supportflow",
        description="An event-sourced engine for the lifecycle of support tickets.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="simulate a support desk on a SQLite file and summarise what it recorded",
        description=(
            "Simulate a support desk for a few weeks (from Monday 2026-03-02, across the US "
            "DST change) on a SQLite file: tickets of every severity, agents, customers who "
            "answer in time, late or never, out-of-office auto-replies and mails delivered "
            "twice, status updates and update-SLA breaches, escalations reviewed by a manager, "
            "bug links, unsupported versions, and solved notices and surveys delivered through "
            "the outbox by a mail gateway that fails now and then. Prints what the store holds, "
            "the top of the triage queue and one ticket's history. Deterministic for a given "
            "seed."
        ),
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=_demo.DEFAULT_SEED,
        help="random seed; the same seed gives the same run (default: %(default)s)",
    )
    demo.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="PATH",
        help="SQLite file to create; an existing file is replaced (default: %(default)s)",
    )
    demo.add_argument(
        "--days",
        type=_at_least(1),
        default=_demo.DEFAULT_DAYS,
        help="simulated calendar days (default: %(default)s)",
    )
    demo.add_argument(
        "--tickets-per-day",
        type=_at_least(1),
        default=_demo.DEFAULT_TICKETS_PER_DAY,
        metavar="K",
        help="new tickets per business day, a third of that at weekends (default: %(default)s)",
    )
    demo.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    demo.set_defaults(handler=_demo_command)
    for register in _REGISTRARS:
        register(commands)
    return parser


def _progress_to(stream: TextIO) -> _demo.ProgressFn:
    def show(day: int, days: int) -> None:
        stream.write(f"\r  day {day}/{days} ...")
        stream.flush()

    return show


def _demo_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    path = Path(args.db)
    if path.is_dir():
        parser.error(f"--db {args.db}: is a directory")
    if not path.absolute().parent.is_dir():
        parser.error(f"--db {args.db}: directory {path.absolute().parent} does not exist")
    if _demo.remove_database(path):
        print(f"Removed the previous demo database {path.absolute()}")
    show = not args.quiet and sys.stderr.isatty()
    started = time.perf_counter()
    summary = _demo.run_demo(
        path,
        seed=args.seed,
        days=args.days,
        tickets_per_day=args.tickets_per_day,
        progress=_progress_to(sys.stderr) if show else None,
    )
    if show:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
    print(_demo.format_summary(summary))
    if not args.quiet:
        print(f"\n(simulated in {time.perf_counter() - started:.1f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `supportflow` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(parser, args)


if __name__ == "__main__":
    sys.exit(main())
