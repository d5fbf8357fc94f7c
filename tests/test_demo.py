"""The `supportflow demo`: a simulated desk whose summary matches what the store holds."""

from __future__ import annotations

import contextlib
import random
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import attrs
import pytest
from eventsourcing.utils import get_topic
from hypothesis import given
from hypothesis import strategies as st

from supportflow import FixedClock, Severity, Status, SupportDesk, Ticket
from supportflow._demo import (
    BUGS,
    CURRENT_MAJOR_VERSION,
    MANAGER,
    MAX_AGENT_ROUNDS,
    STAFF,
    START,
    STATUS_UPDATE,
    AgentMove,
    CustomerMove,
    DemoNotifier,
    DemoSummary,
    Sender,
    SenderKind,
    agent_ready_at,
    choose_agent_move,
    choose_sender,
    colleagues_of,
    decide_escalation,
    erasure_at,
    format_summary,
    is_business_time,
    plan_check_in,
    plan_customer_after_solve,
    plan_day,
    plan_escalation,
    plan_survey_answer,
    run_demo,
)
from supportflow._pii import key_id_of
from supportflow.audit import Auditor
from supportflow.cli import main
from supportflow.outbox import Delivery, Notification, PermanentDeliveryError

CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> DemoSummary:
    """One run with the default settings, shared by the tests that only read it."""
    return run_demo(tmp_path_factory.mktemp("demo") / "demo.db")


@pytest.fixture(scope="module")
def reopened(default_run: DemoSummary) -> Iterator[SupportDesk]:
    """A new desk on the default run's file, seeing the tickets as the demo left them."""
    with SupportDesk(
        store=f"sqlite:///{default_run.db_path}", clock=FixedClock(default_run.end)
    ) as desk:
        yield desk


def _histories(desk: SupportDesk) -> list[list[object]]:
    return [list(desk.history(tid)) for tid in desk.ticket_ids()]


def _without_path(summary: DemoSummary) -> DemoSummary:
    return attrs.evolve(summary, db_path="")


def _events(desk: SupportDesk) -> list[object]:
    return [e for history in _histories(desk) for e in history]


def _logged(desk: SupportDesk, event_class: type) -> list[Any]:
    """Every event of `event_class` in the store's notification log, in log order."""
    app = desk.application
    found: list[Any] = []
    start = 1
    while True:
        batch = app.recorder.select_notifications(
            start=start, limit=500, topics=[get_topic(event_class)]
        )
        if not batch:
            return found
        found.extend(app.mapper.to_domain_event(item) for item in batch)
        start = batch[-1].id + 1


def _major(version: str) -> int:
    return int(version.split(".")[0])


# -- the summary matches the store -------------------------------------------------------


def test_summary_statuses_match_store_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Tickets by status in the summary equal a recount through a new desk on the same file."""
    statuses = Counter(reopened.get(tid).status for tid in reopened.ticket_ids())
    assert dict(default_run.by_status) == {s: statuses[s] for s in Status}
    assert default_run.tickets == sum(statuses.values())


def test_summary_severities_match_store_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Severity counts in the summary equal the tickets' current severities in the store."""
    severities = Counter(reopened.get(tid).severity for tid in reopened.ticket_ids())
    assert dict(default_run.by_severity) == {s: severities[s] for s in Severity}


def test_summary_event_counts_match_histories_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Auto-solved, auto-closed, reopened, auto-replies and total events equal the histories."""
    events = [e for history in _histories(reopened) for e in history]
    auto_solved = sum(isinstance(e, Ticket.Solved) and e.automatic for e in events)
    auto_closed = sum(isinstance(e, Ticket.Closed) and e.automatic for e in events)
    reopens = sum(isinstance(e, Ticket.Reopened) for e in events)
    auto_replies = sum(isinstance(e, Ticket.Responded) and e.auto_submitted for e in events)
    assert (
        default_run.auto_solved,
        default_run.auto_closed,
        default_run.reopened,
        default_run.auto_replies,
        default_run.events,
    ) == (auto_solved, auto_closed, reopens, auto_replies, len(events))


def test_summary_follow_ups_are_linked_both_ways_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Every follow-up counted points to a closed ticket that lists it, and vice versa."""
    views = [reopened.get(tid) for tid in reopened.ticket_ids()]
    follow_ups = [v for v in views if v.follow_up_of is not None]
    assert len(follow_ups) == default_run.follow_ups
    for view in follow_ups:
        assert view.follow_up_of is not None
        parent = reopened.get(view.follow_up_of)
        assert parent.status is Status.CLOSED
        assert view.id in parent.follow_ups
    assert sum(len(v.follow_ups) for v in views) == default_run.follow_ups


