"""Testing your own policy with `supportflow.testing` (needs ``supportflow[testing]``).

The policy: a desk in Berlin that closes solved tickets after 5 calendar days and whose
follow-ups are re-triaged (they copy the requester and product, not the severity).

Under pytest, `TestBerlinLifecycle` and `test_*` below are collected as tests. Run as a
script, it runs both a few dozen times and prints a summary:
``python examples/testing_your_policy.py``
"""

from __future__ import annotations

import datetime as _dt
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test

from supportflow import ManualClock, Severity, SupportDesk, SupportPolicy, Ticket
from supportflow.testing import LifecycleMachine, Step, histories, play

BERLIN = SupportPolicy(
    name="berlin",
    zone="Europe/Berlin",
    close_after_days=5,
    pending_solve_after_days=7,
    follow_up_copies={"requester", "product"},
)


class BerlinLifecycle(LifecycleMachine):
    """The kit's whole-lifecycle machine on a SQLite desk under the Berlin policy (the class
    attributes configure it; `lifecycle_machine(BERLIN, store="sqlite")` builds the same
    class), counting what it did for the summary."""

    policy = BERLIN
    store = "sqlite"
    runs = 0
    steps = 0

    def teardown(self) -> None:
        type(self).runs += 1
        type(self).steps += len(type(self).last_run) - 1  # the first entry is the start
        super().teardown()


TestBerlinLifecycle = BerlinLifecycle.TestCase


@given(history=histories(BERLIN, max_steps=15))
def test_closes_five_berlin_calendar_days_after_solving(history: list[Step]) -> None:
    """Every automatic close happens on the fifth Berlin calendar day after the last solve."""
    berlin = ZoneInfo("Europe/Berlin")
    clock = ManualClock(_dt.datetime(2026, 3, 25, 9, 0, tzinfo=_dt.UTC))  # DST starts 29 March
    with SupportDesk(clock=clock, policy=BERLIN) as desk:
        play(history, clock, desk)
        desk.run_due_timers()
        for tid in desk.ticket_ids():
            solved_on = None
            for event in desk.history(tid):
                name = type(event).__name__
                if name == "Solved":
                    solved_on = event.timestamp.astimezone(berlin).date()
                if name == "Closed":
                    assert solved_on is not None
                    closed_on = event.timestamp.astimezone(berlin).date()
                    assert closed_on - solved_on == _dt.timedelta(days=5)


@given(history=histories(BERLIN, max_steps=15))
def test_follow_ups_are_re_triaged(history: list[Step]) -> None:
    """A follow-up keeps the requester of the closed ticket but starts at MEDIUM severity."""
    clock = ManualClock(_dt.datetime(2026, 3, 25, 9, 0, tzinfo=_dt.UTC))
    with SupportDesk(clock=clock, policy=BERLIN) as desk:
        play(history, clock, desk)
        for tid in desk.ticket_ids():
            view = desk.get(tid)
            if view.follow_up_of is not None:
                closed = desk.get(view.follow_up_of)
                assert view.requester == closed.requester
                submitted = desk.history(tid)[0]  # later severity changes are allowed
                assert isinstance(submitted, Ticket.Submitted)
                assert Severity(submitted.severity) is Severity.MEDIUM


def main() -> None:
    quick = settings(
        max_examples=30,
        stateful_step_count=25,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    run_state_machine_as_test(BerlinLifecycle, settings=quick)
    print(
        f"lifecycle machine, policy {BERLIN.version}: {BerlinLifecycle.runs} runs, "
        f"{BerlinLifecycle.steps} steps, every invariant held"
    )
    for test in (
        test_closes_five_berlin_calendar_days_after_solving,
        test_follow_ups_are_re_triaged,
    ):
        settings(quick)(test)()
        print(f"{test.__name__}: 30 generated histories passed")


if __name__ == "__main__":
    main()
