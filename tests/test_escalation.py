"""Escalation (DESIGN §1): the customer requests it, a manager reviews it. Both are events;
bad input gets a clear error and changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from supportflow import (
    InvalidCommand,
    ManualClock,
    Severity,
    Status,
    SupportDesk,
    TransitionRejected,
)
from supportflow.audit import Auditor

MON_9 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
"""Monday 2026-03-02 09:00 CST."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MON_9)


@pytest.fixture
def desk(clock: ManualClock) -> Iterator[SupportDesk]:
    with SupportDesk(clock=clock) as d:
        yield d


@pytest.fixture
def tid(desk: SupportDesk) -> UUID:
    ticket = desk.submit(requester="ann@example.com", subject="Backups fail")
    desk.assign(ticket, agent="bob")
    return ticket


def names(desk: SupportDesk, tid: UUID) -> list[str]:
    return [type(e).__name__ for e in desk.history(tid)]


def escalate(desk: SupportDesk, tid: UUID, **kwargs: Any) -> None:
    args: dict[str, Any] = {
        "reason": "production is down",
        "requested_severity": Severity.CRITICAL,
        "contact": "+1 312 555 0100",
    }
    args.update(kwargs)
    desk.request_escalation(tid, **args)


# -- the happy path -----------------------------------------------------------------------------


def test_request_records_reason_severity_contact_and_requester(
    desk: SupportDesk, tid: UUID
) -> None:
    """`request_escalation` records `EscalationRequested` with reason, requested severity,
    contact and (by default) the requester as the one asking."""
    escalate(desk, tid)
    event: Any = desk.history(tid)[-1]
    assert type(event).__name__ == "EscalationRequested"
    assert (event.by, event.reason, event.requested_severity, event.contact) == (
        "ann@example.com",
        "production is down",
        int(Severity.CRITICAL),
        "+1 312 555 0100",
    )


def test_pending_request_is_shown_in_the_view(desk: SupportDesk, tid: UUID) -> None:
    """The view shows the request waiting for review and counts escalations."""
    escalate(desk, tid)
    view = desk.get(tid)
    assert view.pending_escalation is not None
    assert (view.pending_escalation.reason, view.pending_escalation.at) == (
        "production is down",
        MON_9,
    )
    assert view.escalations == 1


def test_request_changes_neither_severity_nor_status(desk: SupportDesk, tid: UUID) -> None:
    """A request alone decides nothing: severity and status stay until a manager reviews."""
    escalate(desk, tid)
    view = desk.get(tid)
    assert (view.severity, view.status) == (Severity.MEDIUM, Status.OPEN)


def test_accepted_review_records_review_severity_change_and_assignment(
    desk: SupportDesk, tid: UUID
) -> None:
    """Accepting with a severity and a new assignee records `EscalationReviewed`,
    `SeverityChanged` and `Assigned`, in that order, all by the manager's review."""
    escalate(desk, tid)
    before = len(desk.history(tid))
    desk.review_escalation(
        tid,
        manager="maria",
        accept=True,
        severity=Severity.CRITICAL,
        reassign_to="senior",
        note="confirmed outage",
    )
    new = desk.history(tid)[before:]
    assert [type(e).__name__ for e in new] == ["EscalationReviewed", "SeverityChanged", "Assigned"]
    review: Any = new[0]
    change: Any = new[1]
    assert (review.manager, review.accepted, review.note) == ("maria", True, "confirmed outage")
    assert (change.severity, change.previous, change.by) == (
        int(Severity.CRITICAL),
        int(Severity.MEDIUM),
        "maria",
    )


def test_accepted_review_updates_severity_assignee_and_clears_the_request(
    desk: SupportDesk, tid: UUID
) -> None:
    """After an accepted review the view has the new severity and assignee, no pending request."""
    escalate(desk, tid)
    desk.review_escalation(
        tid, manager="maria", accept=True, severity=Severity.HIGH, reassign_to="senior"
    )
    view = desk.get(tid)
    assert (view.severity, view.assignee, view.pending_escalation) == (
        Severity.HIGH,
        "senior",
        None,
    )


