"""Satisfaction surveys on closed tickets, links to internal bug reports, and supported
software versions (DESIGN §1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from supportflow import (
    InvalidCommand,
    ManualClock,
    Status,
    SupportDesk,
    SupportPolicy,
    TransitionRejected,
)
from supportflow.audit import Auditor

MON_9 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
"""Monday 2026-03-02 09:00 CST."""
VERSIONED = SupportPolicy(current_major_version=5, supported_major_versions=2)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MON_9)


@pytest.fixture
def desk(clock: ManualClock) -> Iterator[SupportDesk]:
    with SupportDesk(clock=clock, policy=VERSIONED) as d:
        yield d


def submit(desk: SupportDesk, **kwargs: Any) -> UUID:
    return desk.submit(requester="ann@example.com", subject="Backups fail", **kwargs)


def close(desk: SupportDesk, tid: UUID, clock: ManualClock) -> None:
    desk.solve(tid, agent="bob", solution="Reinstall")
    clock.advance(days=4)
    desk.run_due_timers()


@pytest.fixture
def closed_tid(desk: SupportDesk, clock: ManualClock) -> UUID:
    tid = submit(desk)
    close(desk, tid, clock)
    return tid


# -- surveys ------------------------------------------------------------------------------------


def test_survey_answer_is_recorded_on_the_closed_ticket(
    desk: SupportDesk, closed_tid: UUID
) -> None:
    """`record_survey` records `SurveyAnswered` (rating, comment, the requester) on a CLOSED
    ticket, which stays CLOSED; the view shows the answer."""
    desk.record_survey(closed_tid, rating=4, comment="Quick and kind")
    event: Any = desk.history(closed_tid)[-1]
    view = desk.get(closed_tid)
    assert (type(event).__name__, event.rating, event.comment, event.by) == (
        "SurveyAnswered",
        4,
        "Quick and kind",
        "ann@example.com",
    )
    assert (view.status, view.survey_rating, view.survey_comment) == (
        Status.CLOSED,
        4,
        "Quick and kind",
    )


def test_survey_answer_creates_no_follow_up(desk: SupportDesk, closed_tid: UUID) -> None:
    """Answering the survey is not a reply: no follow-up ticket is created."""
    desk.record_survey(closed_tid, rating=2, comment="Took too long")
    assert desk.get(closed_tid).follow_ups == ()
    assert len(list(desk.ticket_ids())) == 1


def test_second_survey_answer_is_refused_and_the_first_kept(
    desk: SupportDesk, closed_tid: UUID
) -> None:
    """A second answer raises `InvalidCommand` and records nothing; the first answer stands."""
    desk.record_survey(closed_tid, rating=5)
    before = desk.history(closed_tid)
    with pytest.raises(InvalidCommand, match="answered already"):
        desk.record_survey(closed_tid, rating=1)
    assert desk.history(closed_tid) == before
    assert desk.get(closed_tid).survey_rating == 5


@pytest.mark.parametrize("rating", [0, 6, -1, 3.5, "5", True, None])
def test_survey_rating_outside_one_to_five_is_refused(
    desk: SupportDesk, closed_tid: UUID, rating: Any
) -> None:
    """Ratings must be whole numbers 1..5; anything else raises and records nothing."""
    before = desk.history(closed_tid)
    with pytest.raises(InvalidCommand, match="rating"):
        desk.record_survey(closed_tid, rating=rating)
    assert desk.history(closed_tid) == before


@pytest.mark.parametrize("rating", [1, 5])
def test_survey_rating_bounds_are_accepted(
    desk: SupportDesk, closed_tid: UUID, rating: int
) -> None:
    """1 and 5 are valid ratings."""
    desk.record_survey(closed_tid, rating=rating)
    assert desk.get(closed_tid).survey_rating == rating


@pytest.mark.parametrize("state", ["new", "open", "pending", "solved"])
def test_survey_on_a_ticket_not_closed_is_refused(desk: SupportDesk, state: str) -> None:
    """Only a CLOSED ticket takes a survey answer; otherwise `TransitionRejected`, nothing
    recorded."""
    tid = submit(desk)
    if state == "open":
        desk.reply(tid, agent="bob", body="hi")
    elif state == "pending":
        desk.request_info(tid, agent="bob", body="?")
    elif state == "solved":
        desk.solve(tid, agent="bob", solution="x")
    before = desk.history(tid)
    with pytest.raises(TransitionRejected, match="answer_survey"):
        desk.record_survey(tid, rating=3)
    assert desk.history(tid) == before


# -- bug links ----------------------------------------------------------------------------------


def test_link_bug_records_the_reference_and_who(desk: SupportDesk) -> None:
    """`link_bug` records `BugLinked` with the reference and the agent; the view lists it."""
    tid = submit(desk)
    desk.link_bug(tid, reference="BUG-101", by="bob")
    event: Any = desk.history(tid)[-1]
    assert (type(event).__name__, event.reference, event.by) == ("BugLinked", "BUG-101", "bob")
    assert desk.get(tid).bugs == ("BUG-101",)


def test_linking_the_same_bug_twice_records_nothing(desk: SupportDesk) -> None:
    """A second link to the same reference is already satisfied: no event."""
    tid = submit(desk)
    desk.link_bug(tid, reference="BUG-101", by="bob")
    before = desk.history(tid)
    desk.link_bug(tid, reference="BUG-101", by="carol")
    assert desk.history(tid) == before


def test_a_ticket_lists_its_bugs_in_link_order(desk: SupportDesk) -> None:
    """Several references are kept in the order they were linked."""
    tid = submit(desk)
    for reference in ("BUG-7", "BUG-3", "BUG-5"):
        desk.link_bug(tid, reference=reference, by="bob")
    assert desk.get(tid).bugs == ("BUG-7", "BUG-3", "BUG-5")


def test_tickets_for_bug_lists_tickets_in_link_order(desk: SupportDesk) -> None:
    """`tickets_for_bug` lists the linked tickets in the order they were linked (not
    submitted), each once, and not those linked to other bugs."""
    first, second, third = submit(desk), submit(desk), submit(desk)
    desk.link_bug(third, reference="BUG-9", by="bob")
    desk.link_bug(second, reference="BUG-1", by="bob")
    desk.link_bug(first, reference="BUG-9", by="bob")
    desk.link_bug(third, reference="BUG-9", by="carol")
    assert desk.tickets_for_bug("BUG-9") == [third, first]


def test_tickets_for_an_unknown_bug_is_empty(desk: SupportDesk) -> None:
    """A reference nobody linked has no tickets."""
    submit(desk)
    assert desk.tickets_for_bug("BUG-404") == []


def test_bug_can_be_linked_to_a_closed_ticket(desk: SupportDesk, closed_tid: UUID) -> None:
    """Linking is bookkeeping: a CLOSED ticket can still be linked to the bug it revealed."""
    desk.link_bug(closed_tid, reference="BUG-2", by="bob")
    assert desk.tickets_for_bug("BUG-2") == [closed_tid]


@pytest.mark.parametrize("field", ["reference", "by"])
def test_link_bug_with_empty_field_is_refused(desk: SupportDesk, field: str) -> None:
    """An empty reference or agent raises `InvalidCommand` and records nothing."""
    tid = submit(desk)
    before = desk.history(tid)
    args: dict[str, Any] = {"reference": "BUG-1", "by": "bob", field: " "}
    with pytest.raises(InvalidCommand, match=field):
        desk.link_bug(tid, **args)
    assert desk.history(tid) == before


# -- supported versions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("5.0", True),
        ("5.3.1", True),
        ("4.9.2", True),
        ("v4.2", True),
        ("3.8", False),
        ("1", False),
        (None, None),
        ("nightly", None),
    ],
)
def test_supported_version_flag_with_current_major_five(
    desk: SupportDesk, version: str | None, supported: bool | None
) -> None:
    """With current major 5 and 2 supported majors, 5.x and 4.x are supported, 3.x and older
    are flagged `supported=False`, and an unknown version is None."""
    tid = submit(desk, product_version=version)
    assert desk.get(tid).supported is supported


def test_unsupported_version_is_recorded_on_submitted(desk: SupportDesk) -> None:
    """The flag and the version are facts of the `Submitted` event."""
    tid = submit(desk, product_version="3.8")
    event: Any = desk.history(tid)[0]
    assert (event.product_version, event.supported) == ("3.8", False)


def test_unsupported_version_is_never_refused(desk: SupportDesk) -> None:
    """A ticket on an old major is taken and worked like any other."""
    tid = submit(desk, product_version="2.1")
    desk.reply(tid, agent="bob", body="Please upgrade")
    view = desk.get(tid)
    assert (view.status, view.supported) == (Status.OPEN, False)


def test_versions_are_not_judged_without_a_current_major(clock: ManualClock) -> None:
    """Without `current_major_version` no version is flagged (None)."""
    with SupportDesk(clock=clock) as desk:
        tid = submit(desk, product_version="1.0")
        assert desk.get(tid).supported is None


# -- the auditor agrees ---------------------------------------------------------------------------


def test_survey_bug_and_version_histories_audit_clean(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """A store with surveys (also a refused second one), bug links and flagged versions
    audits clean with no grace."""
    old = submit(desk, product_version="3.1")
    new = submit(desk, product_version="5.2")
    desk.link_bug(old, reference="BUG-1", by="bob")
    desk.link_bug(new, reference="BUG-1", by="bob")
    close(desk, old, clock)
    desk.record_survey(old, rating=3, comment="ok")
    with pytest.raises(InvalidCommand):
        desk.record_survey(old, rating=4)
    desk.link_bug(old, reference="BUG-2", by="bob")
    clock.advance(days=2)
    desk.run_due_timers()
    report = Auditor(desk).audit(grace=timedelta(0))
    assert report.violations == ()
