"""`supportflow audit`, `supportflow history` and `supportflow seal`.

Store settings the log was written with (compression, cipher) are passed with ``--env``:
``--env KEY=VALUE`` sets a value, ``--env KEY`` takes it from the environment variable of the
same name, so that a key never has to appear on the command line::

    CIPHER_KEY=... supportflow audit --store sqlite:///tickets.db \\
        --env COMPRESSOR_TOPIC=eventsourcing.compressor:ZlibCompressor \\
        --env CIPHER_TOPIC=eventsourcing.cryptography:AESCipher --env CIPHER_KEY
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import sys
from pathlib import Path

from ._cli_common import STORE_ENV, instant
from .audit import (
    AUTO_SPLIT_ROWS,
    DEFAULT_GRACE,
    MAX_WORKERS,
    Auditor,
    history_json,
    history_text,
    open_auditor,
    policy_from_toml,
    report_html,
    report_json,
    report_text,
)
from .errors import SupportflowError, TicketNotFound
from .policy import SupportPolicy

__all__ = ["parse_duration", "parse_env", "parse_workers", "register"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> _dt.timedelta:
    """``90s``, ``15m``, ``1h``, ``2d`` or plain seconds (``0``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 0, 90s, 15m, 1h or 2d, got {text!r}"
        )
    number, unit = match.groups()
    return _dt.timedelta(seconds=float(number) * _UNITS[unit or "s"])


def parse_workers(text: str) -> int | str:
    """``auto`` or a number of processes (1 or more)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {number}")
    if number > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_WORKERS}, got {number}")
    return number


def parse_env(items: list[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` items, and ``KEY`` items read from the environment."""
    settings: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not key:
            raise ValueError(f"--env {item!r}: expected KEY=VALUE or KEY")
        if not sep:
            if key not in os.environ:
                raise ValueError(f"--env {key}: the environment variable {key} is not set")
            value = os.environ[key]
        settings[key] = value
    return settings


