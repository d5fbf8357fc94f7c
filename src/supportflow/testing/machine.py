"""`LifecycleMachine`: a hypothesis state machine that drives a desk through the whole
lifecycle and checks it, at every step, against the reference model and its own history.

Build one for your policy and desk with `lifecycle_machine(...)` (or subclass
`LifecycleMachine` and set its class attributes), then run its `TestCase` under pytest or
`unittest`, or call `hypothesis.stateful.run_state_machine_as_test(machine)`.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import functools
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
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
from ..errors import InvalidCommand, PermissionDenied, TransitionRejected
from ..policy import DEFAULT_TRANSITIONS, Severity, Status, SupportPolicy
from ..views import TicketView
from . import model as m
from .strategies import aware_datetimes, look_alikes, same_address, severities

__all__ = [
    "DEFAULT_STAFF",
    "DeskFactory",
    "ExtraInvariant",
    "LifecycleMachine",
    "lifecycle_machine",
]

UTC = _dt.UTC
SECOND = _dt.timedelta(seconds=1)
T = TypeVar("T")


class DeskFactory(Protocol):
    """Makes a desk on `store` (a URL) with `clock`, `policy` and the `staff` roster;
    `SupportDesk` itself is one. (`staff` is passed only when the machine has a roster.)"""

    def __call__(
        self,
        store: str,
        *,
        clock: Clock,
        policy: SupportPolicy,
        staff: Mapping[str, Any] | None = ...,
    ) -> SupportDesk: ...


DEFAULT_STAFF: Mapping[str, tuple[str, ...]] = {
    "bob": ("agent",),
    "carol": ("manager",),
    "dana": ("agent", "manager"),
}
"""The machine's default staff roster: an agent, a manager, and someone who is both."""


ExtraInvariant = Callable[[SupportDesk, Sequence[UUID]], None]
"""Called after every step with the desk and every ticket id; raises AssertionError on a
violation. The hook for an auditor (`extra_invariants=[my_auditor_check]`)."""

