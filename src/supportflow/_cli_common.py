"""Argument helpers shared by the `supportflow` sub-commands."""

from __future__ import annotations

import argparse
import datetime as _dt
import os

__all__ = ["STORE_ENV", "add_store_argument", "instant", "require_store"]

STORE_ENV = "SUPPORTFLOW_STORE"
"""Environment variable with the store URL (keeps a password off the command line)."""


def instant(text: str) -> _dt.datetime:
    """An argparse `type`: an ISO 8601 instant with a UTC offset, as aware UTC."""
    try:
        value = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 instant such as 2026-03-09T16:00:00Z, got {text!r}"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; add Z or +HH:MM")
    return value.astimezone(_dt.UTC)


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """``--store URL``, defaulting to ``$SUPPORTFLOW_STORE``."""
    parser.add_argument(
        "--store",
        default=os.environ.get(STORE_ENV),
        metavar="URL",
        help=(
            "store URL: sqlite:///tickets.db or postgresql://user:pass@host:5432/db "
            f"(default: ${STORE_ENV}, which keeps the password off the command line)"
        ),
    )


def require_store(parser: argparse.ArgumentParser, store: str | None) -> str:
    """The store URL, or a usage error naming both ways to give it."""
    if not store:
        parser.error(f"--store URL is required (or set ${STORE_ENV})")
    return store
