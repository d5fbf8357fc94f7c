"""A corrupted row (unknown topic, undecodable state) is reported for its ticket; the audit
goes on with the other tickets and never crashes. Also through `supportflow audit`."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from supportflow import ManualClock, SupportDesk
from supportflow.audit import audit_store, report_json

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

CORRUPTIONS = {
    "unknown event class": ("topic", "supportflow.ticket:Ticket.NoSuchEvent"),
    "unknown module": ("topic", "nowhere.at.all:Thing"),
    "undecodable bytes": ("state", b"\xff\xfe\x00not json"),
    "json missing the event's fields": ("state", b"{}"),
    "json of the wrong shape": ("state", b"[1, 2, 3]"),
}


def _store(path: Path) -> tuple[str, list[UUID]]:
    url = f"sqlite:///{path}"
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk:
        tickets = []
        for name in ("ann", "raj", "mei"):
            tid = desk.submit(requester=f"{name}@example.com", subject="help")
            desk.reply(tid, agent="bob", body="on it")
            desk.solve(tid, agent="bob", solution="done")
            tickets.append(tid)
    return url, tickets


def _corrupt(path: Path, ticket: UUID, version: int, column: str, value: object) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(
            f"UPDATE stored_events SET {column}=? WHERE originator_id=? AND originator_version=?",
            (value, ticket.hex, version),
        )
    connection.close()


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupted_row_is_reported_and_the_other_tickets_are_audited(
    kind: str, tmp_path: Path
) -> None:
    """The corrupted ticket is named at its event; the two others audit clean."""
    path = tmp_path / "t.db"
    url, (_, raj, _) = _store(path)
    column, value = CORRUPTIONS[kind]
    _corrupt(path, raj, 2, column, value)
    report = audit_store(url)
    assert report_json(audit_store(url, workers=3)) == report_json(report)  # split: the same
    assert not report.clean
    assert {v.ticket_id for v in report.violations} == {raj}
    assert any(v.position == 2 for v in report.violations), report.violations
    assert report.metrics.tickets >= 2  # ann and mei were rebuilt and measured
    assert dict(report.metrics.by_status).get("SOLVED", 0) >= 2


def test_cli_audit_reports_a_corrupted_row_and_exits_1(tmp_path: Path) -> None:
    """`supportflow audit` prints the violation, exits 1, and shows no traceback."""
    path = tmp_path / "t.db"
    url, (_, raj, _) = _store(path)
    _corrupt(path, raj, 3, "state", b"\x00\x01garbage")
    done = subprocess.run(
        [sys.executable, "-m", "supportflow", "audit", "--store", url],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert str(raj) in done.stdout
    assert "Traceback" not in done.stderr


def test_html_report_draws_a_ticket_whose_time_lost_its_offset(tmp_path: Path) -> None:
    """A timestamp stripped of its UTC offset is reported, and the HTML report with
    timelines still renders (the naive instant is drawn as UTC) instead of crashing."""
    from supportflow.audit import report_html

    path = tmp_path / "t.db"
    url, (_, raj, _) = _store(path)
    with sqlite3.connect(path) as connection:
        (state,) = connection.execute(
            "SELECT state FROM stored_events WHERE originator_id=? AND originator_version=2",
            (raj.hex,),
        ).fetchone()
        connection.execute(
            "UPDATE stored_events SET state=? WHERE originator_id=? AND originator_version=2",
            (bytes(state).replace(b"+00:00", b"", 1), raj.hex),
        )
    connection.close()
    report = audit_store(url, timelines=5)
    assert {v.ticket_id for v in report.violations} == {raj}
    page = report_html(report)
    assert page.count("<svg") >= 3
    assert str(raj) in page
