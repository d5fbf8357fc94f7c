"""The auditor's results: violations, metrics, what-if comparisons, histories, the report."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import attrs

__all__ = [
    "RULES",
    "AuditReport",
    "HistoryEntry",
    "Metrics",
    "Summary",
    "TicketHistory",
    "Violation",
    "WhatIfReport",
]

RULES: Mapping[str, str] = {
    "unreadable": "the stored event cannot be decoded (changed bytes, wrong key, unknown class)",
    "sequence": "a ticket's events appear in the log in version order, with none missing",
    "chain": "each event carries the hash of the ticket's previous event",
    "time-order": "per ticket, time never goes backwards",
    "unknown-policy": "the policy version a ticket recorded is known",
    "policy-record": "a stored policy's content matches the version it is stored under",
    "transition": "every change is allowed by the transition table of the ticket's policy",
    "fact": "the facts an event records are the ones its policy derives",
    "timer-instant": "every automatic event happens exactly at its due instant",
    "timer-missed": "a timer due before an event fires before it",
    "timer-overdue": "no timer is overdue and unfired at the audit time",
    "follow-up-link": "follow-up links are recorded on both tickets",
    "duplicate-message": "an inbound message id takes effect once",
    "permission": "whoever an event records as acting may act: a CC change's role is allowed by "
    "the policy, and every customer-side event is by the requester or an address on the CC list "
    "at that moment",
    "seal": "the log still holds every event a seal recorded, unchanged and in place",
}
"""Every rule the auditor checks, by name, with what it means."""


@attrs.frozen(kw_only=True)
class Violation:
    """One broken rule: where (ticket, the event's position in the ticket, log position),
    which rule, and a sentence that explains it."""

    rule: str
    message: str
    ticket_id: UUID | None = None
    position: int | None = None
    """The event's position in its ticket's history (1 = `Submitted`)."""
    log_position: int | None = None
    """The event's notification id in the store's log."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "ticket_id": None if self.ticket_id is None else str(self.ticket_id),
            "position": self.position,
            "log_position": self.log_position,
            "message": self.message,
        }


@attrs.frozen(kw_only=True)
class Summary:
    """Count, mean, median and 90th percentile of durations in seconds (None when empty)."""

    count: int
    mean: float | None
    median: float | None
    p90: float | None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class Metrics:
    """What the audited tickets did (events up to the audit time)."""

    tickets: int
    events: int
    by_status: tuple[tuple[str, int], ...]
    first_response: Summary
    """From `Submitted` to the first agent message."""
    time_to_solve: Summary
    """From `Submitted` to the first `Solved` (by an agent or automatic)."""
    reopens: int
    follow_ups: int
    agent_solves: int
    automatic_solves: int
    automatic_closes: int
    max_timer_lag_seconds: float | None
    """The longest wait between a timer's due instant and when its event was written."""

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["by_status"] = dict(self.by_status)
        out["first_response"] = self.first_response.to_dict()
        out["time_to_solve"] = self.time_to_solve.to_dict()
        return out


@attrs.frozen(kw_only=True)
class WhatIfReport:
    """How the automatic events would differ under another policy, from the same human actions.

    Each ticket is replayed on its own: a reply that would have landed on a follow-up ticket
    (or on this ticket instead of a follow-up) is counted, and that ticket's later actions are
    not re-played.
    """

    policy_version: str
    tickets: int
    close_earlier: int
    close_later: int
    close_same: int
    would_not_close: int
    """Closed in the record, still open under the other policy at the audit time."""
    would_close: int
    """Not closed in the record, closed under the other policy by the audit time."""
    more_auto_solves: int
    fewer_auto_solves: int
    reply_outcomes: tuple[tuple[str, str, int], ...]
    """(recorded outcome, outcome under the other policy, count) for replies that differ."""
    refused_actions: int
    """Human actions the other policy's transition table would have refused."""
    diverged_tickets: int
    """Tickets whose later actions would have gone to another ticket (not re-played)."""

    def sentences(self) -> list[str]:
        """The differences, one sentence each; one sentence saying so when there are none."""
        out: list[str] = []

        def add(count: int, text: str) -> None:
            if count:
                noun = "ticket" if count == 1 else "tickets"
                out.append(f"{count} {noun} {text}")

        add(self.close_later, "would close later")
        add(self.close_earlier, "would close earlier")
        add(self.would_not_close, "would not be closed yet at the audit time")
        add(self.would_close, "would already be closed at the audit time")
        add(self.more_auto_solves, "would be solved automatically more often")
        add(self.fewer_auto_solves, "would be solved automatically less often")
        for recorded, other, count in self.reply_outcomes:
            noun = "reply" if count == 1 else "replies"
            verb = _OUTCOME_VERBS.get(other, other)
            was = _OUTCOME_NOUNS.get(recorded, recorded)
            out.append(f"{count} {noun} would have {verb} instead of {was}")
        if self.refused_actions:
            out.append(
                f"{self.refused_actions} recorded action(s) would have been refused by its "
                "transition table"
            )
        if self.diverged_tickets:
            out.append(
                f"{self.diverged_tickets} ticket(s) diverge: their later actions would have "
                "landed on another ticket and were not re-played"
            )
        if not out:
            out.append(f"no difference in {self.tickets} ticket(s)")
        return out

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["reply_outcomes"] = [
            {"recorded": r, "what_if": w, "count": c} for r, w, c in self.reply_outcomes
        ]
        out["sentences"] = self.sentences()
        return out


