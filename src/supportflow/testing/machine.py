"""`LifecycleMachine`: a hypothesis state machine that drives a desk through the whole
lifecycle and checks it, at every step, against the reference model and its own history.

Build one for your policy and desk with `lifecycle_machine(...)` (or subclass
`LifecycleMachine` and set its class attributes), then run its `TestCase` under pytest or
`unittest`, or call `hypothesis.stateful.run_state_machine_as_test(machine)`.
"""

from __future__ import annotations

import collections
import datetime as _dt
import functools
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypeVar
from uuid import UUID

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from ..clock import Clock, ManualClock
from ..desk import SupportDesk
from ..errors import InvalidCommand, TransitionRejected
from ..policy import DEFAULT_TRANSITIONS, Severity, Status, SupportPolicy
from ..views import TicketView
from . import model as m
from .strategies import aware_datetimes, severities

__all__ = ["DeskFactory", "ExtraInvariant", "LifecycleMachine", "lifecycle_machine"]

UTC = _dt.UTC
SECOND = _dt.timedelta(seconds=1)
T = TypeVar("T")


class DeskFactory(Protocol):
    """Makes a desk on `store` (a URL) with `clock` and `policy`; `SupportDesk` itself is one."""

    def __call__(self, store: str, *, clock: Clock, policy: SupportPolicy) -> SupportDesk: ...


ExtraInvariant = Callable[[SupportDesk, Sequence[UUID]], None]
"""Called after every step with the desk and every ticket id; raises AssertionError on a
violation. The hook for an auditor (`extra_invariants=[my_auditor_check]`)."""

_TIMER_EVENTS = {"Solved", "Closed"}
_PLACEHOLDER_START = _dt.datetime(2026, 1, 1, tzinfo=UTC)
_MESSAGE_CHOICES = st.sampled_from(["none", "fresh", "duplicate"])
_VOLATILE: dict[str, Any] = {"version": 0, "unwritten_timer_events": 0}
"""View fields that say how much of a ticket is written yet, which depends on the worker."""


def _automatic(desk: SupportDesk, tid: UUID) -> list[tuple[str, _dt.datetime]]:
    """The ticket's written timer events: (class name, timestamp)."""
    return [
        (type(event).__name__, event.timestamp)
        for event in desk.history(tid)
        if type(event).__name__ in _TIMER_EVENTS and getattr(event, "automatic", False)
    ]


