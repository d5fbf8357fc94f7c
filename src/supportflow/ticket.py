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
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ._chain import GENESIS, event_hash
from .errors import InvalidCommand, TransitionRejected
from .policy import Action, ReplyOutcome, Severity, Status, SupportPolicy, Transition

__all__ = ["Ticket"]

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
    }
)


class Ticket(Aggregate):
    """A support ticket, rebuilt from its events."""

    # -- events -----------------------------------------------------------------------------

    class Event(Aggregate.Event):
        """Base class of every ticket event. `timestamp` is when it happened (aware UTC);
        `previous_hash` is the hash of the ticket's previous event (`GENESIS` for the first)."""

        previous_hash: str

        def mutate(self, aggregate: Any) -> Any:
            ticket: Any = super().mutate(aggregate)
            ticket._chain_last = self  # the chain's head; hashed only when a new event follows
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

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.policy_version = self.policy_version
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

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.status = _STATUS_BY_VALUE[self.status]
            t.solve_due_at = self.solve_due_at
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

    class Reopened(Event):
        """A `SOLVED` ticket became active again before its close time; the close timer is off."""

        by: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.status = Status.OPEN
            t.close_due_at = None
            t.reopen_count += 1

    class Closed(Event):
        """The close timer fired (`automatic`); the ticket is final."""

        automatic: bool
        written_at: _dt.datetime | None

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.status = Status.CLOSED
            t.close_due_at = None
            t.solve_due_at = None

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

        def apply(self, aggregate: Any) -> None:
            t: Ticket = aggregate
            t.severity = Severity(self.severity)

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
    _chain_last: Ticket.Event

    def __init__(self) -> None:
        """Ticket state is set by `Submitted.apply`; use `Ticket.submit` to create one."""

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
            timer = policy.due_timer(
                self.status, solve_due_at=self.solve_due_at, close_due_at=self.close_due_at
            )
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
            else:
                self.trigger_event(
                    self.Closed, timestamp=due, automatic=True, written_at=max(written_at, due)
                )
            count += 1

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

    def assign(self, policy: SupportPolicy, *, agent: str, at: _dt.datetime) -> bool:
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
    ) -> bool:
        action = Action.REQUEST_INFO if asks_for_input else Action.REPLY
        row = self.allowed(policy, action)
        if row.reopens:
            self.trigger_event(self.Reopened, timestamp=at, by=agent, reason=action.value)
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
        )
        return True

    def solve(self, policy: SupportPolicy, *, agent: str, solution: str, at: _dt.datetime) -> bool:
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
        self, policy: SupportPolicy, *, severity: Severity, by: str, reason: str, at: _dt.datetime
    ) -> bool:
        self.allowed(policy, Action.CHANGE_SEVERITY)
        if severity is self.severity:
            return False
        self.trigger_event(
            self.SeverityChanged,
            timestamp=at,
            severity=int(severity),
            previous=int(self.severity),
            by=by,
            reason=reason,
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
    ) -> ReplyOutcome:
        """Record the customer's message, unless it must become a follow-up (then nothing is
        triggered here and `ReplyOutcome.FOLLOW_UP` is returned)."""
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
                self.trigger_event(self.Reopened, timestamp=at, by=by, reason="customer_reply")
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
