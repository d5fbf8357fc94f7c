"""The update SLA (DESIGN §1 "Update cadence"): one test per rule of the update clock, the
triage queue, channel hours, and hypothesis properties of the clock over random histories."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from supportflow import ManualClock, Severity, Status, SupportDesk, SupportPolicy
from supportflow.audit import Auditor
from supportflow.policy import BusinessCalendar

CHICAGO = ZoneInfo("America/Chicago")


def chicago(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in America/Chicago, as aware UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=CHICAGO).astimezone(UTC)


MON_9 = chicago(2026, 3, 2, 9)
"""Monday 2026-03-02 09:00 CST: the desk opens."""
TUE_9 = chicago(2026, 3, 3, 9)


def names(desk: SupportDesk, tid: UUID) -> list[str]:
    return [type(e).__name__ for e in desk.history(tid)]


def breaches(desk: SupportDesk, tid: UUID) -> list[Any]:
    return [e for e in desk.history(tid) if type(e).__name__ == "UpdateOverdue"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MON_9)


@pytest.fixture
def desk(clock: ManualClock) -> Any:
    with SupportDesk(clock=clock) as d:
        yield d


def submit(desk: SupportDesk, severity: Severity = Severity.MEDIUM, at: datetime = MON_9) -> UUID:
    return desk.submit(requester="ann@example.com", subject="Slow", severity=severity, at=at)


# -- the clock ----------------------------------------------------------------------------------


def test_update_clock_starts_at_submission(desk: SupportDesk) -> None:
    """A MEDIUM ticket submitted Monday 09:00 needs an agent update by Tuesday 09:00."""
    tid = submit(desk)
    view = desk.get(tid)
    assert view.update_due_at == TUE_9
    assert not view.sla_breached


def test_agent_reply_restarts_the_update_clock(desk: SupportDesk) -> None:
    """An agent reply at 11:00 moves the update due to the next business day 11:00."""
    tid = submit(desk)
    desk.reply(tid, agent="bob", body="Looking", at=chicago(2026, 3, 2, 11))
    assert desk.get(tid, as_of=chicago(2026, 3, 2, 11)).update_due_at == chicago(2026, 3, 3, 11)


def test_request_info_pauses_the_update_clock(desk: SupportDesk) -> None:
    """While PENDING no agent update is due."""
    tid = submit(desk)
    desk.request_info(tid, agent="bob", body="Version?", at=chicago(2026, 3, 2, 10))
    view = desk.get(tid, as_of=chicago(2026, 3, 2, 10))
    assert (view.status, view.update_due_at) == (Status.PENDING, None)


def test_pending_ticket_is_never_breached(desk: SupportDesk, clock: ManualClock) -> None:
    """Six days in PENDING (short of the auto-solve) record no UpdateOverdue."""
    tid = submit(desk)
    desk.request_info(tid, agent="bob", body="Version?", at=chicago(2026, 3, 2, 10))
    clock.set(chicago(2026, 3, 8, 10))
    desk.run_due_timers()
    assert breaches(desk, tid) == []
    assert desk.get(tid).sla_breaches == 0


def test_customer_answer_resumes_the_clock_with_a_full_target(desk: SupportDesk) -> None:
    """A customer answering a PENDING ticket at Wed 16:00 gets a full business day: Thu 16:00,
    not what was left of the clock before the pause."""
    tid = submit(desk)
    desk.request_info(tid, agent="bob", body="Version?", at=chicago(2026, 3, 2, 10))
    desk.customer_reply(tid, body="4.2", at=chicago(2026, 3, 4, 16))
    assert desk.get(tid, as_of=chicago(2026, 3, 4, 16)).update_due_at == chicago(2026, 3, 5, 16)


def test_solve_stops_the_update_clock(desk: SupportDesk, clock: ManualClock) -> None:
    """A SOLVED ticket has no update due and is never breached until it closes."""
    tid = submit(desk)
    desk.solve(tid, agent="bob", solution="Reinstall", at=chicago(2026, 3, 2, 10))
    assert desk.get(tid, as_of=chicago(2026, 3, 2, 10)).update_due_at is None
    clock.set(chicago(2026, 3, 9, 10))
    desk.run_due_timers()
    assert desk.get(tid).status is Status.CLOSED
    assert breaches(desk, tid) == []


def test_reopen_restarts_the_update_clock(desk: SupportDesk) -> None:
    """A customer reply reopening a SOLVED ticket Wed 14:00 starts a clock due Thu 14:00."""
    tid = submit(desk)
    desk.solve(tid, agent="bob", solution="Reinstall", at=chicago(2026, 3, 2, 10))
    desk.customer_reply(tid, body="Still broken", at=chicago(2026, 3, 4, 14))
    view = desk.get(tid, as_of=chicago(2026, 3, 4, 14))
    assert (view.status, view.update_due_at) == (Status.OPEN, chicago(2026, 3, 5, 14))


def test_agent_reply_to_solved_ticket_restarts_the_update_clock(desk: SupportDesk) -> None:
    """An agent reply reopening a SOLVED ticket starts a fresh clock at the reply."""
    tid = submit(desk)
    desk.solve(tid, agent="bob", solution="Reinstall", at=chicago(2026, 3, 2, 10))
    desk.reply(tid, agent="bob", body="One more thing", at=chicago(2026, 3, 3, 12))
    assert desk.get(tid, as_of=chicago(2026, 3, 3, 12)).update_due_at == chicago(2026, 3, 4, 12)


def test_severity_change_retargets_from_the_clock_start(desk: SupportDesk) -> None:
    """MEDIUM submitted 09:00, raised to HIGH at 10:00: due at 13:00 (4 business hours from
    09:00, when the clock started), not 14:00."""
    tid = submit(desk)
    desk.change_severity(tid, Severity.HIGH, by="carol", reason="down", at=chicago(2026, 3, 2, 10))
    assert desk.get(tid, as_of=chicago(2026, 3, 2, 10)).update_due_at == chicago(2026, 3, 2, 13)


def test_severity_change_while_pending_applies_when_the_clock_resumes(desk: SupportDesk) -> None:
    """A severity raised while PENDING leaves the clock paused; the customer's answer starts
    a clock with the new severity's target."""
    tid = submit(desk)
    desk.request_info(tid, agent="bob", body="Version?", at=chicago(2026, 3, 2, 10))
    desk.change_severity(tid, Severity.HIGH, by="carol", reason="down", at=chicago(2026, 3, 2, 11))
    assert desk.get(tid, as_of=chicago(2026, 3, 2, 11)).update_due_at is None
    desk.customer_reply(tid, body="4.2", at=chicago(2026, 3, 2, 12))
    assert desk.get(tid, as_of=chicago(2026, 3, 2, 12)).update_due_at == chicago(2026, 3, 2, 16)


