"""The `Ticket` aggregate and its events.

Command methods ask the policy and trigger events; each event's `apply` only copies the
facts it carries onto the ticket and never decides or raises. Events store plain values
(aware UTC `datetime`, `int`, `str`, `list`, `dict`, `UUID`) so that they round-trip
exactly through eventsourcing's JSON transcoder.

Each ticket's events form a hash chain: every event carries `previous_hash`, the hash of the
ticket's previous event over its canonical encoding (`supportflow._chain`; the first event
carries `GENESIS`). Replay only remembers the last event; the hash is computed when a new
event is triggered.
"""

from __future__ import annotations

import datetime as _dt
import enum
import inspect
import types
import typing
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.domain import Snapshot as _Snapshot
from eventsourcing.utils import resolve_topic

from ._chain import GENESIS, ChainHead, event_hash
from ._pii import parse
from .errors import InvalidCommand, PermissionDenied, TransitionRejected
from .policy import (
    Action,
    DueTimer,
    ReplyOutcome,
    Role,
    Severity,
    Status,
    SupportPolicy,
    Transition,
)

__all__ = ["PERSONAL_FIELDS", "Ticket"]

_STATUS_BY_VALUE = {status.value: status for status in Status}
"""Faster than `Status(value)` on the replay path."""

_PEOPLE_ACTIONS = frozenset(
    {
        Action.ASSIGN,
        Action.REPLY,
        Action.REQUEST_INFO,
        Action.SOLVE,
        Action.CHANGE_SEVERITY,
        Action.CUSTOMER_REPLY,
        Action.REQUEST_ESCALATION,
        Action.REVIEW_ESCALATION,
        Action.LINK_BUG,
        Action.ANSWER_SURVEY,
    }
)


def _same_address_key(value: str) -> str:
    """What two stored addresses of one ticket are compared by: the blind index of a sealed
    address (equal for equal normalised addresses under the ticket's key), or the lower-cased
    plain value."""
    token = parse(value)
    if token is not None:
        return f"blind:{token.blind}" if token.blind else value
    return f"plain:{value.strip().lower()}"


def _clock_changed(t: Any, due: _dt.datetime | None, since: _dt.datetime | None) -> None:
    """Copy the update clock an event records. A clock that (re)started clears the recorded
    breach; a re-targeted one (same start, another due instant) keeps it: one breach per clock."""
    if since != t.update_clock_since:
        t.update_overdue_at = None
    t.update_due_at = due
    t.update_clock_since = since


