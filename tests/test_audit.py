"""The auditor: lifecycle rules against the policy in force, as-of, what-if, history, reports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest

from supportflow import (
    ManualClock,
    Severity,
    Status,
    SupportDesk,
    SupportPolicy,
    Ticket,
    TicketNotFound,
)
from supportflow._records import PolicyRecord, follow_up_id
from supportflow.audit import (
    Auditor,
    AuditReport,
    PolicyRegistry,
    policy_from_toml,
    policy_to_toml,
    report_html,
    report_json,
    report_text,
)
from supportflow.policy import Action, Transition

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
def desk(
    request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> Iterator[SupportDesk]:
    """Every test on a memory store, and on a SQLite file (where `audit` also splits the
    audit over processes and checks the report is the same)."""
    store = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 't.db'}"
    with SupportDesk(store, clock=clock) as d:
        yield d


def audit(desk: SupportDesk, **options: Any) -> AuditReport:
    report = Auditor(desk).audit(**options)
    if desk.store.startswith("sqlite"):
        for workers in (2, 3):
            split = Auditor(desk).audit(workers=workers, **options)
            if not report.metrics.events:  # no instant in the log: the audit time is "now"
                split = attrs.evolve(split, audit_time=report.audit_time)
            assert report_json(split) == report_json(report)
            assert report_text(split) == report_text(report)
    return report


def rules(report: AuditReport) -> list[str]:
    return [v.rule for v in report.violations]


def lifecycle(desk: SupportDesk, clock: ManualClock) -> UUID:
    """Submit, assign, ask, answer, solve, reopen, solve, close, follow-up."""
    tid = desk.submit(requester="ann@example.com", subject="Cannot restore", message_id="<m1@x>")
    desk.assign(tid, agent="bob")
    clock.advance(hours=1)
    desk.request_info(tid, agent="bob", body="Which version?")
    clock.advance(hours=2)
    desk.customer_reply(tid, body="4.2", message_id="<m2@x>")
    desk.solve(tid, agent="bob", solution="Reinstall")
    clock.advance(days=1)
    desk.customer_reply(tid, body="Still broken", message_id="<m3@x>")
    desk.solve(tid, agent="bob", solution="Reinstall 4.2.1")
    clock.advance(days=4)
    desk.run_due_timers()
    desk.customer_reply(tid, body="Again", message_id="<m4@x>")
    return tid


def saved(desk: SupportDesk, ticket: Ticket) -> None:
    desk.application.save(ticket)


def test_valid_lifecycle_audits_clean_with_metrics(desk: SupportDesk, clock: ManualClock) -> None:
    """A lifecycle made through the desk has no violation; the metrics count what happened."""
    lifecycle(desk, clock)
    report = audit(desk)
    assert report.clean, report.violations
    m = report.metrics
    assert (m.tickets, m.reopens, m.follow_ups) == (2, 1, 1)
    assert (m.agent_solves, m.automatic_solves, m.automatic_closes) == (2, 0, 1)
    assert m.first_response.count == 1
    assert m.first_response.median == 3600.0
    assert dict(m.by_status) == {"NEW": 1, "OPEN": 0, "PENDING": 0, "SOLVED": 0, "CLOSED": 1}


def test_automatic_solve_and_close_audit_clean(desk: SupportDesk, clock: ManualClock) -> None:
    """Pending auto-solve then auto-close, written late by the worker, are on time."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.request_info(tid, agent="bob", body="?")
    clock.advance(days=12)
    desk.run_due_timers()
    report = audit(desk)
    assert report.clean, report.violations
    assert report.metrics.automatic_solves == 1
    assert report.metrics.automatic_closes == 1
    assert report.metrics.max_timer_lag_seconds is not None
    assert report.metrics.max_timer_lag_seconds > 0


