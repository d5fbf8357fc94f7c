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

from supportflow import ManualClock, Severity, SupportDesk, TicketView, TransitionRejected

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
"""Monday 2026-03-02 09:00 in Chicago; ten-day waits reach across the March DST change."""

SECOND = timedelta(seconds=1)
MAX_WAIT = 10 * 86400
TIMER_EVENTS = {"Solved", "Closed"}

# -- generated command sequences ------------------------------------------------------------


@attrs.frozen
class Wait:
    """Let `seconds` of elapsed time pass."""

    seconds: int


@attrs.frozen
class WaitForDue:
    """Move to the pending timer's due instant of the `ticket`-th ticket, plus `offset` s
    (no wait if it has no pending timer, or that instant is not in the future)."""

    ticket: int
    offset: int


@attrs.frozen
class Submit:
    key: int
    """Message-id key: the same key is a second delivery of the same message."""


@attrs.frozen
class Agent:
    command: str
    ticket: int
    severity: Severity = Severity.MEDIUM


@attrs.frozen
class CustomerReply:
    ticket: int
    auto_submitted: bool
    key: int | None


Command = Submit | Agent | CustomerReply


@attrs.frozen
class Step:
    wait: Wait | WaitForDue
    sweeps: tuple[int, ...]
    """Moments within the wait, in thousandths of it, at which the worker runs (one desk)."""
    command: Command


waits = st.one_of(
    st.builds(Wait, st.integers(min_value=0, max_value=MAX_WAIT)),
    st.builds(Wait, st.sampled_from([0, 1, 3600, 86400, 3 * 86400, 7 * 86400])),
    st.builds(
        WaitForDue, ticket=st.integers(min_value=0, max_value=3), offset=st.sampled_from([-1, 0, 1])
    ),
)
ticket_indexes = st.integers(min_value=0, max_value=3)
agent_commands = st.builds(
    Agent,
    # solve and request_info arm the timers, so they come up more often
    command=st.sampled_from(
        ["solve", "solve", "request_info", "request_info", "reply", "assign", "change_severity"]
    ),
    ticket=ticket_indexes,
    severity=st.sampled_from(Severity),
)
commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(Submit, key=st.integers(min_value=0, max_value=2)),
    agent_commands,
    agent_commands,
    st.builds(
        CustomerReply,
        ticket=ticket_indexes,
        auto_submitted=st.booleans(),
        key=st.none() | st.integers(min_value=0, max_value=3),
    ),
)
sweep_moments = st.lists(st.integers(min_value=0, max_value=1000), max_size=2).map(
    lambda moments: tuple(sorted(moments))
)
steps = st.builds(Step, wait=waits, sweeps=sweep_moments, command=commands)
first_steps = st.builds(
    Step, wait=st.builds(Wait, st.just(0)), sweeps=st.just(()), command=st.just(Submit(key=0))
)
sequences = st.builds(
    lambda first, rest: [first, *rest], first_steps, st.lists(steps, min_size=2, max_size=30)
)

# -- playing a sequence ---------------------------------------------------------------------


def pending_due(view: TicketView) -> datetime | None:
    return view.solve_due_at if view.solve_due_at is not None else view.close_due_at


def wait_target(desk: SupportDesk, now: datetime, wait: Wait | WaitForDue) -> datetime:
    if isinstance(wait, Wait):
        return now + wait.seconds * SECOND
    tids = list(desk.ticket_ids())
    if not tids:
        return now
    due = pending_due(desk.get(tids[wait.ticket % len(tids)]))
    if due is None or due + wait.offset * SECOND <= now:
        return now
    return due + wait.offset * SECOND


def perform(desk: SupportDesk, command: Command) -> tuple[Any, ...]:
    """Run `command`; the outcome is its result, or the facts of its refusal."""
    if isinstance(command, Submit):
        tid = desk.submit(
            requester="ann@example.com",
            subject="Cannot restore",
            message_id=f"submit-{command.key}@example.com",
        )
        return ("submitted", tid)
    tids = list(desk.ticket_ids())
    tid = tids[command.ticket % len(tids)]
    try:
        if isinstance(command, CustomerReply):
            mid = None if command.key is None else f"reply-{command.key}@example.com"
            landed = desk.customer_reply(
                tid, body="more", message_id=mid, auto_submitted=command.auto_submitted
            )
            return ("landed", landed)
        if command.command == "assign":
            desk.assign(tid, agent="bob")
        elif command.command == "reply":
            desk.reply(tid, agent="bob", body="Looking into it")
        elif command.command == "request_info":
            desk.request_info(tid, agent="bob", body="Which version?")
        elif command.command == "solve":
            desk.solve(tid, agent="bob", solution="Reinstall")
        else:
            desk.change_severity(tid, command.severity, by="bob", reason="impact")
    except TransitionRejected as error:
        return ("rejected", error.ticket_id, error.status, error.action, error.allowed)
    return ("done", command.command, tid)


@attrs.frozen
class Played:
    swept: SupportDesk
    """The desk whose worker ran at the generated moments."""
    unswept: SupportDesk
    """The desk whose worker never ran."""
    outcomes: tuple[tuple[tuple[Any, ...], tuple[Any, ...]], ...]


@contextmanager
def play_twice(sequence: Sequence[Step], final_wait: int) -> Iterator[Played]:
    """Play `sequence` on two memory desks sharing one clock; only one runs the worker."""
    clock = ManualClock(START)
    with SupportDesk(clock=clock) as swept, SupportDesk(clock=clock) as unswept:
        outcomes = []
        for step in sequence:
            now = clock.now()
            target = wait_target(unswept, now, step.wait)
            for moment in step.sweeps:
                clock.set(now + (target - now) * moment // 1000)
                swept.run_due_timers()
            clock.set(target)
            outcomes.append((perform(swept, step.command), perform(unswept, step.command)))
        clock.advance(seconds=final_wait)
        yield Played(swept=swept, unswept=unswept, outcomes=tuple(outcomes))


_BOOKKEEPING = ("written_at", "previous_hash")


def facts(desk: SupportDesk, tid: UUID) -> list[tuple[str, dict[str, Any]]]:
    """The ticket's events as (class name, fields), without the `written_at` bookkeeping and
    the hash chain (which covers `written_at`)."""
    return [
        (type(event).__name__, {k: v for k, v in vars(event).items() if k not in _BOOKKEEPING})
        for event in desk.history(tid)
    ]


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
            for step in sequence:
                now = clock.now()
                target = wait_target(live, now, step.wait)
                for moment in step.sweeps:
                    clock.set(now + (target - now) * moment // 1000)
                    live.run_due_timers()
                clock.set(target)
                perform(live, step.command)
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