def test_duplicate_deliveries_take_effect_once_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Each inbound message id is recorded by one event only, although some came twice."""
    ids = [
        e.message_id
        for history in _histories(reopened)
        for e in history
        if isinstance(e, Ticket.Submitted | Ticket.Responded) and e.message_id is not None
    ]
    assert default_run.duplicates_delivered > 0
    assert default_run.duplicates_absorbed == default_run.duplicates_delivered
    assert len(ids) == len(set(ids))


def test_example_timeline_is_the_stored_history_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """The example ticket's timeline lists its stored events, names and instants, in order."""
    assert default_run.example_ticket is not None
    history = reopened.history(default_run.example_ticket)
    assert [(t.event, t.at) for t in default_run.timeline] == [
        (type(e).__name__, e.timestamp) for e in history
    ]


def test_summary_version_flags_match_store_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Tickets naming a version and those flagged unsupported equal the stored views, and a
    ticket is flagged exactly when its major is older than the two most recent ones."""
    views = [reopened.get(tid) for tid in reopened.ticket_ids()]
    named = [v for v in views if v.product_version is not None]
    assert default_run.with_version == len(named)
    assert default_run.unsupported == sum(v.supported is False for v in views)
    for view in named:
        assert view.product_version is not None
        old = _major(view.product_version) < CURRENT_MAJOR_VERSION - 1
        assert view.supported is (not old)


def test_summary_sla_breaches_match_update_overdue_events_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Breaches are the stored UpdateOverdue events (and their tickets); status updates are
    the agents' replies with the status-update body."""
    histories = _histories(reopened)
    overdue = [e for h in histories for e in h if isinstance(e, Ticket.UpdateOverdue)]
    breached = sum(any(isinstance(e, Ticket.UpdateOverdue) for e in h) for h in histories)
    updates = sum(
        isinstance(e, Ticket.Responded) and e.role == "agent" and e.body == STATUS_UPDATE
        for h in histories
        for e in h
    )
    assert (default_run.sla_breaches, default_run.breached_tickets, default_run.status_updates) == (
        len(overdue),
        breached,
        updates,
    )


def test_update_breaches_are_stamped_at_their_due_instant_after_default_run(
    reopened: SupportDesk,
) -> None:
    """Each UpdateOverdue event happened when the update was due, not when a worker saw it."""
    overdue = [e for e in _events(reopened) if isinstance(e, Ticket.UpdateOverdue)]
    assert overdue
    for event in overdue:
        assert event.timestamp >= event.due_at
        assert event.automatic
        assert event.written_at is not None
        assert event.written_at >= event.timestamp


def test_summary_escalations_match_store_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Requests, accepted and declined reviews, severity changes by the manager and requests
    still waiting equal what the store holds."""
    events = _events(reopened)
    reviews = [e for e in events if isinstance(e, Ticket.EscalationReviewed)]
    waiting = sum(reopened.get(tid).pending_escalation is not None for tid in reopened.ticket_ids())
    raised = sum(isinstance(e, Ticket.SeverityChanged) and e.by == MANAGER for e in events)
    assert (
        default_run.escalations_requested,
        default_run.escalations_accepted,
        default_run.escalations_declined,
        default_run.escalations_waiting,
        default_run.escalation_severity_changes,
    ) == (
        sum(isinstance(e, Ticket.EscalationRequested) for e in events),
        sum(e.accepted for e in reviews),
        sum(not e.accepted for e in reviews),
        waiting,
        raised,
    )


def test_reassignments_come_from_accepted_escalations_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Every move from one agent to another follows an accepted review at the same instant,
    and their number is the summary's."""
    moves = 0
    for history in _histories(reopened):
        for index, event in enumerate(history):
            if not isinstance(event, Ticket.Assigned) or event.previous in (None, event.agent):
                continue
            moves += 1
            reviews = [
                e
                for e in history[:index]
                if isinstance(e, Ticket.EscalationReviewed) and e.timestamp == event.timestamp
            ]
            assert [e.accepted for e in reviews] == [True]
    assert moves == default_run.reassignments


def test_summary_bug_links_match_store_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Each bug's ticket count equals its BugLinked events and `tickets_for_bug`; every linked
    ticket has the subject of that known bug (or reads [erased])."""
    linked: dict[str, set[UUID]] = {}
    for event in _events(reopened):
        if isinstance(event, Ticket.BugLinked):
            linked.setdefault(event.reference, set()).add(event.originator_id)
    assert dict(default_run.bugs) == {ref: len(tids) for ref, tids in linked.items()}
    subjects = {ref: subject for subject, ref in BUGS.items()}
    for reference, tids in linked.items():
        assert set(reopened.tickets_for_bug(reference)) == tids
        assert {reopened.get(tid).subject for tid in tids} <= {subjects[reference], _ERASED}


def test_summary_surveys_match_store_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Survey answers and their ratings equal the stored answers, all on CLOSED tickets."""
    views = [reopened.get(tid) for tid in reopened.ticket_ids()]
    answered = [v for v in views if v.survey_rating is not None]
    ratings = Counter(v.survey_rating for v in answered)
    assert default_run.surveys_answered == len(answered)
    assert dict(default_run.survey_ratings) == {r: ratings[r] for r in range(1, 6)}
    assert {v.status for v in answered} == {Status.CLOSED}


