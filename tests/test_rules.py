"""One test per rule of DESIGN §1 that the core covers (the default policy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from supportflow import (
    InvalidCommand,
    ManualClock,
    Severity,
    Status,
    SupportDesk,
    SupportPolicy,
    TicketNotFound,
    TransitionRejected,
)
from supportflow.policy import Action

from .conftest import START

FRI_10_CST = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)  # Fri 2026-03-06 10:00 America/Chicago
MON_10_CDT = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)  # Mon 2026-03-09 10:00 America/Chicago


def names(desk: SupportDesk, tid: UUID) -> list[str]:
    """The ticket's event names, without update-SLA breaches (tested in test_sla.py)."""
    return [type(e).__name__ for e in desk.history(tid) if type(e).__name__ != "UpdateOverdue"]


def solved_ticket(desk: SupportDesk, at: datetime = FRI_10_CST) -> UUID:
    tid = desk.submit(requester="ann@example.com", subject="Cannot restore", at=at)
    desk.solve(tid, agent="bob", solution="Reinstall", at=at)
    return tid


# -- severity -------------------------------------------------------------------------------


def test_severity_defaults_to_medium_when_not_given(desk: SupportDesk) -> None:
    """A ticket submitted without a severity is MEDIUM."""
    tid = desk.submit(requester="ann@example.com", subject="Question")
    assert desk.get(tid).severity is Severity.MEDIUM


def test_severity_levels_are_ordered_with_definitions() -> None:
    """1 CRITICAL is the worst, 4 LOW the mildest; each level has its vendor definition."""
    assert [s.value for s in Severity] == [1, 2, 3, 4]
    assert "restore" in Severity.CRITICAL.definition
    assert "workaround" in Severity.HIGH.definition
    assert "suggestion" in Severity.LOW.definition


def test_severity_change_records_who_and_why(desk: SupportDesk) -> None:
    """Changing the severity is a `SeverityChanged` event with the previous level, who and why."""
    tid = desk.submit(requester="ann@example.com", subject="Slow")
    desk.change_severity(tid, Severity.HIGH, by="carol", reason="production down")
    event = desk.history(tid)[-1]
    assert type(event).__name__ == "SeverityChanged"
    assert (event.severity, event.previous, event.by, event.reason) == (  # type: ignore[attr-defined]
        2,
        3,
        "carol",
        "production down",
    )
    assert desk.get(tid).severity is Severity.HIGH


def test_severity_change_to_same_level_records_nothing(desk: SupportDesk) -> None:
    """A severity change that is already satisfied changes nothing."""
    tid = desk.submit(requester="ann@example.com", subject="Slow")
    desk.change_severity(tid, "medium", by="carol", reason="same")
    assert names(desk, tid) == ["Submitted"]


def test_unknown_severity_is_refused_with_the_accepted_values(desk: SupportDesk) -> None:
    """An unknown severity raises InvalidCommand listing the accepted levels."""
    with pytest.raises(InvalidCommand, match="CRITICAL"):
        desk.submit(requester="ann@example.com", subject="x", severity=7)


# -- agent responses ------------------------------------------------------------------------


def test_agent_reply_makes_new_ticket_open(desk: SupportDesk) -> None:
    """An agent reply to a NEW ticket makes it OPEN."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.reply(tid, agent="bob", body="On it")
    assert desk.get(tid).status is Status.OPEN


def test_assign_makes_new_ticket_open_and_records_agent(desk: SupportDesk) -> None:
    """Assigning a NEW ticket makes it OPEN with the agent as assignee."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.assign(tid, agent="bob")
    view = desk.get(tid)
    assert (view.status, view.assignee) == (Status.OPEN, "bob")