def test_assignment_does_not_restart_the_update_clock(desk: SupportDesk) -> None:
    """Taking a ticket is not an update to the customer: the clock keeps its start."""
    tid = submit(desk)
    desk.assign(tid, agent="bob", at=chicago(2026, 3, 2, 12))
    assert desk.get(tid, as_of=chicago(2026, 3, 2, 12)).update_due_at == TUE_9


def test_customer_message_on_open_ticket_does_not_restart_the_clock(desk: SupportDesk) -> None:
    """A customer writing again on an OPEN ticket does not count as an agent update."""
    tid = submit(desk)
    desk.reply(tid, agent="bob", body="Looking", at=chicago(2026, 3, 2, 10))
    desk.customer_reply(tid, body="Any news?", at=chicago(2026, 3, 2, 15))
    assert desk.get(tid, as_of=chicago(2026, 3, 2, 15)).update_due_at == chicago(2026, 3, 3, 10)


def test_policy_without_update_targets_has_no_update_sla(clock: ManualClock) -> None:
    """`update_targets=()` means no update is ever due and nothing is ever breached."""
    with SupportDesk(clock=clock, policy=SupportPolicy(update_targets=())) as desk:
        tid = submit(desk)
        clock.set(chicago(2026, 3, 6, 9))
        desk.run_due_timers()
        assert desk.get(tid).update_due_at is None
        assert breaches(desk, tid) == []