def test_surveys_answered_only_after_survey_delivered_after_default_run(
    reopened: SupportDesk,
) -> None:
    """A customer answers only a survey request the outbox delivered before the answer."""
    delivered_at = {}
    requests = {e.originator_id: e for e in _logged(reopened, Delivery.Requested)}
    for event in _logged(reopened, Delivery.Delivered):
        note = requests[event.originator_id]
        if note.kind == "survey_request":
            delivered_at[note.ticket_id] = event.timestamp
    answers = [e for e in _events(reopened) if isinstance(e, Ticket.SurveyAnswered)]
    assert answers
    for answer in answers:
        assert answer.timestamp > delivered_at[answer.originator_id]


def test_summary_notifications_match_outbox_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Requested, delivered, retried, failed and pending notifications equal the outbox's
    stored events, and one notification was requested per Solved and per Closed event."""
    requested = _logged(reopened, Delivery.Requested)
    delivered = _logged(reopened, Delivery.Delivered)
    failures = _logged(reopened, Delivery.Failed)
    failed = sum(e.permanent for e in failures)
    events = _events(reopened)
    asked = sum(isinstance(e, Ticket.Solved | Ticket.Closed) for e in events)
    assert (
        default_run.notifications_requested,
        default_run.notifications_delivered,
        default_run.notifications_retried,
        default_run.notifications_failed,
        default_run.notifications_pending,
    ) == (
        len(requested),
        len(delivered),
        sum(not e.permanent for e in failures),
        failed,
        len(requested) - len(delivered) - failed,
    )
    assert len(requested) == asked


def test_notifications_delivered_at_most_once_after_default_run(reopened: SupportDesk) -> None:
    """No outbox record is marked delivered twice, nor both delivered and failed for good."""
    delivered = [e.originator_id for e in _logged(reopened, Delivery.Delivered)]
    gave_up = {e.originator_id for e in _logged(reopened, Delivery.Failed) if e.permanent}
    assert len(delivered) == len(set(delivered))
    assert not gave_up & set(delivered)


def test_summary_queue_is_the_desk_triage_queue_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """The queue in the summary is the top of `queue()` on a new desk at the end instant."""
    queue = reopened.queue()
    assert default_run.queue_size == len(queue)
    assert [(q.ticket, q.severity, q.update_due_at, q.breached) for q in default_run.queue_top] == [
        (v.id, v.severity, v.update_due_at, v.sla_breached)
        for v in queue[: len(default_run.queue_top)]
    ]
    assert len(default_run.queue_top) == min(5, len(queue))


def test_demo_store_passes_audit_after_default_run(reopened: SupportDesk) -> None:
    """The auditor finds no violation in the store the default demo leaves."""
    report = Auditor(reopened).audit()
    assert report.violations == ()
    assert report.clean


def test_every_policy_feature_outcome_occurs_with_default_settings(
    default_run: DemoSummary,
) -> None:
    """The default demo shows breaches, accepted and declined escalations, a raised severity,
    a reassignment, bug links, unsupported versions, surveys, and delivered, retried and
    permanently failed notifications."""
    outcomes = {
        "sla_breaches": default_run.sla_breaches,
        "status_updates": default_run.status_updates,
        "escalations_accepted": default_run.escalations_accepted,
        "escalations_declined": default_run.escalations_declined,
        "escalation_severity_changes": default_run.escalation_severity_changes,
        "reassignments": default_run.reassignments,
        "bugs_shared": sum(n > 1 for _, n in default_run.bugs),
        "unsupported": default_run.unsupported,
        "supported": default_run.with_version - default_run.unsupported,
        "surveys_answered": default_run.surveys_answered,
        "notifications_delivered": default_run.notifications_delivered,
        "notifications_retried": default_run.notifications_retried,
        "notifications_failed": default_run.notifications_failed,
        "queue_size": default_run.queue_size,
    }
    assert [name for name, count in outcomes.items() if count == 0] == []


def test_every_lifecycle_outcome_occurs_with_default_settings(default_run: DemoSummary) -> None:
    """The default demo shows auto-solve, auto-close, reopen, follow-up, dedup and auto-reply."""
    outcomes = {
        "auto_solved": default_run.auto_solved,
        "auto_closed": default_run.auto_closed,
        "reopened": default_run.reopened,
        "follow_ups": default_run.follow_ups,
        "duplicates_absorbed": default_run.duplicates_absorbed,
        "auto_replies": default_run.auto_replies,
    }
    assert [name for name, count in outcomes.items() if count == 0] == []


def test_period_crosses_dst_change_with_default_settings(default_run: DemoSummary) -> None:
    """The run starts on a Monday in March 2026 and crosses the US DST change of 2026-03-08."""
    start = default_run.start.astimezone(CHICAGO)
    assert (start.year, start.month, start.weekday()) == (2026, 3, 0)
    assert default_run.dst_changes == (date(2026, 3, 8),)
    assert default_run.end - default_run.start == timedelta(days=21, hours=-1)


def test_formatted_summary_names_counts_and_path_after_default_run(
    default_run: DemoSummary,
) -> None:
    """The text shows the database path, the DST date and the example's local times."""
    text = format_summary(default_run)
    assert default_run.db_path in text
    assert "2026-03-08" in text
    line = next(line for line in text.splitlines() if "auto-solved" in line)
    assert str(default_run.auto_solved) in line.split()
    assert default_run.timeline[0].at.astimezone(CHICAGO).strftime("%H:%M %Z") in text