def test_accepted_review_retargets_the_update_clock(desk: SupportDesk, tid: UUID) -> None:
    """A severity raised by the review re-targets the update clock from its start: HIGH,
    4 business hours from Monday 09:00."""
    escalate(desk, tid)
    desk.review_escalation(tid, manager="maria", accept=True, severity=Severity.HIGH)
    assert desk.get(tid).update_due_at == MON_9 + timedelta(hours=4)


def test_accepted_review_without_changes_records_only_the_review(
    desk: SupportDesk, tid: UUID
) -> None:
    """Accepting with no severity and no reassignment records just `EscalationReviewed`."""
    escalate(desk, tid)
    before = names(desk, tid)
    desk.review_escalation(tid, manager="maria", accept=True, note="watching it")
    assert names(desk, tid) == [*before, "EscalationReviewed"]


def test_declined_review_records_the_review_and_changes_nothing_else(
    desk: SupportDesk, tid: UUID
) -> None:
    """Declining records `EscalationReviewed(accepted=False)`; severity and assignee stay."""
    escalate(desk, tid)
    desk.review_escalation(tid, manager="maria", accept=False, note="workaround exists")
    event: Any = desk.history(tid)[-1]
    view = desk.get(tid)
    assert (type(event).__name__, event.accepted) == ("EscalationReviewed", False)
    assert (view.severity, view.assignee, view.pending_escalation) == (
        Severity.MEDIUM,
        "bob",
        None,
    )


def test_a_new_request_is_allowed_after_a_review(desk: SupportDesk, tid: UUID) -> None:
    """Once reviewed, the customer may ask again; both requests are counted."""
    escalate(desk, tid)
    desk.review_escalation(tid, manager="maria", accept=False)
    escalate(desk, tid, reason="still down")
    view = desk.get(tid)
    assert view.escalations == 2
    assert view.pending_escalation is not None
    assert view.pending_escalation.reason == "still down"


def test_solved_ticket_can_be_escalated(desk: SupportDesk, tid: UUID) -> None:
    """A customer unhappy with a solution may escalate a SOLVED ticket before it closes."""
    desk.solve(tid, agent="bob", solution="Reboot")
    escalate(desk, tid)
    assert names(desk, tid)[-1] == "EscalationRequested"


# -- bad input changes nothing ------------------------------------------------------------------


def closed(desk: SupportDesk, tid: UUID, clock: ManualClock) -> None:
    desk.solve(tid, agent="bob", solution="Reboot")
    clock.advance(days=4)
    desk.run_due_timers()


def pending(desk: SupportDesk, tid: UUID, clock: ManualClock) -> None:
    escalate(desk, tid)


def declined_with(**kwargs: Any) -> Callable[[SupportDesk, UUID], None]:
    def review(desk: SupportDesk, tid: UUID) -> None:
        desk.review_escalation(tid, manager="maria", accept=False, **kwargs)

    return review


def nothing(desk: SupportDesk, tid: UUID, clock: ManualClock) -> None:
    return None


