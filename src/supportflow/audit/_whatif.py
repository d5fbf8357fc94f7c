"""What-if: re-derive the automatic events under another policy from the same human actions.

Fed the same ticket events as the auditor, in log order. For every ticket it keeps the
status and timers the other policy would give, applies that policy's timers before each human
action (a timer fires at its due instant), skips the recorded automatic events, and at the
end compares when each ticket closed and how often it was solved automatically.
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
from typing import Any
from uuid import UUID

from ..policy import Action, ReplyOutcome, Status, SupportPolicy
from ..policy._transitions import transition_map
from ..ticket import Ticket
from ._model import WhatIfReport

__all__ = ["WhatIf"]


class _Sim:
    __slots__ = (
        "actual_auto_solves",
        "actual_closed_at",
        "alt_auto_solves",
        "alt_closed_at",
        "close_due",
        "diverged",
        "last_at",
        "solve_due",
        "status",
        "status_actual",
    )

    def __init__(self, at: _dt.datetime) -> None:
        self.status = Status.NEW
        self.status_actual = Status.NEW
        self.solve_due: _dt.datetime | None = None
        self.close_due: _dt.datetime | None = None
        self.last_at = at
        self.actual_closed_at: _dt.datetime | None = None
        self.alt_closed_at: _dt.datetime | None = None
        self.actual_auto_solves = 0
        self.alt_auto_solves = 0
        self.diverged = False


_STATUS = {status.value: status for status in Status}


class WhatIf:
    """Replays human actions under `policy`; `report(audit_time)` compares the outcomes."""

    def __init__(self, policy: SupportPolicy) -> None:
        self.policy = policy
        self._table = transition_map(policy.transitions)  # indexed once, not per question
        self._tickets: dict[UUID, _Sim] = {}
        self._outcomes: Counter[tuple[str, str]] = Counter()
        self._refused = 0
        self._pending_reopen: set[UUID] = set()

    # -- the simulated ticket ------------------------------------------------------------------

    def _timers(self, sim: _Sim, until: _dt.datetime) -> None:
        policy = self.policy
        while True:
            timer = policy.due_timer(
                sim.status, solve_due_at=sim.solve_due, close_due_at=sim.close_due
            )
            if timer is None or timer.due_at > until:
                return
            row = self._table.get((sim.status, timer.action))
            if row is None:
                return
            due = max(timer.due_at, sim.last_at)
            sim.last_at = due
            if timer.action is Action.AUTO_SOLVE:
                sim.status, sim.solve_due = Status.SOLVED, None
                sim.close_due = policy.close_due_at(due)
                sim.alt_auto_solves += 1
            else:
                sim.status, sim.close_due, sim.solve_due = Status.CLOSED, None, None
                sim.alt_closed_at = due

    def _act(self, sim: _Sim, action: Action, at: _dt.datetime) -> Status | None:
        """Apply a human action; the new status, or None (and counted) when refused."""
        row = self._table.get((sim.status, action))
        if row is None:
            self._refused += 1
            return None
        if not row.records:
            return sim.status
        if row.reopens:
            sim.close_due = None
        sim.status = row.to
        if row.to is Status.PENDING and action is Action.REQUEST_INFO:
            sim.solve_due = self.policy.solve_due_at(at)
        elif row.to is not Status.PENDING:
            sim.solve_due = None
        if action is Action.SOLVE:
            sim.close_due = self.policy.close_due_at(at)
        return sim.status

    def _customer(self, sim: _Sim, recorded: str, at: _dt.datetime) -> None:
        outcome = self.policy.reply_outcome(sim.status)
        if outcome.value != recorded:
            self._outcomes[(recorded, outcome.value)] += 1
        if outcome is ReplyOutcome.FOLLOW_UP:
            if recorded != outcome.value:
                sim.diverged = True  # the rest would have happened on a follow-up ticket
            return
        row = self._table.get((sim.status, Action.CUSTOMER_REPLY))
        if row is not None:
            if row.reopens:
                sim.close_due = None
            sim.status = row.to
            if row.to is not Status.PENDING:
                sim.solve_due = None

    # -- fed by the auditor ------------------------------------------------------------------------

    def event(self, event: Any) -> None:
        """One ticket event, in log order (the auditor only passes events it could verify)."""
        tid: UUID = event.originator_id
        at: _dt.datetime = event.timestamp
        if isinstance(event, Ticket.Submitted):
            self._tickets[tid] = _Sim(at)
            return
        sim = self._tickets.get(tid)
        if sim is None:
            return
        before = sim.status_actual
        if isinstance(event, Ticket.Solved | Ticket.Closed) and event.automatic:
            if isinstance(event, Ticket.Solved):
                sim.actual_auto_solves += 1
                sim.status_actual = Status.SOLVED
            else:
                sim.actual_closed_at = at
                sim.status_actual = Status.CLOSED
            return
        if isinstance(event, Ticket.Reopened):
            sim.status_actual = Status.OPEN
            self._pending_reopen.add(tid)
            return
        reopened = tid in self._pending_reopen
        self._pending_reopen.discard(tid)
        if isinstance(event, Ticket.Assigned | Ticket.Responded):
            sim.status_actual = _STATUS.get(event.status, sim.status_actual)
        elif isinstance(event, Ticket.Solved):
            sim.status_actual = Status.SOLVED
        if sim.diverged:
            return
        self._timers(sim, at)
        sim.last_at = max(sim.last_at, at)
        if isinstance(event, Ticket.Assigned):
            self._act(sim, Action.ASSIGN, at)
        elif isinstance(event, Ticket.Responded):
            if event.role == "agent":
                action = Action.REQUEST_INFO if event.asks_for_input else Action.REPLY
                self._act(sim, action, at)
            elif not event.auto_submitted:
                if reopened:
                    recorded = ReplyOutcome.REOPEN.value
                elif before is Status.PENDING and sim.status_actual is Status.OPEN:
                    recorded = ReplyOutcome.REACTIVATE.value
                else:
                    recorded = ReplyOutcome.RECORD.value
                self._customer(sim, recorded, at)
        elif isinstance(event, Ticket.Solved):
            self._act(sim, Action.SOLVE, at)
        elif isinstance(event, Ticket.FollowUpCreated):
            self._customer(sim, ReplyOutcome.FOLLOW_UP.value, at)
            if not sim.diverged and sim.status is not Status.CLOSED:
                sim.diverged = True  # the recorded follow-up's actions would have been here
        elif isinstance(event, Ticket.SeverityChanged):
            self._act(sim, Action.CHANGE_SEVERITY, at)

    def report(self, audit_time: _dt.datetime) -> WhatIfReport:
        """The comparison, with every other-policy timer due by `audit_time` applied."""
        earlier = later = same = not_closed = closed = more = fewer = diverged = 0
        for sim in self._tickets.values():
            if not sim.diverged:
                self._timers(sim, audit_time)
            else:
                diverged += 1
            actual, alt = sim.actual_closed_at, sim.alt_closed_at
            if actual is not None and alt is not None:
                if alt < actual:
                    earlier += 1
                elif alt > actual:
                    later += 1
                else:
                    same += 1
            elif actual is not None and not sim.diverged:
                not_closed += 1
            elif alt is not None:
                closed += 1
            if sim.alt_auto_solves > sim.actual_auto_solves:
                more += 1
            elif sim.alt_auto_solves < sim.actual_auto_solves:
                fewer += 1
        return WhatIfReport(
            policy_version=self.policy.version,
            tickets=len(self._tickets),
            close_earlier=earlier,
            close_later=later,
            close_same=same,
            would_not_close=not_closed,
            would_close=closed,
            more_auto_solves=more,
            fewer_auto_solves=fewer,
            reply_outcomes=tuple(
                (recorded, other, count)
                for (recorded, other), count in sorted(self._outcomes.items())
            ),
            refused_actions=self._refused,
            diverged_tickets=diverged,
        )