def test_formatted_summary_reports_feature_counts_after_default_run(
    default_run: DemoSummary,
) -> None:
    """The text has a line each for SLA breaches, escalations, surveys and notifications
    showing the summary's counts, and lists the queue's first ticket."""
    lines = format_summary(default_run).splitlines()

    def words(label: str) -> list[str]:
        line = next(line for line in lines if line.strip().startswith(label))
        return line.replace(",", " ").replace(":", " ").replace("(", " ").split()

    assert str(default_run.sla_breaches) in words("update SLA breaches")
    assert {str(default_run.escalations_requested), str(default_run.escalations_accepted)} <= set(
        words("escalations")
    )
    assert str(default_run.surveys_answered) in words("surveys answered")
    notifications = words("notifications")
    for count in (
        default_run.notifications_delivered,
        default_run.notifications_retried,
        default_run.notifications_failed,
        default_run.notifications_pending,
    ):
        assert str(count) in notifications
    first = default_run.queue_top[0]
    assert any(first.subject in line and first.severity.name in line for line in lines)


# -- actors, CC lists, strangers and erasure ----------------------------------------------

_ERASED = "[erased]"
_AGENT_NAMES = frozenset(name for name, role in STAFF.items() if role == "agent")


def _raw_bytes(db_path: str) -> bytes:
    """The database file and its SQLite side files, as stored on disk."""
    path = Path(db_path)
    files = [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))]
    return b"".join(file.read_bytes() for file in files if file.exists())


def _key_ids_in_store(db_path: str) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        return {row[0] for row in db.execute("SELECT key_id FROM stored_events_keys")}


def test_staff_actions_name_people_on_the_roster_after_default_run(reopened: SupportDesk) -> None:
    """Every staff action stored (assignment, agent message, solution, severity change, bug
    link, escalation review, erasure) names an agent of the roster or its manager."""
    staff = _AGENT_NAMES | {MANAGER}
    actors: Counter[str] = Counter()
    for event in _events(reopened):
        if isinstance(event, Ticket.Assigned):
            actors[event.agent] += 1
            assert event.agent in staff
        elif isinstance(event, Ticket.BugLinked | Ticket.SeverityChanged):
            assert event.by in staff
        elif isinstance(event, Ticket.Responded | Ticket.Solved):
            agent = event.role == "agent" if isinstance(event, Ticket.Responded) else True
            if agent and not getattr(event, "automatic", False):
                actors[event.by] += 1
                assert event.by in _AGENT_NAMES
        elif isinstance(event, Ticket.EscalationReviewed):
            assert event.manager == MANAGER
        elif isinstance(event, Ticket.Erased):
            assert event.by == MANAGER
    assert STAFF[MANAGER] == "manager"
    assert set(actors) == _AGENT_NAMES  # every agent worked, nobody else did


def test_summary_cc_tickets_match_cc_lists_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """The tickets counted as CC'ing a colleague are those with a CC list; on a readable
    ticket that list is the requester's colleague, on an erased one it reads [erased]."""
    views = [reopened.get(tid) for tid in reopened.ticket_ids()]
    with_cc = [v for v in views if v.cc]
    assert default_run.cc_tickets == len(with_cc) > 0
    for view in with_cc:
        if view.erased_at is not None:
            assert view.cc == (_ERASED,)
            continue
        colleagues = colleagues_of(view.requester)
        assert colleagues is not None
        assert view.cc == (colleagues[0],)


def test_customer_messages_come_from_requester_or_cc_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """On every readable ticket each customer message comes from the requester or an address
    on its CC list; the CC replies found there are at most the summary's count, and the
    remainder fits in the customer replies on erased tickets (whose senders read [erased])."""
    from_cc = on_erased = 0
    for tid in reopened.ticket_ids():
        view = reopened.get(tid)
        customer = [
            e
            for e in reopened.history(tid)
            if isinstance(e, Ticket.Responded) and e.role == "customer"
        ]
        if view.erased_at is not None:
            on_erased += sum(not e.auto_submitted for e in customer)
            continue
        for event in customer:
            assert event.by == view.requester or event.by in view.cc
            from_cc += event.by in view.cc
    assert 0 < from_cc <= default_run.cc_replies <= from_cc + on_erased