BAD: list[Any] = [
    pytest.param(
        nothing, lambda d, t: escalate(d, t, reason=""), InvalidCommand, "reason", id="empty-reason"
    ),
    pytest.param(
        nothing,
        lambda d, t: escalate(d, t, reason="   "),
        InvalidCommand,
        "reason",
        id="blank-reason",
    ),
    pytest.param(
        nothing,
        lambda d, t: escalate(d, t, requested_severity="urgentest"),
        InvalidCommand,
        "severity",
        id="unknown-severity",
    ),
    pytest.param(
        nothing,
        lambda d, t: escalate(d, t, contact=""),
        InvalidCommand,
        "contact",
        id="empty-contact",
    ),
    pytest.param(closed, escalate, TransitionRejected, "CLOSED", id="closed-ticket"),
    pytest.param(
        nothing,
        lambda d, t: d.review_escalation(t, manager="maria", accept=True),
        InvalidCommand,
        "no escalation request",
        id="review-without-request",
    ),
    pytest.param(pending, escalate, InvalidCommand, "already waiting", id="second-request"),
    pytest.param(
        pending,
        declined_with(severity=Severity.CRITICAL),
        InvalidCommand,
        "declined",
        id="declined-severity",
    ),
    pytest.param(
        pending,
        declined_with(reassign_to="senior"),
        InvalidCommand,
        "declined",
        id="declined-reassign",
    ),
    pytest.param(
        pending,
        lambda d, t: d.review_escalation(t, manager="", accept=True),
        InvalidCommand,
        "manager",
        id="empty-manager",
    ),
    pytest.param(
        pending,
        lambda d, t: d.review_escalation(t, manager="maria", accept="yes"),
        InvalidCommand,
        "accept",
        id="accept-not-bool",
    ),
    pytest.param(
        pending,
        lambda d, t: d.review_escalation(t, manager="maria", accept=True, severity=9),
        InvalidCommand,
        "severity",
        id="review-unknown-severity",
    ),
]


@pytest.mark.parametrize(("setup", "command", "error", "message"), BAD)
def test_bad_escalation_input_raises_a_clear_error_and_changes_nothing(
    desk: SupportDesk,
    tid: UUID,
    clock: ManualClock,
    setup: Callable[[SupportDesk, UUID, ManualClock], None],
    command: Callable[[SupportDesk, UUID], None],
    error: type[Exception],
    message: str,
) -> None:
    """Each bad escalation command raises its error (naming the problem) and records nothing:
    the ticket's history is the same before and after."""
    setup(desk, tid, clock)
    before = desk.history(tid)
    with pytest.raises(error, match=message):
        command(desk, tid)
    assert desk.history(tid) == before


def test_escalating_a_closed_ticket_names_the_allowed_actions(
    desk: SupportDesk, tid: UUID, clock: ManualClock
) -> None:
    """The refusal on a CLOSED ticket carries its status and what is still allowed."""
    closed(desk, tid, clock)
    with pytest.raises(TransitionRejected) as caught:
        escalate(desk, tid)
    assert caught.value.status is Status.CLOSED
    assert "request_escalation" not in {getattr(a, "value", a) for a in caught.value.allowed}


# -- the auditor agrees ---------------------------------------------------------------------------


def test_escalation_histories_audit_clean(desk: SupportDesk, tid: UUID, clock: ManualClock) -> None:
    """A store with requests, accepted and declined reviews, and refused bad input audits
    clean with no grace."""
    escalate(desk, tid)
    desk.review_escalation(
        tid, manager="maria", accept=True, severity=Severity.CRITICAL, reassign_to="senior"
    )
    escalate(desk, tid, reason="again", requested_severity=None, contact=None)
    with pytest.raises(InvalidCommand):
        escalate(desk, tid)
    desk.review_escalation(tid, manager="maria", accept=False)
    clock.advance(days=2)
    desk.run_due_timers()
    report = Auditor(desk).audit(grace=timedelta(0))
    assert report.violations == ()


def test_accepted_review_records_a_breach_due_by_the_new_severity_before_reassigning() -> None:
    """Raising a ticket to CRITICAL hours after submission makes its update overdue at once:
    the breach is recorded before the reassignment of the same review, and the audit is clean."""
    from datetime import UTC, datetime, timedelta

    from supportflow import ManualClock
    from supportflow.audit import Auditor

    t0 = datetime(2026, 3, 13, 20, 13, tzinfo=UTC)  # Fri 15:13 CDT
    clock = ManualClock(t0)
    with SupportDesk(clock=clock) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x", severity=2)
        desk.request_escalation(tid, reason="prod down")
        clock.advance(timedelta(hours=6))
        desk.review_escalation(
            tid, manager="maria", accept=True, severity=1, reassign_to="erin", note="ok"
        )
        names = [type(e).__name__ for e in desk.history(tid)]
        assert names[-3:] == ["SeverityChanged", "UpdateOverdue", "Assigned"]
        assert Auditor(desk).audit(grace=timedelta(0)).clean
