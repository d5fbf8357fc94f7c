"""Proof that the test kit bites: `supportflow.testing`'s lifecycle machine, run against
deliberately broken policies and desks, finds every seeded bug and shrinks it to a short
history; on the correct desk the same run finds nothing.

These runs use fixed settings (derandomized, no example database, no explain phase) so that
they are deterministic and fast whatever the active profile.
"""

from __future__ import annotations

import datetime as _dt
import unicodedata
from typing import Any
from uuid import UUID

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from supportflow import Clock, SupportDesk, SupportPolicy
from supportflow.policy import Action, DueTimer, ReplyOutcome, Role, Status, Transition
from supportflow.testing import LifecycleMachine, lifecycle_machine
from supportflow.ticket import Ticket

BITE = settings(
    max_examples=1000,
    stateful_step_count=25,
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)
SHORT = 12
"""The most rules a shrunk failing run may have (after the initial `start`), of up to 25.
Each bug needs 2-4; the bound leaves room for the shrinker's rare local minimum (10 or 11
rules in 1 of 6 unseeded runs of two of the bugs)."""

ANY_DAY = st.just(_dt.datetime(2026, 5, 4, 15, 0, tzinfo=_dt.UTC))
"""A start far from DST changes, for the bugs that do not depend on one: fewer choices to
shrink keeps these runs fast."""

# -- the seeded bugs ------------------------------------------------------------------------


class ElapsedHoursPolicy(SupportPolicy):
    """Bug: closes 72 elapsed hours after solving instead of 3 calendar days."""

    def close_due_at(self, solved_at: _dt.datetime) -> _dt.datetime:
        return solved_at + _dt.timedelta(hours=24 * self.close_after_days)


class LateTimerPolicy(SupportPolicy):
    """Bug: every timer fires one second after its due instant."""

    def due_timer(self, status: Status, **due_instants: Any) -> DueTimer | None:
        timer = super().due_timer(status, **due_instants)
        if timer is None:
            return None
        return attrs.evolve(timer, due_at=timer.due_at + _dt.timedelta(seconds=1))


class AutoReplyReopensPolicy(SupportPolicy):
    """Bug: an auto-submitted message (out-of-office) counts as a customer reply."""

    def reply_outcome(self, status: Status, *, auto_submitted: bool = False) -> ReplyOutcome:
        return super().reply_outcome(status, auto_submitted=False)


class ReopeningClosedPolicy(SupportPolicy):
    """Bug: a customer reply to a CLOSED ticket reopens it instead of creating a follow-up
    (the table the desk reads says CLOSED -> OPEN, bypassing the table's validation)."""

    def transition(self, status: Status, action: Action) -> Transition | None:
        if (status, action) == (Status.CLOSED, Action.CUSTOMER_REPLY):
            return Transition(status=status, action=action, to=Status.OPEN)
        return super().transition(status, action)


class NoDedupeDesk(SupportDesk):
    """Bug: message ids are not deduplicated; every delivery takes effect (a repeated submit
    collides with the ticket id derived from its message id: one attempt, no retries)."""

    def __init__(self, store: str, *, clock: Clock, policy: SupportPolicy, **options: Any) -> None:
        super().__init__(store, clock=clock, policy=policy, max_attempts=1, **options)

    def _receipt(self, mid: str) -> UUID | None:
        return None

    @staticmethod
    def _new_receipt(mid: str | None, ticket_id: UUID, when: _dt.datetime) -> None:
        return None


class CompatibilityFoldingDesk(SupportDesk):
    """Bug: recognises the requester and CC'd addresses after NFKC and `casefold()` instead
    of NFC and lower case, so a full-width look-alike of the requester (``\uff41nn@…``)
    acts as the requester and its reply lands on the requester's ticket."""

    def _customer_role(self, ticket: Ticket, address: str) -> Role:
        def fold(text: str) -> str:
            return unicodedata.normalize("NFKC", text).casefold()

        if fold(self.reveal(ticket.requester)) == fold(address):
            return Role.REQUESTER
        if any(fold(self.reveal(cc)) == fold(address) for cc in ticket.cc):
            return Role.CC
        return Role.STRANGER


# -- running the machine --------------------------------------------------------------------