def test_stranger_replies_become_tickets_of_their_own_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """Each stranger reply counted started a new ticket (not a follow-up) whose requester is
    the sender: the answered requester's plus-address or a colleague nobody CC'd. The message
    never landed on the ticket it answered, and no stranger was refused or dropped."""
    messages = reopened.stranger_messages()
    assert default_run.stranger_replies == len(messages) > 0
    for message in messages:
        assert message.outcome == "new_ticket"
        assert message.new_ticket_id is not None
        created = reopened.get(message.new_ticket_id)
        assert created.follow_up_of is None
        assert created.requester == message.sender
        answered = reopened.get(message.ticket_id)
        landed = {getattr(e, "message_id", None) for e in reopened.history(message.ticket_id)}
        assert message.message_id not in landed
        if answered.erased_at is None:
            colleagues = colleagues_of(answered.requester)
            assert colleagues is not None
            local, _, domain = answered.requester.partition("@")
            assert message.sender in {f"{local}+support@{domain}", colleagues[1]}


def test_erasure_reads_erased_only_on_one_requester_tickets_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """One requester was forgotten: the summary's count of tickets read [erased] (requester,
    subject, description) since the erasure; every other ticket keeps its requester and
    subject, and none of them belongs to the forgotten address."""
    views = [reopened.get(tid) for tid in reopened.ticket_ids()]
    erased = [v for v in views if v.erased_at is not None]
    kept = [v for v in views if v.erased_at is None]
    assert default_run.erased_requesters == 1
    assert default_run.erased_address is not None
    assert 0 < len(erased) == default_run.erased_tickets
    assert kept
    for view in erased:
        assert (view.requester, view.subject, view.description) == (_ERASED,) * 3
        assert view.erased_at == default_run.erased_at
    for view in kept:
        assert _ERASED not in (view.requester, view.subject)
        assert view.requester != default_run.erased_address


def test_erased_address_and_key_absent_from_database_files_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """The database files hold the erased tickets' message ids (not personal: the search
    reads real data) but not the forgotten address; the key those tickets were sealed with
    has no row any more, while a kept ticket's key does."""
    assert default_run.erased_address is not None
    raw = _raw_bytes(default_run.db_path)
    erased = [t for t in reopened.ticket_ids() if reopened.get(t).erased_at is not None]
    kept = next(t for t in reopened.ticket_ids() if reopened.get(t).erased_at is None)
    message_ids = [getattr(reopened.history(t)[0], "message_id", None) for t in erased]
    assert any(m is not None and m.encode() in raw for m in message_ids)
    assert default_run.erased_address.encode() not in raw
    keys = _key_ids_in_store(default_run.db_path)
    erased_key = key_id_of(getattr(reopened.history(erased[0], sealed=True)[0], "requester", None))
    kept_key = key_id_of(getattr(reopened.history(kept, sealed=True)[0], "requester", None))
    assert erased_key is not None
    assert kept_key is not None
    assert erased_key.hex not in keys
    assert kept_key.hex in keys


def test_demo_database_audits_clean_from_command_line(
    default_run: DemoSummary, capsys: pytest.CaptureFixture[str]
) -> None:
    """`supportflow audit --store sqlite:///<demo db>` exits 0 (clean) after the erasure."""
    assert main(["audit", "--store", f"sqlite:///{default_run.db_path}"]) == 0
    assert "CLEAN" in capsys.readouterr().out


def test_example_ticket_is_readable_after_default_run(
    default_run: DemoSummary, reopened: SupportDesk
) -> None:
    """The example ticket is not an erased one: its subject, requester and timeline read in
    plain words."""
    assert default_run.example_ticket is not None
    assert reopened.get(default_run.example_ticket).erased_at is None
    assert _ERASED not in default_run.example_subject
    assert all(_ERASED not in entry.detail for entry in default_run.timeline)


def test_formatted_summary_reports_cc_strangers_and_erasure_after_default_run(
    default_run: DemoSummary,
) -> None:
    """The text has a CC replies line, a "stranger replies N (new tickets)" line and an
    "erased 1 requester (K tickets)" line with the summary's counts; it never names the
    forgotten address."""
    text = format_summary(default_run)
    cc = re.search(
        r"^  CC replies +(\d+)  \(colleagues CC'd at submit on (\d+) tickets", text, re.M
    )
    strangers = re.search(r"^  stranger replies +(\d+) \(new tickets\)", text, re.M)
    erased = re.search(r"^  erased +1 requester \((\d+) tickets?\)", text, re.M)
    assert cc is not None
    assert strangers is not None
    assert erased is not None
    assert (int(cc[1]), int(cc[2])) == (default_run.cc_replies, default_run.cc_tickets)
    assert int(strangers[1]) == default_run.stranger_replies
    assert int(erased[1]) == default_run.erased_tickets
    assert default_run.erased_address is not None
    assert default_run.erased_address not in text


def test_new_features_occur_with_default_settings(default_run: DemoSummary) -> None:
    """The default demo shows CC'd tickets, CC replies, stranger replies and an erasure."""
    outcomes = {
        "cc_tickets": default_run.cc_tickets,
        "cc_replies": default_run.cc_replies,
        "stranger_replies": default_run.stranger_replies,
        "erased_requesters": default_run.erased_requesters,
        "erased_tickets": default_run.erased_tickets,
    }
    assert [name for name, count in outcomes.items() if count == 0] == []