def test_request_info_makes_ticket_pending(desk: SupportDesk) -> None:
    """Asking the customer for input makes the ticket PENDING with an auto-solve due."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.request_info(tid, agent="bob", body="Which version?")
    view = desk.get(tid)
    assert view.status is Status.PENDING
    # 7 calendar days from Mon 09:00 CST is Mon 09:00 CDT: the 2026-03-08 change makes it 167 h
    assert view.solve_due_at == START + timedelta(days=7) - timedelta(hours=1)


def test_solve_makes_ticket_solved_with_close_due(desk: SupportDesk) -> None:
    """A solution makes the ticket SOLVED and arms the close timer."""
    tid = solved_ticket(desk)
    view = desk.get(tid, as_of=FRI_10_CST)
    assert view.status is Status.SOLVED
    assert view.close_due_at == MON_10_CDT


def test_solve_on_solved_ticket_records_nothing(desk: SupportDesk) -> None:
    """Solving an already solved ticket is satisfied already: nothing is recorded."""
    tid = solved_ticket(desk)
    desk.solve(tid, agent="bob", solution="again", at=FRI_10_CST + timedelta(hours=1))
    assert names(desk, tid) == ["Submitted", "Solved"]


# -- solved -> closed -----------------------------------------------------------------------


def test_close_is_three_calendar_days_wall_clock_across_dst() -> None:
    """Solved Fri 2026-03-06 10:00 CST closes Mon 2026-03-09 10:00 CDT: 71 elapsed hours."""
    due = SupportPolicy().close_due_at(FRI_10_CST)
    assert due == MON_10_CDT
    assert due - FRI_10_CST == timedelta(hours=71)


def test_auto_close_is_stamped_with_its_due_instant(clock: ManualClock) -> None:
    """The worker writes `Closed` (automatic) stamped at the due instant, plus when it wrote it."""
    clock.set(FRI_10_CST)
    with SupportDesk(clock=clock) as desk:
        tid = solved_ticket(desk)
        clock.advance(days=5)
        assert desk.run_due_timers() == 1
        closed = desk.history(tid)[-1]
        assert type(closed).__name__ == "Closed"
        assert closed.timestamp == MON_10_CDT
        assert closed.automatic is True  # type: ignore[attr-defined]
        assert closed.written_at == clock.now()  # type: ignore[attr-defined]


def test_run_due_timers_is_idempotent(clock: ManualClock) -> None:
    """Running the timers again writes nothing more."""
    clock.set(FRI_10_CST)
    with SupportDesk(clock=clock) as desk:
        solved_ticket(desk)
        clock.advance(days=4)
        assert desk.run_due_timers() == 1
        assert desk.run_due_timers() == 0


def test_get_shows_due_close_as_applied_before_any_worker_runs(clock: ManualClock) -> None:
    """No reader sees SOLVED after the close instant: `get` applies due timers (unwritten)."""
    clock.set(FRI_10_CST)
    with SupportDesk(clock=clock) as desk:
        tid = solved_ticket(desk)
        clock.set(MON_10_CDT)
        view = desk.get(tid)
        assert view.status is Status.CLOSED
        assert view.unwritten_timer_events == 1
        assert names(desk, tid) == ["Submitted", "Solved"]


# -- replies before closure -----------------------------------------------------------------


def test_customer_reply_before_close_reopens_and_cancels_timer(desk: SupportDesk) -> None:
    """A reply to SOLVED before its close time records `Reopened` then the reply: OPEN."""
    tid = solved_ticket(desk)
    landed = desk.customer_reply(tid, body="Still broken", at=FRI_10_CST + timedelta(days=1))
    assert landed == tid
    assert names(desk, tid)[-2:] == ["Reopened", "Responded"]
    view = desk.get(tid, as_of=FRI_10_CST + timedelta(days=1))
    assert (view.status, view.close_due_at, view.reopen_count) == (Status.OPEN, None, 1)


def test_customer_reply_at_due_minus_one_second_still_reopens(desk: SupportDesk) -> None:
    """A reply one second before the close instant still reopens the ticket."""
    tid = solved_ticket(desk)
    desk.customer_reply(tid, body="wait", at=MON_10_CDT - timedelta(seconds=1))
    assert desk.get(tid, as_of=MON_10_CDT).status is Status.OPEN


def test_customer_reply_at_due_instant_sees_ticket_closed(desk: SupportDesk) -> None:
    """A reply exactly at the close instant finds it CLOSED and becomes a follow-up."""
    tid = solved_ticket(desk)
    landed = desk.customer_reply(tid, body="late", at=MON_10_CDT)
    assert landed != tid
    assert names(desk, tid) == ["Submitted", "Solved", "Closed", "FollowUpCreated"]


def test_customer_reply_to_pending_makes_it_open(desk: SupportDesk) -> None:
    """A customer reply to a PENDING ticket makes it OPEN and stops the auto-solve timer."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.request_info(tid, agent="bob", body="Which version?")
    desk.customer_reply(tid, body="4.2")
    view = desk.get(tid)
    assert (view.status, view.solve_due_at) == (Status.OPEN, None)


