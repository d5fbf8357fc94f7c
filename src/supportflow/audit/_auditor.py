"""The auditor: stream a store's log in order, verify every ticket, report.

One pass over the notification log, in batches (memory does not grow with the number of
events or tickets: the auditor keeps a small record per ticket that can still change, and
spills finished tickets' records and the inbound message ids to a temporary file; see
`_ledger`). For each ticket event it checks the sequence and the hash chain, then re-derives
what the ticket's policy (the version its `Submitted` recorded) says must happen.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from .._chain import GENESIS
from .._pii import KeyRing
from .._recorders import KeyTable
from .._records import MessageReceipt, PolicyRecord, follow_up_id
from .._store import store_env, store_settings
from ..clock import SystemClock
from ..desk import SupportDesk
from ..errors import InvalidCommand, SupportflowError, TicketNotFound
from ..policy import (
    Action,
    ReplyOutcome,
    Role,
    Status,
    SupportPolicy,
    Transition,
    require_aware_utc,
)
from ..policy._transitions import transition_map
from ..ticket import Ticket, _same_address_key
from ._cross import ClaimWriter, CrossTicket
from ._fast import DueInstants, EventHasher, EventReader
from ._history import build_history, iso, sealed_text
from ._ledger import Ledger, MessageEffects, Samples, Spill, TicketState
from ._model import AuditReport, Metrics, TicketHistory, Violation
from ._registry import PolicyRegistry
from ._scan import Row, Share, as_uuid, notification, read_batch, read_rows
from ._seal import Head, SealRecord, heads_differences, manifest_text, parse_manifest, seal_id
from ._whatif import WhatIf

__all__ = [
    "AUTO_SPLIT_ROWS",
    "DEFAULT_GRACE",
    "MAX_WORKERS",
    "Auditor",
    "audit_store",
    "open_auditor",
    "seal",
]

DEFAULT_GRACE = _dt.timedelta(hours=1)
"""How long a due timer may stay unwritten before the audit calls it overdue (worker lag)."""

BATCH = 1000
MAX_LISTED_VIOLATIONS = 10_000
MAX_WORKERS = 16
"""The most processes one audit is split over."""
AUTO_SPLIT_ROWS = 20_000
"""``workers="auto"`` splits a log of at least this many rows (below, starting processes
costs more than it saves)."""

_STATUS = {status.value: status for status in Status}
_ACTION = {action.value: action for action in Action}
_ROLE = {role.value: role for role in Role}
_POLICY_TOPIC = get_topic(PolicyRecord.Adopted)

_OTHER, _TIMER, _OVERDUE, _REPLY = 0, 1, 2, 3
"""Kinds of ticket event for `_Check._rules`: a `Solved` or `Closed` (automatic when a timer
fired it), an `UpdateOverdue`, a `Responded` (the message a `Reopened` waits for), the rest."""

_Handler = Callable[[TicketState, int, Any, SupportPolicy], None]
"""A check of one event class: (the ticket's record, the log position, the event, its policy)."""


def make_violation(
    rule: str,
    tid: UUID,
    position: int | None,
    log_position: int | None,
    text: str,
    *,
    kind: str = "ticket",
) -> Violation:
    """A violation of `rule` by ticket (or record) `tid`'s event `position`."""
    where = f"{kind} {tid}" + ("" if position is None else f" event {position}")
    return Violation(
        rule=rule,
        message=f"{where}: {text}",
        ticket_id=tid,
        position=position,
        log_position=log_position,
    )


def _address_key(value: object) -> str | None:
    """What two stored addresses of one ticket are compared by (the ticket's own rule:
    `supportflow.ticket._same_address_key`); None for a value that is not text."""
    return _same_address_key(value) if isinstance(value, str) else None


def _kind(event: object) -> str:
    if isinstance(event, Ticket.Event):
        return "ticket"
    if isinstance(event, MessageReceipt.Received):
        return "receipt"
    if isinstance(event, PolicyRecord.Adopted):
        return "policy"
    if isinstance(event, SealRecord.Sealed):
        return "seal"
    return "aggregate"


_State = TicketState


class _Check:
    """The per-event verification, fed in log order."""

    def __init__(
        self,
        registry: PolicyRegistry,
        as_of: _dt.datetime | None,
        report: Callable[[Violation], None],
        what_if: WhatIf | None,
        claims: ClaimWriter | None = None,
    ) -> None:
        self.registry = registry
        self.as_of = as_of
        self.existing = 0
        """Tickets submitted at or before `as_of` (with a known policy)."""
        self.report = report
        self.what_if = what_if
        self.spill = Spill()
        """A temporary file for what the audit must remember but need not keep in memory."""
        self.tickets = Ledger(self.spill)
        """Every ticket seen: live records, and finished tickets' packed records on disk."""
        self.cross: CrossTicket | ClaimWriter = (
            CrossTicket(MessageEffects(self.spill), self.violation) if claims is None else claims
        )
        """Follow-up links and message ids: judged here, or written down for the process
        that merges the shares of a split audit (`_parallel`)."""
        self.order = 0
        """While `finish_tickets` runs: the log position where the ticket it is looking at
        first appeared (a split audit orders the end's violations by it)."""
        self.events = 0
        self.latest: _dt.datetime | None = None
        self.first_response = Samples()
        self.time_to_solve = Samples()
        self.reopens = 0
        self.follow_ups = 0
        self.agent_solves = 0
        self.auto_solves = 0
        self.auto_closes = 0
        self.max_lag: float | None = None
        self._tables: dict[int, Mapping[tuple[str, str], Transition]] = {}
        self._due: dict[int, DueInstants] = {}
        self._entries: dict[type, tuple[int, _Handler]] = {}
        """Per event class, how it is checked (`_entry`)."""
        self._live = self.tickets.live

    def due(self, policy: SupportPolicy) -> DueInstants:
        """The policy's due instants (same answers, computed faster; see `_fast`)."""
        found = self._due.get(id(policy))  # registry policies live as long as the audit
        if found is None:
            found = self._due[id(policy)] = DueInstants(policy)
        return found

    def row(self, policy: SupportPolicy, status: Status, action: Action) -> Transition | None:
        """`policy.transition(status, action)`, with the table indexed once per policy."""
        table = self._tables.get(id(policy))  # registry policies live as long as the audit
        if table is None:
            table = self._tables[id(policy)] = {
                (s._name_, a._name_): row
                for (s, a), row in transition_map(policy.transitions).items()
            }  # keyed by the members' names: an enum member hashes in Python, its name in C
        return table.get((status._name_, action._name_))

    # -- reporting -----------------------------------------------------------------------------

    def violation(
        self,
        rule: str,
        tid: UUID,
        position: int | None,
        log_position: int | None,
        text: str,
        *,
        kind: str = "ticket",
    ) -> None:
        self.report(make_violation(rule, tid, position, log_position, text, kind=kind))

    def saw(self, instant: _dt.datetime) -> None:
        if self.latest is None or instant > self.latest:
            self.latest = instant

    # -- integrity -----------------------------------------------------------------------------

    def knows(self, n: Notification) -> bool:
        """Whether the row's originator is a ticket already seen in the log."""
        return self._state(UUID(str(n.originator_id))) is not None

    def _state(self, tid: UUID) -> _State | None:
        """The ticket's record (unpacked if it was packed), None for a ticket not seen."""
        return self.tickets.get(tid)

    def foreign_id(self, log_position: int, originator_id: object) -> None:
        """A row whose originator id is not a UUID (no ticket or record has one)."""
        self.report(
            Violation(
                rule="unreadable",
                message=f"record at log position {log_position}: its originator id "
                f"{repr(originator_id)[:80]} is not a UUID; the row was altered",
                log_position=log_position,
            )
        )

    def unreadable(self, n: Notification, error: BaseException, *, kind: str) -> None:
        tid = UUID(str(n.originator_id))
        state = self._state(tid)
        self.violation(
            "unreadable",
            tid,
            n.originator_version,
            n.id,
            f"the stored event at log position {n.id} cannot be decoded "
            f"({type(error).__name__}: {str(error)[:120] or 'no detail'}); it was altered "
            "or is stored with other settings (compression, cipher key)",
            kind=kind,
        )
        if state is not None:
            state.broken = True
            state.version = max(state.version, n.originator_version)
            state.last_hash = b""  # unknown: the next event's chain cannot be checked

    def ticket_event(self, pos: int, event: Any, digest: bytes) -> None:
        """Check one ticket event; `digest` is its hash (32 bytes)."""
        state = self.checked(pos, event, digest)
        if state.status is Status.CLOSED or state.broken or state.policy is None:
            self.tickets.settle(event.originator_id)  # a finished ticket's record leaves memory

    def checked(self, pos: int, event: Any, digest: bytes) -> _State:
        """Check one ticket event; the ticket's record after it. The caller settles a
        finished ticket's record (see `ticket_event`)."""
        tid: UUID = event.originator_id
        version: int = event.originator_version
        at: _dt.datetime = event.timestamp
        state = self._live.get(tid.int)
        if state is None:
            state = self.tickets.get(tid)
        previous = getattr(event, "previous_hash", None)
        if state is None:
            state = _State(version, digest, at)
            self.tickets.add(tid, state, seq=pos)
            if version != 1 or not isinstance(event, Ticket.Submitted):
                self.violation(
                    "sequence",
                    tid,
                    version,
                    pos,
                    f"the log holds no earlier event of this ticket; its first event "
                    f"(a Submitted at position 1) is missing, found {type(event).__name__} at "
                    f"position {version}",
                )
                state.broken = True
                return state
            if previous != GENESIS:
                self.violation(
                    "chain",
                    tid,
                    version,
                    pos,
                    "the first event does not carry the genesis hash: it was changed or "
                    "copied from another ticket",
                )
                state.broken = True
            self._first(state, pos, event)
            return state
        expected = state.version + 1
        if version != expected:
            if version < expected:
                self.violation(
                    "sequence",
                    tid,
                    version,
                    pos,
                    f"appears at log position {pos}, after event {state.version} of the same "
                    "ticket: the row was re-inserted with another id (moved in the log)",
                )
                return state  # not the ticket's next event: leave the state as it was
            missing = (
                f"event {expected} is"
                if version == expected + 1
                else f"events {expected}-{version - 1} are"
            )
            self.violation(
                "sequence",
                tid,
                version,
                pos,
                f"{missing} missing before it in the log (deleted, or moved to another log "
                "position)",
            )
            state.broken = True
        elif state.last_hash and previous != state.last_hash.hex():
            self.violation(
                "chain",
                tid,
                version,
                pos,
                f"its previous_hash does not match event {state.version} of this ticket: "
                f"event {state.version} was changed, or this event was changed, swapped or "
                "copied from another ticket",
            )
            state.broken = True
        if at < state.last_at:
            self.violation(
                "time-order",
                tid,
                version,
                pos,
                f"stamped {iso(at)}, before the ticket's previous event at "
                f"{iso(state.last_at)}; time never goes backwards on a ticket",
            )
            state.broken = True
        state.version = version
        state.last_hash = digest
        prior_at = state.last_at
        if at > prior_at:
            state.last_at = at
        if state.broken or state.policy is None:
            return state
        if self.as_of is not None and at > self.as_of:
            return state
        self.events += 1
        self._rules(state, pos, event, prior_at)
        if self.what_if is not None:
            self.what_if.event(event)
        return state

    # -- lifecycle rules -------------------------------------------------------------------------

    def _first(self, state: _State, pos: int, event: Any) -> None:
        tid: UUID = event.originator_id
        policy = self.registry.get(event.policy_version)
        if policy is None:
            self.violation(
                "unknown-policy",
                tid,
                1,
                pos,
                f"runs under policy {event.policy_version!r}, which neither the store nor the "
                "auditor knows; its lifecycle cannot be verified",
            )
            return
        if self.as_of is not None and event.timestamp > self.as_of:
            return  # submitted after the audit time: only its integrity is checked
        self.existing += 1
        state.policy = policy
        state.requester = _address_key(event.requester)
        state.severity = event.severity
        state.update_due = event.update_due_at
        state.update_since = event.timestamp if event.update_due_at is not None else None
        expected = self.due(policy).update_due_at(event.severity, event.timestamp)
        if event.update_due_at != expected:  # (only a difference needs the call)
            self._fact(pos, event, "update_due_at", event.update_due_at, expected)
        self.events += 1
        if event.follow_up_of is not None:
            self.cross.child_link(tid, event.follow_up_of, pos)
        if event.message_id is not None:
            self.cross.effect(event.message_id, tid, "submitted", tid, 1, pos)
        if self.what_if is not None:
            self.what_if.event(event)

    def _transition(
        self, state: _State, pos: int, event: Any, action: Action, policy: SupportPolicy
    ) -> Any:
        row = self.row(policy, state.status, action)
        if row is None:
            self.violation(
                "transition",
                event.originator_id,
                event.originator_version,
                pos,
                f"{action.value} is not allowed in status {state.status.name} by policy "
                f"{policy.version!r}",
            )
        return row

    def _fact(self, pos: int, event: Any, name: str, recorded: Any, expected: Any) -> None:
        if recorded != expected:
            shown = [iso(v) if isinstance(v, _dt.datetime) else v for v in (recorded, expected)]
            self.violation(
                "fact",
                event.originator_id,
                event.originator_version,
                pos,
                f"{type(event).__name__} records {name}={shown[0]!r}, but its policy gives "
                f"{shown[1]!r}",
            )

    def _rules(self, state: _State, pos: int, event: Any, prior_at: _dt.datetime) -> None:
        policy = state.policy
        assert policy is not None
        entry = self._entries.get(event.__class__)
        if entry is None:
            entry = self._entries[event.__class__] = self._entry(event.__class__)
        kind, handler = entry
        if state.reopen_action is not None and kind is not _REPLY:
            self.violation(
                "transition",
                event.originator_id,
                event.originator_version,
                pos,
                "a Reopened must be followed by the message that reopened the ticket, found "
                f"{type(event).__name__}",
            )
            state.reopen_action = None
        if kind is _TIMER and event.automatic:
            self._automatic(state, pos, event, policy, prior_at)
            return
        if kind is _OVERDUE:
            self._update_overdue(state, pos, event, policy, prior_at)
            return
        # a timer due before this event must have fired first
        due = self._due.get(id(policy)) or self.due(policy)
        armed = due.timer_due_at(
            state.status,
            state.solve_due,
            state.close_due,
            None if state.update_overdue else state.update_due,
        )
        if armed is not None and armed <= event.timestamp:
            self._timer_missed(pos, event, state, policy)
        # follow the update clock the event records: a clock that (re)started clears the
        # breach; a re-targeted one (a severity change: same start) keeps it
        if kind is _TIMER:
            if state.update_since is not None:
                state.update_overdue = False
            state.update_due = state.update_since = None
        else:
            fields = event.__dict__
            if "update_due_at" in fields:
                since = fields.get("update_clock_since", state.update_since)
                if since != state.update_since:
                    state.update_overdue = False
                state.update_due = fields["update_due_at"]
                state.update_since = since
        handler(state, pos, event, policy)

    def _entry(self, cls: type) -> tuple[int, _Handler]:
        """How events of class `cls` are checked: (kind, handler)."""
        table: dict[type, tuple[int, _Handler]] = {
            Ticket.Solved: (_TIMER, self._agent_solved),
            Ticket.Closed: (_TIMER, self._closed_by_hand),
            Ticket.UpdateOverdue: (_OVERDUE, self._nothing),
            Ticket.Assigned: (_OTHER, self._assigned),
            Ticket.Responded: (_REPLY, self._responded),
            Ticket.Reopened: (_OTHER, self._reopened),
            Ticket.FollowUpCreated: (_OTHER, self._follow_up_created),
            Ticket.EscalationRequested: (_OTHER, self._customer_request),
            Ticket.EscalationReviewed: (_OTHER, self._bookkeeping),
            Ticket.BugLinked: (_OTHER, self._bookkeeping),
            Ticket.SurveyAnswered: (_OTHER, self._customer_request),
            Ticket.SeverityChanged: (_OTHER, self._severity_changed),
            Ticket.CcAdded: (_OTHER, self._cc_changed),
            Ticket.CcRemoved: (_OTHER, self._cc_changed),
        }
        found = table.get(cls)
        if found is not None:
            return found
        for base, (kind, handler) in table.items():  # a subclass: checked as its class...
            if issubclass(cls, base):
                if base in _BOOKKEEPING_ACTIONS:  # ...except against the table (exact rows)
                    customer = base in (Ticket.EscalationRequested, Ticket.SurveyAnswered)
                    return _OTHER, self._customer_only if customer else self._nothing
                return kind, handler
        return _OTHER, self._nothing  # e.g. Erased: who erased changes nothing checked here

    def _timer_missed(self, pos: int, event: Any, state: _State, policy: SupportPolicy) -> None:
        timer = policy.due_timer(
            state.status,
            solve_due_at=state.solve_due,
            close_due_at=state.close_due,
            update_due_at=state.armed_update_due(),
        )
        assert timer is not None
        name = timer.kind.value.replace("_", "-")
        self.violation(
            "timer-missed",
            event.originator_id,
            event.originator_version,
            pos,
            f"the {name} timer was due at {iso(timer.due_at)} but this "
            f"{type(event).__name__} at {iso(event.timestamp)} came first; a timer fires at "
            "its due instant, before anything later",
        )

    # -- who acted ---------------------------------------------------------------------------------

    def _customer(
        self,
        state: _State,
        pos: int,
        event: Any,
        by: Any,
        what: str,
        *,
        requester_only: bool = False,
    ) -> None:
        """Report `event` unless `by` is the ticket's requester (or, unless `requester_only`,
        an address on its CC list at this moment), compared as the ticket compares them."""
        key = _address_key(by)
        if key is not None:
            if key == state.requester or (not requester_only and key in state.cc):
                return
            requester = state.requester
            if requester is not None and requester[:6] == "plain:" and key[:6] == "blind:":
                return  # a requester stored before sealing: no blind index to compare with
        who = "not the requester" if requester_only else "neither the requester nor on the CC list"
        self.violation(
            "permission",
            event.originator_id,
            event.originator_version,
            pos,
            f"{what} by someone who is {who}",
        )

    # -- one handler per event class ---------------------------------------------------------------

    def _nothing(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        return None

    def _assigned(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        row = self._transition(state, pos, event, Action.ASSIGN, policy)
        if row is not None and event.status != row.to._value_:  # (`value`: Python code)
            self._fact(pos, event, "status", event.status, row.to.value)
        if event.previous != state.assignee:
            self._fact(pos, event, "previous", event.previous, state.assignee)
        state.assignee = event.agent
        state.status = _STATUS.get(event.status, state.status)

    def _agent_solved(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        row = self._transition(state, pos, event, Action.SOLVE, policy)
        if row is not None and not row.records:
            self.violation(
                "transition",
                event.originator_id,
                event.originator_version,
                pos,
                f"solve in status {state.status.name} records nothing under its policy",
            )
        expected = self.due(policy).close_due_at(event.timestamp)
        if event.close_due_at != expected:
            self._fact(pos, event, "close_due_at", event.close_due_at, expected)
        self.agent_solves += 1
        self._solved(state, event)

    def _reopened(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        if event.reason == "customer_reply":
            self._customer(state, pos, event, event.by, "reopened by a customer reply")
        action = _ACTION.get(event.reason)
        row = None if action is None else self.row(policy, state.status, action)
        if row is None or not row.reopens:
            self.violation(
                "transition",
                event.originator_id,
                event.originator_version,
                pos,
                f"reopened ({event.reason}) in status {state.status.name}; only a "
                "message to a SOLVED ticket reopens it",
            )
        state.reopen_action = action
        state.status = Status.OPEN
        state.close_due = None
        self.reopens += 1

    def _closed_by_hand(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        self.violation(
            "transition",
            event.originator_id,
            event.originator_version,
            pos,
            "closed by hand; a ticket is only closed by its close timer",
        )
        state.status, state.close_due, state.solve_due = Status.CLOSED, None, None

    def _follow_up_created(
        self, state: _State, pos: int, event: Any, policy: SupportPolicy
    ) -> None:
        tid: UUID = event.originator_id
        self._customer(state, pos, event, event.by, "a reply to the closed ticket (a follow-up)")
        outcome = policy.reply_outcome(state.status)
        if outcome is not ReplyOutcome.FOLLOW_UP:
            self.violation(
                "transition",
                tid,
                event.originator_version,
                pos,
                f"a follow-up was created from status {state.status.name}; its policy "
                f"says a customer reply there is {outcome.value}",
            )
        state.follow_ups += 1
        self._fact(
            pos, event, "follow_up_id", event.follow_up_id, follow_up_id(tid, state.follow_ups)
        )
        self.follow_ups += 1
        child = event.follow_up_id
        self.cross.parent_link(child, tid, event.originator_version, pos)
        if event.message_id is not None:
            self.cross.effect(
                event.message_id, child, "follow-up", tid, event.originator_version, pos
            )

    def _bookkeeping(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        self._transition(state, pos, event, _BOOKKEEPING_ACTIONS[type(event)], policy)

    def _customer_request(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        """An escalation request or a survey answer: the customer's, and allowed now."""
        self._customer_only(state, pos, event, policy)
        self._transition(state, pos, event, _BOOKKEEPING_ACTIONS[type(event)], policy)

    def _customer_only(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        what = (
            "a survey answer"
            if isinstance(event, Ticket.SurveyAnswered)
            else "an escalation request"
        )
        self._customer(state, pos, event, event.by, what)

    def _severity_changed(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        self._transition(state, pos, event, Action.CHANGE_SEVERITY, policy)
        self._fact(pos, event, "previous", event.previous, state.severity)
        if event.severity == event.previous:
            self.violation(
                "fact",
                event.originator_id,
                event.originator_version,
                pos,
                "severity changed to itself",
            )
        state.severity = event.severity

    def _cc_changed(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        # not a lifecycle transition (any status); who did it must hold the permission
        adding = isinstance(event, Ticket.CcAdded)
        action = Action.ADD_CC if adding else Action.REMOVE_CC
        role = _ROLE.get(event.role)
        if role is None or not policy.may(role, action):
            allowed = ", ".join(sorted(r.value for r in policy.roles_for(action)))
            self.violation(
                "permission",
                event.originator_id,
                event.originator_version,
                pos,
                f"{action.value} recorded as done by a {event.role}; its policy allows "
                f"{allowed or 'nobody'}",
            )
        if event.role == Role.REQUESTER.value:
            self._customer(
                state,
                pos,
                event,
                event.by,
                f"{action.value} recorded as done by the requester, but",
                requester_only=True,
            )
        key = _address_key(event.address)
        if key is None:
            return
        if adding:
            if key not in state.cc:
                state.cc = (*state.cc, key)
        elif key in state.cc:
            state.cc = tuple(k for k in state.cc if k != key)

    def _responded(self, state: _State, pos: int, event: Any, policy: SupportPolicy) -> None:
        tid: UUID = event.originator_id
        at: _dt.datetime = event.timestamp
        reopened_by = state.reopen_action
        state.reopen_action = None
        if event.role == "agent":
            action = Action.REQUEST_INFO if event.asks_for_input else Action.REPLY
            if state.first_response is None:
                state.first_response = at
                self.first_response.add(at - state.created)
        else:
            self._customer(state, pos, event, event.by, "a customer message")
            if event.auto_submitted:
                action = Action.AUTO_REPLY
            else:
                action = Action.CUSTOMER_REPLY
                outcome = policy.reply_outcome(state.status)
                if outcome is ReplyOutcome.FOLLOW_UP:
                    self.violation(
                        "transition",
                        tid,
                        event.originator_version,
                        pos,
                        f"a customer reply was recorded on a {state.status.name} ticket; its "
                        "policy makes it a follow-up ticket",
                    )
        if reopened_by is not None and reopened_by is not action:
            self.violation(
                "transition",
                tid,
                event.originator_version,
                pos,
                f"follows a Reopened for {reopened_by.value}, but is a {action.value}",
            )
        row = self.row(policy, state.status, action)
        if row is None and action in {Action.REPLY, Action.REQUEST_INFO}:
            self._transition(state, pos, event, action, policy)
        elif row is not None and row.reopens:
            self.violation(
                "transition",
                tid,
                event.originator_version,
                pos,
                f"{action.value} to a SOLVED ticket must be preceded by Reopened",
            )
        to = state.status if row is None else row.to
        if event.status != to._value_:
            self._fact(pos, event, "status", event.status, to.value)
        if action is Action.REQUEST_INFO:
            expected_due = self.due(policy).solve_due_at(at) if to is Status.PENDING else None
        else:
            expected_due = state.solve_due if to is Status.PENDING else None
        if event.solve_due_at != expected_due:
            self._fact(pos, event, "solve_due_at", event.solve_due_at, expected_due)
        state.status = _STATUS.get(event.status, state.status)
        state.solve_due = event.solve_due_at
        if event.role != "agent" and event.message_id is not None:
            self.cross.effect(event.message_id, tid, "reply", tid, event.originator_version, pos)

    def _solved(self, state: _State, event: Any) -> None:
        state.status = Status.SOLVED
        state.solve_due = None
        state.close_due = event.close_due_at
        if state.first_solved is None:
            state.first_solved = event.timestamp
            self.time_to_solve.add(event.timestamp - state.created)

    def _update_overdue(
        self,
        state: _State,
        pos: int,
        event: Any,
        policy: SupportPolicy,
        prior_at: _dt.datetime,
    ) -> None:
        tid: UUID = event.originator_id
        at: _dt.datetime = event.timestamp
        armed = state.armed_update_due()
        row = self.row(policy, state.status, Action.UPDATE_OVERDUE)
        if row is None or armed is None:
            self.violation(
                "timer-instant",
                tid,
                event.originator_version,
                pos,
                f"UpdateOverdue at {iso(at)}, but no update clock was running "
                f"(status {state.status.name})",
            )
        elif at != max(armed, prior_at) or event.due_at != armed:
            self.violation(
                "timer-instant",
                tid,
                event.originator_version,
                pos,
                f"UpdateOverdue stamped {iso(at)} for due {iso(event.due_at)}, but the update "
                f"was due at {iso(armed)}; a breach is recorded exactly at its due instant",
            )
        if event.written_at is not None:
            self.saw(event.written_at)
        state.update_overdue = True

    def _automatic(
        self,
        state: _State,
        pos: int,
        event: Any,
        policy: SupportPolicy,
        prior_at: _dt.datetime,
    ) -> None:
        tid: UUID = event.originator_id
        at: _dt.datetime = event.timestamp
        name = type(event).__name__
        timer = policy.due_timer(
            state.status, solve_due_at=state.solve_due, close_due_at=state.close_due
        )
        wanted = Action.AUTO_SOLVE if isinstance(event, Ticket.Solved) else Action.AUTO_CLOSE
        if timer is None or timer.action is not wanted:
            self.violation(
                "timer-instant",
                tid,
                event.originator_version,
                pos,
                f"automatic {name} at {iso(at)}, but no {wanted.value.replace('_', '-')} timer "
                f"was armed (status {state.status.name})",
            )
        else:
            due = max(timer.due_at, prior_at)
            if at != due:
                self.violation(
                    "timer-instant",
                    tid,
                    event.originator_version,
                    pos,
                    f"automatic {name} stamped {iso(at)}, but its timer was due at {iso(due)}; "
                    "an automatic event happens exactly at its due instant",
                )
        written = event.written_at
        if written is not None:
            lag = (written - at).total_seconds()
            if self.max_lag is None or lag > self.max_lag:
                self.max_lag = lag
            self.saw(written)
        if isinstance(event, Ticket.Solved):
            expected = self.due(policy).close_due_at(at)
            if event.close_due_at != expected:
                self._fact(pos, event, "close_due_at", event.close_due_at, expected)
            self.auto_solves += 1
            self._solved(state, event)
        else:
            self.auto_closes += 1
            state.status, state.close_due, state.solve_due = Status.CLOSED, None, None

    # -- the end ---------------------------------------------------------------------------------

    def finish(self, audit_time: _dt.datetime, grace: _dt.timedelta) -> None:
        """The end of the audit: every ticket's `finish_tickets`, then the follow-up links
        only one side recorded."""
        self.finish_tickets(audit_time, grace)
        if isinstance(self.cross, CrossTicket):
            self.cross.finish()

    def finish_tickets(self, audit_time: _dt.datetime, grace: _dt.timedelta) -> None:
        """Each ticket's end: a Reopened with no message after it, a timer overdue."""
        for tid, state in self.tickets.in_log_order():  # quiet finished tickets are skipped
            if state.broken or state.policy is None:
                continue
            self.order = state.seq
            if state.reopen_action is not None:
                self.violation(
                    "transition",
                    tid,
                    state.version,
                    None,
                    "the ticket's last event is a Reopened with no message after it",
                )
            timer = state.policy.due_timer(
                state.status,
                solve_due_at=state.solve_due,
                close_due_at=state.close_due,
                update_due_at=state.armed_update_due(),
            )
            if timer is not None and timer.due_at + grace <= audit_time:
                name = timer.kind.value.replace("_", "-")
                self.violation(
                    "timer-overdue",
                    tid,
                    None,
                    None,
                    f"the {name} timer was due at {iso(timer.due_at)} and had not fired by the "
                    f"audit time {iso(audit_time)} (grace {grace})",
                )

    def close(self) -> None:
        """Drop the spill file (the ledger and message ids cannot be read after this)."""
        self.spill.close()

    def tally(self) -> Tally:
        """What the metrics are made of (added up over the shares of a split audit)."""
        counts: Counter[str] = Counter()
        for status, count in self.tickets.status_counts().items():
            counts[status.name] += count
        return Tally(
            tickets=self.existing if self.as_of is not None else self.tickets.count,
            events=self.events,
            by_status=counts,
            first_response=self.first_response,
            time_to_solve=self.time_to_solve,
            reopens=self.reopens,
            follow_ups=self.follow_ups,
            agent_solves=self.agent_solves,
            auto_solves=self.auto_solves,
            auto_closes=self.auto_closes,
            max_lag=self.max_lag,
        )

    def metrics(self) -> Metrics:
        return self.tally().metrics()


class Listed:
    """Violations as they are reported: the first `limit` kept in order, the rest counted
    (call it with each violation)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: list[Violation] = []
        self.unlisted = 0

    def __call__(self, violation: Violation) -> None:
        if len(self.kept) < self.limit:
            self.kept.append(violation)
        else:
            self.unlisted += 1


@dataclasses.dataclass
class Tally:
    """The counts behind `Metrics`: `merge` adds another share's."""

    tickets: int
    events: int
    by_status: Counter[str]
    first_response: Samples
    time_to_solve: Samples
    reopens: int
    follow_ups: int
    agent_solves: int
    auto_solves: int
    auto_closes: int
    max_lag: float | None

    def merge(self, other: Tally) -> None:
        """Add `other`'s counts (another share of the same audit)."""
        for field in dataclasses.fields(self):
            mine = getattr(self, field.name)
            if type(mine) is int:  # the plain counts
                setattr(self, field.name, mine + getattr(other, field.name))
        self.by_status.update(other.by_status)
        self.first_response.merge(other.first_response)
        self.time_to_solve.merge(other.time_to_solve)
        lags = [lag for lag in (self.max_lag, other.max_lag) if lag is not None]
        self.max_lag = max(lags) if lags else None

    def metrics(self) -> Metrics:
        """The report's metrics from these counts."""
        return Metrics(
            tickets=self.tickets,
            events=self.events,
            by_status=tuple((status.name, self.by_status[status.name]) for status in Status),
            first_response=self.first_response.summary(),
            time_to_solve=self.time_to_solve.summary(),
            reopens=self.reopens,
            follow_ups=self.follow_ups,
            agent_solves=self.agent_solves,
            automatic_solves=self.auto_solves,
            automatic_closes=self.auto_closes,
            max_timer_lag_seconds=self.max_lag,
        )


@dataclasses.dataclass(frozen=True)
class SplitSource:
    """What an audit split over processes needs: the auditor that splits it, and what
    another process opens the same store with."""

    auditor: Auditor
    settings: dict[str, str]
    """The eventsourcing settings (a SQLite file by its absolute path)."""
    app_name: str
    """The application's name (it prefixes settings and names PostgreSQL tables)."""


def _cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells it)."""
    counted = getattr(os, "process_cpu_count", None)
    if counted is not None:
        return int(counted() or 1)
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return len(affinity(0)) or 1
    return os.cpu_count() or 1


def _sqlite_file(recorder: Any) -> str:
    """The absolute path of the SQLite file the recorder has open ('' when in memory, or not
    SQLite)."""
    datastore = getattr(recorder, "datastore", None)
    transaction = getattr(datastore, "transaction", None)
    if transaction is None:
        return ""
    try:
        with transaction(commit=False) as cursor:
            cursor.execute("PRAGMA database_list")
            rows = cursor.fetchall()
    except Exception:  # not a SQLite datastore we can ask: not split
        return ""
    for row in rows:
        if row[1] == "main":
            return str(row[2] or "")
    return ""


_FIELDS: dict[type, frozenset[str]] = {}
_MISSING = "fields of the event are missing"


def _field_names(cls: type) -> frozenset[str]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return names


def _complete(event: Any) -> bool:
    """Whether a decoded event has every field of its class (a row whose JSON lost fields
    decodes without complaint, then breaks whoever reads the missing one)."""
    present: dict[str, Any] = event.__dict__
    return _field_names(type(event)) <= present.keys()


def _aware_times(event: Any) -> bool:
    """Whether every datetime an event carries is aware (a naive one was edited in by hand)."""
    return all(
        value.tzinfo is not None
        for value in vars(event).values()
        if isinstance(value, _dt.datetime)
    )


def _raw_hash(n: Notification) -> str:
    state = n.state.encode("utf-8", "replace") if isinstance(n.state, str) else bytes(n.state)
    return "raw-" + hashlib.sha256(n.topic.encode() + b"\0" + state).hexdigest()[:60]


class Auditor:
    """Audits one store: `audit()`, `seal()`, `history()`.

    `source` is a `SupportDesk` (any store, also ``memory://``) or an eventsourcing
    `Application` on the store; `open_auditor` opens one from a store URL. `policies` adds
    policy versions the store does not hold (the store's own `PolicyRecord`s are always read).
    """

    def __init__(
        self,
        source: SupportDesk | Application[UUID],
        *,
        policies: Iterable[SupportPolicy] = (),
        store: str = "",
        batch_size: int = BATCH,
    ) -> None:
        app = source.application if isinstance(source, SupportDesk) else source
        self.application = app
        self.store = store or (source.store if isinstance(source, SupportDesk) else "")
        self._extra = tuple(policies)
        self._batch = batch_size
        self._owned = False
        self._settings: dict[str, str] | None = None
        """The settings `open_auditor` opened the store with (another process opens it
        with them)."""
        recorder = app.recorder
        # personal fields read opened where the store's key table is at hand
        self._reveal = KeyRing(recorder).reveal if isinstance(recorder, KeyTable) else sealed_text

    # -- reading the log -------------------------------------------------------------------------

    def notifications(
        self, *, start: int = 1, topics: Sequence[str] = ()
    ) -> Iterator[Notification]:
        """The log from `start`, in order, fetched in batches (ids may have gaps)."""
        recorder: Any = self.application.recorder
        position = start
        while True:
            batch = read_batch(recorder, position, self._batch, topics)
            if not batch:
                return
            yield from batch
            position = batch[-1].id + 1

    def _row_batches(self, share: Share | None = None) -> Iterator[list[Row]]:
        """The whole log as `notifications()` gives it (or one `share` of it), a batch of
        `Row` tuples at a time."""
        recorder: Any = self.application.recorder
        position = 1
        while True:
            batch = read_rows(recorder, position, self._batch, (), share)
            if not batch:
                return
            yield batch
            position = batch[-1][0] + 1

    def _shares(self, workers: int | str, *, one: bool) -> tuple[int, SplitSource | None]:
        """How many processes the audit runs in (`audit`'s `workers`; `one`: a seal check
        or a what-if, which run in one process whatever `workers` says), and, for more than
        one, what they open the store with."""
        if workers == "auto":
            source = None if one or _cpus() < 2 else self._split_source()
            last = 0 if source is None else self.application.recorder.max_notification_id()
            if source is None or (last or 0) < AUTO_SPLIT_ROWS:
                return 1, None
            return min(_cpus(), MAX_WORKERS), source
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidCommand(f"workers must be a positive number or 'auto', got {workers!r}")
        if workers > MAX_WORKERS:
            raise InvalidCommand(f"workers must be at most {MAX_WORKERS}, got {workers}")
        if workers == 1 or one:
            return 1, None
        source = self._split_source()
        if source is None:
            raise InvalidCommand(
                "workers > 1 needs a store other processes can open (a SQLite file or "
                "PostgreSQL) on a POSIX system; this one lives inside this process"
            )
        return workers, source

    def _split_source(self) -> SplitSource | None:
        """What another process needs to open this store (None: it cannot)."""
        if os.name != "posix":
            return None
        app = self.application
        settings = self._settings
        if settings is None:
            env = getattr(app, "env", None)
            if env is None:
                return None
            settings = {str(k): str(v) for k, v in dict(env).items()}
        else:
            settings = dict(settings)
        module = settings.get("PERSISTENCE_MODULE", "").lower()
        if "postgres" not in module:
            if "sqlite" not in module:
                return None
            path = _sqlite_file(app.recorder)
            if not path:
                return None  # in memory: private to this process
            settings["SQLITE_DBNAME"] = path  # absolute: the same file from any directory
            settings[f"{app.name.upper()}_SQLITE_DBNAME"] = path
        return SplitSource(self, settings, app.name)

    def policy_registry(self) -> PolicyRegistry:
        """The policies this store holds, plus those passed to the auditor."""
        registry = PolicyRegistry(self._extra)
        mapper = self.application.mapper
        for n in self.notifications(topics=[_POLICY_TOPIC]):
            try:
                event: Any = mapper.to_domain_event(n)
            except Exception as error:  # a changed record: reported, never a crash
                registry.problems.append(
                    f"the policy record at log position {n.id} cannot be decoded: "
                    f"{type(error).__name__}"
                )
                continue
            registry.add_record(event.version, event.policy)
        return registry

    # -- audit -------------------------------------------------------------------------------------

    def audit(
        self,
        *,
        as_of: _dt.datetime | None = None,
        expect_seal: str | None = None,
        what_if: SupportPolicy | None = None,
        grace: _dt.timedelta = DEFAULT_GRACE,
        timelines: int = 0,
        max_violations: int = MAX_LISTED_VIOLATIONS,
        workers: int | str = 1,
    ) -> AuditReport:
        """Verify every ticket (events stamped up to `as_of`; all events' integrity).

        The audit time is `as_of`, else the latest instant the log records. `expect_seal`
        checks the log against a digest printed by `seal()`. `what_if` compares the automatic
        events with those another policy would give. `timelines` keeps that many ticket
        timelines for the HTML report (tickets with violations first).

        `workers` splits the audit over that many processes (``"auto"``: one per CPU, at most
        `MAX_WORKERS`, when the log is large enough to gain from it), each verifying a share
        of the tickets; the report is the same as one process gives. It needs a store other
        processes can open (a SQLite file, PostgreSQL); a seal check and a what-if run in
        one process.
        """
        if as_of is not None:
            as_of = require_aware_utc(as_of, name="as_of")
        if grace < _dt.timedelta(0):
            raise InvalidCommand(f"grace must not be negative, got {grace}")
        shares, source = self._shares(workers, one=expect_seal is not None or what_if is not None)
        registry = self.policy_registry()
        report = Listed(max_violations)
        violations = report.kept
        for problem in registry.problems:
            report(Violation(rule="policy-record", message=problem))
        simulator = None if what_if is None else WhatIf(what_if)
        sealed = self._sealed(expect_seal, report)
        heads: dict[UUID, Head] = {}
        moved: dict[tuple[UUID, int], int] = {}
        if source is not None:
            from ._parallel import audit_split  # (it imports this module)

            split = audit_split(
                source,
                registry,
                shares=shares,
                as_of=as_of,
                grace=grace,
                timelines=timelines,
                max_violations=max_violations,
                batch=self._batch,
            )
            for violation in split.violations:
                report(violation)
            report.unlisted += split.unlisted
            metrics, position, audit_time = split.metrics, split.position, split.audit_time
            sample = split.sample
        else:
            check = _Check(registry, as_of, report, simulator)
            position, first = self._verify(
                check,
                self._row_batches(),
                simulator=simulator,
                sealed=sealed,
                heads=heads,
                moved=moved,
                timelines=timelines,
            )
            sample = [tid for _, tid in first]
            audit_time = as_of if as_of is not None else (check.latest or SystemClock().now())
            check.finish(audit_time, grace)
            metrics = check.metrics()
            check.close()  # the spill file goes
        if sealed is not None:
            self._compare_seal(sealed, heads, moved, position, report)
        chosen = list(dict.fromkeys([v.ticket_id for v in violations if v.ticket_id] + sample))
        return AuditReport(
            store=self.store,
            audit_time=audit_time,
            as_of=as_of,
            log_position=position,
            metrics=metrics,
            violations=tuple(violations),
            violations_truncated=report.unlisted,
            policies=tuple(registry),
            seal=expect_seal,
            what_if=None if simulator is None else simulator.report(audit_time),
            timelines=self._timelines(chosen[:timelines], registry, as_of) if timelines else (),
        )

    def _verify(
        self,
        check: _Check,
        batches: Iterable[list[Row]],
        *,
        simulator: WhatIf | None,
        sealed: tuple[int, int, dict[UUID, Head]] | None,
        heads: dict[UUID, Head],
        moved: dict[tuple[UUID, int], int],
        timelines: int,
    ) -> tuple[int, list[tuple[int, UUID]]]:
        """Feed every row of `batches` to `check` (and follow the seal's heads); the last log
        position read, and the first `timelines` tickets submitted (log position, id)."""
        as_of = check.as_of
        mapper = self.application.mapper
        ticket_topics = _TICKET_TOPICS
        position = 0
        sample: list[tuple[int, UUID]] = []
        event_hash = EventHasher()
        # The what-if simulator reads whole events: then every event goes through the mapper.
        reader = EventReader(mapper, ticket_topics) if simulator is None else None
        fast = None if reader is None or sealed is not None else reader
        ready = {} if fast is None else fast.ready  # filled as classes prove the same
        checked = check.checked
        settle = check.tickets.settle
        fields_of = _FIELDS
        closed = Status.CLOSED
        event: Any
        read: tuple[Any, bytes] | None
        for row in itertools.chain.from_iterable(batches):
            position, originator, _, topic, _ = row
            if originator.__class__ is not UUID:
                converted = as_uuid(originator)  # (a recorder that gives ids as text)
                if converted.__class__ is not UUID:
                    check.foreign_id(position, originator)
                    continue
                row = (position, converted, row[2], topic, row[4])
            is_ticket = topic in ticket_topics
            if is_ticket and fast is not None:
                # the common case, in short: a ticket event read in one pass (aware times by
                # construction), no seal to follow; no `Notification` made unless needed
                known = ready.get(topic)
                if known is not None:
                    read = fast.read_row(row, known[0], known[1])
                else:  # the first events of a class: read both ways
                    read = fast.read(notification(row))
                if read is not None:
                    event, digest = read
                    values = event.__dict__
                    cls = event.__class__
                    names = fields_of.get(cls) or _field_names(cls)
                    if not names <= values.keys():
                        check.unreadable(notification(row), ValueError(_MISSING), kind="ticket")
                        continue
                    state = checked(position, event, digest)
                    if state.status is closed or state.broken or state.policy is None:
                        settle(values["originator_id"])  # a finished ticket leaves memory
                    if values["originator_version"] == 1 and len(sample) < timelines:
                        sample.append((position, values["originator_id"]))
                    at = values["timestamp"]
                    if (as_of is None or at <= as_of) and (
                        check.latest is None or at > check.latest
                    ):
                        check.latest = at
                    continue
                n = notification(row)
            else:
                n = notification(row)
                read = reader.read(n) if is_ticket and reader is not None else None
            digest = b""
            if read is not None:
                event, digest = read
            else:
                try:
                    event = mapper.to_domain_event(n)
                except Exception as error:  # altered bytes, wrong key: reported, never a crash
                    # (a foreign topic is another application's row, unless it sits in a
                    # ticket's sequence: then the ticket's row was altered)
                    if is_ticket or n.topic.startswith("supportflow.") or check.knows(n):
                        kind = "record" if not is_ticket and not check.knows(n) else "ticket"
                        check.unreadable(n, error, kind=kind)
                    event = None
                else:
                    if is_ticket:  # other records' hashes only matter to a seal
                        digest = event_hash.digest(event)
            # The reader's events are aware: it leaves a naive time to the mapper and this check.
            if is_ticket and event is not None and not _complete(event):
                check.unreadable(n, ValueError(_MISSING), kind="ticket")
                event = None
            if is_ticket and event is not None and read is None and not _aware_times(event):
                check.unreadable(
                    n, ValueError("a time without a UTC offset (naive)"), kind="ticket"
                )
                event = None
            if is_ticket and event is not None:
                check.ticket_event(position, event, digest)
                if event.originator_version == 1 and len(sample) < timelines:
                    sample.append((position, event.originator_id))
                if as_of is None or event.timestamp <= as_of:
                    check.saw(event.timestamp)
            if sealed is not None:
                if event is None:
                    text = _raw_hash(n)
                elif is_ticket:
                    text = digest.hex()
                else:
                    text = event_hash(event)
                self._track_head(n, event, text, sealed, heads, moved)
        return position, sample

    def _timelines(
        self, ids: Sequence[UUID], registry: PolicyRegistry, as_of: _dt.datetime | None
    ) -> tuple[TicketHistory, ...]:
        out = []
        for tid in ids:
            try:
                out.append(self._history(tid, registry, as_of))
            except Exception:  # an unreadable ticket has no timeline; its violations say why
                continue
        return tuple(out)

    # -- seals -------------------------------------------------------------------------------------

    def _sealed(
        self, digest: str | None, report: Callable[[Violation], None]
    ) -> tuple[int, int, dict[UUID, Head]] | None:
        if digest is None:
            return None
        digest = digest.strip().lower()
        try:
            record: Any = self.application.repository.get(seal_id(digest))
        except AggregateNotFoundError:
            report(
                Violation(
                    rule="seal",
                    message=f"no seal {digest} in this store: the seal record was deleted, or "
                    "the digest belongs to another store",
                )
            )
            return None
        except Exception as error:
            report(Violation(rule="seal", message=f"the seal record cannot be read: {error}"))
            return None
        if hashlib.sha256(record.manifest.encode("utf-8")).hexdigest() != digest:
            report(
                Violation(
                    rule="seal",
                    message=f"the stored seal record for {digest} does not hash to it: it was "
                    "changed",
                )
            )
            return None
        try:
            return parse_manifest(record.manifest)
        except ValueError as error:
            report(Violation(rule="seal", message=f"the seal manifest is malformed: {error}"))
            return None

    @staticmethod
    def _track_head(
        n: Notification,
        event: Any,
        digest: str,
        sealed: tuple[int, int, dict[UUID, Head]],
        heads: dict[UUID, Head],
        moved: dict[tuple[UUID, int], int],
    ) -> None:
        position, _, sealed_heads = sealed
        oid = UUID(str(n.originator_id))
        if n.id > position:
            head = sealed_heads.get(oid)
            if head is not None and n.originator_version <= head.version:
                moved[(oid, n.originator_version)] = n.id
            return
        current = heads.get(oid)
        if current is None or n.originator_version >= current.version:
            kind = _kind(event) if event is not None else "ticket"
            heads[oid] = Head(kind, n.originator_version, n.id, digest)

    def _compare_seal(
        self,
        sealed: tuple[int, int, dict[UUID, Head]],
        heads: dict[UUID, Head],
        moved: dict[tuple[UUID, int], int],
        last_position: int,
        report: Callable[[Violation], None],
    ) -> None:
        position, _, sealed_heads = sealed
        if last_position < position:
            report(
                Violation(
                    rule="seal",
                    message=f"the log ends at position {last_position}, before the sealed "
                    f"position {position}: events were removed from its end",
                )
            )
        for oid, kind, version, log_position, text in heads_differences(
            sealed_heads, heads, moved, position
        ):
            report(
                Violation(
                    rule="seal",
                    message=text,
                    ticket_id=oid,
                    position=version,
                    log_position=log_position,
                )
            )
            del kind

    def seal(self, *, at: _dt.datetime | None = None) -> str:
        """Seal the log as it is now: store the manifest of every aggregate's head and return
        its digest (keep it elsewhere; `audit(expect_seal=digest)` checks the log against it)."""
        heads: dict[UUID, Head] = {}
        mapper = self.application.mapper
        position = 0
        events = 0
        event_hash = EventHasher()
        for n in self.notifications():
            position = n.id
            events += 1
            try:
                event: Any = mapper.to_domain_event(n)
            except Exception:
                event, digest = None, _raw_hash(n)
            else:
                digest = event_hash(event)
            oid = UUID(str(n.originator_id))
            current = heads.get(oid)
            if current is None or n.originator_version >= current.version:
                heads[oid] = Head(
                    "ticket" if event is None else _kind(event), n.originator_version, n.id, digest
                )
        manifest = manifest_text(position, events, heads)
        when = require_aware_utc(at if at is not None else SystemClock().now(), name="at")
        record = SealRecord.record(manifest=manifest, position=position, events=events, at=when)
        try:
            self.application.save(record)
        except Exception as error:
            if "UNIQUE" in str(error).upper() or "Integrity" in type(error).__name__:
                return record.digest  # the same seal is already stored
            raise
        return record.digest

    # -- history -----------------------------------------------------------------------------------

    def history(self, ticket_id: UUID | str, *, as_of: _dt.datetime | None = None) -> TicketHistory:
        """One ticket's timeline (events stamped up to `as_of`): who, what, when, automatic."""
        if as_of is not None:
            as_of = require_aware_utc(as_of, name="as_of")
        return self._history(_ticket_id(ticket_id), self.policy_registry(), as_of)

    def _history(
        self, tid: UUID, registry: PolicyRegistry, as_of: _dt.datetime | None
    ) -> TicketHistory:
        events: list[Any] = list(self.application.events.get(tid))
        if not events or not isinstance(events[0], Ticket.Submitted):
            raise TicketNotFound(tid)
        if as_of is not None and events[0].timestamp > as_of:
            raise TicketNotFound(tid, detail=f"it did not exist yet at {iso(as_of)}")
        policy = registry.get(events[0].policy_version)
        zone = "UTC" if policy is None else policy.zone
        return build_history(
            tid, events, policy=policy, as_of=as_of, zone=zone, reveal=self._reveal
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store if this auditor opened it (`open_auditor`)."""
        if self._owned:
            self.application.close()

    def __enter__(self) -> Auditor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_TICKET_CLASSES = (
    Ticket.Submitted,
    Ticket.Assigned,
    Ticket.Responded,
    Ticket.Solved,
    Ticket.Reopened,
    Ticket.Closed,
    Ticket.FollowUpCreated,
    Ticket.SeverityChanged,
    Ticket.UpdateOverdue,
    Ticket.EscalationRequested,
    Ticket.EscalationReviewed,
    Ticket.BugLinked,
    Ticket.SurveyAnswered,
    Ticket.CcAdded,
    Ticket.CcRemoved,
    Ticket.Erased,
)

_TICKET_TOPICS = frozenset(get_topic(cls) for cls in _TICKET_CLASSES)

_BOOKKEEPING_ACTIONS: dict[type, Action] = {
    Ticket.EscalationRequested: Action.REQUEST_ESCALATION,
    Ticket.EscalationReviewed: Action.REVIEW_ESCALATION,
    Ticket.BugLinked: Action.LINK_BUG,
    Ticket.SurveyAnswered: Action.ANSWER_SURVEY,
}
"""Events that record something without changing the status: checked against the table."""


def _ticket_id(value: object) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value.strip())
        except ValueError:
            pass
    raise TicketNotFound(value, detail="ticket ids are UUIDs")


class _AuditApplication(Application[UUID]):
    name = "SupportDesk"  # the desk's name: on PostgreSQL it names the events table


def open_auditor(
    store: str,
    *,
    env: Mapping[str, str] | None = None,
    policies: Iterable[SupportPolicy] = (),
) -> Auditor:
    """An auditor on the store at URL `store` (SQLite or another shared store; a
    ``memory://`` store lives inside one desk: use `Auditor(desk)`).

    `env` passes the eventsourcing settings the store was written with (compression, cipher
    and key). Nothing is written to the store except by `Auditor.seal()`.
    """
    settings = store_env(store)
    module = settings.get("PERSISTENCE_MODULE", "")
    if "sqlite" not in module and "postgres" not in module:
        raise InvalidCommand(
            f"cannot audit {store.split(':', 1)[0]}:// from outside its desk: a memory store "
            "lives in one process; use supportflow.audit.Auditor(desk)"
        )
    path = settings.get("SQLITE_DBNAME")
    if path is not None and not path.startswith("file:") and not os.path.isfile(path):
        raise InvalidCommand(f"no SQLite store at {os.path.abspath(path)}")
    settings = store_settings(store, env)
    try:
        app = _AuditApplication(env=settings)
    except SupportflowError:
        raise
    except Exception as error:
        raise InvalidCommand(f"cannot open the store: {type(error).__name__}: {error}") from None
    auditor = Auditor(app, policies=policies, store=store)
    auditor._owned = True
    auditor._settings = dict(settings)
    return auditor


def audit_store(
    store: str,
    *,
    env: Mapping[str, str] | None = None,
    policies: Iterable[SupportPolicy] = (),
    **options: Any,
) -> AuditReport:
    """Open the store at URL `store`, audit it (`Auditor.audit(**options)`), close it."""
    with open_auditor(store, env=env, policies=policies) as auditor:
        return auditor.audit(**options)


def seal(
    source: SupportDesk | Auditor | str,
    *,
    env: Mapping[str, str] | None = None,
    at: _dt.datetime | None = None,
) -> str:
    """Seal a store and return the digest to keep elsewhere. `source` is a `SupportDesk`, an
    `Auditor` or a store URL (then `env` passes the settings it was written with)."""
    if isinstance(source, Auditor):
        return source.seal(at=at)
    if isinstance(source, str):
        with open_auditor(source, env=env) as auditor:
            return auditor.seal(at=at)
    return Auditor(source).seal(at=at)