# -- determinism -------------------------------------------------------------------------


def test_same_seed_gives_same_summary_on_two_files(tmp_path: Path) -> None:
    """Two runs with one seed produce equal summaries and text, apart from the db path."""
    first = run_demo(tmp_path / "a.db", seed=7, days=6)
    second = run_demo(tmp_path / "b.db", seed=7, days=6)
    assert _without_path(first) == _without_path(second)
    assert format_summary(first).replace(first.db_path, "DB") == format_summary(second).replace(
        second.db_path, "DB"
    )


def test_different_seeds_give_different_summaries(tmp_path: Path) -> None:
    """Two seeds simulate different desks."""
    first = run_demo(tmp_path / "a.db", seed=1, days=6)
    second = run_demo(tmp_path / "b.db", seed=2, days=6)
    assert _without_path(first) != _without_path(second)


def test_run_demo_refuses_existing_file(tmp_path: Path) -> None:
    """run_demo never writes into an existing file, whose events would spoil the counts."""
    path = tmp_path / "old.db"
    path.write_text("not a database")
    with pytest.raises(FileExistsError):
        run_demo(path, days=1)


def _people_facts(path: Path) -> tuple[Any, ...]:
    """Who was CC'd, which stranger replies became which tickets, and what was erased."""
    run = run_demo(path, seed=7, days=6)
    with SupportDesk(store=f"sqlite:///{path}", clock=FixedClock(run.end)) as desk:
        views = [desk.get(tid) for tid in desk.ticket_ids()]
        strangers = [
            (m.ticket_id, m.sender, m.new_ticket_id, m.message_id, m.at)
            for m in desk.stranger_messages()
        ]
    return (
        run.erased_address,
        run.erased_at,
        [(v.id, v.cc, v.erased_at) for v in views],
        strangers,
    )


def test_same_seed_gives_same_cc_strangers_and_erasure(tmp_path: Path) -> None:
    """Two runs with one seed CC the same tickets, turn the same stranger replies into the
    same tickets and erase the same requester's tickets at the same instant."""
    first = _people_facts(tmp_path / "a.db")
    assert first == _people_facts(tmp_path / "b.db")
    address, _, tickets, strangers = first
    assert address is not None
    assert any(cc for _, cc, _ in tickets)
    assert any(erased is not None for _, _, erased in tickets)
    assert strangers


# -- pure decisions ----------------------------------------------------------------------


def test_agent_assigns_new_ticket() -> None:
    """A NEW ticket is assigned first, whatever the dice say."""
    move = choose_agent_move(
        random.Random(0), status=Status.NEW, severity=Severity.LOW, rounds=0, asked=0
    )
    assert move is AgentMove.ASSIGN


@pytest.mark.parametrize("status", [Status.PENDING, Status.SOLVED, Status.CLOSED])
def test_agent_waits_on_ticket_not_needing_agent(status: Status) -> None:
    """Tickets waiting for the customer, solved or closed get no agent action."""
    move = choose_agent_move(
        random.Random(0), status=status, severity=Severity.HIGH, rounds=1, asked=0
    )
    assert move is AgentMove.WAIT


@given(seed=st.integers())
def test_agent_solves_open_ticket_after_max_rounds(seed: int) -> None:
    """After MAX_AGENT_ROUNDS turns an open ticket is solved."""
    move = choose_agent_move(
        random.Random(seed),
        status=Status.OPEN,
        severity=Severity.MEDIUM,
        rounds=MAX_AGENT_ROUNDS,
        asked=0,
    )
    assert move is AgentMove.SOLVE


@given(seed=st.integers(), hours=st.integers(min_value=1, max_value=200))
def test_customer_replies_land_on_the_planned_side_of_close(seed: int, hours: int) -> None:
    """Replies meant to reopen arrive before the close; late replies arrive after it."""
    close_in = timedelta(hours=hours)
    for step in plan_customer_after_solve(random.Random(seed), close_in=close_in):
        if step.move is CustomerMove.REPLY:
            assert timedelta(0) < step.after < close_in
        else:
            assert step.after > close_in


@given(
    seed=st.integers(),
    now=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ),
    severity=st.sampled_from([Severity.HIGH, Severity.MEDIUM, Severity.LOW]),
)
def test_non_critical_agent_work_happens_in_business_hours(
    seed: int, now: datetime, severity: Severity
) -> None:
    """Agents work non-critical tickets later than now, Mon-Fri 09-17 Chicago, not holidays."""
    ready = agent_ready_at(random.Random(seed), now, severity)
    assert ready > now
    assert is_business_time(ready)


@given(seed=st.integers(), day=st.integers(min_value=0, max_value=300))
def test_phone_submissions_only_in_business_hours(seed: int, day: int) -> None:
    """A planned phone ticket is always within business hours; all are within the day."""
    day_start = datetime(2026, 1, 1, 6, 0, tzinfo=UTC) + timedelta(days=day)
    plan = plan_day(random.Random(seed), day_start, tickets=6, seed=seed, first_number=1)
    assert plan
    for submission in plan:
        assert day_start <= submission.at < day_start + timedelta(hours=23)
        if submission.channel.value == "phone":
            assert is_business_time(submission.at)