def test_customer_reply_to_new_keeps_it_new(desk: SupportDesk) -> None:
    """A customer adding to a NEW ticket is recorded; it stays NEW until an agent acts."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.customer_reply(tid, body="more details")
    assert desk.get(tid).status is Status.NEW
    assert names(desk, tid) == ["Submitted", "Responded"]


def test_agent_reply_to_solved_reopens(desk: SupportDesk) -> None:
    """An agent reply to a SOLVED ticket records `Reopened`, then it is OPEN."""
    tid = solved_ticket(desk)
    desk.reply(tid, agent="bob", body="One more thing", at=FRI_10_CST + timedelta(hours=2))
    assert names(desk, tid)[-2:] == ["Reopened", "Responded"]
    assert desk.get(tid, as_of=FRI_10_CST + timedelta(hours=2)).status is Status.OPEN


# -- reply to closed ------------------------------------------------------------------------


def closed_ticket(desk: SupportDesk) -> UUID:
    tid = desk.submit(
        requester="ann@example.com",
        subject="Cannot restore",
        severity=Severity.HIGH,
        product={"product": "CrashPlan PRO", "os": "macOS 14"},
        tags=["restore", "vip"],
        at=FRI_10_CST,
    )
    desk.assign(tid, agent="bob", at=FRI_10_CST)
    desk.reply(tid, agent="bob", body="conversation text", at=FRI_10_CST)
    desk.solve(tid, agent="bob", solution="Reinstall", at=FRI_10_CST)
    return tid


def test_reply_to_closed_creates_follow_up_linked_both_ways(desk: SupportDesk) -> None:
    """A reply to a CLOSED ticket creates a new ticket; each names the other."""
    tid = closed_ticket(desk)
    new = desk.customer_reply(tid, body="It broke again", at=MON_10_CDT + timedelta(days=1))
    assert desk.get(new).follow_up_of == tid
    assert desk.get(tid).follow_ups == (new,)
    assert desk.get(tid).status is Status.CLOSED


def test_follow_up_copies_fields_but_not_conversation_or_assignee(desk: SupportDesk) -> None:
    """The follow-up copies requester, subject, severity, product and tags; not the assignee."""
    tid = closed_ticket(desk)
    new = desk.customer_reply(tid, body="It broke again", at=MON_10_CDT + timedelta(days=1))
    view = desk.get(new)
    assert (view.requester, view.subject, view.severity) == (
        "ann@example.com",
        "Cannot restore",
        Severity.HIGH,
    )
    assert view.product_fields == {"product": "CrashPlan PRO", "os": "macOS 14"}
    assert view.tags == ("restore", "vip")
    assert view.assignee is None
    assert view.description == "It broke again"
    assert names(desk, new) == ["Submitted"]


def test_follow_up_is_saved_in_one_write_with_the_link(desk: SupportDesk) -> None:
    """`FollowUpCreated` and the new `Submitted` land together in the log, one after the other."""
    tid = closed_ticket(desk)
    new = desk.customer_reply(tid, body="again", at=MON_10_CDT + timedelta(days=1))
    log = list(desk.application.recorder.select_notifications(start=1, limit=1000))
    positions = {(n.originator_id, n.originator_version): n.id for n in log}
    link = positions[(tid, len(desk.history(tid)))]
    created = positions[(new, 1)]
    assert abs(link - created) == 1


def test_reply_to_closed_lands_on_open_follow_up(desk: SupportDesk) -> None:
    """While the latest follow-up is not CLOSED, further replies to the closed ticket land on it."""
    tid = closed_ticket(desk)
    first = desk.customer_reply(tid, body="again", at=MON_10_CDT + timedelta(days=1))
    second = desk.customer_reply(tid, body="and again", at=MON_10_CDT + timedelta(days=2))
    assert second == first
    assert desk.get(tid).follow_ups == (first,)
    assert names(desk, first) == ["Submitted", "Responded"]


def test_reply_to_closed_after_follow_up_closed_creates_another(desk: SupportDesk) -> None:
    """When the latest follow-up is closed too, the next reply starts a second follow-up."""
    tid = closed_ticket(desk)
    t1 = MON_10_CDT + timedelta(days=1)
    first = desk.customer_reply(tid, body="again", at=t1)
    desk.solve(first, agent="bob", solution="fixed", at=t1)
    second = desk.customer_reply(tid, body="third time", at=t1 + timedelta(days=10))
    assert second not in (tid, first)
    assert desk.get(tid).follow_ups == (first, second)


def test_follow_up_runs_under_current_policy(tmp_path: object, sqlite_url: str) -> None:
    """A follow-up records the desk's current policy, not the closed ticket's."""
    old = SupportPolicy(name="old", close_after_days=3)
    new = SupportPolicy(name="new", close_after_days=5)
    with SupportDesk(sqlite_url, policy=old, clock=ManualClock(FRI_10_CST)) as desk:
        tid = closed_ticket(desk)
    with SupportDesk(sqlite_url, policy=new, clock=ManualClock(FRI_10_CST)) as desk:
        follow_up = desk.customer_reply(tid, body="again", at=MON_10_CDT + timedelta(days=1))
        assert desk.get(follow_up).policy_version == new.version
        assert desk.get(tid).policy_version == old.version


# -- pending -> solved ----------------------------------------------------------------------


def test_pending_ticket_auto_solves_after_seven_calendar_days(desk: SupportDesk) -> None:
    """A PENDING ticket the customer does not answer is `Solved` (automatic) 7 days later."""
    tid = desk.submit(requester="ann@example.com", subject="x", at=FRI_10_CST)
    desk.request_info(tid, agent="bob", body="logs?", at=FRI_10_CST)
    due = datetime(2026, 3, 13, 15, 0, tzinfo=UTC)  # Fri 10:00 CDT
    assert desk.get(tid, as_of=due - timedelta(seconds=1)).status is Status.PENDING
    assert desk.get(tid, as_of=due).status is Status.SOLVED
    desk.run_due_timers(now=due)
    solved = desk.history(tid)[-1]
    assert type(solved).__name__ == "Solved"
    assert solved.automatic is True  # type: ignore[attr-defined]
    assert solved.timestamp == due


def test_auto_solved_ticket_closes_three_days_later(desk: SupportDesk) -> None:
    """After the automatic solve, the ticket closes 3 calendar days later like any solved one."""
    tid = desk.submit(requester="ann@example.com", subject="x", at=FRI_10_CST)
    desk.request_info(tid, agent="bob", body="logs?", at=FRI_10_CST)
    solve_due = datetime(2026, 3, 13, 15, 0, tzinfo=UTC)
    desk.run_due_timers(now=solve_due + timedelta(days=3))
    assert names(desk, tid)[-2:] == ["Solved", "Closed"]
    assert desk.history(tid)[-1].timestamp == solve_due + timedelta(days=3)


def test_request_info_on_pending_restarts_seven_days(desk: SupportDesk) -> None:
    """Asking again while PENDING restarts the auto-solve clock from the new request."""
    tid = desk.submit(requester="ann@example.com", subject="x", at=START)
    desk.request_info(tid, agent="bob", body="logs?", at=START)
    desk.request_info(tid, agent="bob", body="still need logs", at=START + timedelta(days=5))
    assert desk.get(tid, as_of=START + timedelta(days=5)).solve_due_at == START + timedelta(
        days=12
    ) - timedelta(hours=1)  # crosses the 2026-03-08 DST change: wall clock kept


# -- auto-replies ---------------------------------------------------------------------------


@pytest.mark.parametrize("setup", ["pending", "solved", "closed"])
def test_auto_submitted_reply_never_changes_status(desk: SupportDesk, setup: str) -> None:
    """An auto-submitted message is recorded but never reactivates, reopens or follows up."""
    tid = desk.submit(requester="ann@example.com", subject="x", at=FRI_10_CST)
    if setup == "pending":
        desk.request_info(tid, agent="bob", body="?", at=FRI_10_CST)
    else:
        desk.solve(tid, agent="bob", solution="done", at=FRI_10_CST)
    at = MON_10_CDT + timedelta(hours=1) if setup == "closed" else FRI_10_CST + timedelta(hours=1)
    before = desk.get(tid, as_of=at).status
    landed = desk.customer_reply(tid, body="I am out of office", auto_submitted=True, at=at)
    assert landed == tid
    assert desk.get(tid, as_of=at).status is before
    assert desk.get(tid).follow_ups == ()
    last = desk.history(tid)[-1]
    assert type(last).__name__ == "Responded"
    assert last.auto_submitted is True  # type: ignore[attr-defined]


# -- refusals and errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    ["assign", "reply", "request_info", "solve", "change_severity"],
)
def test_closed_ticket_refuses_agent_commands(desk: SupportDesk, command: str) -> None:
    """CLOSED is final: every agent command raises TransitionRejected naming status and allowed."""
    tid = solved_ticket(desk)
    at = MON_10_CDT + timedelta(hours=1)
    calls = {
        "assign": lambda: desk.assign(tid, agent="bob", at=at),
        "reply": lambda: desk.reply(tid, agent="bob", body="x", at=at),
        "request_info": lambda: desk.request_info(tid, agent="bob", body="x", at=at),
        "solve": lambda: desk.solve(tid, agent="bob", solution="x", at=at),
        "change_severity": lambda: desk.change_severity(tid, 1, by="bob", reason="x", at=at),
    }
    with pytest.raises(TransitionRejected) as caught:
        calls[command]()
    assert caught.value.status is Status.CLOSED
    assert caught.value.ticket_id == tid
    assert caught.value.allowed == (Action.CUSTOMER_REPLY, Action.LINK_BUG, Action.ANSWER_SURVEY)
    assert "CLOSED" in str(caught.value)


def test_refused_command_keeps_timers_catch_up_applied(desk: SupportDesk) -> None:
    """A refused command records nothing of its own, but the close it caught up on is saved."""
    tid = solved_ticket(desk)
    with pytest.raises(TransitionRejected):
        desk.solve(tid, agent="bob", solution="x", at=MON_10_CDT)
    assert names(desk, tid) == ["Submitted", "Solved", "Closed"]


def test_ticket_never_returns_to_new() -> None:
    """No row of the default transition table leads to NEW from another status."""
    policy = SupportPolicy()
    assert all(
        row.to is not Status.NEW for row in policy.transitions if row.status is not Status.NEW
    )


def test_command_before_last_event_is_refused(desk: SupportDesk) -> None:
    """Time never goes backwards on a ticket: an earlier command raises InvalidCommand."""
    tid = desk.submit(requester="ann@example.com", subject="x", at=FRI_10_CST)
    with pytest.raises(InvalidCommand, match="before the ticket's last event"):
        desk.reply(tid, agent="bob", body="x", at=FRI_10_CST - timedelta(seconds=1))
    assert names(desk, tid) == ["Submitted"]


def test_naive_datetime_is_refused(desk: SupportDesk) -> None:
    """A naive `at` raises InvalidCommand (also a ValueError) and records nothing."""
    with pytest.raises(InvalidCommand, match="naive"):
        desk.submit(requester="ann@example.com", subject="x", at=datetime(2026, 3, 2, 9, 0))
    assert list(desk.ticket_ids()) == []


def test_empty_requester_is_refused(desk: SupportDesk) -> None:
    """An empty requester raises InvalidCommand."""
    with pytest.raises(InvalidCommand, match="requester"):
        desk.submit(requester="  ", subject="x")


def test_unknown_ticket_id_raises_ticket_not_found(desk: SupportDesk) -> None:
    """Commands and queries on an unknown id raise TicketNotFound (also a LookupError)."""
    unknown = UUID(int=42)
    with pytest.raises(TicketNotFound):
        desk.get(unknown)
    with pytest.raises(LookupError):
        desk.reply(unknown, agent="bob", body="x")
    with pytest.raises(TicketNotFound):
        desk.history(unknown)


def test_get_as_of_before_submission_raises_ticket_not_found(desk: SupportDesk) -> None:
    """The ticket as it was before it existed does not exist."""
    tid = desk.submit(requester="ann@example.com", subject="x", at=FRI_10_CST)
    with pytest.raises(TicketNotFound, match="did not exist yet"):
        desk.get(tid, as_of=FRI_10_CST - timedelta(seconds=1))


def test_get_as_of_shows_past_state(desk: SupportDesk) -> None:
    """`get(as_of=t)` rebuilds from the events stamped at or before t."""
    tid = desk.submit(requester="ann@example.com", subject="x", at=FRI_10_CST)
    desk.reply(tid, agent="bob", body="x", at=FRI_10_CST + timedelta(hours=1))
    desk.solve(tid, agent="bob", solution="x", at=FRI_10_CST + timedelta(hours=2))
    assert desk.get(tid, as_of=FRI_10_CST).status is Status.NEW
    assert desk.get(tid, as_of=FRI_10_CST + timedelta(hours=1)).status is Status.OPEN
    assert desk.get(tid, as_of=FRI_10_CST + timedelta(hours=2)).version == 3


# -- idempotency ----------------------------------------------------------------------------


def test_duplicate_submit_returns_same_ticket(desk: SupportDesk) -> None:
    """The same inbound message submitted twice is one ticket."""
    first = desk.submit(requester="ann@example.com", subject="x", message_id="<m1@mail>")
    again = desk.submit(requester="ann@example.com", subject="x", message_id="m1@mail")
    assert again == first
    assert list(desk.ticket_ids()) == [first]


def test_duplicate_customer_reply_takes_effect_once(desk: SupportDesk) -> None:
    """A customer reply delivered twice is recorded once."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.customer_reply(tid, body="hi", message_id="<m2@mail>")
    desk.customer_reply(tid, body="hi", message_id="<m2@mail>")
    assert names(desk, tid) == ["Submitted", "Responded"]