def test_manual_close_is_a_transition_violation(desk: SupportDesk) -> None:
    """A Closed that no timer produced is reported as a forbidden transition at its position."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    ticket = desk._load(tid)
    ticket.trigger_event(Ticket.Closed, timestamp=START, automatic=False, written_at=None)
    saved(desk, ticket)
    report = audit(desk)
    (violation,) = [v for v in report.violations if v.rule == "transition"]
    assert (violation.ticket_id, violation.position) == (tid, 2)
    assert str(tid) in violation.message


def test_automatic_close_off_its_due_instant_is_reported(desk: SupportDesk) -> None:
    """An automatic Closed stamped one day after solving (due: three days) is off its instant."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.solve(tid, agent="bob", solution="done")
    ticket = desk._load(tid)
    early = START + timedelta(days=1)
    ticket.trigger_event(Ticket.Closed, timestamp=early, automatic=True, written_at=early)
    saved(desk, ticket)
    assert "timer-instant" in rules(audit(desk))


def test_event_after_a_due_timer_that_did_not_fire_is_reported(desk: SupportDesk) -> None:
    """A reply recorded after the close instant without the close first breaks the timer rule."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.solve(tid, agent="bob", solution="done")
    ticket = desk._load(tid)
    policy = desk.policy_for(tid)
    ticket.customer_reply(
        policy,
        by=ticket.requester,
        body="late",
        message_id=None,
        auto_submitted=False,
        at=START + timedelta(days=5),
    )
    saved(desk, ticket)
    report = audit(desk)
    assert "timer-missed" in rules(report)
    assert any(v.position == 3 for v in report.violations if v.rule == "timer-missed")


def test_overdue_unwritten_timer_is_reported_at_audit_time(desk: SupportDesk) -> None:
    """A close timer due before the audit time (beyond the grace) and not written is overdue."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.solve(tid, agent="bob", solution="done")
    report = audit(desk, as_of=START + timedelta(days=4))
    assert rules(report) == ["timer-overdue"]
    assert report.violations[0].ticket_id == tid


def test_timer_not_yet_due_at_audit_time_is_clean(desk: SupportDesk) -> None:
    """The same ticket audited before its close instant is clean."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.solve(tid, agent="bob", solution="done")
    assert audit(desk, as_of=START + timedelta(days=2)).clean
    del tid


def test_grace_covers_worker_lag(desk: SupportDesk) -> None:
    """A timer due 30 minutes before the audit time is not overdue with a one-hour grace."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.solve(tid, agent="bob", solution="done")
    due = desk.get(tid).close_due_at
    assert due is not None
    later = due + timedelta(minutes=30)
    assert audit(desk, as_of=later, grace=timedelta(hours=1)).clean
    assert rules(audit(desk, as_of=later, grace=timedelta(0))) == ["timer-overdue"]


def test_unknown_policy_version_is_reported_not_raised(desk: SupportDesk) -> None:
    """A ticket under a policy the store does not hold is a violation; passing it fixes that."""
    other = SupportPolicy(name="other", close_after_days=9)
    ticket = Ticket.submit(
        ticket_id=uuid4(),
        policy=other,
        at=START,
        requester="ann@example.com",
        subject="x",
        description="",
        severity=Severity.MEDIUM,
        channel="web",
        product={},
        tags=[],
    )
    saved(desk, ticket)
    assert rules(audit(desk)) == ["unknown-policy"]
    assert Auditor(desk, policies=[other]).audit().clean


def test_same_message_taking_effect_twice_is_reported(desk: SupportDesk) -> None:
    """Two tickets submitted by one message id: the second is a duplicate effect."""
    for _ in range(2):
        ticket = Ticket.submit(
            ticket_id=uuid4(),
            policy=desk.policy,
            at=START,
            requester="ann@example.com",
            subject="x",
            description="",
            severity=Severity.MEDIUM,
            channel="web",
            product={},
            tags=[],
            message_id="dup@mail",
        )
        saved(desk, ticket)
    assert rules(audit(desk)) == ["duplicate-message"]


