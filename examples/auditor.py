"""Build a small SQLite store, seal it, audit it, print the report and one ticket's history;
then audit it split over two processes (what large logs do) and compare.

Run it from any directory: ``python examples/auditor.py`` (it works in a temporary directory).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from supportflow import ManualClock, SupportDesk, SupportPolicy
from supportflow.audit import history_text, open_auditor, report_text


def build(url: str) -> str:
    """Three tickets: one closed with a follow-up, one auto-solved, one still open."""
    clock = ManualClock(datetime(2026, 3, 6, 15, 0, tzinfo=UTC))  # Friday 09:00 in Chicago
    with SupportDesk(url, clock=clock) as desk:
        restore = desk.submit(requester="ann@example.com", subject="Cannot restore")
        desk.assign(restore, agent="bob")
        desk.solve(restore, agent="bob", solution="Reinstall 4.2.1")
        quiet = desk.submit(requester="raj@example.com", subject="Slow search")
        desk.request_info(quiet, agent="carol", body="Which version?")
        clock.advance(days=4)
        desk.run_due_timers()
        desk.customer_reply(restore, body="It broke again")  # closed: a follow-up ticket
        desk.submit(requester="mei@example.com", subject="Dark mode?")
        clock.advance(days=7)
        desk.run_due_timers()
        return str(restore)


def main(directory: Path) -> None:
    url = f"sqlite:///{directory / 'tickets.db'}"
    ticket = build(url)
    with open_auditor(url) as auditor:
        digest = auditor.seal()
        report = auditor.audit(expect_seal=digest, what_if=SupportPolicy(close_after_days=5))
        print(report_text(report))
        print(history_text(auditor.history(ticket)))
        # a large log: the same audit split over processes gives the same report
        split = auditor.audit(workers=2)
        print(f"split over 2 processes: the same report: {split == auditor.audit()}")
    print("clean" if report.clean else "violations found")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        main(Path(tmp))
