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
from .policy import (
    Action,
    DueTimer,
    ReplyOutcome,
    Severity,
    Status,
    SupportPolicy,
    Transition,
)

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
        Action.REQUEST_ESCALATION,
        Action.REVIEW_ESCALATION,
        Action.LINK_BUG,
        Action.ANSWER_SURVEY,
    }
)


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
    _chain_last: Ticket.Event

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
    ) -> None:
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
    ) -> None:
        self.allowed(policy, Action.REVIEW_ESCALATION)
        if self.pending_escalation is None:
            raise InvalidCommand("there is no escalation request to review", ticket_id=self.id)
        if not accept and (severity is not None or reassign_to is not None):
            raise InvalidCommand(
                "a declined escalation changes nothing: give no severity and no reassign_to",
                ticket_id=self.id,
            )
        if severity is not None:
            self.allowed(policy, Action.CHANGE_SEVERITY)
        if reassign_to is not None:
            self.allowed(policy, Action.ASSIGN)
        self.trigger_event(
            self.EscalationReviewed, timestamp=at, manager=manager, accepted=accept, note=note
        )
        if severity is not None:
            self.change_severity(
                policy, severity=severity, by=manager, reason=f"escalation: {note}", at=at
            )
            # a re-targeted update clock may already be due: its breach comes first
            self.catch_up(policy, until=at, written_at=at)
        if reassign_to is not None:
            self.assign(policy, agent=reassign_to, at=at)

    def link_bug(self, policy: SupportPolicy, *, reference: str, by: str, at: _dt.datetime) -> bool:
        self.allowed(policy, Action.LINK_BUG)
        if reference in self.bugs:
            return False
        self.trigger_event(self.BugLinked, timestamp=at, reference=reference, by=by)
        return True

    def answer_survey(
        self, policy: SupportPolicy, *, rating: int, comment: str, by: str, at: _dt.datetime
    ) -> None:
        self.allowed(policy, Action.ANSWER_SURVEY)
        if self.survey_rating is not None:
            raise InvalidCommand("the survey was answered already", ticket_id=self.id)
        self.trigger_event(self.SurveyAnswered, timestamp=at, rating=rating, comment=comment, by=by)