class LifecycleMachine(RuleBasedStateMachine):
    """Commands and the passage of time on one desk, checked at every step.

    Configure it with class attributes (or `lifecycle_machine(...)`, which sets them):

    - `policy`: the `SupportPolicy` the desk runs (default: the default policy);
    - `desk_factory`: a `DeskFactory` (default `SupportDesk`; a subclass works too);
    - `store`: ``"memory"`` or ``"sqlite"`` (a file in a temporary directory, which the
      "restart" rule closes and reopens; with memory that rule is off);
    - `check_model`: compare with `supportflow.testing.model` (default: when the policy has
      the default transition table, which is the one the model knows);
    - `check_worker_independence`: also drive a twin memory desk whose timer worker never
      runs, and require the same outcomes and views (default True);
    - `audit`: run `supportflow.audit.Auditor` on the desk at the end of every run and require
      no violation (default True; timers the machine let pass without the worker are not
      written yet by design, so only the auditor's `timer-overdue` rule is left out);
    - `extra_invariants`: further checks of your own, run after every step;
    - `start_times`: a strategy of aware datetimes for the first instant (default: instants
      near the policy zone's DST changes, or anywhere in 2026-2027).

    Rules: submit, assign, reply, request_info, solve, change_severity, customer_reply
    (auto-submitted or not, with no, a fresh or a repeated message id), request and review an
    escalation, link a bug, answer the survey, time passes (a little, a lot, to a timer's due
    instant -1 s / 0 / +1 s), run the timer worker, restart the desk from its store.
    Invariants: the desk agrees with the model; the live ticket equals the one rebuilt from
    its events as of now (and after a restart); CLOSED is final;
    every message id takes effect exactly once; every timer event (auto-solve, auto-close and
    update-SLA breach) is stamped with its due instant; the worker does not change any outcome;
    the auditor finds no violation; the extra invariants hold.
    """

    policy: ClassVar[SupportPolicy] = SupportPolicy()
    desk_factory: ClassVar[DeskFactory] = SupportDesk
    store: ClassVar[Literal["memory", "sqlite"]] = "memory"
    check_model: ClassVar[bool | None] = None
    check_worker_independence: ClassVar[bool] = True
    extra_invariants: ClassVar[Sequence[ExtraInvariant]] = ()
    audit: ClassVar[bool] = True
    start_times: ClassVar[st.SearchStrategy[_dt.datetime] | None] = None

    last_run: ClassVar[list[str]] = []
    """The rules of the latest run, in order (after a failure: the shrunk failing run)."""

    tickets = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        cls = type(self)
        if cls.store not in ("memory", "sqlite"):
            raise ValueError(f"store must be 'memory' or 'sqlite', got {cls.store!r}")
        model_on = cls.check_model
        if model_on is None:
            model_on = cls.policy.transitions == DEFAULT_TRANSITIONS
        self.model: m.Model | None = m.Model(m.Rules.of(cls.policy)) if model_on else None
        self.clock = ManualClock(_PLACEHOLDER_START)
        self.directory: str | None = None
        url = "memory://"
        if cls.store == "sqlite":
            self.directory = tempfile.mkdtemp(prefix="supportflow-machine-")
            url = f"sqlite:///{Path(self.directory) / 'tickets.db'}"
        self.url = url
        self.desk = self._open(url)
        self.lazy = self._open("memory://") if cls.check_worker_independence else None
        self.twin: dict[UUID, UUID] = {}
        """Ticket ids of `desk` -> the same tickets on `lazy`."""
        self.known: list[UUID] = []
        self.receipts: dict[str, UUID] = {}
        self.closed: set[UUID] = set()
        self.messages = 0
        self.run: list[str] = []
        self._cached: tuple[int, _Snapshot] | None = None
        cls.last_run = self.run

    def _open(self, url: str) -> SupportDesk:
        return type(self).desk_factory(url, clock=self.clock, policy=type(self).policy)

    def teardown(self) -> None:
        try:
            if type(self).audit and self.known:
                self.auditor_finds_no_violation()
        finally:
            self.desk.close()
            if self.lazy is not None:
                self.lazy.close()
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------------

    @property
    def now(self) -> _dt.datetime:
        return self.clock.now()

    def _message_id(self, choice: str, data: st.DataObject) -> str | None:
        if choice == "none":
            return None
        if choice == "duplicate" and self.receipts:
            return data.draw(st.sampled_from(sorted(self.receipts)), label="repeated message")
        self.messages += 1
        return f"m{self.messages}@example.com"

    def _both(self, tid: UUID | None, command: Callable[[SupportDesk, UUID | None], T]) -> T:
        """Run `command` on the desk and on its lazy twin; the outcomes must agree."""
        result, refusal = _outcome(lambda: command(self.desk, tid))
        if self.lazy is not None:
            lazy = self.lazy
            twin_tid = None if tid is None else self.twin[tid]
            twin_result, twin_refusal = _outcome(lambda: command(lazy, twin_tid))
            if isinstance(result, UUID) and isinstance(twin_result, UUID):
                expected = self.twin.setdefault(result, twin_result)
                assert expected == twin_result, "the lazy desk landed on another ticket"
                twin_result = result
            here, there = _facts(result, refusal), _facts(twin_result, twin_refusal)
            assert here == there, (
                f"the worker changed an outcome: {here} here, {there} where it never ran"
            )
        if refusal is not None:
            raise refusal
        return result  # type: ignore[return-value]

    def _add(self, tid: UUID) -> UUID:
        self.known.append(tid)
        return tid

    def _view_pairs(self) -> list[tuple[UUID, TicketView]]:
        return [(tid, self.desk.get(tid)) for tid in self.known]

    def _snapshot(self) -> _Snapshot:
        """Every ticket's view and history after the latest rule (read once per step)."""
        if self._cached is None or self._cached[0] != len(self.run):
            snapshot = _Snapshot(
                views={tid: self.desk.get(tid) for tid in self.known},
                histories={tid: list(self.desk.history(tid)) for tid in self.known},
            )
            self._cached = (len(self.run), snapshot)
        return self._cached[1]

    # -- rules: commands --------------------------------------------------------------------

    @initialize(data=st.data())
    def start(self, data: st.DataObject) -> None:
        start = data.draw(_start_times(type(self)), label="start").astimezone(UTC)
        self.clock.set(start)
        self.run.append(f"start at {start.isoformat()}")

    @rule(
        target=tickets,
        severity=severities(),
        channel=st.sampled_from(["web", "email", "phone"]),
        tags=st.sampled_from([(), ("restore",), ("restore", "vip")]),
        choice=_MESSAGE_CHOICES,
        data=st.data(),
    )
    def submit(
        self,
        severity: Severity,
        channel: str,
        tags: tuple[str, ...],
        choice: str,
        data: st.DataObject,
    ) -> UUID | MultipleResults[UUID]:
        mid = self._message_id(choice, data)
        self.run.append(f"submit(message_id={mid})")
        tid = self._both(
            None,
            lambda desk, _: desk.submit(
                requester="ann@example.com",
                subject="help",
                severity=severity,
                channel=channel,
                tags=tags,
                message_id=mid,
            ),
        )
        if mid is not None and mid in self.receipts:
            assert tid == self.receipts[mid], f"message {mid} took effect again"
            return multiple()
        assert tid not in self.known, f"submit returned the existing ticket {tid}"
        if mid is not None:
            self.receipts[mid] = tid
        if self.model is not None:
            self.model.submit(tid)
        return self._add(tid)

    def _agent(self, tid: UUID, command: str, severity: Severity = Severity.HIGH) -> None:
        self.run.append(f"{command}(ticket #{self.known.index(tid)})")
        expected = None if self.model is None else self.model.agent(tid, command, self.now)

        def act(desk: SupportDesk, t: UUID | None) -> None:
            assert t is not None
            if command == "assign":
                desk.assign(t, agent="bob")
            elif command == "change_severity":
                desk.change_severity(t, severity, by="bob", reason="impact")
            elif command == "solve":
                desk.solve(t, agent="bob", solution="fixed")
            elif command == "request_info":
                desk.request_info(t, agent="bob", body="Which version?")
            else:
                desk.reply(t, agent="bob", body="Looking into it")

        refusal: TransitionRejected | None = None
        try:
            self._both(tid, act)
        except TransitionRejected as error:
            refusal = error
        if refusal is None:
            assert expected is not False, f"{command} accepted on a ticket the model has CLOSED"
            return
        assert refusal.ticket_id == tid
        assert expected is not True, f"{command} refused, the model allows it: {refusal}"
        if expected is False:
            assert refusal.status is Status.CLOSED, refusal

    @rule(tid=tickets)
    def assign(self, tid: UUID) -> None:
        self._agent(tid, "assign")

    @rule(tid=tickets)
    def reply(self, tid: UUID) -> None:
        self._agent(tid, "reply")

    @rule(tid=tickets)
    def request_info(self, tid: UUID) -> None:
        self._agent(tid, "request_info")

    @rule(tid=tickets)
    def solve(self, tid: UUID) -> None:
        self._agent(tid, "solve")

    @rule(tid=tickets, severity=severities())
    def change_severity(self, tid: UUID, severity: Severity) -> None:
        self._agent(tid, "change_severity", severity)

    @rule(
        target=tickets,
        tid=tickets,
        auto_submitted=st.booleans(),
        choice=_MESSAGE_CHOICES,
        data=st.data(),
    )
    def customer_reply(
        self, tid: UUID, auto_submitted: bool, choice: str, data: st.DataObject
    ) -> UUID | MultipleResults[UUID]:
        return self._customer_reply(tid, auto_submitted, choice, data)

    @precondition(lambda self: bool(self.closed))
    @rule(target=tickets, auto_submitted=st.booleans(), choice=_MESSAGE_CHOICES, data=st.data())
    def customer_reply_to_a_closed_ticket(
        self, auto_submitted: bool, choice: str, data: st.DataObject
    ) -> UUID | MultipleResults[UUID]:
        """Replies to CLOSED tickets matter most (follow-ups), so they get a rule of their own."""
        closed = [tid for tid in self.known if tid in self.closed]
        tid = data.draw(st.sampled_from(closed), label="closed ticket")
        return self._customer_reply(tid, auto_submitted, choice, data)

    def _customer_reply(
        self, tid: UUID, auto_submitted: bool, choice: str, data: st.DataObject
    ) -> UUID | MultipleResults[UUID]:
        mid = self._message_id(choice, data)
        self.run.append(
            f"customer_reply(ticket #{self.known.index(tid)}, auto_submitted={auto_submitted}, "
            f"message_id={mid})"
        )
        was_closed = self.desk.get(tid).status is Status.CLOSED
        landed = self._both(
            tid,
            lambda desk, t: desk.customer_reply(
                t,  # type: ignore[arg-type]
                body="more",
                message_id=mid,
                auto_submitted=auto_submitted,
            ),
        )
        if mid is not None and mid in self.receipts:
            assert landed == self.receipts[mid], f"message {mid} took effect again"
            return multiple()
        if mid is not None:
            self.receipts[mid] = landed
        if auto_submitted or not was_closed:
            assert landed == tid, (
                f"{'an auto-submitted message' if auto_submitted else 'a reply'} to a "
                f"{'CLOSED' if was_closed else 'not CLOSED'} ticket landed on another ticket"
            )
        else:
            assert landed != tid, "a customer reply reopened a CLOSED ticket"
        expected = (
            None
            if self.model is None
            else self.model.customer_reply(tid, self.now, auto_submitted=auto_submitted)
        )
        if landed in self.known:
            assert expected in (None, landed), f"landed on {landed}, the model says {expected}"
            return multiple()
        assert expected in (None, m.NEW_FOLLOW_UP), f"new ticket {landed}, model: {expected}"
        assert was_closed, "a reply to a ticket that is not CLOSED created a ticket"
        assert not auto_submitted, "an auto-submitted message created a ticket"
        if self.model is not None:
            self.model.follow_up_created(tid, landed)
        self._check_copies(tid, landed)
        return self._add(landed)

    def _check_copies(self, closed_id: UUID, follow_up_id: UUID) -> None:
        closed, follow_up = self.desk.get(closed_id), self.desk.get(follow_up_id)
        assert follow_up.follow_up_of == closed_id
        assert follow_up_id in closed.follow_ups
        for field in sorted(type(self).policy.follow_up_copies):
            assert getattr(follow_up, field) == getattr(closed, field), f"{field} not copied"

    # -- rules: time ------------------------------------------------------------------------

    def _bookkeeping(self, tid: UUID, name: str, act: Callable[[SupportDesk, UUID], None]) -> str:
        """Run a command that never changes a status on both desks; its outcome (done, a
        refusal by the table, or an InvalidCommand) must agree. Returns that outcome."""
        self.run.append(f"{name}(ticket #{self.known.index(tid)})")

        def attempt(desk: SupportDesk, t: UUID | None) -> str:
            assert t is not None
            try:
                act(desk, t)
            except InvalidCommand as error:
                return f"invalid: {str(error).split(': ', 1)[-1]}"
            return "done"

        refused: TransitionRejected | None = None
        try:
            outcome = self._both(tid, attempt)
        except TransitionRejected as refusal:
            refused = refusal
        if refused is None:
            return outcome
        assert refused.ticket_id == tid
        status = refused.status.name if isinstance(refused.status, Status) else refused.status
        return f"rejected in {status}"

    @rule(tid=tickets, reference=st.sampled_from(["BUG-1", "BUG-2"]))
    def link_bug(self, tid: UUID, reference: str) -> None:
        before = self.desk.get(tid).bugs
        outcome = self._bookkeeping(
            tid, "link_bug", lambda d, t: d.link_bug(t, reference=reference, by="bob")
        )
        assert outcome == "done", f"linking a bug was refused: {outcome}"
        after = self.desk.get(tid).bugs
        assert after == (before if reference in before else (*before, reference)), after

    @rule(tid=tickets, severity=severities())
    def request_escalation(self, tid: UUID, severity: Severity) -> None:
        view = self.desk.get(tid)
        outcome = self._bookkeeping(
            tid,
            "request_escalation",
            lambda d, t: d.request_escalation(t, reason="urgent", requested_severity=severity),
        )
        if view.status is Status.CLOSED:
            assert outcome == "rejected in CLOSED", outcome
        elif view.pending_escalation is not None:
            assert outcome.startswith("invalid"), outcome
        else:
            assert outcome == "done", outcome
            assert self.desk.get(tid).pending_escalation is not None

    @rule(tid=tickets, accept=st.booleans(), severity=severities())
    def review_escalation(self, tid: UUID, accept: bool, severity: Severity) -> None:
        view = self.desk.get(tid)
        outcome = self._bookkeeping(
            tid,
            "review_escalation",
            lambda d, t: d.review_escalation(
                t, manager="carol", accept=accept, severity=severity if accept else None
            ),
        )
        if view.status is Status.CLOSED:
            assert outcome == "rejected in CLOSED", outcome
        elif view.pending_escalation is None:
            assert outcome.startswith("invalid"), outcome
        else:
            assert outcome == "done", outcome
            after = self.desk.get(tid)
            assert after.pending_escalation is None
            assert after.severity is (severity if accept else view.severity)

    @rule(tid=tickets, rating=st.integers(min_value=1, max_value=5))
    def answer_survey(self, tid: UUID, rating: int) -> None:
        view = self.desk.get(tid)
        outcome = self._bookkeeping(
            tid, "answer_survey", lambda d, t: d.record_survey(t, rating=rating, comment="ok")
        )
        if view.status is not Status.CLOSED:
            assert outcome == f"rejected in {view.status.name}", outcome
        elif view.survey_rating is not None:
            assert outcome.startswith("invalid"), outcome
        else:
            assert outcome == "done", outcome
            assert self.desk.get(tid).survey_rating == rating

    @rule(seconds=st.integers(min_value=1, max_value=6 * 3600))
    def time_passes_a_little(self, seconds: int) -> None:
        self.run.append(f"time passes {seconds} s")
        self.clock.advance(seconds=seconds)

    @rule(seconds=st.integers(min_value=3600, max_value=12 * 86400))
    def time_passes_a_lot(self, seconds: int) -> None:
        self.run.append(f"time passes {seconds} s")
        self.clock.advance(seconds=seconds)

    def _due_instants(self) -> list[_dt.datetime]:
        if self.model is not None:
            return self.model.due_instants(self.now)
        dues = (
            view.solve_due_at or view.close_due_at
            for view in (self.desk.get(tid) for tid in self.known)
        )
        return sorted(due for due in dues if due is not None)

    @precondition(lambda self: bool(self._due_instants()))
    @rule(data=st.data(), offset=st.sampled_from([0, -1, 1]))
    def time_passes_to_a_due_instant(self, data: st.DataObject, offset: int) -> None:
        due = data.draw(st.sampled_from(self._due_instants()), label="due")
        target = due + offset * SECOND
        self.run.append(f"time passes to a due instant {offset:+d} s")
        if target > self.now:
            self.clock.set(target)

    @rule()
    def run_due_timers(self) -> None:
        self.run.append("run_due_timers()")
        self.desk.run_due_timers()
        for tid in self.known:
            assert self.desk.get(tid).unwritten_timer_events == 0, tid
            if self.model is not None:
                expected = self.model.at(tid, self.now).fired
                assert _automatic(self.desk, tid) == expected, "the worker left a timer unwritten"

    @precondition(lambda self: type(self).store == "sqlite")
    @rule()
    def restart(self) -> None:
        """Close the desk and open a new one on the same store."""
        self.run.append("restart()")
        before = self._view_pairs()
        ids = list(self.desk.ticket_ids())
        self.desk.close()
        self.desk = self._open(self.url)
        assert list(self.desk.ticket_ids()) == ids, "the store lost or reordered tickets"
        assert self._view_pairs() == before, "a reopened desk rebuilt another ticket"

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def desk_agrees_with_model(self) -> None:
        if self.model is None:
            return
        for tid, view in self._snapshot().views.items():
            ticket = self.model.at(tid, self.now)
            assert view.status.name == ticket.status, (
                f"ticket {tid} is {view.status.name}, the model says {ticket.status}"
            )
            assert view.solve_due_at == ticket.solve_due, (
                f"ticket {tid} solve due {view.solve_due_at}, the model says {ticket.solve_due}"
            )
            assert view.close_due_at == ticket.close_due, (
                f"ticket {tid} close due {view.close_due_at}, the model says {ticket.close_due}"
            )
            assert view.follow_ups == tuple(ticket.follow_ups), (
                f"ticket {tid} follow-ups {view.follow_ups}, the model says {ticket.follow_ups}"
            )

    @invariant()
    def rebuilt_as_of_now_equals_live(self) -> None:
        now = self.now
        for tid, view in self._snapshot().views.items():
            assert self.desk.get(tid, as_of=now) == view, tid

    @invariant()
    def closed_stays_closed(self) -> None:
        for tid, view in self._snapshot().views.items():
            if view.status is Status.CLOSED:
                self.closed.add(tid)
            elif tid in self.closed:
                raise AssertionError(f"CLOSED ticket {tid} became {view.status.name}")

    @invariant()
    def ticket_ids_are_the_known_tickets(self) -> None:
        assert sorted(self.desk.ticket_ids()) == sorted(self.known)

    @invariant()
    def every_message_takes_effect_once(self) -> None:
        effects: collections.Counter[str] = collections.Counter()
        for history in self._snapshot().histories.values():
            for event in history:
                if type(event).__name__ in {"Submitted", "Responded"}:
                    mid = getattr(event, "message_id", None)
                    if mid is not None:
                        effects[mid] += 1
        assert {mid: n for mid, n in effects.items() if n != 1} == {}, "repeated effects"
        assert set(effects) == set(self.receipts), "a message id without its effect"

    @invariant()
    def timers_fire_at_their_due_instants(self) -> None:
        for tid, history in self._snapshot().histories.items():
            armed: dict[str, _dt.datetime | None] = {"Solved": None, "Closed": None}
            written: list[tuple[str, _dt.datetime]] = []
            update_due: _dt.datetime | None = None
            previous_at: _dt.datetime | None = None
            for event in history:
                name = type(event).__name__
                if name == "UpdateOverdue":
                    assert event.due_at == update_due, (
                        f"ticket {tid}: update breach for {event.due_at}, the clock was due at "
                        f"{update_due}"
                    )
                    assert previous_at is not None
                    assert event.timestamp == max(event.due_at, previous_at), (
                        f"ticket {tid}: update breach stamped {event.timestamp}, due {event.due_at}"
                    )
                    update_due = None  # one breach per clock
                elif name in {"Solved", "Closed"}:
                    update_due = None
                elif hasattr(event, "update_due_at"):
                    update_due = event.update_due_at
                previous_at = event.timestamp
                if name in _TIMER_EVENTS and getattr(event, "automatic", False):
                    assert event.timestamp == armed[name], (
                        f"ticket {tid}: automatic {name} stamped {event.timestamp}, "
                        f"its timer was due at {armed[name]}"
                    )
                    written.append((name, event.timestamp))
                if name == "Responded":
                    armed["Solved"] = getattr(event, "solve_due_at", None)
                if name == "Solved":
                    armed["Closed"] = getattr(event, "close_due_at", None)
            if self.model is not None:
                expected = self.model.at(tid, self.now).fired
                assert written == expected[: len(written)], (
                    f"ticket {tid}: timer events {written}, the model fired {expected}"
                )

    @invariant()
    def worker_does_not_change_views(self) -> None:
        if self.lazy is None:
            return
        lazy = self.lazy
        for tid, view in self._snapshot().views.items():
            other = lazy.get(self.twin[tid])
            assert view.version + view.unwritten_timer_events == (
                other.version + other.unwritten_timer_events
            ), tid
            subject = other.subject  # a follow-up's default subject names the closed ticket
            for mine, twin in self.twin.items():
                subject = subject.replace(str(twin), str(mine))
            mapped = attrs.evolve(
                other,
                id=tid,
                subject=subject,
                follow_up_of=self._untwin(other.follow_up_of),
                follow_ups=tuple(self._untwin(f) for f in other.follow_ups),
                **_VOLATILE,
            )
            assert attrs.evolve(view, **_VOLATILE) == mapped, (
                f"ticket {tid} differs on the desk whose worker never ran: {view} vs {mapped}"
            )

    def _untwin(self, twin_id: UUID | None) -> Any:
        if twin_id is None:
            return None
        return next(tid for tid, other in self.twin.items() if other == twin_id)

    def auditor_finds_no_violation(self) -> None:
        """Audit everything the run produced (at the end of each run: an audit reads the
        whole store, so once per run keeps the machine fast)."""
        from ..audit import Auditor  # imported here, when the audit runs

        report = Auditor(self.desk).audit()
        broken = [v for v in report.violations if v.rule != "timer-overdue"]
        assert not broken, f"the auditor found: {broken}"

    @invariant()
    def extra_invariants_hold(self) -> None:
        for check in type(self).extra_invariants:
            check(self.desk, tuple(self.known))