_OUTCOME_VERBS = {
    "reopen": "reopened the ticket",
    "follow_up": "created a follow-up",
    "reactivate": "reactivated the ticket",
    "record": "only been recorded",
}
_OUTCOME_NOUNS = {
    "reopen": "reopening it",
    "follow_up": "creating follow-ups",
    "reactivate": "reactivating it",
    "record": "only being recorded",
}


@attrs.frozen(kw_only=True)
class HistoryEntry:
    """One event of a ticket, for people: who did what, when (UTC and the desk's zone)."""

    position: int
    kind: str
    """The event class: `Submitted`, `Responded`, ..."""
    at: _dt.datetime
    local: str
    """`at` in the zone of the ticket's policy, e.g. ``2026-03-09 10:00 CDT``."""
    who: str
    what: str
    automatic: bool
    status: str
    """The ticket's status after this event."""
    written_at: _dt.datetime | None = None
    """For an automatic event: when it was written (it is stamped with its due instant)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "kind": self.kind,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "local": self.local,
            "who": self.who,
            "what": self.what,
            "automatic": self.automatic,
            "status": self.status,
            "written_at": (
                None
                if self.written_at is None
                else self.written_at.isoformat().replace("+00:00", "Z")
            ),
        }


@attrs.frozen(kw_only=True)
class TicketHistory:
    """A ticket's timeline as of an instant."""

    ticket_id: UUID
    subject: str
    requester: str
    zone: str
    policy_version: str
    as_of: _dt.datetime | None
    entries: tuple[HistoryEntry, ...]
    next_timer: str | None = None
    """The timer armed after the last entry, e.g. ``auto-close due 2026-03-09 15:00 UTC``."""

    @property
    def status(self) -> str:
        return self.entries[-1].status if self.entries else "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticket_id": str(self.ticket_id),
            "subject": self.subject,
            "requester": self.requester,
            "zone": self.zone,
            "policy_version": self.policy_version,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "status": self.status,
            "next_timer": self.next_timer,
            "entries": [entry.to_dict() for entry in self.entries],
        }


@attrs.frozen(kw_only=True)
class AuditReport:
    """The result of an audit: clean when there is no violation."""

    store: str
    audit_time: _dt.datetime
    """The instant the checks ran against: `as_of`, else the latest instant in the log."""
    as_of: _dt.datetime | None
    log_position: int
    """The last notification id read."""
    metrics: Metrics
    violations: tuple[Violation, ...]
    policies: tuple[str, ...]
    """The policy versions the store (and the caller) made known."""
    seal: str | None = None
    """The seal that was checked (`expect_seal`), if any."""
    what_if: WhatIfReport | None = None
    timelines: tuple[TicketHistory, ...] = ()
    """Timelines of some tickets (for the HTML report): those with violations first."""
    violations_truncated: int = 0
    """Violations found beyond the report's limit (counted, not listed)."""

    @property
    def clean(self) -> bool:
        return not self.violations and not self.violations_truncated

    @property
    def violation_count(self) -> int:
        return len(self.violations) + self.violations_truncated

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "clean": self.clean,
            "audit_time": self.audit_time.isoformat(),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "log_position": self.log_position,
            "policies": list(self.policies),
            "seal": self.seal,
            "metrics": self.metrics.to_dict(),
            "violation_count": self.violation_count,
            "violations": [v.to_dict() for v in self.violations],
            "what_if": None if self.what_if is None else self.what_if.to_dict(),
        }
