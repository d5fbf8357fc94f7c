"""A hypothesis state machine over the desk, checked step by step against a tiny reference
model of statuses and timers.

The model is written from DESIGN §1 alone: it does not call `supportflow.policy`. Its due
instants use `zoneinfo` wall-clock arithmetic in America/Chicago.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import attrs
from hypothesis import settings
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

from supportflow import ManualClock, Severity, Status, SupportDesk, TransitionRejected

# -- the reference model --------------------------------------------------------------------

CHICAGO = ZoneInfo("America/Chicago")
CLOSE_AFTER_DAYS = 3
SOLVE_AFTER_DAYS = 7

NEW, OPEN, PENDING, SOLVED, CLOSED = "NEW", "OPEN", "PENDING", "SOLVED", "CLOSED"


def calendar_days_later(instant: datetime, days: int) -> datetime:
    """`days` calendar days after `instant` at the same wall-clock time in Chicago. A wall time
    that does not exist that day (spring forward) is pushed forward by the gap; an ambiguous
    one (fall back) is its later occurrence. Both are the later of the two PEP 495 folds."""
    wall = instant.astimezone(CHICAGO)
    target = datetime.combine(wall.date() + timedelta(days=days), wall.time(), tzinfo=CHICAGO)
    return max(target.replace(fold=fold).astimezone(UTC) for fold in (0, 1))


@attrs.define
class ModelTicket:
    status: str = NEW
    solve_due: datetime | None = None
    close_due: datetime | None = None
    follow_ups: list[UUID] = attrs.field(factory=list)

    def catch_up(self, now: datetime) -> None:
        """Fire the timers due at or before `now`."""
        if self.status == PENDING and self.solve_due is not None and self.solve_due <= now:
            self.status = SOLVED
            self.close_due = calendar_days_later(self.solve_due, CLOSE_AFTER_DAYS)
            self.solve_due = None
        if self.status == SOLVED and self.close_due is not None and self.close_due <= now:
            self.status = CLOSED
            self.close_due = None

    def next_due(self) -> datetime | None:
        if self.status == PENDING:
            return self.solve_due
        if self.status == SOLVED:
            return self.close_due
        return None

    def agent(self, command: str, now: datetime) -> bool:
        """Apply an agent command; False when it must be refused (the ticket is CLOSED)."""
        if self.status == CLOSED:
            return False
        if command == "assign" and self.status == NEW:
            self.status = OPEN
        elif command == "reply":
            self.status, self.solve_due, self.close_due = OPEN, None, None
        elif command == "request_info":
            self.status, self.close_due = PENDING, None
            self.solve_due = calendar_days_later(now, SOLVE_AFTER_DAYS)
        elif command == "solve" and self.status != SOLVED:
            self.status, self.solve_due = SOLVED, None
            self.close_due = calendar_days_later(now, CLOSE_AFTER_DAYS)
        return True

    def customer(self) -> None:
        """A (not auto-submitted) customer message on a ticket that is not CLOSED."""
        if self.status in (PENDING, SOLVED):
            self.status, self.solve_due, self.close_due = OPEN, None, None


# -- the machine ----------------------------------------------------------------------------

SECOND = timedelta(seconds=1)
DST_EDGES = (
    datetime(2026, 3, 1, 8, 30, tzinfo=UTC),  # 02:30 CST one week before spring forward
    datetime(2026, 3, 5, 16, 0, tzinfo=UTC),  # Thursday before spring forward
    datetime(2026, 10, 25, 6, 30, tzinfo=UTC),  # 01:30 CDT one week before fall back
    datetime(2026, 10, 29, 15, 0, tzinfo=UTC),  # Thursday before fall back
)
starts = st.one_of(
    st.sampled_from(DST_EDGES),
    st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20), timezones=st.just(UTC)
    ),
)
message_choices = st.sampled_from(["none", "fresh", "duplicate"])


class LifecycleMachine(RuleBasedStateMachine):
    """Commands and the passage of time on one desk, mirrored on the reference model."""

    tickets = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(DST_EDGES[0])
        self.desk = SupportDesk(clock=self.clock)
        self.model: dict[UUID, ModelTicket] = {}
        self.receipts: dict[str, UUID] = {}
        self.closed: set[UUID] = set()
        self.messages = 0

    def teardown(self) -> None:
        self.desk.close()

    # -- helpers ----------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def message_id(self, choice: str, data: st.DataObject) -> str | None:
        if choice == "none":
            return None
        if choice == "duplicate" and self.receipts:
            return data.draw(st.sampled_from(sorted(self.receipts)), label="duplicate")
        self.messages += 1
        return f"m{self.messages}@example.com"

    def caught_up(self, tid: UUID) -> ModelTicket:
        ticket = self.model[tid]
        ticket.catch_up(self.now)
        return ticket

    def future_dues(self) -> list[datetime]:
        dues = (self.caught_up(tid).next_due() for tid in self.model)
        return sorted(due for due in dues if due is not None)

    def add_ticket(self, tid: UUID) -> None:
        assert tid not in self.model, f"{tid} is not a new ticket id"
        self.model[tid] = ModelTicket()

    # -- rules: commands --------------------------------------------------------------------

    @initialize(start=starts)
    def start_clock(self, start: datetime) -> None:
        self.clock.set(start)

    @rule(
        target=tickets,
        severity=st.sampled_from(Severity),
        choice=message_choices,
        data=st.data(),
    )
    def submit(
        self, severity: Severity, choice: str, data: st.DataObject
    ) -> UUID | MultipleResults[UUID]:
        mid = self.message_id(choice, data)
        tid = self.desk.submit(
            requester="ann@example.com", subject="help", severity=severity, message_id=mid
        )
        if mid is not None and mid in self.receipts:
            assert tid == self.receipts[mid]
            return multiple()
        self.add_ticket(tid)
        if mid is not None:
            self.receipts[mid] = tid
        return tid

    def agent_command(self, tid: UUID, command: str, severity: Severity = Severity.HIGH) -> None:
        expected = self.caught_up(tid).agent(command, self.now)
        refusal: TransitionRejected | None = None
        try:
            if command == "assign":
                self.desk.assign(tid, agent="bob")
            elif command == "change_severity":
                self.desk.change_severity(tid, severity, by="bob", reason="test")
            elif command == "solve":
                self.desk.solve(tid, agent="bob", solution="fixed")
            else:
                ask = command == "request_info"
                (self.desk.request_info if ask else self.desk.reply)(tid, agent="bob", body="hi")
        except TransitionRejected as error:
            refusal = error
        if expected:
            assert refusal is None, f"{command} refused but the model allows it: {refusal}"
        else:
            assert refusal is not None, f"{command} accepted on a ticket the model says is CLOSED"
            assert refusal.ticket_id == tid
            assert refusal.status is Status.CLOSED

    @rule(tid=tickets)
    def assign(self, tid: UUID) -> None:
        self.agent_command(tid, "assign")

    @rule(tid=tickets)
    def reply(self, tid: UUID) -> None:
        self.agent_command(tid, "reply")

    @rule(tid=tickets)
    def request_info(self, tid: UUID) -> None:
        self.agent_command(tid, "request_info")

    @rule(tid=tickets)
    def solve(self, tid: UUID) -> None:
        self.agent_command(tid, "solve")

    @rule(tid=tickets, severity=st.sampled_from(Severity))
    def change_severity(self, tid: UUID, severity: Severity) -> None:
        self.agent_command(tid, "change_severity", severity)

    @rule(
        target=tickets,
        tid=tickets,
        auto_submitted=st.booleans(),
        choice=message_choices,
        data=st.data(),
    )
    def customer_reply(
        self, tid: UUID, auto_submitted: bool, choice: str, data: st.DataObject
    ) -> UUID | MultipleResults[UUID]:
        mid = self.message_id(choice, data)
        landed = self.desk.customer_reply(
            tid, body="more", message_id=mid, auto_submitted=auto_submitted
        )
        if mid is not None and mid in self.receipts:
            assert landed == self.receipts[mid], "a duplicate message took effect again"
            return multiple()
        if mid is not None:
            self.receipts[mid] = landed
        ticket = self.caught_up(tid)
        if auto_submitted or ticket.status != CLOSED:
            assert landed == tid
            if not auto_submitted:
                ticket.customer()
            return multiple()
        if ticket.follow_ups:
            latest = self.caught_up(ticket.follow_ups[-1])
            if latest.status != CLOSED:
                assert landed == ticket.follow_ups[-1], "reply did not land on the open follow-up"
                latest.customer()
                return multiple()
        self.add_ticket(landed)
        ticket.follow_ups.append(landed)
        return landed

    # -- rules: time ------------------------------------------------------------------------

    @rule(seconds=st.integers(min_value=1, max_value=6 * 3600))
    def time_passes_a_little(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)

    @rule(seconds=st.integers(min_value=3600, max_value=10 * 86400))
    def time_passes_a_lot(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)

    @precondition(lambda self: bool(self.future_dues()))
    @rule(data=st.data(), offset=st.sampled_from([-1, 0]))
    def time_passes_to_a_due_instant(self, data: st.DataObject, offset: int) -> None:
        due = data.draw(st.sampled_from(self.future_dues()), label="due")
        target = due + offset * SECOND
        if target > self.now:
            self.clock.set(target)

    @rule()
    def run_due_timers(self) -> None:
        self.desk.run_due_timers()
        for tid in self.model:
            assert self.desk.get(tid).unwritten_timer_events == 0

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def desk_agrees_with_model(self) -> None:
        for tid in self.model:
            ticket = self.caught_up(tid)
            view = self.desk.get(tid)
            assert view.status.name == ticket.status, tid
            assert view.solve_due_at == ticket.solve_due, tid
            assert view.close_due_at == ticket.close_due, tid
            assert view.follow_ups == tuple(ticket.follow_ups), tid

    @invariant()
    def closed_stays_closed(self) -> None:
        for tid in self.model:
            if self.desk.get(tid).status is Status.CLOSED:
                self.closed.add(tid)
        for tid in self.closed:
            assert self.desk.get(tid).status is Status.CLOSED, tid

    @invariant()
    def rebuilt_as_of_now_equals_live(self) -> None:
        now = self.now
        for tid in self.model:
            assert self.desk.get(tid, as_of=now) == self.desk.get(tid), tid

    @invariant()
    def ticket_ids_are_the_model_tickets(self) -> None:
        assert sorted(self.desk.ticket_ids()) == sorted(self.model)


_PROFILE = settings()  # the active profile (see conftest.py)
LifecycleMachine.TestCase.settings = settings(
    _PROFILE,
    max_examples=2 * _PROFILE.max_examples,
    stateful_step_count=50,
)
TestLifecycle = LifecycleMachine.TestCase