def _add_common(parser: argparse.ArgumentParser, *, as_of: bool = True) -> None:
    parser.add_argument(
        "--store",
        default=os.environ.get(STORE_ENV),
        metavar="URL",
        help=f"store URL, e.g. sqlite:///tickets.db (default: ${STORE_ENV})",
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="KEY[=VALUE]",
        help=(
            "an eventsourcing setting the store was written with, e.g. "
            "COMPRESSOR_TOPIC=eventsourcing.compressor:ZlibCompressor; KEY alone reads "
            "the value from the environment (keeps CIPHER_KEY off the command line)"
        ),
    )
    parser.add_argument(
        "--policy",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a policy (TOML) the store does not hold but tickets may have run under",
    )
    if as_of:
        parser.add_argument(
            "--as-of",
            type=instant,
            metavar="T",
            help="only events stamped at or before T (ISO 8601 with an offset: 2026-03-09T16:00Z)",
        )


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `audit`, `history` and `seal` sub-commands."""
    audit = commands.add_parser(
        "audit",
        help="verify every ticket of a store; exit 0 when clean, 1 with violations",
        description=(
            "Replay the store's log in order and verify every ticket against the policy "
            "version it recorded: hash chains, transitions, timer instants, overdue timers, "
            "follow-up links, duplicate messages. Exit status 0 when clean, 1 with violations."
        ),
    )
    _add_common(audit)
    audit.add_argument(
        "--format", choices=("text", "json", "html"), default="text", help="(default: text)"
    )
    audit.add_argument("--out", type=Path, metavar="FILE", help="write the report to FILE")
    audit.add_argument(
        "--expect-seal",
        metavar="DIGEST",
        help="also check the log against a digest printed by `supportflow seal`",
    )
    audit.add_argument(
        "--what-if",
        type=Path,
        metavar="POLICY_FILE",
        help="compare the automatic events with those another policy (TOML) would give",
    )
    audit.add_argument(
        "--grace",
        type=parse_duration,
        default=DEFAULT_GRACE,
        metavar="DURATION",
        help="how long a due timer may stay unwritten (worker lag) (default: 1h)",
    )
    audit.add_argument(
        "--timelines",
        type=int,
        default=50,
        metavar="N",
        help="tickets with an SVG timeline in the HTML report (default: %(default)s)",
    )
    audit.add_argument(
        "--workers",
        type=parse_workers,
        default="auto",
        metavar="N",
        help="split the audit over N processes, each verifying a share of the tickets (the "
        f"report is the same); auto: one per CPU (at most {MAX_WORKERS}) for a log of "
        f"{AUTO_SPLIT_ROWS:,} rows or more (default: auto)",
    )
    audit.set_defaults(handler=_audit)

    history = commands.add_parser(
        "history",
        help="print one ticket's timeline: who, what, when (UTC and the desk's zone)",
    )
    history.add_argument("ticket", metavar="TICKET", help="the ticket id")
    _add_common(history)
    history.add_argument("--format", choices=("text", "json"), default="text")
    history.set_defaults(handler=_history)

    seal = commands.add_parser(
        "seal",
        help="record the log's head in the store and print its digest (keep it elsewhere)",
        description=(
            "Store a manifest of the head of every ticket's hash chain and print its SHA-256. "
            "Keep the digest outside the store; `supportflow audit --expect-seal DIGEST` then "
            "detects deleted, changed or moved events up to this point, the last ones included."
        ),
    )
    _add_common(seal, as_of=False)
    seal.set_defaults(handler=_seal)


def _open(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Auditor:
    if not args.store:
        parser.error(f"--store URL is required (or set ${STORE_ENV})")
    try:
        env = parse_env(args.env)
    except ValueError as error:
        parser.error(str(error))
    policies = [_policy_file(parser, path, "--policy") for path in args.policy]
    try:
        return open_auditor(args.store, env=env, policies=policies)
    except SupportflowError as error:
        parser.error(str(error))


def _policy_file(parser: argparse.ArgumentParser, path: Path, option: str) -> SupportPolicy:
    try:
        return policy_from_toml(path.read_text(encoding="utf-8"))
    except OSError as error:
        parser.error(f"{option} {path}: {error.strerror or error}")
    except ValueError as error:
        parser.error(f"{option} {path}: {error}")


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)


def _audit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    what_if = None if args.what_if is None else _policy_file(parser, args.what_if, "--what-if")
    if args.out is not None and not args.out.absolute().parent.is_dir():
        parser.error(f"--out {args.out}: directory {args.out.absolute().parent} does not exist")
    if args.timelines < 0:
        parser.error("--timelines must be >= 0")
    auditor = _open(parser, args)
    with auditor:
        try:
            report = auditor.audit(
                as_of=args.as_of,
                expect_seal=args.expect_seal,
                what_if=what_if,
                grace=args.grace,
                timelines=args.timelines if args.format == "html" else 0,
                workers=args.workers,
            )
        except SupportflowError as error:  # the audit could not run to its end
            print(f"supportflow audit: {error}", file=sys.stderr)
            return 2
    render = {"text": report_text, "json": report_json, "html": report_html}[args.format]
    _write(render(report), args.out)
    return 0 if report.clean else 1


def _history(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    auditor = _open(parser, args)
    with auditor:
        try:
            timeline = auditor.history(args.ticket, as_of=args.as_of)
        except TicketNotFound as error:
            print(f"supportflow history: {error}", file=sys.stderr)
            return 1
    sys.stdout.write(history_json(timeline) if args.format == "json" else history_text(timeline))
    return 0


def _seal(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    auditor = _open(parser, args)
    with auditor:
        digest = auditor.seal()
    print(digest)
    print(
        "keep this digest outside the store; check later with: supportflow audit "
        f"--expect-seal {digest}",
        file=sys.stderr,
    )
    return 0