@given(seed=st.integers(), severity=st.sampled_from(list(Severity)))
def test_only_high_and_critical_tickets_are_escalated(seed: int, severity: Severity) -> None:
    """Escalation plans exist only for HIGH and CRITICAL tickets and ask for a more severe
    level (or none, for CRITICAL)."""
    plan = plan_escalation(random.Random(seed), severity)
    if severity in (Severity.MEDIUM, Severity.LOW):
        assert plan is None
    elif plan is not None:
        assert plan.after > timedelta(0)
        assert plan.review_after > timedelta(0)
        if severity is Severity.CRITICAL:
            assert plan.requested_severity is None
        else:
            assert plan.requested_severity is Severity.CRITICAL


@given(
    seed=st.integers(),
    severity=st.sampled_from(list(Severity)),
    requested=st.none() | st.sampled_from(list(Severity)),
    assignee=st.none() | st.sampled_from(["bob", "carol", "dave", "erin"]),
)
def test_escalation_decision_never_lowers_severity_nor_keeps_agent(
    seed: int, severity: Severity, requested: Severity | None, assignee: str | None
) -> None:
    """A declined review changes nothing; an accepted one only raises the severity and only
    hands the ticket to a different agent."""
    decision = decide_escalation(
        random.Random(seed), severity=severity, requested=requested, assignee=assignee
    )
    if not decision.accept:
        assert (decision.severity, decision.reassign_to) == (None, None)
    if decision.severity is not None:
        assert decision.severity < severity
    if decision.reassign_to is not None:
        assert decision.reassign_to != assignee
    assert decision.note.strip()


@given(
    seed=st.integers(),
    lead=st.integers(min_value=0, max_value=3 * 24 * 60),
)
def test_status_update_is_planned_near_due_and_never_in_the_past(seed: int, lead: int) -> None:
    """A status update is planned not before now, and within 90 minutes before to three
    hours after the update is due (when that is still ahead)."""
    now = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    due = now + timedelta(minutes=lead)
    at = plan_check_in(random.Random(seed), now, due)
    assert at >= now
    assert at <= max(now, due + timedelta(hours=3))
    if lead >= 90:
        assert at >= due - timedelta(minutes=90)


@given(seed=st.integers())
def test_survey_answers_are_ratings_one_to_five_after_delivery(seed: int) -> None:
    """A planned survey answer has a rating 1..5, a comment, and comes after the delivery."""
    answer = plan_survey_answer(random.Random(seed))
    if answer is not None:
        assert 1 <= answer.rating <= 5
        assert answer.comment
        assert answer.after > timedelta(0)


def _note(number: int) -> Notification:
    return Notification(
        key=f"survey_request:{number}",
        kind="survey_request",
        ticket_id=UUID(int=number),
        requester="ann@acme.example",
        subject="Cannot restore",
        requested_at=datetime(2026, 3, 2, 15, 0, tzinfo=UTC),
    )


def _outcomes(notifier: DemoNotifier, count: int) -> list[str]:
    out = []
    for number in range(count):
        try:
            notifier.deliver(_note(number))
        except PermanentDeliveryError:
            out.append("permanent")
        except TimeoutError:
            out.append("transient")
        else:
            out.append("delivered")
    return out


def test_demo_notifier_fails_now_and_then_and_same_seed_same_outcomes() -> None:
    """The demo gateway delivers most notifications, fails some transiently and some for
    good, and makes the same choices for the same seed."""
    first = _outcomes(DemoNotifier(3), 600)
    assert first == _outcomes(DemoNotifier(3), 600)
    assert set(first) == {"delivered", "transient", "permanent"}
    assert first.count("delivered") > len(first) // 2


def test_demo_notifier_keeps_only_accepted_notifications() -> None:
    """`delivered` lists exactly the notifications whose delivery did not raise, in order."""
    notifier = DemoNotifier(5)
    outcomes = _outcomes(notifier, 200)
    expected = [_note(n) for n, outcome in enumerate(outcomes) if outcome == "delivered"]
    assert notifier.delivered == expected


@given(seed=st.integers(), day=st.integers(min_value=0, max_value=300))
def test_only_phone_submissions_lack_a_version(seed: int, day: int) -> None:
    """Web and email tickets name a software version; phone tickets don't."""
    day_start = datetime(2026, 1, 1, 6, 0, tzinfo=UTC) + timedelta(days=day)
    for submission in plan_day(
        random.Random(seed), day_start, tickets=6, seed=seed, first_number=1
    ):
        assert (submission.product_version is None) is (submission.channel.value == "phone")


_SOME_CUSTOMERS = ("ann@acme.example", "raj@globex.example", "sam@tyrell.example")


