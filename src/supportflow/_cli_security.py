"""`supportflow forget`: erase a requester's personal data (crypto-shredding)."""

from __future__ import annotations

import argparse
import sys

from ._cli_common import add_store_argument, require_store
from .desk import SupportDesk
from .errors import SupportflowError

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `forget` sub-command."""
    forget = commands.add_parser(
        "forget",
        help="erase a requester's personal data: destroy their key (crypto-shredding)",
        description=(
            "Record an Erased event (who asked, when) on every ticket the requester submitted, "
            "then destroy the requester's key: their tickets still replay, audit and verify, "
            "and every personal field reads [erased]. Cannot be undone. Prints how many "
            "tickets were erased (0: the store holds no key for that address)."
        ),
    )
    forget.add_argument("address", help="the requester's e-mail address (any case)")
    add_store_argument(forget)
    forget.add_argument(
        "--by", required=True, metavar="NAME", help="who asked for the erasure (recorded)"
    )
    forget.set_defaults(handler=_forget)


def _forget(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    store = require_store(parser, args.store)
    try:
        with SupportDesk(store) as desk:
            count = desk.forget_requester(args.address, by=args.by)
    except SupportflowError as error:
        print(f"supportflow forget: error: {error}", file=sys.stderr)
        return 1
    print(f"erased {count} ticket(s) of that requester; their key is destroyed")
    return 0
