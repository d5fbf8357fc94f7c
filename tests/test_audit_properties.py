"""Properties: valid lifecycles audit clean; any single-event tampering is detected."""

from __future__ import annotations

import dataclasses
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from supportflow import ManualClock, SupportDesk, SupportflowError
from supportflow.audit import Auditor, audit_store, seal

START = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
"""A Friday: close timers cross the US DST change of 2026-03-08."""

COMMANDS = ("assign", "reply", "request_info", "solve", "customer", "auto", "severity", "wait")

steps = st.lists(
    st.tuples(st.sampled_from(COMMANDS), st.integers(min_value=1, max_value=60 * 24 * 9)),
    min_size=1,
    max_size=14,
)


def play(desk: SupportDesk, clock: ManualClock, plan: list[tuple[str, int]]) -> None:
    """Run the plan on one ticket (and the follow-ups a late reply creates), then the worker."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    target = tid
    for number, (command, minutes) in enumerate(plan):
        clock.advance(minutes=minutes)
        try:
            if command == "assign":
                desk.assign(target, agent=f"agent{number % 2}")
            elif command == "reply":
                desk.reply(target, agent="bob", body=f"r{number}")
            elif command == "request_info":
                desk.request_info(target, agent="bob", body=f"q{number}")
            elif command == "solve":
                desk.solve(target, agent="bob", solution=f"s{number}")
            elif command == "customer":
                target = desk.customer_reply(target, body=f"c{number}", message_id=f"m{number}")
            elif command == "auto":
                desk.customer_reply(target, body="out of office", auto_submitted=True)
            elif command == "severity":
                desk.change_severity(target, 1 + number % 4, by="bob", reason="triage")
            else:
                desk.run_due_timers()
        except SupportflowError:
            pass  # refused by the policy: nothing recorded
    desk.run_due_timers()


@given(plan=steps)
def test_random_valid_lifecycle_audits_clean(plan: list[tuple[str, int]]) -> None:
    """Whatever people do through the desk, the audit finds no violation."""
    clock = ManualClock(START)
    with SupportDesk(clock=clock) as desk:
        play(desk, clock, plan)
        report = Auditor(desk).audit(grace=timedelta(0))
    assert report.clean, report.violations


def _tamper(path: Path, url: str, choice: int, how: str) -> tuple[str, int]:
    """Change one ticket event of the store (by index among ticket events); returns its
    (ticket hex, position)."""
    with SupportDesk(url) as desk:
        mapper = desk.application.mapper
        with sqlite3.connect(path) as db:
            rows = db.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                "FROM stored_events WHERE topic LIKE 'supportflow.ticket:%' ORDER BY rowid"
            ).fetchall()
            rowid, oid, version, topic, state = rows[choice % len(rows)]
            if how == "delete":
                db.execute("DELETE FROM stored_events WHERE rowid=?", (rowid,))
            else:
                from eventsourcing.persistence import StoredEvent

                event: Any = mapper.to_domain_event(
                    StoredEvent(
                        originator_id=oid,
                        originator_version=version,
                        topic=topic,
                        state=state,
                    )
                )
                if how == "timestamp":
                    changed = dataclasses.replace(
                        event, timestamp=event.timestamp + timedelta(seconds=1)
                    )
                else:
                    texts = [k for k, v in vars(event).items() if isinstance(v, str)]
                    name = texts[choice % len(texts)]
                    changed = dataclasses.replace(event, **{name: getattr(event, name) + "!"})
                stored = mapper.to_stored_event(changed)
                db.execute(
                    "UPDATE stored_events SET topic=?, state=? WHERE rowid=?",
                    (stored.topic, stored.state, rowid),
                )
        db.close()
    return oid, version


@settings(max_examples=25)
@given(
    plan=steps,
    choice=st.integers(min_value=0, max_value=10_000),
    how=st.sampled_from(["delete", "timestamp", "text"]),
)
def test_any_single_event_tampering_is_detected(
    plan: list[tuple[str, int]], choice: int, how: str
) -> None:
    """Deleting or changing any one ticket event (the last included) breaks the sealed audit,
    and a violation names that ticket."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.db"
        url = f"sqlite:///{path}"
        clock = ManualClock(START)
        with SupportDesk(url, clock=clock) as desk:
            play(desk, clock, plan)
        digest = seal(url)
        oid, _ = _tamper(path, url, choice, how)
        report = audit_store(url, expect_seal=digest, grace=timedelta(0))
    assert not report.clean
    assert any(v.ticket_id is not None and v.ticket_id.hex == oid for v in report.violations)