def test_follow_up_link_to_missing_ticket_is_reported(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """A FollowUpCreated whose follow-up ticket does not exist breaks the link rule."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.solve(tid, agent="bob", solution="done")
    clock.advance(days=4)
    desk.run_due_timers()
    ticket = desk._load(tid)
    ticket.record_follow_up(
        follow_up_id=follow_up_id(tid, 1), by=ticket.requester, message_id=None, at=clock.now()
    )
    saved(desk, ticket)
    report = audit(desk)
    assert rules(report) == ["follow-up-link"]
    assert report.violations[0].ticket_id == tid


def test_recorded_status_other_than_the_policy_gives_is_a_fact_violation(
    desk: SupportDesk,
) -> None:
    """An Assigned recording PENDING (the table says OPEN) is reported."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    ticket = desk._load(tid)
    ticket.trigger_event(
        Ticket.Assigned, timestamp=START, agent="bob", previous=None, status="pending"
    )
    saved(desk, ticket)
    assert rules(audit(desk)) == ["fact"]


def test_time_going_backwards_is_reported(desk: SupportDesk) -> None:
    """An event stamped before the ticket's previous event breaks the time rule."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    ticket = desk._load(tid)
    ticket.trigger_event(
        Ticket.Assigned,
        timestamp=START - timedelta(minutes=1),
        agent="bob",
        previous=None,
        status="open",
    )
    saved(desk, ticket)
    assert rules(audit(desk)) == ["time-order"]


def test_changed_policy_record_is_reported(desk: SupportDesk) -> None:
    """A stored policy whose content does not fingerprint to its version is not used."""
    record = PolicyRecord.adopt(
        version="default:0000000000000000", policy=SupportPolicy().to_dict(), at=START
    )
    desk.application.save(record)
    report = audit(desk)
    assert rules(report) == ["policy-record"]
    assert "default:0000000000000000" not in report.policies


def test_registry_holds_every_policy_the_desk_adopted(desk: SupportDesk) -> None:
    """`use_policy` stores the policy; the auditor's registry finds it; unknown is None."""
    longer = SupportPolicy(name="longer", close_after_days=5)
    desk.use_policy(longer)
    registry = Auditor(desk).policy_registry()
    assert registry.get(longer.version) == longer
    assert SupportPolicy().version in registry
    assert registry.get("nope:1") is None


def test_registry_refuses_non_policies() -> None:
    """Adding something that is not a SupportPolicy raises TypeError."""
    with pytest.raises(TypeError):
        PolicyRegistry([object()])  # type: ignore[list-item]


def test_as_of_audits_the_state_at_that_instant(desk: SupportDesk, clock: ManualClock) -> None:
    """Before the solve, the as-of audit sees an OPEN ticket and no solve; so does get(as_of)."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.reply(tid, agent="bob", body="hi")
    clock.advance(hours=5)
    desk.solve(tid, agent="bob", solution="done")
    before = START + timedelta(hours=1)
    report = audit(desk, as_of=before)
    assert report.clean
    assert report.audit_time == before
    assert dict(report.metrics.by_status)["OPEN"] == 1
    assert report.metrics.agent_solves == 0
    assert desk.get(tid, as_of=before).status is Status.OPEN


def test_as_of_excludes_tickets_submitted_later(desk: SupportDesk, clock: ManualClock) -> None:
    """A ticket submitted after the as-of instant is not counted."""
    desk.submit(requester="ann@example.com", subject="x")
    clock.advance(days=1)
    desk.submit(requester="raj@example.com", subject="y")
    report = audit(desk, as_of=START + timedelta(hours=1))
    assert report.metrics.events == 1
    assert sum(count for _, count in report.metrics.by_status) == 1


def test_what_if_longer_close_reports_later_closes_and_reopens(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """Under a 5-day close, a reply on day 4 would have reopened instead of following up."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.solve(tid, agent="bob", solution="done")
    clock.advance(days=4)
    desk.customer_reply(tid, body="again")
    report = audit(desk, what_if=SupportPolicy(close_after_days=5))
    assert report.what_if is not None
    sentences = report.what_if.sentences()
    assert "1 reply would have reopened the ticket instead of creating follow-ups" in sentences
    assert report.what_if.reply_outcomes == (("follow_up", "reopen", 1),)


def test_what_if_shorter_close_reports_earlier_closes(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """Under a 1-day close, every closed ticket would have closed earlier."""
    for _ in range(3):
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="done")
    clock.advance(days=4)
    desk.run_due_timers()
    report = audit(desk, what_if=SupportPolicy(close_after_days=1))
    assert report.what_if is not None
    assert report.what_if.close_earlier == 3
    assert "3 tickets would close earlier" in report.what_if.sentences()


def test_what_if_same_policy_finds_no_difference(desk: SupportDesk, clock: ManualClock) -> None:
    """Replaying under the policy in force changes nothing."""
    lifecycle(desk, clock)
    report = audit(desk, what_if=SupportPolicy())
    assert report.what_if is not None
    assert report.what_if.sentences() == ["no difference in 2 ticket(s)"]


def test_history_says_who_what_when_and_automatic(desk: SupportDesk, clock: ManualClock) -> None:
    """The timeline names people, marks the automatic close and shows Chicago wall time."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.solve(tid, agent="bob", solution="done")
    clock.advance(days=4)
    desk.run_due_timers()
    history = Auditor(desk).history(tid)
    assert [e.kind for e in history.entries] == ["Submitted", "Solved", "Closed"]
    assert [e.who for e in history.entries] == ["ann@example.com", "bob", "system"]
    assert [e.automatic for e in history.entries] == [False, False, True]
    assert history.entries[0].local == "2026-03-02 09:00:00 CST"
    assert history.entries[2].local == "2026-03-05 09:00:00 CST"
    assert history.status == "closed"


def test_history_as_of_stops_at_that_instant(desk: SupportDesk, clock: ManualClock) -> None:
    """As of before the solve, the history ends with the submission."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    clock.advance(hours=2)
    desk.solve(tid, agent="bob", solution="done")
    history = Auditor(desk).history(tid, as_of=START + timedelta(hours=1))
    assert [e.kind for e in history.entries] == ["Submitted"]


def test_history_of_unknown_ticket_raises_ticket_not_found(desk: SupportDesk) -> None:
    """An id with no ticket raises TicketNotFound."""
    with pytest.raises(TicketNotFound):
        Auditor(desk).history(uuid4())


def test_toml_round_trip_gives_an_equal_policy() -> None:
    """A policy written as TOML reads back equal (same version), custom table included."""
    rows = tuple(r for r in SupportPolicy().transitions if r.action is not Action.AUTO_SOLVE)
    policy = SupportPolicy(
        name='a "quoted" name', zone="Europe/London", close_after_days=5, transitions=rows
    )
    again = policy_from_toml(policy_to_toml(policy))
    assert again == policy
    assert again.version == policy.version
    assert all(isinstance(r, Transition) for r in again.transitions)


def test_toml_without_table_uses_the_default_table() -> None:
    """Omitted fields take their defaults."""
    policy = policy_from_toml('name = "short"\nclose_after_days = 1\n')
    assert policy == SupportPolicy(name="short", close_after_days=1)


@pytest.mark.parametrize(
    ("text", "match"),
    [("close_after_days = ", "not valid TOML"), ("closing = 3", "unknown policy field")],
)
def test_bad_toml_policy_raises_value_error(text: str, match: str) -> None:
    """Malformed TOML and unknown keys raise ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=match):
        policy_from_toml(text)


def test_text_and_json_reports_carry_the_result(desk: SupportDesk, clock: ManualClock) -> None:
    """The text report says CLEAN; the JSON report parses and says clean."""
    lifecycle(desk, clock)
    report = audit(desk)
    assert "result: CLEAN" in report_text(report)
    data = json.loads(report_json(report))
    assert data["clean"] is True
    assert data["metrics"]["tickets"] == 2


def test_html_report_escapes_user_text_and_draws_timelines(desk: SupportDesk) -> None:
    """A subject with markup appears escaped; each timeline is an inline SVG."""
    desk.submit(requester="<b>x</b>@example.com", subject="<script>alert(1)</script>")
    page = report_html(Auditor(desk).audit(timelines=5))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<svg") == 1