class Ticket(Aggregate):
    """A support ticket, rebuilt from its events."""

    # -- events -----------------------------------------------------------------------------

    class Event(Aggregate.Event):
        """Base class of every ticket event. `timestamp` is when it happened (aware UTC);
        `previous_hash` is the hash of the ticket's previous event (`GENESIS` for the first)."""

        previous_hash: str

        def mutate(self, aggregate: Any) -> Any:
            ticket: Any = super().mutate(aggregate)
            ticket._chain_last = self  # the chain's head: hashed only when it is needed
            return ticket

    class Submitted(Aggregate.Created, Event):
        """A customer (or a reply to a closed ticket) opened the ticket."""

        policy_version: str
        requester: str
        subject: str
        description: str
        severity: int
        channel: str
        product: dict[str, str]
        tags: list[str]
        follow_up_of: UUID | None
        message_id: str | None
        product_version: str | None
        supported: bool | None
        update_due_at: _dt.datetime | None

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.policy_version = self.policy_version
            t.product_version = self.product_version
            t.supported = self.supported
            t.update_due_at = self.update_due_at
            t.update_clock_since = self.timestamp if self.update_due_at is not None else None
            t.update_overdue_at = None
            t.sla_breaches = 0
            t.pending_escalation = None
            t.escalations = 0
            t.bugs = ()
            t.survey_rating = None
            t.survey_comment = None
            t.cc = ()
            t.erased_at = None
            t.requester = self.requester
            t.subject = self.subject
            t.description = self.description
            t.severity = Severity(self.severity)
            t.channel = self.channel
            t.product = dict(self.product)
            t.tags = tuple(self.tags)
            t.follow_up_of = self.follow_up_of
            t.message_id = self.message_id
            t.status = Status.NEW
            t.assignee = None
            t.follow_ups = ()
            t.close_due_at = None
            t.solve_due_at = None
            t.reopen_count = 0
            t.solved_at = None
            t.first_response_at = None

    class Assigned(Event):
        """An agent took the ticket."""

        agent: str
        previous: str | None
        status: str

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.assignee = self.agent
            t.status = _STATUS_BY_VALUE[self.status]

    class Responded(Event):
        """A message on the ticket: from an agent (a reply, or a request for input) or from
        the customer (possibly auto-submitted)."""

        by: str
        role: str
        body: str
        message_id: str | None
        auto_submitted: bool
        asks_for_input: bool
        status: str
        solve_due_at: _dt.datetime | None
        update_due_at: _dt.datetime | None
        update_clock_since: _dt.datetime | None

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.status = _STATUS_BY_VALUE[self.status]
            t.solve_due_at = self.solve_due_at
            _clock_changed(t, self.update_due_at, self.update_clock_since)
            if self.role == "agent" and t.first_response_at is None:
                t.first_response_at = self.timestamp

    class Solved(Event):
        """An agent gave a solution, or the pending auto-solve timer fired (`automatic`).

        An automatic event is stamped with the timer's due instant; `written_at` is the
        instant it was written."""

        by: str
        solution: str
        automatic: bool
        written_at: _dt.datetime | None
        close_due_at: _dt.datetime | None

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.status = Status.SOLVED
            t.solved_at = self.timestamp
            t.solve_due_at = None
            t.close_due_at = self.close_due_at
            _clock_changed(t, None, None)

    class Reopened(Event):
        """A `SOLVED` ticket became active again before its close time; the close timer is off."""

        by: str
        reason: str
        update_due_at: _dt.datetime | None
        update_clock_since: _dt.datetime | None

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.status = Status.OPEN
            t.close_due_at = None
            t.reopen_count += 1
            _clock_changed(t, self.update_due_at, self.update_clock_since)

    class Closed(Event):
        """The close timer fired (`automatic`); the ticket is final."""

        automatic: bool
        written_at: _dt.datetime | None

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.status = Status.CLOSED
            t.close_due_at = None
            t.solve_due_at = None
            _clock_changed(t, None, None)

    class FollowUpCreated(Event):
        """A customer replied to this closed ticket; the reply became ticket `follow_up_id`."""

        follow_up_id: UUID
        by: str
        message_id: str | None

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.follow_ups = (*t.follow_ups, self.follow_up_id)

    class SeverityChanged(Event):
        """Someone changed the severity, and said why."""

        severity: int
        previous: int
        by: str
        reason: str
        update_due_at: _dt.datetime | None

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.severity = Severity(self.severity)
            _clock_changed(t, self.update_due_at, t.update_clock_since)

    class UpdateOverdue(Event):
        """The update timer fired: no agent update by `due_at` (stamped at that instant). The
        breach is recorded once per update clock; the next agent update starts a new clock."""

        due_at: _dt.datetime
        severity: int
        automatic: bool
        written_at: _dt.datetime | None

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.update_overdue_at = self.timestamp
            t.sla_breaches += 1

    class EscalationRequested(Event):
        """The customer asked for escalation: why, to which severity, and how to reach them."""

        by: str
        reason: str
        requested_severity: int | None
        contact: str | None

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.pending_escalation = {
                "by": self.by,
                "reason": self.reason,
                "requested_severity": self.requested_severity,
                "contact": self.contact,
                "at": self.timestamp,
            }
            t.escalations += 1

    class EscalationReviewed(Event):
        """A manager reviewed the escalation request; a severity change and a reassignment
        that follow are their own events."""

        manager: str
        accepted: bool
        note: str

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.pending_escalation = None

    class BugLinked(Event):
        """An agent linked the ticket to an internal bug report."""

        reference: str
        by: str

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.bugs = (*t.bugs, self.reference)

    class SurveyAnswered(Event):
        """The requester answered the satisfaction survey sent when the ticket closed."""

        rating: int
        comment: str
        by: str

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.survey_rating = self.rating
            t.survey_comment = self.comment

    class CcAdded(Event):
        """The requester or an agent added an address to the CC list: it may now reply as
        the customer. `role` is who added it (requester or agent)."""

        address: str
        by: str
        role: str

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.cc = (*t.cc, self.address)

    class CcRemoved(Event):
        """The requester or an agent removed an address from the CC list."""

        address: str
        by: str
        role: str

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            gone = _same_address_key(self.address)
            t.cc = tuple(a for a in t.cc if _same_address_key(a) != gone)

    class Erased(Event):
        """The requester's key was destroyed (`SupportDesk.forget_requester`): every personal
        field of this ticket reads as erased from now on. Records who asked, and when; no
        personal data."""

        by: str

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.erased_at = self.timestamp

    # -- people on the ticket (set by the events above) -----------------------------------

    cc: tuple[str, ...]
    """The CC list: stored (sealed) addresses that may act as the customer."""
    erased_at: _dt.datetime | None
    """When the requester's personal data was erased (None: it was not)."""

    # -- state (set by the events above) ----------------------------------------------------

    policy_version: str
    requester: str
    subject: str
    description: str
    severity: Severity
    channel: str
    product: dict[str, str]
    tags: tuple[str, ...]
    follow_up_of: UUID | None
    message_id: str | None
    status: Status
    assignee: str | None
    follow_ups: tuple[UUID, ...]
    close_due_at: _dt.datetime | None
    solve_due_at: _dt.datetime | None
    reopen_count: int
    solved_at: _dt.datetime | None
    first_response_at: _dt.datetime | None
    product_version: str | None
    supported: bool | None
    update_due_at: _dt.datetime | None
    update_clock_since: _dt.datetime | None
    update_overdue_at: _dt.datetime | None
    sla_breaches: int
    pending_escalation: dict[str, Any] | None
    escalations: int
    bugs: tuple[str, ...]
    survey_rating: int | None
    survey_comment: str | None
    _chain_last: Ticket.Event | ChainHead
    """The head of the hash chain: the last event applied, or its hash alone (`ChainHead`)
    when the ticket was restored from a snapshot. `event_hash` takes either."""

    def __init__(self) -> None:
        """Ticket state is set by `Submitted.apply`; use `Ticket.submit` to create one."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Ticket:
        """A copy for a command (the repository's cache hands out copies). Every attribute
        is immutable (events are frozen, collections are tuples) except the two dicts and
        the pending events, which are copied; so this is as good as a deep copy, and fast."""
        clone = object.__new__(type(self))
        state = dict(self.__dict__)
        state["product"] = dict(self.product)
        if self.pending_escalation is not None:
            state["pending_escalation"] = dict(self.pending_escalation)
        state["_pending_events"] = list(self._pending_events)
        clone.__dict__.update(state)
        return clone

    # -- snapshots --------------------------------------------------------------------------

    class_version = 2
    """The layout of a ticket's attributes as its snapshots store them: 1 is release 0.1;
    2 adds `cc` and `erased_at`. Whenever an attribute is added, removed or changes meaning,
    bump it and add an `upcast_v<old>_v<new>` below. A snapshot of an older layout goes
    through each upcaster in turn; one that still lacks an attribute of the state block is
    unusable, and the ticket is rebuilt from its events instead."""

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Release 0.1 had no CC list and no erasure: an older snapshot has neither."""
        state.setdefault("cc", ())
        state.setdefault("erased_at", None)

    class Snapshot(_Snapshot):
        """A ticket's attributes at one version, as plain JSON values.

        `take` stores every attribute the ticket has: enums as their values, tuples as lists,
        the chain head as the hash of the last event (`event_hash(ticket._chain_last)`), the
        rest as the store's transcoder writes it (text, numbers, `datetime`, `UUID`, dicts).
        `mutate` restores the types from the state block's annotations (an attribute declared
        as an enum or a tuple, optionally `| None`, is converted back), upcasts an older
        `class_version`, and refuses (raises) a snapshot it cannot restore exactly: an
        unknown topic or layout, a missing attribute, a value that is not one of its enum's.

        Snapshots are derived data outside the hash chain; the event log stays the truth.
        """

        _layout: typing.ClassVar[
            tuple[frozenset[str], tuple[tuple[str, typing.Callable[[Any], Any]], ...]] | None
        ] = None

        @classmethod
        def layout(
            cls,
        ) -> tuple[frozenset[str], tuple[tuple[str, typing.Callable[[Any], Any]], ...]]:
            """The attributes a restored ticket must have (its state block and the times of
            its first and last events), and the conversion of each one JSON changes."""
            if cls._layout is None:
                hints = typing.get_type_hints(Ticket)
                names = frozenset(inspect.get_annotations(Ticket))
                restorers = []
                for name in sorted(names):
                    restore = cls._restorer(hints[name])
                    if restore is not None:
                        restorers.append((name, restore))
                cls._layout = (names | {"_created_on", "_modified_on"}, tuple(restorers))
            return cls._layout

        @staticmethod
        def _restorer(hint: Any) -> typing.Callable[[Any], Any] | None:
            union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
            for option in typing.get_args(hint) if union else (hint,):
                if isinstance(option, type) and issubclass(option, enum.Enum):
                    return option
                if option is tuple or typing.get_origin(option) is tuple:
                    return tuple
            return None

        @classmethod
        def take(cls, aggregate: Any) -> typing.Self:
            snapshot = super().take(aggregate)
            state: dict[str, Any] = snapshot.state
            for name, value in state.items():
                if isinstance(value, enum.Enum):
                    state[name] = value.value
                elif isinstance(value, tuple):
                    state[name] = list(value)
            state["_chain_last"] = event_hash(aggregate._chain_last)
            return snapshot

        def mutate(self, _: None) -> Ticket:
            cls = resolve_topic(self.topic)
            if not (isinstance(cls, type) and issubclass(cls, Ticket)):
                msg = f"snapshot of {self.originator_id}: {self.topic!r} is not a ticket class"
                raise TypeError(msg)
            state = dict(self.state)
            version = state.pop("class_version", 1)
            if type(version) is not int or not 1 <= version <= cls.class_version:
                msg = (
                    f"snapshot of ticket {self.originator_id}: layout {version!r} is not one "
                    f"this release reads (1 to {cls.class_version})"
                )
                raise ValueError(msg)
            names, restorers = Ticket.Snapshot.layout()
            for name, restore in restorers:
                value = state.get(name)
                if value is not None:
                    state[name] = restore(value)
            head = state.get("_chain_last")
            if head is not None:
                state["_chain_last"] = ChainHead(head)
            while version < cls.class_version:
                getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
                version += 1
            missing = names.difference(state)
            if missing:
                msg = (
                    f"snapshot of ticket {self.originator_id} lacks {', '.join(sorted(missing))}"
                    f" (bump Ticket.class_version and upcast older snapshots)"
                )
                raise ValueError(msg)
            state["_id"] = self.originator_id
            state["_version"] = self.originator_version
            state["_pending_events"] = []
            ticket: Ticket = object.__new__(cls)
            object.__setattr__(ticket, "__dict__", state)
            return ticket

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def submit(
        cls,
        *,
        ticket_id: UUID,
        policy: SupportPolicy,
        at: _dt.datetime,
        requester: str,
        subject: str,
        description: str,
        severity: Severity,
        channel: str,
        product: dict[str, str],
        tags: list[str],
        follow_up_of: UUID | None = None,
        message_id: str | None = None,
        product_version: str | None = None,
    ) -> Ticket:
        """A new ticket under `policy`; inputs are already validated by the desk."""
        return cls._create(
            cls.Submitted,
            id=ticket_id,
            timestamp=at,
            previous_hash=GENESIS,
            policy_version=policy.version,
            requester=requester,
            subject=subject,
            description=description,
            severity=int(severity),
            channel=channel,
            product=dict(product),
            tags=list(tags),
            follow_up_of=follow_up_of,
            message_id=message_id,
            product_version=product_version,
            supported=policy.is_supported_version(product_version),
            update_due_at=policy.update_due_at(severity, at),
        )

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        """Trigger the next event, chained to the previous one by its hash."""
        super().trigger_event(event_class, previous_hash=event_hash(self._chain_last), **kwargs)

    # -- queries ----------------------------------------------------------------------------

    @property
    def last_event_at(self) -> _dt.datetime:
        """The timestamp of the latest event (time never goes backwards on a ticket)."""
        return self.modified_on

    def copyable_fields(self) -> dict[str, Any]:
        """The fields a follow-up may copy (see `SupportPolicy.follow_up_copies`)."""
        return {
            "requester": self.requester,
            "subject": self.subject,
            "severity": self.severity,
            "channel": self.channel,
            "product": dict(self.product),
            "tags": list(self.tags),
        }

    # -- commands ---------------------------------------------------------------------------

    def catch_up(
        self, policy: SupportPolicy, *, until: _dt.datetime, written_at: _dt.datetime
    ) -> int:
        """Apply every timer due at or before `until`, each stamped with its due instant.

        Returns the number of events triggered. Safe to call any number of times.
        """
        count = 0
        while True:
            timer = self.pending_timer(policy)
            if timer is None or not policy.is_due(timer, until):
                return count
            row = policy.transition(self.status, timer.action)
            if row is None:  # a custom table without this timer: it never fires
                return count
            due = max(timer.due_at, self.modified_on)
            if timer.action is Action.AUTO_SOLVE:
                self.trigger_event(
                    self.Solved,
                    timestamp=due,
                    by="system",
                    solution="",
                    automatic=True,
                    written_at=max(written_at, due),
                    close_due_at=policy.close_due_at(due),
                )
            elif timer.action is Action.UPDATE_OVERDUE:
                self.trigger_event(
                    self.UpdateOverdue,
                    timestamp=due,
                    due_at=timer.due_at,
                    severity=int(self.severity),
                    automatic=True,
                    written_at=max(written_at, due),
                )
            else:
                self.trigger_event(
                    self.Closed, timestamp=due, automatic=True, written_at=max(written_at, due)
                )
            count += 1

    def pending_timer(self, policy: SupportPolicy) -> DueTimer | None:
        """The timer armed on this ticket now (its update clock counts until its breach)."""
        return policy.due_timer(
            self.status,
            solve_due_at=self.solve_due_at,
            close_due_at=self.close_due_at,
            update_due_at=self.update_due_at if self.update_overdue_at is None else None,
        )

    def _clock(
        self, policy: SupportPolicy, status: Status, at: _dt.datetime, *, restart: bool
    ) -> dict[str, _dt.datetime | None]:
        """The update clock after a change to `status` at `at` (restarted by agent updates,
        reactivation and reopening; paused while PENDING; stopped at SOLVED)."""
        if not policy.update_clock_runs(status):
            return {"update_due_at": None, "update_clock_since": None}
        if restart or self.update_clock_since is None:
            due = policy.update_due_at(self.severity, at)
            return {"update_due_at": due, "update_clock_since": None if due is None else at}
        return {"update_due_at": self.update_due_at, "update_clock_since": self.update_clock_since}

    def check_time(self, at: _dt.datetime) -> None:
        """Refuse a command dated before this ticket's last event."""
        if at < self.modified_on:
            msg = (
                f"command dated {at.isoformat()} is before the ticket's last event at "
                f"{self.modified_on.isoformat()}; time never goes backwards on a ticket"
            )
            raise InvalidCommand(msg, ticket_id=self.id)

    def allowed(self, policy: SupportPolicy, action: Action) -> Transition:
        """The policy's row for `action` now, or `TransitionRejected`."""
        row = policy.transition(self.status, action)
        if row is None:
            raise TransitionRejected(
                self.id,
                status=self.status,
                action=action,
                allowed=[a for a in policy.allowed_actions(self.status) if a in _PEOPLE_ACTIONS],
            )
        return row

    def permit(self, policy: SupportPolicy, action: Action, role: Role, actor: str) -> None:
        """Refuse `action` by `actor` in `role` unless the policy's permission table allows
        it (checked before the status, so a refused actor learns nothing about the ticket)."""
        if not policy.may(role, action):
            raise PermissionDenied(
                self.id,
                actor=actor,
                role=role,
                action=action,
                allowed=policy.roles_for(action),
            )

    def is_cc(self, address: str) -> bool:
        """Whether stored address `address` (sealed under this ticket's key) is on the CC list."""
        wanted = _same_address_key(address)
        return any(_same_address_key(a) == wanted for a in self.cc)

    def assign(
        self, policy: SupportPolicy, *, agent: str, at: _dt.datetime, role: Role = Role.AGENT
    ) -> bool:
        self.permit(policy, Action.ASSIGN, role, agent)
        row = self.allowed(policy, Action.ASSIGN)
        if self.assignee == agent and row.to is self.status:
            return False
        self.trigger_event(
            self.Assigned, timestamp=at, agent=agent, previous=self.assignee, status=row.to.value
        )
        return True

    def respond(
        self,
        policy: SupportPolicy,
        *,
        agent: str,
        body: str,
        asks_for_input: bool,
        at: _dt.datetime,
        role: Role = Role.AGENT,
    ) -> bool:
        action = Action.REQUEST_INFO if asks_for_input else Action.REPLY
        self.permit(policy, action, role, agent)
        row = self.allowed(policy, action)
        if row.reopens:
            self.trigger_event(
                self.Reopened,
                timestamp=at,
                by=agent,
                reason=action.value,
                **self._clock(policy, Status.OPEN, at, restart=True),
            )
        self.trigger_event(
            self.Responded,
            timestamp=at,
            by=agent,
            role="agent",
            body=body,
            message_id=None,
            auto_submitted=False,
            asks_for_input=asks_for_input,
            status=row.to.value,
            solve_due_at=policy.solve_due_at(at) if row.to is Status.PENDING else None,
            **self._clock(policy, row.to, at, restart=True),
        )
        return True

    def solve(
        self,
        policy: SupportPolicy,
        *,
        agent: str,
        solution: str,
        at: _dt.datetime,
        role: Role = Role.AGENT,
    ) -> bool:
        self.permit(policy, Action.SOLVE, role, agent)
        row = self.allowed(policy, Action.SOLVE)
        if not row.records:
            return False
        self.trigger_event(
            self.Solved,
            timestamp=at,
            by=agent,
            solution=solution,
            automatic=False,
            written_at=None,
            close_due_at=policy.close_due_at(at),
        )
        return True

    def change_severity(
        self,
        policy: SupportPolicy,
        *,
        severity: Severity,
        by: str,
        reason: str,
        at: _dt.datetime,
        role: Role = Role.AGENT,
    ) -> bool:
        self.permit(policy, Action.CHANGE_SEVERITY, role, by)
        self.allowed(policy, Action.CHANGE_SEVERITY)
        if severity is self.severity:
            return False
        due = self.update_due_at
        if self.update_clock_since is not None and policy.update_clock_runs(self.status):
            due = policy.update_due_at(severity, self.update_clock_since)  # re-targeted
        self.trigger_event(
            self.SeverityChanged,
            timestamp=at,
            severity=int(severity),
            previous=int(self.severity),
            by=by,
            reason=reason,
            update_due_at=due,
        )
        return True

    def customer_reply(
        self,
        policy: SupportPolicy,
        *,
        by: str,
        body: str,
        message_id: str | None,
        auto_submitted: bool,
        at: _dt.datetime,
        role: Role = Role.REQUESTER,
    ) -> ReplyOutcome:
        """Record the customer's message, unless it must become a follow-up (then nothing is
        triggered here and `ReplyOutcome.FOLLOW_UP` is returned)."""
        self.permit(
            policy, Action.AUTO_REPLY if auto_submitted else Action.CUSTOMER_REPLY, role, by
        )
        outcome = policy.reply_outcome(self.status, auto_submitted=auto_submitted)
        if outcome is ReplyOutcome.FOLLOW_UP:
            return outcome
        if outcome is ReplyOutcome.IGNORE_AUTO_SUBMITTED:
            row = policy.transition(self.status, Action.AUTO_REPLY)
            to = self.status if row is None else row.to
        else:
            row = policy.transition(self.status, Action.CUSTOMER_REPLY)
            to = self.status if row is None else row.to
            if outcome is ReplyOutcome.REOPEN:
                self.trigger_event(
                    self.Reopened,
                    timestamp=at,
                    by=by,
                    reason="customer_reply",
                    **self._clock(policy, Status.OPEN, at, restart=True),
                )
        restart = outcome in (ReplyOutcome.REACTIVATE, ReplyOutcome.REOPEN)
        self.trigger_event(
            self.Responded,
            timestamp=at,
            by=by,
            role="customer",
            body=body,
            message_id=message_id,
            auto_submitted=auto_submitted,
            asks_for_input=False,
            status=to.value,
            solve_due_at=self.solve_due_at if to is Status.PENDING else None,
            **self._clock(policy, to, at, restart=restart),
        )
        return outcome

    def record_follow_up(
        self, *, follow_up_id: UUID, by: str, message_id: str | None, at: _dt.datetime
    ) -> None:
        self.trigger_event(
            self.FollowUpCreated,
            timestamp=at,
            follow_up_id=follow_up_id,
            by=by,
            message_id=message_id,
        )

    def request_escalation(
        self,
        policy: SupportPolicy,
        *,
        by: str,
        reason: str,
        requested_severity: Severity | None,
        contact: str | None,
        at: _dt.datetime,
        role: Role = Role.REQUESTER,
    ) -> None:
        self.permit(policy, Action.REQUEST_ESCALATION, role, by)
        self.allowed(policy, Action.REQUEST_ESCALATION)
        if self.pending_escalation is not None:
            raise InvalidCommand(
                "an escalation request is already waiting for a manager's review",
                ticket_id=self.id,
            )
        self.trigger_event(
            self.EscalationRequested,
            timestamp=at,
            by=by,
            reason=reason,
            requested_severity=None if requested_severity is None else int(requested_severity),
            contact=contact,
        )

    def review_escalation(
        self,
        policy: SupportPolicy,
        *,
        manager: str,
        accept: bool,
        severity: Severity | None,
        reassign_to: str | None,
        note: str,
        at: _dt.datetime,
        role: Role = Role.MANAGER,
        severity_reason: str | None = None,
    ) -> None:
        self.permit(policy, Action.REVIEW_ESCALATION, role, manager)
        self.allowed(policy, Action.REVIEW_ESCALATION)
        if self.pending_escalation is None:
            raise InvalidCommand("there is no escalation request to review", ticket_id=self.id)
        if not accept and (severity is not None or reassign_to is not None):
            raise InvalidCommand(
                "a declined escalation changes nothing: give no severity and no reassign_to",
                ticket_id=self.id,
            )
        if severity is not None:
            self.permit(policy, Action.CHANGE_SEVERITY, role, manager)
            self.allowed(policy, Action.CHANGE_SEVERITY)
        if reassign_to is not None:
            self.permit(policy, Action.ASSIGN, role, manager)
            self.allowed(policy, Action.ASSIGN)
        self.trigger_event(
            self.EscalationReviewed, timestamp=at, manager=manager, accepted=accept, note=note
        )
        if severity is not None:
            reason = f"escalation: {note}" if severity_reason is None else severity_reason
            self.change_severity(
                policy, severity=severity, by=manager, reason=reason, at=at, role=role
            )
            # a re-targeted update clock may already be due: its breach comes first
            self.catch_up(policy, until=at, written_at=at)
        if reassign_to is not None:
            self.assign(policy, agent=reassign_to, at=at, role=role)

    def link_bug(
        self,
        policy: SupportPolicy,
        *,
        reference: str,
        by: str,
        at: _dt.datetime,
        role: Role = Role.AGENT,
    ) -> bool:
        self.permit(policy, Action.LINK_BUG, role, by)
        self.allowed(policy, Action.LINK_BUG)
        if reference in self.bugs:
            return False
        self.trigger_event(self.BugLinked, timestamp=at, reference=reference, by=by)
        return True

    def answer_survey(
        self,
        policy: SupportPolicy,
        *,
        rating: int,
        comment: str,
        by: str,
        at: _dt.datetime,
        role: Role = Role.REQUESTER,
    ) -> None:
        self.permit(policy, Action.ANSWER_SURVEY, role, by)
        self.allowed(policy, Action.ANSWER_SURVEY)
        if self.survey_rating is not None:
            raise InvalidCommand("the survey was answered already", ticket_id=self.id)
        self.trigger_event(self.SurveyAnswered, timestamp=at, rating=rating, comment=comment, by=by)

    def add_cc(
        self, policy: SupportPolicy, *, address: str, by: str, role: Role, at: _dt.datetime
    ) -> bool:
        """Put `address` (sealed) on the CC list; an address already on it records nothing.
        CC changes are not lifecycle transitions: allowed in every status, by permission."""
        self.permit(policy, Action.ADD_CC, role, by)
        if self.is_cc(address) or _same_address_key(address) == _same_address_key(self.requester):
            return False
        self.trigger_event(self.CcAdded, timestamp=at, address=address, by=by, role=role.value)
        return True

    def remove_cc(
        self, policy: SupportPolicy, *, address: str, by: str, role: Role, at: _dt.datetime
    ) -> bool:
        """Take `address` off the CC list; an address not on it records nothing."""
        self.permit(policy, Action.REMOVE_CC, role, by)
        if not self.is_cc(address):
            return False
        self.trigger_event(self.CcRemoved, timestamp=at, address=address, by=by, role=role.value)
        return True

    def erase(self, *, by: str, at: _dt.datetime) -> bool:
        """Record that the requester's personal data was erased (once)."""
        if self.erased_at is not None:
            return False
        self.trigger_event(self.Erased, timestamp=at, by=by)
        return True


PERSONAL_FIELDS: dict[type[Ticket.Event], tuple[str, ...]] = {
    Ticket.Submitted: ("requester", "subject", "description"),
    Ticket.Responded: ("by", "body"),
    Ticket.Solved: ("solution",),
    Ticket.Reopened: ("by",),
    Ticket.FollowUpCreated: ("by",),
    Ticket.SeverityChanged: ("reason",),
    Ticket.EscalationRequested: ("by", "reason", "contact"),
    Ticket.EscalationReviewed: ("note",),
    Ticket.SurveyAnswered: ("comment", "by"),
    Ticket.CcAdded: ("address", "by"),
    Ticket.CcRemoved: ("address", "by"),
}
"""The fields of each event that may hold personal data, sealed under the requester's key
(`supportflow._pii`): addresses of customers, and every text people wrote. Staff names,
statuses, instants, tags and product fields are not sealed."""
