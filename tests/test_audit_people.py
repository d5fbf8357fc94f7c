"""The auditor's `permission` rule for people: every customer-side event was made by the
ticket's requester or by an address on its CC list at that moment, checked from the log
alone (sealed addresses compare by their blind index)."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from supportflow import ManualClock, SupportDesk, Ticket
from supportflow.audit import Auditor, AuditReport, audit_store
from supportflow.policy import Role

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def audit(desk: SupportDesk) -> AuditReport:
    return Auditor(desk).audit()


def permission(report: AuditReport) -> list[tuple[int | None, str]]:
    return [(v.position, v.message) for v in report.violations if v.rule == "permission"]


def sealed(desk: SupportDesk, ticket: Ticket, address: str) -> str:
    """`address` stored the way the desk stores it on `ticket` (sealed, with a blind index)."""
    return desk._seal(desk._ticket_key(ticket), address, address=True)


def test_replies_and_requests_from_cc_addresses_audit_clean(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """CC'd addresses (at submit and added later) reply, ask for escalation and answer the
    survey; the requester and an agent change the CC list: no violation."""
    tid = desk.submit(requester="ann@example.com", subject="x", cc=["cy@example.com"])
    desk.request_info(tid, agent="bob", body="Which version?")
    desk.customer_reply(tid, body="4.2", by="CY@example.com")
    desk.add_cc(tid, "dee@example.com", agent="bob")
    desk.request_escalation(tid, by="dee@example.com", reason="urgent")
    desk.remove_cc(tid, "cy@example.com")
    desk.add_cc(tid, "eve@example.com")
    desk.solve(tid, agent="bob", solution="done")
    clock.advance(days=8)
    desk.run_due_timers()
    desk.record_survey(tid, rating=5, comment="ok", by="eve@example.com")
    report = audit(desk)
    assert report.clean, report.violations


def test_stranger_reply_becomes_a_clean_ticket_of_its_own(desk: SupportDesk) -> None:
    """A stranger's reply never lands on the ticket: the new ticket it starts audits clean."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    other = desk.customer_reply(tid, body="let me in", by="ann+x@example.com")
    report = audit(desk)
    assert other != tid
    assert report.clean, report.violations
    assert report.metrics.tickets == 2


