"""The audit commands on PostgreSQL (the same URL as every other command), and a row a
tamperer rewrote as text."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from supportflow import ManualClock, SupportDesk
from supportflow.cli import main

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def a_ticket(url: str) -> str:
    with SupportDesk(url, clock=ManualClock(T0)) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.reply(tid, agent="bob", body="on it")
        desk.solve(tid, agent="bob", solution="done")
    return str(tid)


def test_audit_seal_and_history_work_on_postgresql(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit`, `seal` and `history` read a PostgreSQL store by its URL."""
    tid = a_ticket(pg_url)
    assert main(["audit", "--store", pg_url]) == 0
    assert "CLEAN" in capsys.readouterr().out
    assert main(["seal", "--store", pg_url]) == 0
    digest = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["audit", "--store", pg_url, "--expect-seal", digest]) == 0
    capsys.readouterr()
    assert main(["history", tid, "--store", pg_url]) == 0
    assert "SOLVED" in capsys.readouterr().out


def test_audit_reports_a_row_rewritten_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row whose state a tamperer rewrote (stored as TEXT) is a violation, not a crash."""
    path = tmp_path / "t.db"
    url = f"sqlite:///{path}"
    tid = a_ticket(url)
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE stored_events SET state = CAST(state AS TEXT) "
            "WHERE originator_id = ? AND originator_version = 2",
            (tid.replace("-", ""),),
        )
        assert db.total_changes == 1
    assert main(["audit", "--store", url]) == 1
    out = capsys.readouterr().out
    assert tid in out
    assert "event 2" in out


def test_desk_reports_an_unreadable_event_as_corrupted_history(tmp_path: Path) -> None:
    """Reading a ticket whose stored row was altered raises CorruptedHistory, a
    SupportflowError naming the ticket, not a library exception."""
    from supportflow import CorruptedHistory

    path = tmp_path / "t.db"
    url = f"sqlite:///{path}"
    tid = a_ticket(url)
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE stored_events SET state = X'00ff' "
            "WHERE originator_id = ? AND originator_version = 2",
            (tid.replace("-", ""),),
        )
    with SupportDesk(url) as desk:
        with pytest.raises(CorruptedHistory, match=tid):
            desk.history(tid)  # type: ignore[arg-type]
        with pytest.raises(CorruptedHistory):
            desk.get(tid)  # type: ignore[arg-type]


def test_history_describes_service_level_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`history` names who did what for breaches, escalations, bug links and surveys."""
    from datetime import timedelta

    url = f"sqlite:///{tmp_path / 't.db'}"
    clock = ManualClock(T0)
    with SupportDesk(url, clock=clock) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x", severity=1)
        desk.request_escalation(tid, reason="prod down")
        desk.review_escalation(tid, manager="carol", accept=False, note="already critical")
        desk.link_bug(tid, reference="BUG-9", by="bob")
        clock.advance(hours=5)
        desk.solve(tid, agent="bob", solution="fixed")
        clock.advance(days=4)
        desk.run_due_timers()
        desk.record_survey(tid, rating=5, comment="great")
        clock.advance(timedelta(minutes=1))
    assert main(["history", str(tid), "--store", url]) == 0
    out = capsys.readouterr().out
    for text in (
        "update SLA breached",
        "asked for escalation",
        "declined the escalation",
        "linked bug BUG-9",
        "answered the survey: 5/5",
    ):
        assert text in out
    assert " ? " not in out


def test_audit_reports_an_event_whose_time_lost_its_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stored timestamp edited to have no UTC offset is reported for that ticket and
    position; the audit does not crash."""
    path = tmp_path / "t.db"
    url = f"sqlite:///{path}"
    tid = a_ticket(url)
    with sqlite3.connect(path) as db:
        (state,) = db.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 2",
            (tid.replace("-", ""),),
        ).fetchone()
        edited = bytes(state).replace(b'+00:00"', b'"')
        assert edited != bytes(state)
        db.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 2",
            (edited, tid.replace("-", "")),
        )
    assert main(["audit", "--store", url]) == 1
    out = capsys.readouterr().out
    assert tid in out
    assert "event 2" in out


def test_audit_as_of_counts_only_tickets_that_existed_then(tmp_path: Path) -> None:
    """`audit(as_of=t)` counts the tickets submitted by t, not those of today."""
    from datetime import timedelta

    from supportflow.audit import Auditor

    url = f"sqlite:///{tmp_path / 't.db'}"
    clock = ManualClock(T0)
    with SupportDesk(url, clock=clock) as desk:
        desk.submit(requester="ann@example.com", subject="first")
        clock.advance(days=5)
        desk.submit(requester="ben@example.com", subject="second")
        report = Auditor(desk).audit(as_of=T0 + timedelta(days=1))
        assert report.metrics.tickets == 1
        assert dict(report.metrics.by_status)["NEW"] == 1
        assert Auditor(desk).audit(as_of=T0 - timedelta(days=1)).metrics.tickets == 0
        assert Auditor(desk).audit().metrics.tickets == 2