# -- targets per severity -------------------------------------------------------------------------


def test_critical_counts_elapsed_hours_around_the_clock(desk: SupportDesk) -> None:
    """CRITICAL submitted Sat 23:00 CST is due 4 elapsed hours later, Sun 04:00 CDT (the night
    the clocks spring forward), though the desk is closed."""
    tid = submit(desk, Severity.CRITICAL, at=chicago(2026, 3, 7, 23))
    due = desk.get(tid, as_of=chicago(2026, 3, 7, 23)).update_due_at
    assert due == chicago(2026, 3, 8, 4)
    assert due - chicago(2026, 3, 7, 23) == timedelta(hours=4)


def test_high_counts_business_hours_within_a_day(desk: SupportDesk) -> None:
    """HIGH submitted Monday 09:00 is due Monday 13:00."""
    tid = submit(desk, Severity.HIGH)
    assert desk.get(tid).update_due_at == chicago(2026, 3, 2, 13)


def test_high_counts_business_hours_across_a_weekend_and_a_us_holiday(desk: SupportDesk) -> None:
    """HIGH submitted Fri 2026-02-13 15:00 has 2 business hours left that day; Saturday,
    Sunday and Presidents' Day (Mon 02-16) are closed: due Tue 02-17 11:00."""
    tid = submit(desk, Severity.HIGH, at=chicago(2026, 2, 13, 15))
    assert desk.get(tid, as_of=chicago(2026, 2, 13, 15)).update_due_at == chicago(2026, 2, 17, 11)


@pytest.mark.parametrize("severity", [Severity.MEDIUM, Severity.LOW])
def test_medium_and_low_get_one_business_day_across_the_dst_change(
    desk: SupportDesk, severity: Severity
) -> None:
    """MEDIUM/LOW submitted Fri 2026-03-06 15:00 CST are due Mon 15:00 CDT (one business day,
    the same point of the business day; 71 elapsed hours across the DST change)."""
    tid = submit(desk, severity, at=chicago(2026, 3, 6, 15))
    due = desk.get(tid, as_of=chicago(2026, 3, 6, 15)).update_due_at
    assert due == chicago(2026, 3, 9, 15)
    assert due is not None
    assert due - chicago(2026, 3, 6, 15) == timedelta(hours=71)


def test_business_day_target_from_a_closed_instant_counts_from_the_next_opening(
    desk: SupportDesk,
) -> None:
    """MEDIUM submitted on Saturday: the clock counts from Monday's opening, so a whole
    business day (Monday) passes before the update is due."""
    tid = submit(desk, at=chicago(2026, 3, 7, 10))
    due = desk.get(tid, as_of=chicago(2026, 3, 7, 10)).update_due_at
    assert due is not None
    assert BusinessCalendar().business_time_between(chicago(2026, 3, 7, 10), due) == timedelta(
        hours=8
    )


# -- breaches --------------------------------------------------------------------------------------