def bite_machine(
    policy: SupportPolicy | None = None, *, check_people: bool = False, **options: Any
) -> type[LifecycleMachine]:
    """`lifecycle_machine(policy, **options)` without the twin desk whose worker never runs
    (none of these bugs is about the worker, and the twin doubles the cost of every run),
    without the end-of-run audit, so that these tests show the machine's own checks bite
    (`test_auditor_in_the_machine_finds_a_bug` shows the audit does too), and without the
    rules about people unless a bug is about them (fewer rules: shorter searches)."""
    return lifecycle_machine(
        policy,
        check_worker_independence=False,
        audit=False,
        check_people=check_people,
        **options,
    )


def failure_of(machine: type[LifecycleMachine]) -> tuple[BaseException, list[str]]:
    """Run `machine` with the fixed settings; the failure it raised (the shrunk one) and the
    rules of that shrunk run."""
    with pytest.raises(Exception) as caught:  # noqa: PT011 - any failure is a find
        run_state_machine_as_test(machine, settings=BITE)
    return caught.value, machine.last_run[1:]


def test_machine_passes_correct_desk_with_bite_settings() -> None:
    """The correct desk and default policy pass runs like the ones that find the seeded bugs
    (fewer of them: generation stops at the first failure, and this run never fails)."""
    run_state_machine_as_test(
        bite_machine(check_people=True), settings=settings(BITE, max_examples=100)
    )


def test_machine_finds_close_after_elapsed_hours() -> None:
    """Closing 72 elapsed hours after solving (not 3 calendar days) is found and shrunk to a
    short history around a DST change."""
    error, steps = failure_of(bite_machine(ElapsedHoursPolicy()))
    assert isinstance(error, AssertionError)
    assert "close due" in str(error)
    assert len(steps) <= SHORT, steps


def test_machine_finds_timer_firing_one_second_late() -> None:
    """A timer that fires one second after its due instant is found (at the due instant the
    model has already applied it)."""
    error, steps = failure_of(bite_machine(LateTimerPolicy(), start_times=ANY_DAY))
    assert isinstance(error, AssertionError)
    assert "the model says" in str(error) or "was due at" in str(error) or "stamped" in str(error)
    assert len(steps) <= SHORT, steps


def test_machine_finds_closed_ticket_reopened_by_reply() -> None:
    """A policy under which a customer reply reopens a CLOSED ticket, instead of creating a
    follow-up, is found."""
    error, steps = failure_of(bite_machine(ReopeningClosedPolicy(), start_times=ANY_DAY))
    assert isinstance(error, AssertionError)
    assert "reopened a CLOSED ticket" in str(error)
    assert len(steps) <= SHORT, steps


def test_machine_finds_missing_message_dedupe() -> None:
    """A desk that lets a repeated message id take effect again is found."""
    error, steps = failure_of(bite_machine(desk_factory=NoDedupeDesk, start_times=ANY_DAY))
    assert isinstance(error, Exception)
    assert sum("message_id=m1@" in step for step in steps) >= 2, steps
    assert len(steps) <= SHORT, steps


def test_machine_finds_auto_reply_that_reopens() -> None:
    """A policy under which an auto-submitted message reactivates or reopens a ticket is
    found."""
    error, steps = failure_of(bite_machine(AutoReplyReopensPolicy(), start_times=ANY_DAY))
    assert isinstance(error, AssertionError)
    assert "auto_submitted=True" in steps[-1], steps
    assert len(steps) <= SHORT, steps


def test_machine_finds_full_width_look_alike_passing_as_requester() -> None:
    """A desk that folds addresses with NFKC and casefold (so a full-width look-alike of the
    requester is taken for the requester) is found: a stranger's reply changed the ticket,
    or landed on it."""
    error, steps = failure_of(
        bite_machine(desk_factory=CompatibilityFoldingDesk, start_times=ANY_DAY, check_people=True)
    )
    assert isinstance(error, AssertionError)
    assert "stranger" in str(error), error
    assert "by=" in steps[-1], steps
    assert len(steps) <= SHORT, steps


def test_auditor_in_the_machine_finds_a_bug() -> None:
    """With its end-of-run audit, the machine also catches a policy whose close timer counts
    72 elapsed hours: the auditor checks each recorded close instant against the policy."""
    machine = lifecycle_machine(
        ElapsedHoursPolicy(), check_worker_independence=False, check_model=False, check_people=False
    )  # the default start times lie near DST changes, where 72 h and 3 days differ
    error, steps = failure_of(machine)
    assert "the auditor found" in str(error) or "was due at" in str(error)
    assert len(steps) <= SHORT, steps