def test_duplicate_reply_to_closed_returns_same_follow_up(desk: SupportDesk) -> None:
    """A reply to a closed ticket delivered twice yields one follow-up, returned both times."""
    tid = closed_ticket(desk)
    at = MON_10_CDT + timedelta(days=1)
    first = desk.customer_reply(tid, body="again", message_id="<m3@mail>", at=at)
    again = desk.customer_reply(tid, body="again", message_id="<m3@mail>", at=at)
    assert again == first
    assert desk.get(tid).follow_ups == (first,)
    assert names(desk, first) == ["Submitted"]


# -- policy versions ------------------------------------------------------------------------


def test_changed_policy_applies_only_to_new_tickets(sqlite_url: str) -> None:
    """Tickets keep the policy version they were submitted under; new tickets use the new one."""
    clock = ManualClock(FRI_10_CST)
    with SupportDesk(sqlite_url, policy=SupportPolicy(close_after_days=3), clock=clock) as desk:
        old = solved_ticket(desk)
    with SupportDesk(sqlite_url, policy=SupportPolicy(close_after_days=10), clock=clock) as desk:
        new = solved_ticket(desk, at=FRI_10_CST + timedelta(minutes=1))
        assert desk.get(old, as_of=MON_10_CDT).status is Status.CLOSED
        assert desk.get(new, as_of=MON_10_CDT + timedelta(minutes=1)).status is Status.SOLVED
        assert desk.policy_for(old).close_after_days == 3