def _start_times(machine: type[LifecycleMachine]) -> st.SearchStrategy[_dt.datetime]:
    """The machine's `start_times`, or instants near its policy zone's DST changes."""
    if machine.start_times is not None:
        return machine.start_times
    policy = machine.policy
    days = max(policy.close_after_days, policy.pending_solve_after_days)
    return _near_dst_changes(policy.zone, days + 1)


@functools.cache
def _near_dst_changes(zone: str, days: int) -> st.SearchStrategy[_dt.datetime]:
    return aware_datetimes((zone,), days_before_changes=days)


@attrs.frozen
class _Snapshot:
    views: dict[UUID, TicketView]
    histories: dict[UUID, list[Any]]


def _outcome(call: Callable[[], T]) -> tuple[T | None, TransitionRejected | None]:
    try:
        return call(), None
    except TransitionRejected as refusal:
        return None, refusal


def _facts(result: object, refusal: TransitionRejected | None) -> tuple[Any, ...]:
    if refusal is None:
        return ("done", result)
    return ("rejected", refusal.status, refusal.action, tuple(refusal.allowed))


def lifecycle_machine(
    policy: SupportPolicy | None = None,
    *,
    desk_factory: DeskFactory = SupportDesk,
    store: Literal["memory", "sqlite"] = "memory",
    check_model: bool | None = None,
    check_worker_independence: bool = True,
    extra_invariants: Sequence[ExtraInvariant] = (),
    audit: bool = True,
    start_times: st.SearchStrategy[_dt.datetime] | None = None,
    name: str | None = None,
) -> type[LifecycleMachine]:
    """A `LifecycleMachine` subclass for `policy` and `desk_factory` (see its docstring).

    >>> Machine = lifecycle_machine(SupportPolicy(zone="Europe/Berlin", close_after_days=5))
    >>> TestMyPolicy = Machine.TestCase  # collected by pytest / unittest
    """
    if check_model and policy is not None and policy.transitions != DEFAULT_TRANSITIONS:
        raise ValueError(
            "the reference model knows the default transition table only; "
            "use check_model=False for a custom table"
        )
    attributes: dict[str, Any] = {
        "policy": SupportPolicy() if policy is None else policy,
        "desk_factory": desk_factory,
        "store": store,
        "check_model": check_model,
        "check_worker_independence": check_worker_independence,
        "extra_invariants": tuple(extra_invariants),
        "audit": audit,
        "start_times": start_times,
        "last_run": [],
        "__doc__": LifecycleMachine.__doc__,
    }
    return type(name or "LifecycleMachine", (LifecycleMachine,), attributes)