def test_worker_records_the_breach_stamped_at_its_due_instant(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """The timer worker writes one UpdateOverdue stamped at the due instant, with the due
    instant and severity it breached, and when it was written."""
    tid = submit(desk)
    clock.set(TUE_9 + timedelta(hours=3))
    assert desk.run_due_timers() == 1
    [event] = breaches(desk, tid)
    assert (event.timestamp, event.due_at, event.severity) == (TUE_9, TUE_9, int(Severity.MEDIUM))
    assert (event.automatic, event.written_at) == (True, TUE_9 + timedelta(hours=3))


def test_catch_up_records_the_breach_before_a_later_command(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """With no worker, the next command writes the breach first, stamped at its due instant."""
    tid = submit(desk)
    clock.set(TUE_9 + timedelta(hours=3))
    desk.reply(tid, agent="bob", body="Sorry for the wait")
    assert names(desk, tid) == ["Submitted", "UpdateOverdue", "Responded"]
    assert breaches(desk, tid)[0].timestamp == TUE_9


def test_worker_and_catch_up_record_the_same_breach(clock: ManualClock) -> None:
    """Whether the worker or a command's catch-up writes it, the breach has the same stamp,
    due instant and severity."""
    recorded = []
    for use_worker in (True, False):
        with SupportDesk(clock=ManualClock(MON_9)) as desk:
            tid = submit(desk)
            later = TUE_9 + timedelta(hours=5)
            if use_worker:
                desk.run_due_timers(now=later)
            desk.reply(tid, agent="bob", body="Update", at=later + timedelta(hours=1))
            [event] = breaches(desk, tid)
            recorded.append((event.timestamp, event.due_at, event.severity))
    assert recorded[0] == recorded[1]


def test_breach_is_recorded_once_however_often_the_worker_runs(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """A ticket nobody updates for a week has one UpdateOverdue for its clock."""
    tid = submit(desk)
    for hours in (24, 25, 48, 100, 160):
        clock.set(MON_9 + timedelta(hours=hours))
        desk.run_due_timers()
    assert len(breaches(desk, tid)) == 1
    assert desk.get(tid).sla_breaches == 1


def test_view_shows_breach_at_the_due_instant_not_before(desk: SupportDesk) -> None:
    """At due - 1 s the view is not breached; at the due instant it is (shown as applied,
    not yet written)."""
    tid = submit(desk)
    before = desk.get(tid, as_of=TUE_9 - timedelta(seconds=1))
    at_due = desk.get(tid, as_of=TUE_9)
    assert (before.sla_breached, before.update_due_at) == (False, TUE_9)
    assert (at_due.sla_breached, at_due.update_overdue_at, at_due.sla_breaches) == (
        True,
        TUE_9,
        1,
    )
    assert at_due.unwritten_timer_events == 1


def test_agent_update_at_due_minus_one_second_avoids_the_breach(desk: SupportDesk) -> None:
    """An agent reply one second before the due instant restarts the clock: no breach."""
    tid = submit(desk)
    desk.reply(tid, agent="bob", body="Update", at=TUE_9 - timedelta(seconds=1))
    assert breaches(desk, tid) == []


def test_agent_update_after_a_breach_starts_a_new_clock(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """After a breach, an agent reply clears `sla_breached` and sets the next due instant;
    the breach count stays."""
    tid = submit(desk)
    clock.set(TUE_9 + timedelta(hours=1))
    desk.reply(tid, agent="bob", body="Update")
    view = desk.get(tid)
    assert (view.sla_breached, view.sla_breaches) == (False, 1)
    assert view.update_due_at == chicago(2026, 3, 4, 10)


def test_a_new_clock_can_be_breached_again(desk: SupportDesk, clock: ManualClock) -> None:
    """Each clock that runs out records its own breach: two missed updates, two breaches."""
    tid = submit(desk)
    desk.reply(tid, agent="bob", body="Update", at=TUE_9 + timedelta(hours=1))
    clock.set(chicago(2026, 3, 6, 9))
    desk.run_due_timers()
    assert [e.timestamp for e in breaches(desk, tid)] == [TUE_9, chicago(2026, 3, 4, 10)]


def test_severity_raised_past_its_new_due_is_breached_at_the_change(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """MEDIUM at 09:00 raised to HIGH at 14:00: the re-targeted due (13:00) has passed, so the
    breach is recorded at the change instant (a ticket's time never goes backwards)."""
    tid = submit(desk)
    change = chicago(2026, 3, 2, 14)
    desk.change_severity(tid, Severity.HIGH, by="carol", reason="down", at=change)
    clock.set(change + timedelta(minutes=5))
    desk.run_due_timers()
    [event] = breaches(desk, tid)
    assert (event.timestamp, event.due_at) == (change, chicago(2026, 3, 2, 13))


def test_severity_change_after_a_breach_records_no_second_breach(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """A breach is recorded once per update clock: raising the severity of a ticket whose
    clock is already breached (no agent update since) records no second UpdateOverdue."""
    tid = submit(desk)
    clock.set(TUE_9 + timedelta(hours=1))
    desk.run_due_timers()
    desk.change_severity(tid, Severity.CRITICAL, by="carol", reason="down")
    clock.set(TUE_9 + timedelta(hours=2))
    desk.run_due_timers()
    assert len(breaches(desk, tid)) == 1
    assert desk.get(tid).sla_breaches == 1


# -- the triage queue ------------------------------------------------------------------------------


def test_queue_orders_by_severity_then_update_due(desk: SupportDesk) -> None:
    """CRITICAL first, LOW last; within a severity the earliest update due first, and a
    PENDING ticket (no update due) after those with one."""
    low = submit(desk, Severity.LOW, at=MON_9)
    pending = submit(desk, Severity.MEDIUM, at=MON_9)
    desk.request_info(pending, agent="bob", body="?", at=MON_9)
    later = submit(desk, Severity.MEDIUM, at=MON_9 + timedelta(hours=2))
    earlier = submit(desk, Severity.MEDIUM, at=MON_9 + timedelta(hours=1))
    critical = submit(desk, Severity.CRITICAL, at=MON_9 + timedelta(hours=3))
    assert [v.id for v in desk.queue()] == [critical, earlier, later, pending, low]


def test_queue_breaks_ties_on_update_due_by_age(desk: SupportDesk) -> None:
    """Two MEDIUM tickets submitted Saturday and Sunday are both due Tuesday 09:00: the
    older comes first."""
    sunday = submit(desk, at=chicago(2026, 3, 8, 10))
    saturday = submit(desk, at=chicago(2026, 3, 7, 10))
    views = desk.queue()
    assert views[0].update_due_at == views[1].update_due_at
    assert [v.id for v in views] == [saturday, sunday]


def test_queue_lists_only_active_tickets(desk: SupportDesk) -> None:
    """SOLVED and CLOSED tickets are not in the triage queue."""
    active = submit(desk)
    solved = submit(desk)
    desk.solve(solved, agent="bob", solution="x", at=MON_9)
    assert [v.id for v in desk.queue()] == [active]


def test_queue_filters_by_assignee(desk: SupportDesk) -> None:
    """`assignee=` keeps only that agent's tickets."""
    bobs = submit(desk)
    carols = submit(desk)
    submit(desk)
    desk.assign(bobs, agent="bob", at=MON_9)
    desk.assign(carols, agent="carol", at=MON_9)
    assert [v.id for v in desk.queue(assignee="bob")] == [bobs]


def test_queue_filters_by_one_status(desk: SupportDesk) -> None:
    """`status=Status.PENDING` keeps only PENDING tickets."""
    submit(desk)
    pending = submit(desk)
    desk.request_info(pending, agent="bob", body="?", at=MON_9)
    assert [v.id for v in desk.queue(status=Status.PENDING)] == [pending]


def test_queue_filters_by_several_statuses(desk: SupportDesk) -> None:
    """`status=[NEW, PENDING]` leaves out OPEN tickets."""
    new = submit(desk, Severity.HIGH)
    opened = submit(desk)
    desk.reply(opened, agent="bob", body="hi", at=MON_9)
    pending = submit(desk)
    desk.request_info(pending, agent="bob", body="?", at=MON_9)
    assert [v.id for v in desk.queue(status=[Status.NEW, Status.PENDING])] == [new, pending]


# -- channel hours --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [chicago(2026, 3, 8, 3), chicago(2026, 3, 2, 12), chicago(2026, 12, 25, 12)],
    ids=["sunday-night", "monday-noon", "christmas"],
)
def test_web_channel_is_open_around_the_clock(desk: SupportDesk, at: datetime) -> None:
    """Web submissions are taken 24/7, also at night, on weekends and on holidays."""
    assert desk.is_open("web", at)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (chicago(2026, 3, 2, 9), True),
        (chicago(2026, 3, 2, 16, 59), True),
        (chicago(2026, 3, 2, 17), False),
        (chicago(2026, 3, 2, 8, 59), False),
        (chicago(2026, 3, 7, 12), False),
        (chicago(2026, 5, 25, 12), False),
    ],
    ids=["opens-9", "16-59", "closes-17", "8-59", "saturday", "memorial-day"],
)
def test_phone_channel_is_open_only_in_business_hours(
    desk: SupportDesk, at: datetime, expected: bool
) -> None:
    """Phone support runs Mon-Fri 09:00-17:00 Chicago, not on US federal holidays."""
    assert desk.is_open("phone", at) is expected


def test_submission_is_recorded_when_its_channel_is_closed(desk: SupportDesk) -> None:
    """A phone ticket logged on Saturday is recorded; the closed channel refuses nothing."""
    saturday = chicago(2026, 3, 7, 12)
    tid = desk.submit(requester="ann@example.com", subject="x", channel="phone", at=saturday)
    assert desk.get(tid, as_of=saturday).channel == "phone"


# -- the auditor agrees ---------------------------------------------------------------------------


def _scenario_breach_and_recovery(desk: SupportDesk) -> None:
    tid = submit(desk)
    desk.run_due_timers(now=TUE_9 + timedelta(hours=1))
    desk.reply(tid, agent="bob", body="Update", at=TUE_9 + timedelta(hours=2))
    desk.change_severity(
        tid, Severity.HIGH, by="carol", reason="down", at=TUE_9 + timedelta(hours=3)
    )
    desk.run_due_timers(now=chicago(2026, 3, 5, 9))


def _scenario_pauses_and_reopen(desk: SupportDesk) -> None:
    tid = submit(desk, Severity.HIGH, at=chicago(2026, 2, 13, 15))
    desk.request_info(tid, agent="bob", body="?", at=chicago(2026, 2, 13, 16))
    desk.customer_reply(tid, body="4.2", at=chicago(2026, 2, 16, 8))
    desk.solve(tid, agent="bob", solution="x", at=chicago(2026, 2, 18, 9))
    desk.customer_reply(tid, body="again", at=chicago(2026, 2, 19, 9))
    desk.run_due_timers(now=chicago(2026, 2, 24, 9))


def _scenario_critical_overnight(desk: SupportDesk) -> None:
    tid = submit(desk, Severity.CRITICAL, at=chicago(2026, 3, 7, 23))
    desk.change_severity(tid, Severity.LOW, by="carol", reason="x", at=chicago(2026, 3, 8, 1))
    desk.run_due_timers(now=chicago(2026, 3, 12, 9))


@pytest.mark.parametrize(
    "scenario",
    [_scenario_breach_and_recovery, _scenario_pauses_and_reopen, _scenario_critical_overnight],
)
def test_sla_scenarios_audit_clean(scenario: Callable[[SupportDesk], None]) -> None:
    """The auditor, replaying with no grace, finds no violation in these SLA histories."""
    with SupportDesk(clock=ManualClock(chicago(2026, 2, 1, 9))) as desk:
        scenario(desk)
        report = Auditor(desk).audit(grace=timedelta(0))
        assert report.violations == ()
        assert report.clean


# -- properties of the clock over random histories -------------------------------------------------

CALENDAR = BusinessCalendar()
"""The default calendar, used independently of the policy to compute expected due instants."""
LONG_TIMERS = SupportPolicy(pending_solve_after_days=365, close_after_days=365)
"""The default update targets; auto-solve and auto-close kept out of these histories."""

ACTIONS = ("reply", "request_info", "customer_reply", "solve", "severity", "nothing")


def expected_due(severity: Severity, since: datetime) -> datetime:
    """DESIGN §1 computed straight from the calendar: CRITICAL 4 elapsed hours, HIGH 4 business
    hours, MEDIUM and LOW one business day."""
    if severity is Severity.CRITICAL:
        return since + timedelta(hours=4)
    if severity is Severity.HIGH:
        return CALENDAR.add_business_time(since, timedelta(hours=4))
    return CALENDAR.add_business_days(since, 1)


def clock_ran(severity: Severity, since: datetime, until: datetime) -> timedelta:
    """How much counting time the clock ran from `since` to `until`, in its severity's unit."""
    if severity is Severity.CRITICAL:
        return until - since
    return CALENDAR.business_time_between(since, until)


TARGET = {
    Severity.CRITICAL: timedelta(hours=4),
    Severity.HIGH: timedelta(hours=4),
    Severity.MEDIUM: timedelta(hours=8),
    Severity.LOW: timedelta(hours=8),
}
"""The target as counting time (a business day of the default calendar is 8 business hours)."""


class ClockModel:
    """A tiny reference model of one ticket's update clock, per DESIGN §1 and issue #5."""

    def __init__(self, severity: Severity, at: datetime) -> None:
        self.status = Status.NEW
        self.severity = severity
        self.since: datetime | None = at
        self.breached = False
        self.last_at = at
        self.breaches: list[tuple[datetime, datetime, Severity, datetime]] = []
        """(stamped at, due at, severity, clock start) per expected UpdateOverdue."""

    def fire(self, until: datetime) -> None:
        if self.status in (Status.NEW, Status.OPEN) and self.since and not self.breached:
            due = expected_due(self.severity, self.since)
            if due <= until:
                stamp = max(due, self.last_at)
                self.breaches.append((stamp, due, self.severity, self.since))
                self.breached = True
                self.last_at = stamp

    def restart(self, at: datetime) -> None:
        self.since, self.breached = at, False

    def apply(self, action: str, at: datetime, severity: Severity) -> None:
        self.fire(at)
        self.last_at = at
        if action == "reply":
            self.status = Status.OPEN
            self.restart(at)
        elif action == "request_info":
            self.status, self.since = Status.PENDING, None
        elif action == "customer_reply" and self.status in (Status.PENDING, Status.SOLVED):
            self.status = Status.OPEN
            self.restart(at)
        elif action == "solve" and self.status is not Status.SOLVED:
            self.status, self.since = Status.SOLVED, None
        elif action == "severity":
            self.severity = severity


def run(
    desk: SupportDesk, clock: ManualClock, tid: UUID, action: str, at: datetime, sev: Severity
) -> None:
    clock.set(at)
    if action == "reply":
        desk.reply(tid, agent="bob", body="update", at=at)
    elif action == "request_info":
        desk.request_info(tid, agent="bob", body="?", at=at)
    elif action == "customer_reply":
        desk.customer_reply(tid, body="answer", at=at)
    elif action == "solve":
        desk.solve(tid, agent="bob", solution="x", at=at)
    elif action == "severity":
        desk.change_severity(tid, sev, by="carol", reason="triage", at=at)


severities = st.sampled_from(list(Severity))
starts = st.one_of(
    st.datetimes(datetime(2026, 2, 10), datetime(2026, 3, 12)),  # Presidents' Day, DST start
    st.datetimes(datetime(2026, 10, 28), datetime(2026, 11, 28)),  # DST end, Thanksgiving
).map(lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC))
steps = st.lists(
    st.tuples(
        st.integers(0, 3 * 24 * 60).map(lambda m: timedelta(minutes=m)),
        st.sampled_from(ACTIONS),
        severities,
        st.booleans(),
    ),
    max_size=10,
)


def replay(
    start: datetime,
    severity: Severity,
    history: list[tuple[timedelta, str, Severity, bool]],
    *,
    allow_retarget_after_breach: bool,
) -> tuple[SupportDesk, UUID, ClockModel, datetime]:
    """Run a random history on a fresh desk and on the model; the desk is returned open."""
    clock = ManualClock(start)
    desk = SupportDesk(clock=clock, policy=LONG_TIMERS)
    tid = desk.submit(requester="ann@example.com", subject="x", severity=severity, at=start)
    model = ClockModel(severity, start)
    at = start
    for gap, action, sev, worker_first in history:
        at += gap
        model.fire(at)  # a clock due by `at` is breached before the command
        if action == "severity" and model.breached and not allow_retarget_after_breach:
            action = "nothing"
        if worker_first:
            clock.set(at)
            desk.run_due_timers(now=at)  # the worker writes what is due; else catch-up does
        run(desk, clock, tid, action, at, sev)
        model.apply(action, at, sev)
    end = at + timedelta(days=4)
    clock.set(end)
    desk.run_due_timers(now=end)
    model.fire(end)
    return desk, tid, model, end


def recorded_breaches(desk: SupportDesk, tid: UUID) -> list[tuple[datetime, datetime, Severity]]:
    return [(e.timestamp, e.due_at, Severity(e.severity)) for e in breaches(desk, tid)]


@given(start=starts, severity=severities, history=steps)
def test_breach_instants_match_the_calendar_over_random_histories(
    start: datetime, severity: Severity, history: list[tuple[timedelta, str, Severity, bool]]
) -> None:
    """Over random agent updates, pending periods, solves, reopens and severity changes (none
    on an already breached clock), each breach is recorded once, at the due instant computed
    from the calendar for the clock's start and the ticket's severity."""
    desk, tid, model, _ = replay(start, severity, history, allow_retarget_after_breach=False)
    with desk:
        assert recorded_breaches(desk, tid) == [(s, d, sev) for s, d, sev, _ in model.breaches]


@given(start=starts, severity=severities, history=steps)
@example(  # CRITICAL breached at 04:00, then lowered to HIGH an hour later
    start=datetime(2026, 2, 10, 0, 0, tzinfo=UTC),
    severity=Severity.CRITICAL,
    history=[(timedelta(hours=5), "severity", Severity.HIGH, False)],
)
def test_breach_instants_match_the_calendar_with_retargeting_after_breach(
    start: datetime, severity: Severity, history: list[tuple[timedelta, str, Severity, bool]]
) -> None:
    """As above, also with severity changes on a clock that is already breached: still one
    breach per update clock."""
    desk, tid, model, _ = replay(start, severity, history, allow_retarget_after_breach=True)
    with desk:
        assert recorded_breaches(desk, tid) == [(s, d, sev) for s, d, sev, _ in model.breaches]


@given(start=starts, severity=severities, history=steps)
def test_clock_runs_exactly_its_target_before_a_breach(
    start: datetime, severity: Severity, history: list[tuple[timedelta, str, Severity, bool]]
) -> None:
    """Summing the time the clock ran (elapsed for CRITICAL, business time otherwise) from its
    last (re)start to each breach gives exactly the target: pauses never count, and a breach
    is never early or late (unless a severity change re-targeted it into the past)."""
    desk, tid, model, _ = replay(start, severity, history, allow_retarget_after_breach=False)
    with desk:
        recorded = recorded_breaches(desk, tid)
        assert len(recorded) == len(model.breaches)
        for (stamp, due, sev), (_, _, _, since) in zip(recorded, model.breaches, strict=True):
            ran = clock_ran(sev, since, stamp)
            if stamp == due:
                assert ran == TARGET[sev]
            else:  # re-targeted into the past: breached at the change, later than its due
                assert stamp > due
                assert ran >= TARGET[sev]


@given(start=starts, severity=severities, history=steps)
def test_random_histories_audit_clean(
    start: datetime, severity: Severity, history: list[tuple[timedelta, str, Severity, bool]]
) -> None:
    """The auditor (no grace) finds no violation in any random valid history."""
    desk, _, _, _ = replay(start, severity, history, allow_retarget_after_breach=True)
    with desk:
        report = Auditor(desk).audit(grace=timedelta(0))
        assert report.violations == ()
