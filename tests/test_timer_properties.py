"""Property tests of the desk's timers: outcomes never depend on when (or whether) the timer
worker runs, the store alone rebuilds every ticket, and duplicate messages take effect once.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from supportflow import ManualClock, SupportDesk
from supportflow.testing import Outcome, Step, facts, histories, play

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
"""Monday 2026-03-02 09:00 in Chicago; ten-day waits reach across the March DST change."""

SECOND = timedelta(seconds=1)
MAX_WAIT = 10 * 86400
TIMER_EVENTS = {"Solved", "Closed", "UpdateOverdue"}

sequences = histories()
"""Generated histories (`supportflow.testing.histories`) for the default policy."""


@attrs.frozen
class Played:
    swept: SupportDesk
    """The desk whose worker ran at the generated moments."""
    unswept: SupportDesk
    """The desk whose worker never ran."""
    outcomes: tuple[tuple[Outcome, ...], ...]


@contextmanager
def play_twice(sequence: Sequence[Step], final_wait: int) -> Iterator[Played]:
    """Play `sequence` on two memory desks sharing one clock; only one runs the worker."""
    clock = ManualClock(START)
    with SupportDesk(clock=clock) as swept, SupportDesk(clock=clock) as unswept:
        outcomes = play(sequence, clock, swept, unswept, run_worker=(True, False))
        clock.advance(seconds=final_wait)
        yield Played(swept=swept, unswept=unswept, outcomes=tuple(outcomes))


final_waits = st.integers(min_value=0, max_value=MAX_WAIT)

# -- the worker does not change outcomes ----------------------------------------------------


@given(sequence=sequences, final_wait=final_waits)
def test_command_outcomes_equal_whether_or_not_worker_runs(
    sequence: list[Step], final_wait: int
) -> None:
    """Every command (including refused ones, by status and action) has the same outcome on a
    desk whose worker runs at arbitrary moments and on one whose worker never runs."""
    with play_twice(sequence, final_wait) as played:
        for swept_outcome, unswept_outcome in played.outcomes:
            assert swept_outcome == unswept_outcome


@given(sequence=sequences, final_wait=final_waits)
def test_views_equal_whether_or_not_worker_runs(sequence: list[Step], final_wait: int) -> None:
    """At a common final instant every ticket looks the same on both desks; only how many of
    its timer events are already written differs, and the totals agree."""
    with play_twice(sequence, final_wait) as played:
        tids = list(played.unswept.ticket_ids())
        assert list(played.swept.ticket_ids()) == tids
        for tid in tids:
            swept, unswept = played.swept.get(tid), played.unswept.get(tid)
            assert swept.version + swept.unwritten_timer_events == (
                unswept.version + unswept.unwritten_timer_events
            )
            unwritten: dict[str, Any] = {"version": 0, "unwritten_timer_events": 0}
            assert attrs.evolve(swept, **unwritten) == attrs.evolve(unswept, **unwritten)


@given(sequence=sequences, final_wait=final_waits)
def test_histories_differ_only_by_unwritten_timer_events(
    sequence: list[Step], final_wait: int
) -> None:
    """Before the last worker run, one desk's history of a ticket is a prefix of the other's
    and the rest are automatic timer events stamped with their due instants."""
    with play_twice(sequence, final_wait) as played:
        for tid in played.unswept.ticket_ids():
            swept, unswept = facts(played.swept, tid), facts(played.unswept, tid)
            shorter, longer = sorted((swept, unswept), key=len)
            assert longer[: len(shorter)] == shorter
            for name, fields in longer[len(shorter) :]:
                assert name in TIMER_EVENTS
                assert fields.get("automatic") is True


@given(sequence=sequences, final_wait=final_waits)
def test_histories_equal_after_worker_catches_up(sequence: list[Step], final_wait: int) -> None:
    """Once the worker has run at the final instant on both desks, the histories are equal
    event by event (class, timestamp, originator, version and every fact but `written_at`)."""
    with play_twice(sequence, final_wait) as played:
        played.swept.run_due_timers()
        played.unswept.run_due_timers()
        for tid in played.unswept.ticket_ids():
            assert facts(played.swept, tid) == facts(played.unswept, tid)


# -- the store alone rebuilds every ticket --------------------------------------------------

_PROFILE = settings()  # the active profile (see conftest.py)


@settings(max_examples=max(10, _PROFILE.max_examples // 3))
@given(sequence=sequences, final_wait=final_waits)
def test_sqlite_reopened_desk_returns_equal_views(sequence: list[Step], final_wait: int) -> None:
    """A new desk opened on the same SQLite file returns the same view of every ticket as the
    desk that recorded the sequence (with its worker running at the generated moments)."""
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'tickets.db'}"
        clock = ManualClock(START)
        with SupportDesk(store=url, clock=clock) as live:
            play(sequence, clock, live)
            clock.advance(seconds=final_wait)
            tids = list(live.ticket_ids())
            views = [live.get(tid) for tid in tids]
            with SupportDesk(store=url, clock=clock) as reopened:
                assert list(reopened.ticket_ids()) == tids
                assert [reopened.get(tid) for tid in tids] == views


# -- duplicate deliveries take effect once --------------------------------------------------


@st.composite
def deliveries(draw: st.DrawFn) -> list[tuple[str, int]]:
    """1-4 deliveries of one submit and 1-4 of one customer reply, interleaved, the first
    being a submit; each with the seconds that pass before it."""
    submits = draw(st.integers(min_value=1, max_value=4))
    replies = draw(st.integers(min_value=1, max_value=4))
    rest = draw(st.permutations(["submit"] * (submits - 1) + ["reply"] * replies))
    gaps = st.one_of(
        st.integers(min_value=0, max_value=5 * 86400), st.sampled_from([0, 1, 3 * 86400])
    )
    return [(kind, draw(gaps)) for kind in ["submit", *rest]]


@given(
    schedule=deliveries(),
    auto_submitted=st.booleans(),
    close_offset=st.none()
    | st.sampled_from([-1, 0, 1])
    | st.integers(min_value=2, max_value=86400),
)
def test_duplicate_messages_take_effect_once(
    schedule: list[tuple[str, int]], auto_submitted: bool, close_offset: int | None
) -> None:
    """Delivering the same submit and the same customer reply several times (also to a ticket
    that closed meanwhile) creates one ticket, at most one follow-up, and records the reply
    once; every delivery returns the same ticket id as the first.

    The ticket is solved at once; with `close_offset`, the first reply waits until its close
    due instant plus that many seconds."""
    clock = ManualClock(START)
    with SupportDesk(clock=clock) as desk:
        submitted: set[UUID] = set()
        landed: set[UUID] = set()
        for number, (kind, gap) in enumerate(schedule):
            clock.advance(seconds=gap)
            if kind == "submit":
                submitted.add(desk.submit("ann@example.com", "Help", message_id="<s1@mail>"))
            else:
                (tid,) = submitted
                due = desk.get(tid).close_due_at
                if not landed and close_offset is not None and due is not None:
                    clock.set(max(clock.now(), due + close_offset * SECOND))
                reply = desk.customer_reply(
                    tid, body="again", message_id="<r1@mail>", auto_submitted=auto_submitted
                )
                landed.add(reply)
            if number == 0:
                desk.solve(next(iter(submitted)), agent="bob", solution="Reinstall")
        (original,) = submitted
        (target,) = landed
        follow_ups = desk.get(original).follow_ups
        assert follow_ups == (() if target == original else (target,))
        assert list(desk.ticket_ids()) == [original, *follow_ups]
        effects = [
            name
            for tid in desk.ticket_ids()
            for name, fields in facts(desk, tid)
            if name in {"Submitted", "Responded"} and fields.get("message_id") == "r1@mail"
        ]
        assert len(effects) == 1
