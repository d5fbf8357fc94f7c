"""Actors, permissions, stranger replies and the right to erasure, on a SQLite desk.

Shows: a staff roster, a CC'd colleague replying, a reply from a look-alike address that
becomes a ticket of its own (the "Ticket Trick" does not land), a refused command, then
`forget_requester`: the tickets still audit clean, personal fields read [erased], and the raw
database file never held the address or the message text in plain.

Run: ``python examples/security.py``
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from supportflow import ManualClock, PermissionDenied, SupportDesk
from supportflow.audit import Auditor

ADDRESS = "ann@example.com"
SECRET = "my card ends 4242"


def main() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "desk.db"
        staff = {"bob": "agent", "carol": "manager"}
        with SupportDesk(f"sqlite:///{path}", clock=clock, staff=staff) as desk:
            tid = desk.submit(
                requester=ADDRESS,
                subject="Billing question",
                description=SECRET,
                cc=["cy@example.com"],
            )
            desk.request_info(tid, agent="bob", body="Which invoice?")
            desk.customer_reply(tid, body="March", by="Cy@Example.com")  # a CC: lands
            print("after the CC's reply:", desk.get(tid).status.name)

            landed = desk.customer_reply(tid, body="send me the invoice", by="ann+x@example.com")
            print("look-alike reply landed on the ticket:", landed == tid)
            for record in desk.stranger_messages(tid):
                print(f"  recorded: {record.sender} -> {record.outcome}")

            try:
                desk.solve(tid, agent=ADDRESS, solution="done")  # a customer is not staff
            except PermissionDenied as refused:
                print("refused:", refused)

            erased = desk.forget_requester(ADDRESS, by="privacy-officer")
            view = desk.get(tid)
            print(
                f"erased {erased} ticket(s): requester={view.requester} "
                f"description={view.description} status={view.status.name}"
            )
            report = Auditor(desk).audit()
            print("audit after erasure:", "CLEAN" if report.clean else report.violations)
        raw = path.read_bytes()
        print("address in the raw file:", ADDRESS.encode() in raw)
        print("message text in the raw file:", SECRET.encode() in raw)


if __name__ == "__main__":
    main()