def test_follow_up_from_a_cc_and_an_erasure_audit_clean(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """A CC's reply to the closed ticket (a follow-up, with a reopen on the way), then the
    requester's erasure: no violation."""
    tid = desk.submit(requester="ann@example.com", subject="x", cc=["cy@example.com"])
    desk.solve(tid, agent="bob", solution="done")
    desk.customer_reply(tid, body="still broken", by="cy@example.com")  # reopens
    desk.solve(tid, agent="bob", solution="done again")
    clock.advance(days=8)
    desk.run_due_timers()
    follow_up = desk.customer_reply(tid, body="again", by="cy@example.com")
    assert desk.forget_requester("ann@example.com", by="dpo") >= 1
    report = audit(desk)
    assert follow_up != tid
    assert report.clean, report.violations


def test_reply_by_a_stranger_address_is_reported_at_its_event(desk: SupportDesk) -> None:
    """A customer reply stored with a stranger's (sealed) address, as if it were a CC, is
    reported at that event, naming the ticket."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    ticket = desk._load(tid)
    ticket.customer_reply(
        desk.policy_for(tid),
        by=sealed(desk, ticket, "mallory@example.com"),
        body="hi",
        message_id=None,
        auto_submitted=False,
        at=START,
        role=Role.CC,
    )
    desk.application.save(ticket)
    found = permission(audit(desk))
    assert [position for position, _ in found] == [2]
    assert str(tid) in found[0][1]
    assert "neither the requester nor on the CC list" in found[0][1]


def test_reply_by_a_removed_cc_is_reported(desk: SupportDesk) -> None:
    """The CC list counts at the moment of the event: a reply by an address after its
    removal is reported."""
    tid = desk.submit(requester="ann@example.com", subject="x", cc=["cy@example.com"])
    desk.remove_cc(tid, "cy@example.com")
    ticket = desk._load(tid)
    ticket.customer_reply(
        desk.policy_for(tid),
        by=sealed(desk, ticket, "cy@example.com"),
        body="hi",
        message_id=None,
        auto_submitted=False,
        at=START,
        role=Role.CC,
    )
    desk.application.save(ticket)
    assert [position for position, _ in permission(audit(desk))] == [ticket.version]


@pytest.mark.parametrize("kind", ["escalation", "survey", "follow-up"])
def test_customer_request_by_a_stranger_is_reported(
    desk: SupportDesk, clock: ManualClock, kind: str
) -> None:
    """An escalation request, a survey answer or a follow-up recorded with a stranger's
    address is reported at that event."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    if kind != "escalation":
        desk.solve(tid, agent="bob", solution="done")
        clock.advance(days=8)
        desk.run_due_timers()
    ticket = desk._load(tid)
    policy = desk.policy_for(tid)
    stranger = sealed(desk, ticket, "mallory@example.com")
    if kind == "escalation":
        ticket.request_escalation(
            policy,
            by=stranger,
            reason="now",
            requested_severity=None,
            contact=None,
            at=clock.now(),
            role=Role.CC,
        )
    elif kind == "survey":
        ticket.answer_survey(
            policy, rating=1, comment="", by=stranger, at=clock.now(), role=Role.CC
        )
    else:
        desk.customer_reply(tid, body="again")  # a real follow-up, then a forged one
        ticket = desk._load(tid)
        ticket.record_follow_up(
            follow_up_id=ticket.follow_ups[0], by=stranger, message_id=None, at=clock.now()
        )
    desk.application.save(ticket)
    assert [position for position, _ in permission(audit(desk))] == [ticket.version]


def test_cc_change_recorded_as_the_requesters_by_a_cc_is_reported(desk: SupportDesk) -> None:
    """A CC change whose role says requester but whose `by` is a CC address is reported
    ("not the requester"); the change itself still counts for later events."""
    tid = desk.submit(requester="ann@example.com", subject="x", cc=["cy@example.com"])
    ticket = desk._load(tid)
    ticket.add_cc(
        desk.policy_for(tid),
        address=sealed(desk, ticket, "dee@example.com"),
        by=sealed(desk, ticket, "cy@example.com"),
        role=Role.REQUESTER,
        at=START,
    )
    desk.application.save(ticket)
    desk.customer_reply(tid, body="hello", by="dee@example.com")
    found = permission(audit(desk))
    assert [position for position, _ in found] == [3]
    assert "by someone who is not the requester" in found[0][1]


def test_by_copied_from_another_tickets_event_is_reported(sqlite_url: str) -> None:
    """A stored reply whose sealed `by` was replaced with the `by` of another ticket's reply
    (another requester's key) is reported at that event."""
    clock = ManualClock(START)
    with SupportDesk(sqlite_url, clock=clock) as desk:
        first = desk.submit(requester="ann@example.com", subject="x")
        second = desk.submit(requester="ben@example.com", subject="y")
        for tid in (first, second):
            desk.request_info(tid, agent="bob", body="?")
            clock.advance(minutes=5)
            desk.customer_reply(tid, body="answer")
    db = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    with db:
        rows = db.execute(
            "SELECT rowid, originator_id, originator_version, state FROM stored_events "
            "WHERE topic LIKE '%Ticket.Responded' AND instr(state, ?) > 0 ORDER BY rowid",
            (b'"role":"customer"',),
        ).fetchall()
        assert len(rows) == 2
        (rowid, _, version, state), (_, _, _, other) = rows
        other_by = json.loads(other)["by"]
        replacement = json.dumps({"by": other_by})[1:-1].encode()
        changed = re.sub(rb'"by":"[^"]*"', lambda _: replacement, state, count=1)
        db.execute("UPDATE stored_events SET state=? WHERE rowid=?", (changed, rowid))
    db.close()
    report = audit_store(sqlite_url)
    found = [(v.ticket_id, v.position) for v in report.violations if v.rule == "permission"]
    assert found == [(first, version)]


def test_customer_check_follows_a_closed_ticket_restored_from_the_ledger(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """A survey answered after the ticket closed (its record packed away and restored) is
    checked against the CC list it had: a CC passes, a removed CC is reported."""
    tid = desk.submit(requester="ann@example.com", subject="x", cc=["cy@example.com"])
    desk.add_cc(tid, "dee@example.com")
    desk.remove_cc(tid, "dee@example.com")
    desk.solve(tid, agent="bob", solution="done")
    clock.advance(days=8)
    desk.run_due_timers()
    ticket = desk._load(tid)
    ticket.answer_survey(
        desk.policy_for(tid),
        rating=2,
        comment="",
        by=sealed(desk, ticket, "dee@example.com"),
        at=clock.now() + timedelta(minutes=1),
        role=Role.CC,
    )
    desk.application.save(ticket)
    assert [position for position, _ in permission(audit(desk))] == [ticket.version]