_TIMER_EVENTS = {"Solved", "Closed"}
_PLACEHOLDER_START = _dt.datetime(2026, 1, 1, tzinfo=UTC)
_MESSAGE_CHOICES = st.sampled_from(["none", "fresh", "duplicate"])
_VOLATILE: dict[str, Any] = {"version": 0, "unwritten_timer_events": 0}
"""View fields that say how much of a ticket is written yet, which depends on the worker."""
ERASED = "[erased]"
"""What a personal field reads once its requester is forgotten (docs/security.md)."""
_REQUESTERS = ("ann@example.com", "bo@example.org", "jos\u00e9@example.com")
"""Who submits tickets (bo is also on others' CC lists; jos\u00e9 has a composed letter)."""
_CCS = ("cy@example.com", "dee@example.net", "bo@example.org")
"""Who gets CC'd."""
_OUTSIDERS = ("eve@example.com", "mallory@example.net")
"""Addresses that are nobody's, unless they write as strangers (then they get a ticket)."""
_NON_STAFF = ("mallory", "ann@example.com")
"""Names that are on no roster."""
_STAFF_COMMANDS: dict[str, tuple[str, str]] = {
    "assign": ("assign", "agent"),
    "reply": ("reply", "agent"),
    "request_info": ("request_info", "agent"),
    "solve": ("solve", "agent"),
    "change_severity": ("change_severity", "agent"),
    "link_bug": ("link_bug", "agent"),
    "review_escalation": ("review_escalation", "manager"),
    "add_cc": ("add_cc", "agent"),
    "remove_cc": ("remove_cc", "agent"),
}
"""Staff commands: name -> (the permission table's action, the role the command names)."""
_CUSTOMER_COMMANDS = (
    "customer_reply",
    "request_escalation",
    "answer_survey",
    "add_cc",
    "remove_cc",
)


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
      near the policy zone's DST changes, or anywhere in 2026-2027);
    - `staff`: the desk's staff roster, passed to the desk factory as `staff=` (default
      `DEFAULT_STAFF`; None: no roster, the desk trusts `agent=` and `manager=`);
    - `check_people`: run the rules about people (replies by address, strangers and
      look-alikes, refused actors, CC changes, erasure; default True). Every command is
      checked against the permission table either way.

    Rules: submit, assign, reply, request_info, solve, change_severity, customer_reply
    (auto-submitted or not, with no, a fresh or a repeated message id), request and review an
    escalation, link a bug, answer the survey, time passes (a little, a lot, to a timer's due
    instant -1 s / 0 / +1 s), run the timer worker, restart the desk from its store; and
    the people: tickets submitted by several requesters with CC lists, a requester or CC'd
    address replies (spelled in another case or decomposed), a stranger or a look-alike of
    the requester replies (never lands; a new ticket or `PermissionDenied` per policy), a
    command by a role the permission table refuses (`PermissionDenied`, nothing recorded;
    with a roster, staff commands by non-staff too), add and remove a CC, erase a requester.
    Every command is first checked against the model's permission decision.
    Invariants: the desk agrees with the model (statuses, timers, follow-ups, requesters,
    CC lists, erasures); the live ticket equals the one rebuilt from
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
    staff: ClassVar[Mapping[str, Any] | None] = DEFAULT_STAFF
    check_people: ClassVar[bool] = True

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
        people = m.Model(
            m.Rules.of(cls.policy), permissions=m.Permissions.of(cls.policy, cls.staff)
        )
        self.people = people
        """The model of who may act; always on (the permission table is the policy's data)."""
        self.model: m.Model | None = people if model_on else None
        """The same model, when it also judges the lifecycle (the default transition table)."""
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
        cls = type(self)
        if cls.staff is None:
            return cls.desk_factory(url, clock=self.clock, policy=cls.policy)
        return cls.desk_factory(url, clock=self.clock, policy=cls.policy, staff=cls.staff)

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
        requester=st.sampled_from(_REQUESTERS),
        cc=st.lists(st.sampled_from(_CCS), max_size=2, unique=True),
        data=st.data(),
    )
    def submit(
        self,
        severity: Severity,
        channel: str,
        tags: tuple[str, ...],
        choice: str,
        requester: str,
        cc: list[str],
        data: st.DataObject,
    ) -> UUID | MultipleResults[UUID]:
        mid = self._message_id(choice, data)
        self.run.append(f"submit(message_id={mid}, requester={requester!r}, cc={cc})")

        def act(desk: SupportDesk, _: UUID | None) -> UUID | str:
            try:
                return desk.submit(
                    requester=requester,
                    subject="help",
                    severity=severity,
                    channel=channel,
                    tags=tags,
                    message_id=mid,
                    cc=cc,
                )
            except InvalidCommand:
                return "refused"
            except PermissionDenied as refusal:
                return f"denied {_name(refusal.action)}"

        tid = self._both(None, act)
        if mid is not None and mid in self.receipts:
            landed = self.receipts[mid]
            if self.people.redelivered_to(landed, requester):
                assert tid == landed, f"message {mid} took effect again"
            else:
                assert tid == "refused", f"{requester} reused message id {mid} and got {tid}"
            return multiple()
        if cc and not self.people.permissions.allows(m.REQUESTER, "add_cc"):
            assert tid == "denied add_cc", (
                f"a submit with a CC list gave {tid}; the table does not let the requester add CCs"
            )
            return multiple()
        assert isinstance(tid, UUID), f"a submit was refused: {tid}"
        assert tid not in self.known, f"submit returned the existing ticket {tid}"
        if mid is not None:
            self.receipts[mid] = tid
        self.people.submit(tid, requester=requester, cc=cc)
        return self._add(tid)

    # -- helpers: who acts ------------------------------------------------------------------

    def _fixed(self, tid: UUID) -> tuple[TicketView, int]:
        """What must not change when a command is refused: the ticket's view and how many
        events it has counting timers not written yet (the worker may write those)."""
        view = self.desk.get(tid)
        return attrs.evolve(view, **_VOLATILE), view.version + view.unwritten_timer_events

    def _denied(
        self,
        tid: UUID,
        action: str,
        act: Callable[[SupportDesk, UUID], object],
        where: UUID | None = None,
    ) -> PermissionDenied:
        """Run `act` on ticket `tid`, which the model's permission table refuses (on ticket
        `where`, default `tid`): it must raise `PermissionDenied` naming `action` and the
        roles the table allows, and record nothing (checked before the status: no other
        refusal may come first)."""
        where = tid if where is None else where
        before = self._fixed(where)
        number = self.known.index(where)

        def attempt(desk: SupportDesk, t: UUID | None) -> object:
            assert t is not None
            return act(desk, t)

        refusal: PermissionDenied | None = None
        try:
            self._both(tid, attempt)
        except PermissionDenied as denied:
            refusal = denied
        except (TransitionRejected, InvalidCommand) as other:
            raise AssertionError(
                f"{action} on ticket #{number} refused with {other!r}; the permission table "
                "refuses the actor, and permissions are checked first"
            ) from None
        if refusal is None:
            raise AssertionError(
                f"{action} on ticket #{number} was accepted; the permission table refuses the actor"
            )
        allowed = self.people.permissions.table.get(action, frozenset())
        assert refusal.ticket_id == where, refusal
        assert _name(refusal.action) == action, f"refused {refusal.action}, not {action}"
        assert {_name(role) for role in refusal.allowed} == set(allowed), (
            f"the refusal allows {refusal.allowed}, the table {sorted(allowed)}"
        )
        assert self._fixed(where) == before, f"a refused {action} changed ticket #{number}"
        return refusal

    @staticmethod
    def _staff_act(
        command: str, name: str, severity: Severity = Severity.HIGH
    ) -> Callable[[SupportDesk, UUID], None]:
        """Staff command `command` on a ticket, by staff member `name`."""

        def act(desk: SupportDesk, t: UUID) -> None:
            if command == "assign":
                desk.assign(t, agent=name)
            elif command == "change_severity":
                desk.change_severity(t, severity, by=name, reason="impact")
            elif command == "solve":
                desk.solve(t, agent=name, solution="fixed")
            elif command == "request_info":
                desk.request_info(t, agent=name, body="Which version?")
            elif command == "reply":
                desk.reply(t, agent=name, body="Looking into it")
            elif command == "link_bug":
                desk.link_bug(t, reference="BUG-9", by=name)
            elif command == "review_escalation":
                desk.review_escalation(t, manager=name, accept=False)
            elif command == "add_cc":
                desk.add_cc(t, "new@example.com", agent=name)
            else:
                desk.remove_cc(t, _CCS[0], agent=name)

        return act

    @staticmethod
    def _customer_act(command: str, address: str) -> Callable[[SupportDesk, UUID], None]:
        """Customer command `command` on a ticket, by `address`."""

        def act(desk: SupportDesk, t: UUID) -> None:
            if command == "customer_reply":
                desk.customer_reply(t, body="more", by=address)
            elif command == "request_escalation":
                desk.request_escalation(t, reason="urgent", by=address)
            elif command == "answer_survey":
                desk.record_survey(t, rating=3, by=address)
            elif command == "add_cc":
                desk.add_cc(t, "new@example.com", by=address)
            else:
                desk.remove_cc(t, _CCS[0], by=address)

        return act

    # -- rules: commands --------------------------------------------------------------------

    def _agent(
        self, tid: UUID, command: str, severity: Severity = Severity.HIGH, actor: str = "bob"
    ) -> None:
        self.run.append(f"{command}(ticket #{self.known.index(tid)})")
        act = self._staff_act(command, actor, severity)
        if not self.people.staff_may(actor, m.AGENT, command):
            self._denied(tid, command, act)
            return
        expected = None if self.model is None else self.model.agent(tid, command, self.now)

        def attempt(desk: SupportDesk, t: UUID | None) -> None:
            assert t is not None
            act(desk, t)

        refusal: TransitionRejected | None = None
        try:
            self._both(tid, attempt)
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

    @precondition(lambda self: type(self).check_people)
    @rule(
        target=tickets,
        tid=tickets,
        auto_submitted=st.booleans(),
        choice=_MESSAGE_CHOICES,
        data=st.data(),
    )
    def customer_replies_from_their_address(
        self, tid: UUID, auto_submitted: bool, choice: str, data: st.DataObject
    ) -> UUID | MultipleResults[UUID]:
        """The requester or a CC'd address replies, naming itself (`by=`) in another spelling
        of the same address (other case, decomposed letters). After an erasure that address
        is nobody: its reply is a stranger's."""
        ticket = self.people.tickets[tid]
        address = data.draw(st.sampled_from([ticket.requester, *ticket.cc]), label="customer")
        by = data.draw(same_address(address), label="spelled")
        return self._customer_reply(tid, auto_submitted, choice, data, by=by)

    @precondition(lambda self: type(self).check_people)
    @rule(
        target=tickets,
        tid=tickets,
        auto_submitted=st.booleans(),
        choice=_MESSAGE_CHOICES,
        data=st.data(),
    )
    def someone_else_replies(
        self, tid: UUID, auto_submitted: bool, choice: str, data: st.DataObject
    ) -> UUID | MultipleResults[UUID]:
        """A look-alike of the ticket's requester or of a CC'd address (plus-addressing,
        Cyrillic or full-width letters, a digit in the domain), another requester, or an
        outsider replies: a stranger to this ticket, unless the model knows them on it."""
        ticket = self.people.tickets[tid]
        base = data.draw(st.sampled_from([ticket.requester, *ticket.cc]), label="looks like")
        sender = data.draw(
            st.one_of(look_alikes(base), st.sampled_from(_REQUESTERS + _OUTSIDERS)),
            label="sender",
        )
        return self._customer_reply(tid, auto_submitted, choice, data, by=sender)

    def _customer_reply(
        self,
        tid: UUID,
        auto_submitted: bool,
        choice: str,
        data: st.DataObject,
        by: str | None = None,
    ) -> UUID | MultipleResults[UUID]:
        mid = self._message_id(choice, data)
        sender = "" if by is None else f", by={by!r}"
        self.run.append(
            f"customer_reply(ticket #{self.known.index(tid)}, auto_submitted={auto_submitted}, "
            f"message_id={mid}{sender})"
        )

        def act(desk: SupportDesk, t: UUID | None) -> UUID:
            return desk.customer_reply(
                t,  # type: ignore[arg-type]
                body="more",
                message_id=mid,
                auto_submitted=auto_submitted,
                by=by,
            )

        people = self.people
        if mid is not None and mid in self.receipts:  # a redelivery: checked before anything
            landed_before = self.receipts[mid]
            if people.redelivered_to(landed_before, by, tid):
                assert self._both(tid, act) == landed_before, f"message {mid} took effect again"
            else:  # another sender reusing the message id
                with contextlib.suppress(PermissionDenied):
                    self._both(tid, act)
                    raise AssertionError(f"{by} reused message id {mid} and was not refused")
            return multiple()
        action = "auto_reply" if auto_submitted else "customer_reply"
        role = people.role(tid, by)
        if by is None and role == m.STRANGER:  # the requester was erased: nobody is
            self._denied(tid, action, act)
            return multiple()
        address = by if by is not None else people.tickets[tid].requester
        if role == m.STRANGER:
            return self._stranger_reply(tid, tid, address, auto_submitted, mid, act)
        if not people.permissions.allows(role, action):
            self._denied(tid, action, act)
            return multiple()
        was_closed = self.desk.get(tid).status is Status.CLOSED
        if was_closed and not auto_submitted:  # it goes to the open follow-up, if any
            follow_up = people.open_follow_up(tid, self._is_closed)
            there = None if follow_up is None else people.role(follow_up, address)
            if follow_up is not None and there == m.STRANGER:
                return self._stranger_reply(tid, follow_up, address, auto_submitted, mid, act)
            if follow_up is not None and not people.permissions.allows(str(there), action):
                self._denied(tid, action, act, where=follow_up)
                return multiple()
        landed = self._both(tid, act)
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
        self.people.follow_up_created(tid, landed, sender=by)
        self._check_copies(tid, landed)
        return self._add(landed)

    def _is_closed(self, tid: UUID) -> bool:
        return self.desk.get(tid).status is Status.CLOSED

    def _stranger_reply(
        self,
        answered: UUID,
        tid: UUID,
        sender: str,
        auto_submitted: bool,
        mid: str | None,
        act: Callable[[SupportDesk, UUID | None], UUID],
    ) -> UUID | MultipleResults[UUID]:
        """A reply from `sender` to ticket `answered` that would land on ticket `tid` (the
        same, or the open follow-up of a closed one), to which `sender` is a stranger: it
        never lands there; it becomes a ticket of the sender's own or is refused, as the
        policy says; it is recorded."""
        number = self.known.index(tid)
        before = self._fixed(tid), self._fixed(answered)
        records = len(self.desk.stranger_messages(tid))
        expected = self.people.stranger_reply(tid, sender, auto_submitted=auto_submitted)
        landed: UUID | None = None
        refusal: PermissionDenied | None = None
        try:
            landed = self._both(answered, act)
        except PermissionDenied as denied:
            refusal = denied
        if refusal is not None:
            assert expected == m.REFUSED, (
                f"a stranger's reply to ticket #{number} was refused; the policy makes it a ticket"
            )
            assert _name(refusal.role) == m.STRANGER, refusal
        assert (self._fixed(tid), self._fixed(answered)) == before, (
            f"a reply from {sender!r}, a stranger to ticket #{number}, changed it"
        )
        recorded = self.desk.stranger_messages(tid)
        assert len(recorded) == records + 1, "a stranger's message was not recorded"
        record = recorded[-1]
        assert m.normal_address(record.sender) == m.normal_address(sender), record
        outcome = "dropped" if auto_submitted else "refused" if expected == m.REFUSED else None
        assert record.outcome == (outcome or "new_ticket"), record
        if landed is None:
            return multiple()
        assert expected == m.NEW_TICKET, (
            f"a stranger's {'auto-submitted ' if auto_submitted else ''}reply to ticket "
            f"#{number} was accepted (landed on {landed}); it must be refused"
        )
        assert landed not in self.known, (
            f"a reply from {sender!r}, a stranger to ticket #{number}, landed on a ticket"
        )
        assert record.new_ticket_id == landed, record
        view = self.desk.get(landed)
        assert m.normal_address(view.requester) == m.normal_address(sender), view.requester
        copied = (view.status, view.follow_up_of, view.tags, view.cc, view.product)
        assert copied == (Status.NEW, None, (), (), ()), f"a stranger's ticket: {view}"
        if mid is not None:
            self.receipts[mid] = landed
        self.people.stranger_ticket_created(landed, sender)
        return self._add(landed)

    def _check_copies(self, closed_id: UUID, follow_up_id: UUID) -> None:
        closed, follow_up = self.desk.get(closed_id), self.desk.get(follow_up_id)
        assert follow_up.follow_up_of == closed_id
        assert follow_up_id in closed.follow_ups
        for field in sorted(type(self).policy.follow_up_copies):
            assert getattr(follow_up, field) == getattr(closed, field), f"{field} not copied"

    @precondition(lambda self: type(self).check_people)
    @rule(tid=tickets, data=st.data())
    def someone_not_allowed_acts(self, tid: UUID, data: st.DataObject) -> None:
        """A command by an actor whose role the permission table does not allow: a customer
        or a name on no roster as staff, staff in the wrong role, a CC or a stranger managing
        the CC list, a stranger asking for escalation or answering the survey. It must raise
        `PermissionDenied` and record nothing."""
        people = self.people
        ticket = people.tickets[tid]
        candidates: dict[str, tuple[str, Callable[[SupportDesk, UUID], None]]] = {}
        names = sorted({*_NON_STAFF, *(people.permissions.staff or ("bob", "carol"))})
        for command, (action, wanted) in _STAFF_COMMANDS.items():
            for name in names:
                if not people.staff_may(name, wanted, action):
                    candidates[f"{command} by {name}"] = (action, self._staff_act(command, name))
        for address in (ticket.requester, *ticket.cc, _OUTSIDERS[0]):
            role = people.role(tid, address)
            for command in _CUSTOMER_COMMANDS:
                if command == "customer_reply" and role == m.STRANGER:
                    continue  # a stranger's reply has a rule of its own
                if not people.permissions.allows(role, command):
                    act = self._customer_act(command, address)
                    candidates[f"{command} by {address} ({role})"] = (command, act)
        if not candidates:
            self.run.append(f"nobody is refused on ticket #{self.known.index(tid)}")
            return
        label = data.draw(st.sampled_from(sorted(candidates)), label="refused")
        self.run.append(f"refused: {label} (ticket #{self.known.index(tid)})")
        action, act = candidates[label]
        self._denied(tid, action, act)

    @precondition(lambda self: type(self).check_people)
    @rule(tid=tickets, data=st.data())
    def add_cc(self, tid: UUID, data: st.DataObject) -> None:
        self._change_cc(tid, data, adding=True)

    @precondition(lambda self: type(self).check_people)
    @rule(tid=tickets, data=st.data())
    def remove_cc(self, tid: UUID, data: st.DataObject) -> None:
        self._change_cc(tid, data, adding=False)

    def _change_cc(self, tid: UUID, data: st.DataObject, *, adding: bool) -> None:
        """The requester (by default or by address) or an agent adds or removes a CC."""
        people, ticket = self.people, self.people.tickets[tid]
        action = "add_cc" if adding else "remove_cc"
        number = self.known.index(tid)
        if not people.sealed(tid):  # an erased ticket keeps no address it is given
            self.run.append(f"{action}(ticket #{number}): erased, not tried")
            return
        pool = (*_CCS, *_REQUESTERS) if adding else (*ticket.cc, *_CCS)
        address = data.draw(st.sampled_from(pool).flatmap(same_address), label="address")
        actor = data.draw(st.sampled_from(["requester", "requester by address", "agent"]))
        by: str | None = None
        agent: str | None = None
        if actor == "agent":
            agent = "bob"
            allowed = people.staff_may(agent, m.AGENT, action)
        else:
            if actor != "requester":
                by = data.draw(same_address(ticket.requester), label="by")
            allowed = people.customer_may(tid, by, action)
        self.run.append(f"{action}(ticket #{number}, {address!r}, by={by!r}, agent={agent!r})")

        def act(desk: SupportDesk, t: UUID) -> None:
            change = desk.add_cc if adding else desk.remove_cc
            change(t, address, by=by, agent=agent)

        if not allowed:
            self._denied(tid, action, act)
            return
        self._both(tid, lambda desk, t: act(desk, t))  # type: ignore[arg-type]
        (people.add_cc if adding else people.remove_cc)(tid, address)
        listed = [m.normal_address(a) for a in self.desk.get(tid).cc]
        assert listed == ticket.cc, f"ticket #{number} CC list {listed}, the model says {ticket.cc}"

    @precondition(lambda self: type(self).check_people)
    @rule(data=st.data())
    def erase_a_requester(self, data: st.DataObject) -> None:
        """Forget a requester (any spelling of their address): every ticket sealed under their
        key records `Erased` and reads `[erased]` in its personal fields, statuses unchanged;
        every other ticket is unchanged; from now on that address is nobody."""
        pool = sorted({*_REQUESTERS, *self.people.keys})
        address = data.draw(st.sampled_from(pool).flatmap(same_address), label="forget")
        self.run.append(f"forget_requester({address!r})")
        before = {tid: self.desk.get(tid) for tid in self.known}
        erased = self.people.forget(address)
        count = self._both(None, lambda desk, _: desk.forget_requester(address, by="dpo"))
        assert count == len(erased), f"{count} tickets erased, the model says {len(erased)}"
        for tid, old in before.items():
            view = self.desk.get(tid)
            if tid not in erased:
                assert attrs.evolve(view, **_VOLATILE) == attrs.evolve(old, **_VOLATILE), (
                    f"forgetting {address!r} changed ticket #{self.known.index(tid)}"
                )
                continue
            assert (view.status, view.severity) == (old.status, old.severity), view
            personal = (view.requester, view.subject, view.description)
            assert personal == (ERASED,) * 3, f"personal fields after the erasure: {personal}"
            assert view.cc == (ERASED,) * len(old.cc), view.cc
            assert view.erased_at is not None

    # -- rules: bookkeeping -----------------------------------------------------------------

    def _bookkeeping(
        self,
        tid: UUID,
        name: str,
        act: Callable[[SupportDesk, UUID], None],
        *,
        action: str,
        permitted: bool,
    ) -> str:
        """Run a command that never changes a status on both desks; its outcome (done, a
        refusal by the table, an InvalidCommand, or "denied" by the permission table, which
        the model expected when not `permitted`) must agree. Returns that outcome."""
        self.run.append(f"{name}(ticket #{self.known.index(tid)})")
        if not permitted:
            self._denied(tid, action, act)
            return "denied"

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
        except PermissionDenied as denied:
            return f"denied {_name(denied.action)}"
        if refused is None:
            return outcome
        assert refused.ticket_id == tid
        status = refused.status.name if isinstance(refused.status, Status) else refused.status
        return f"rejected in {status}"

    @rule(tid=tickets, reference=st.sampled_from(["BUG-1", "BUG-2"]))
    def link_bug(self, tid: UUID, reference: str) -> None:
        before = self.desk.get(tid).bugs
        outcome = self._bookkeeping(
            tid,
            "link_bug",
            lambda d, t: d.link_bug(t, reference=reference, by="bob"),
            action="link_bug",
            permitted=self.people.staff_may("bob", m.AGENT, "link_bug"),
        )
        if outcome == "denied":
            return
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
            action="request_escalation",
            permitted=self.people.customer_may(tid, None, "request_escalation"),
        )
        if outcome == "denied":
            return
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
        permissions = self.people.permissions
        role = permissions.staff_role("carol", m.MANAGER, "review_escalation")
        outcome = self._bookkeeping(
            tid,
            "review_escalation",
            lambda d, t: d.review_escalation(
                t, manager="carol", accept=accept, severity=severity if accept else None
            ),
            action="review_escalation",
            permitted=role is not None,
        )
        if outcome == "denied":
            return
        if view.status is Status.CLOSED:
            assert outcome == "rejected in CLOSED", outcome
        elif view.pending_escalation is None:
            assert outcome.startswith("invalid"), outcome
        elif accept and not permissions.allows(str(role), "change_severity"):
            assert outcome == "denied change_severity", outcome
        else:
            assert outcome == "done", outcome
            after = self.desk.get(tid)
            assert after.pending_escalation is None
            assert after.severity is (severity if accept else view.severity)

    @rule(tid=tickets, rating=st.integers(min_value=1, max_value=5))
    def answer_survey(self, tid: UUID, rating: int) -> None:
        view = self.desk.get(tid)
        outcome = self._bookkeeping(
            tid,
            "answer_survey",
            lambda d, t: d.record_survey(t, rating=rating, comment="ok"),
            action="answer_survey",
            permitted=self.people.customer_may(tid, None, "answer_survey"),
        )
        if outcome == "denied":
            return
        if view.status is not Status.CLOSED:
            assert outcome == f"rejected in {view.status.name}", outcome
        elif view.survey_rating is not None:
            assert outcome.startswith("invalid"), outcome
        else:
            assert outcome == "done", outcome
            assert self.desk.get(tid).survey_rating == rating

    # -- rules: time ------------------------------------------------------------------------

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
    def people_agree_with_model(self) -> None:
        """Requesters and CC lists read as the model says; tickets whose key is destroyed
        read `[erased]`; exactly the erased tickets carry an erasure."""
        for tid, view in self._snapshot().views.items():
            ticket = self.people.tickets[tid]
            number = self.known.index(tid)
            if self.people.sealed(tid):
                assert m.normal_address(view.requester) == ticket.requester, (
                    f"ticket #{number} requester {view.requester!r}, model: {ticket.requester!r}"
                )
                listed = [m.normal_address(a) for a in view.cc]
                assert listed == ticket.cc, f"ticket #{number} CC {listed}, model: {ticket.cc}"
            else:
                assert view.requester == ERASED, f"ticket #{number} reads {view.requester!r}"
                assert set(view.cc) <= {ERASED}, f"ticket #{number} CC reads {view.cc}"
            assert (view.erased_at is not None) == (tid in self.people.erased), (
                f"ticket #{number} erased at {view.erased_at}, the model erased "
                f"{tid in self.people.erased}"
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


_Refusal = TransitionRejected | PermissionDenied


def _outcome(call: Callable[[], T]) -> tuple[T | None, _Refusal | None]:
    try:
        return call(), None
    except (TransitionRejected, PermissionDenied) as refusal:
        return None, refusal


def _facts(result: object, refusal: _Refusal | None) -> tuple[Any, ...]:
    if refusal is None:
        return ("done", result)
    if isinstance(refusal, PermissionDenied):
        allowed = sorted(_name(role) for role in refusal.allowed)
        return ("denied", _name(refusal.role), _name(refusal.action), allowed)
    return ("rejected", refusal.status, refusal.action, tuple(refusal.allowed))


def _name(value: object) -> str:
    """An enum member's value (a role's or an action's name), or a string as it is."""
    return str(getattr(value, "value", value))


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
    staff: Mapping[str, Any] | None = DEFAULT_STAFF,
    check_people: bool = True,
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
        "staff": staff,
        "check_people": check_people,
        "last_run": [],
        "__doc__": LifecycleMachine.__doc__,
    }
    return type(name or "LifecycleMachine", (LifecycleMachine,), attributes)