@given(
    seed=st.integers(),
    requester=st.sampled_from(_SOME_CUSTOMERS),
    cc_listed=st.booleans(),
)
def test_reply_sender_is_requester_cc_or_a_look_alike(
    seed: int, requester: str, cc_listed: bool
) -> None:
    """A customer's reply comes from the requester, an address on the CC list, the
    requester's plus-address or the colleague nobody CC'd, and its kind says which."""
    colleagues = colleagues_of(requester)
    assert colleagues is not None
    cc = (colleagues[0],) if cc_listed else ()
    sender = choose_sender(random.Random(seed), requester=requester, cc=cc)
    local, _, domain = requester.partition("@")
    expected = {
        SenderKind.REQUESTER: {requester},
        SenderKind.CC: set(cc),
        SenderKind.PLUS_ADDRESS: {f"{local}+support@{domain}"},
        SenderKind.COLLEAGUE_NOT_CC: {colleagues[1]},
    }
    assert sender.address in expected[sender.kind]
    assert sender.kind.stranger is (sender.address not in {requester, *cc})


@given(seed=st.integers())
def test_reply_sender_of_stranger_ticket_is_its_requester(seed: int) -> None:
    """On a ticket a stranger's reply started (its requester is no demo customer) the
    requester always answers from their own address."""
    sender = choose_sender(random.Random(seed), requester="ann+support@acme.example", cc=())
    assert sender == Sender(address="ann+support@acme.example", kind=SenderKind.REQUESTER)


def test_reply_senders_include_cc_and_both_look_alikes() -> None:
    """Over many replies on a CC'd ticket every kind of sender occurs, strangers rarely."""
    rng = random.Random(11)
    kinds = Counter(
        choose_sender(rng, requester="ann@acme.example", cc=("lee@acme.example",)).kind
        for _ in range(2000)
    )
    assert set(kinds) == set(SenderKind)
    strangers = kinds[SenderKind.PLUS_ADDRESS] + kinds[SenderKind.COLLEAGUE_NOT_CC]
    assert strangers < kinds[SenderKind.CC] < kinds[SenderKind.REQUESTER]


@given(seed=st.integers(), day=st.integers(min_value=0, max_value=300))
def test_submissions_cc_only_the_customer_colleague_and_never_by_phone(seed: int, day: int) -> None:
    """A planned CC list is empty or the requester's first colleague, and phone tickets
    CC nobody."""
    day_start = datetime(2026, 1, 1, 6, 0, tzinfo=UTC) + timedelta(days=day)
    for submission in plan_day(
        random.Random(seed), day_start, tickets=6, seed=seed, first_number=1
    ):
        colleagues = colleagues_of(submission.requester)
        assert colleagues is not None
        assert submission.cc in ((), (colleagues[0],))
        if submission.channel.value == "phone":
            assert submission.cc == ()


@given(days=st.integers(min_value=1, max_value=90))
def test_erasure_is_at_eleven_local_near_the_end_of_the_run(days: int) -> None:
    """The erasure request comes at 11:00 local time within the run, in its last three days
    (on the first day of shorter runs)."""
    at = erasure_at(days)
    local = at.astimezone(CHICAGO)
    assert (local.hour, local.minute) == (11, 0)
    end = START + timedelta(days=days, hours=1)  # the end instant, give or take the DST hour
    assert START <= at < end
    if days >= 3:
        assert at >= end - timedelta(days=3, hours=2)
    else:
        assert local.date() == START.astimezone(CHICAGO).date()


# -- the command line --------------------------------------------------------------------


def test_module_runs_demo_and_prints_db_path(tmp_path: Path) -> None:
    """`python -m supportflow demo --db ... --days 3` exits 0 and names the database file."""
    db = tmp_path / "cli.db"
    result = subprocess.run(
        [sys.executable, "-m", "supportflow", "demo", "--db", str(db), "--days", "3"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert str(db.absolute()) in result.stdout
    assert db.exists()
    assert "day 1/3" not in result.stderr  # progress only when stderr is a terminal


def test_cli_replaces_existing_database_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing file at --db is removed first, and the output says so."""
    db = tmp_path / "old.db"
    db.write_text("left over")
    assert main(["demo", "--db", str(db), "--days", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Removed the previous demo database" in out
    with SupportDesk(store=f"sqlite:///{db}") as desk:
        assert list(desk.ticket_ids())


@pytest.mark.parametrize(
    "args",
    [["--days", "-1"], ["--days", "0"], ["--tickets-per-day", "0"], ["--seed", "x"]],
)
def test_cli_bad_argument_is_usage_error(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad numbers are refused by argparse with exit status 2 and a message naming the option."""
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--db", str(tmp_path / "x.db"), *args])
    assert exit_info.value.code == 2
    assert args[0] in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_cli_without_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`supportflow` alone asks for a command."""
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_cli_default_database_in_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --db the demo writes supportflow-demo.db in the current directory."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--days", "1", "--quiet"]) == 0
    assert (tmp_path / "supportflow-demo.db").exists()
    assert str(tmp_path / "supportflow-demo.db") in capsys.readouterr().out
