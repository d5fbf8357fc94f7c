"""The pieces of `supportflow.testing`: strategies, histories, the reference model and the
machine's options."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from supportflow import ManualClock, SupportDesk, SupportPolicy
from supportflow.policy import (
    Action,
    Permission,
    Role,
    Status,
    StrangerReplies,
    Transition,
    normalize_address,
)
from supportflow.testing import (
    Step,
    Submit,
    addresses,
    aware_datetimes,
    dst_changes,
    histories,
    lifecycle_machine,
    look_alikes,
    permission_tables,
    play,
    policies,
    same_address,
    transition_tables,
)
from supportflow.testing import model as m

from .test_policy_properties import LAWFUL_ROWS

QUICK = settings(
    max_examples=10,
    stateful_step_count=10,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def test_importing_supportflow_does_not_import_hypothesis() -> None:
    """`import supportflow` (and its policy and desk) leaves hypothesis unimported; only
    `supportflow.testing` needs it."""
    code = (
        "import sys, supportflow, supportflow.desk, supportflow.policy; "
        "print('hypothesis' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_dst_changes_are_chicago_2026_instants() -> None:
    """Chicago changes its offset at 2026-03-08 02:00 CST and 2026-11-01 02:00 CDT."""
    changes = dst_changes("America/Chicago", 2026, 2026)
    assert changes == (
        datetime(2026, 3, 8, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 7, 0, tzinfo=UTC),
    )


def test_dst_changes_none_in_zone_without_dst() -> None:
    """A zone without DST (Asia/Kolkata) has no offset changes."""
    assert dst_changes("Asia/Kolkata") == ()


@given(value=aware_datetimes(zones=("Australia/Lord_Howe", "America/St_Johns")))
def test_aware_datetimes_are_in_requested_zones(value: datetime) -> None:
    """Generated instants are aware, in one of the requested zones, in whole seconds."""
    assert isinstance(value.tzinfo, ZoneInfo)
    assert str(value.tzinfo) in {"Australia/Lord_Howe", "America/St_Johns"}
    assert value.utcoffset() is not None
    assert value.microsecond == 0


def test_aware_datetimes_refuses_no_zones() -> None:
    """An empty zone list is refused."""
    with pytest.raises(ValueError, match="at least one"):
        aware_datetimes(zones=())


@given(policy=policies())
def test_policies_keep_default_table_unless_asked(policy: SupportPolicy) -> None:
    """`policies()` varies zone, days and copies but keeps the default transition table (the
    one the reference model knows)."""
    assert policy.transitions == SupportPolicy().transitions
    assert 0 <= policy.close_after_days <= 10
    assert 0 <= policy.pending_solve_after_days <= 10


@given(table=transition_tables())
def test_transition_tables_rows_are_lawful(table: tuple[Transition, ...]) -> None:
    """Every generated row is lawful by the independent oracle of the policy tests, at most
    one per (status, action), and a policy accepts the table."""
    keys = [(row.status, row.action) for row in table]
    assert len(keys) == len(set(keys))
    for row in table:
        assert row in LAWFUL_ROWS[(row.status, row.action)]
    assert SupportPolicy(transitions=table).transitions == table


@given(history=histories(max_steps=8))
def test_histories_play_on_any_desk(history: list[Step]) -> None:
    """A generated history starts with a submit and plays on a fresh desk: one outcome per
    step, and the first one is the submitted ticket."""
    assert history[0].command == Submit(key=0)
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    with SupportDesk(clock=clock) as desk:
        outcomes = play(history, clock, desk)
        assert len(outcomes) == len(history)
        (first,) = outcomes[0]
        assert first == ("submitted", next(iter(desk.ticket_ids())))


def test_play_refuses_worker_flags_of_wrong_length() -> None:
    """`run_worker` needs one flag per desk."""
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    with SupportDesk(clock=clock) as desk, pytest.raises(ValueError, match="one flag per desk"):
        play([], clock, desk, run_worker=(True, False))


@given(data=st.data(), address=addresses())
def test_same_address_spellings_normalise_to_the_address(data: st.DataObject, address: str) -> None:
    """Every other spelling of an address (case, decomposed letters) is the same address for
    the desk's normalisation and for the model's."""
    spelled = data.draw(same_address(address))
    assert normalize_address(spelled) == normalize_address(address)
    assert m.normal_address(spelled) == m.normal_address(address)


@given(data=st.data(), address=addresses())
def test_look_alikes_are_other_addresses(data: st.DataObject, address: str) -> None:
    """A look-alike (plus-addressing, Cyrillic or full-width letters, a digit in the domain)
    is a valid address that is not `address` after normalisation."""
    other = data.draw(look_alikes(address))
    assert normalize_address(other) != normalize_address(address)


def test_look_alikes_include_full_width_and_cyrillic_letters() -> None:
    """Among the look-alikes of ann@example.com are a full-width and a Cyrillic spelling."""
    seen: set[str] = set()

    @settings(max_examples=200, database=None, derandomize=True)
    @given(look_alikes("ann@example.com"))
    def collect(other: str) -> None:
        seen.add(other)

    collect()
    assert any("\uff41" in other or "\uff4e" in other for other in seen), seen
    assert any(any("\u0400" <= c <= "\u04ff" for c in other) for other in seen), seen


@given(table=permission_tables())
def test_permission_tables_keep_the_invariants(table: tuple[Permission, ...]) -> None:
    """Generated tables are accepted by a policy, let only the system fire timers and grant
    nothing to strangers."""
    policy = SupportPolicy(permissions=table)
    for timer in (Action.AUTO_SOLVE, Action.AUTO_CLOSE, Action.UPDATE_OVERDUE):
        assert policy.roles_for(timer) == {Role.SYSTEM}
    assert not any(policy.may(Role.STRANGER, action) for action in Action)


@given(policy=policies())
def test_policies_make_stranger_replies_either_way(policy: SupportPolicy) -> None:
    """`policies()` keeps the default permission table and draws the stranger rule."""
    assert policy.permissions == SupportPolicy().permissions
    assert policy.stranger_replies in set(StrangerReplies)


# -- the reference model --------------------------------------------------------------------


def test_model_closes_three_calendar_days_later_across_dst() -> None:
    """Solved Fri 2026-03-06 10:00 CST closes Mon 2026-03-09 10:00 CDT: 71 elapsed hours."""
    solved = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    closes = m.calendar_days_later(solved, 3, "America/Chicago")
    assert closes - solved == timedelta(hours=71)


def test_model_fires_timer_at_due_instant_not_before() -> None:
    """A solved ticket is SOLVED at due - 1 s and CLOSED at due, stamped with the due."""
    model = m.Model()
    tid = uuid4()
    solved = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    model.submit(tid)
    assert model.agent(tid, "solve", solved)
    due = m.calendar_days_later(solved, 3, "America/Chicago")
    assert model.at(tid, due - timedelta(seconds=1)).status == m.SOLVED
    assert model.at(tid, due).status == m.CLOSED
    assert model.tickets[tid].fired == [("Closed", due)]


def test_model_reply_to_closed_lands_on_open_follow_up() -> None:
    """A reply to a CLOSED ticket starts a follow-up; the next one lands on that follow-up
    while it is open; an auto-submitted one stays on the closed ticket."""
    model = m.Model()
    tid, follow_up = uuid4(), uuid4()
    now = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
    model.submit(tid)
    model.agent(tid, "solve", now)
    later = now + timedelta(days=4)
    assert model.customer_reply(tid, later, auto_submitted=True) == tid
    assert model.customer_reply(tid, later, auto_submitted=False) == m.NEW_FOLLOW_UP
    model.follow_up_created(tid, follow_up)
    assert model.customer_reply(tid, later, auto_submitted=False) == follow_up
    assert model.agent(tid, "reply", later) is False


def test_model_default_table_is_the_policy_default() -> None:
    """The model's hand-copied default permission table equals the default policy's."""
    assert m.Permissions.of(SupportPolicy()).table == m.DEFAULT_TABLE


def test_model_roles_follow_requester_cc_and_erasure() -> None:
    """The model knows the requester (any case), CC'd addresses and strangers (a full-width
    look-alike); after the requester is forgotten both are strangers."""
    model = m.Model()
    tid = uuid4()
    model.submit(tid, requester="ann@example.com", cc=["cy@example.com"])
    assert model.role(tid, "ANN@example.com") == m.REQUESTER
    assert model.role(tid, "cy@example.com") == m.CC
    assert model.role(tid, "\uff41nn@example.com") == m.STRANGER
    assert model.forget("Ann@Example.com") == [tid]
    assert model.role(tid, "ann@example.com") == m.STRANGER
    assert model.role(tid, "cy@example.com") == m.STRANGER


def test_model_staff_roles_follow_the_roster() -> None:
    """With a roster, a name acts only in its listed roles; without one, as it is named."""
    rostered = m.Permissions.of(SupportPolicy(), {"bob": "agent", "carol": ["manager"]})
    assert rostered.staff_role("Bob", m.AGENT, "solve") == m.AGENT
    assert rostered.staff_role("carol", m.AGENT, "solve") is None
    assert rostered.staff_role("mallory", m.AGENT, "assign") is None
    assert m.Permissions.of(SupportPolicy()).staff_role("mallory", m.AGENT, "solve") == m.AGENT


def test_model_stranger_reply_follows_the_policy() -> None:
    """A stranger's reply is a new ticket by default, refused under `refuse`, and an
    auto-submitted one is always refused."""
    tid = uuid4()
    default = m.Model()
    default.submit(tid)
    assert default.stranger_reply(tid, "eve@example.com", auto_submitted=False) == m.NEW_TICKET
    assert default.stranger_reply(tid, "eve@example.com", auto_submitted=True) == m.REFUSED
    refusing = m.Model(permissions=m.Permissions.of(SupportPolicy(stranger_replies="refuse")))
    refusing.submit(tid)
    assert refusing.stranger_reply(tid, "eve@example.com", auto_submitted=False) == m.REFUSED


def test_model_rules_read_policy_numbers() -> None:
    """`Rules.of` takes a policy's zone and day counts."""
    policy = SupportPolicy(zone="Europe/Berlin", close_after_days=5, pending_solve_after_days=2)
    assert m.Rules.of(policy) == m.Rules(
        zone="Europe/Berlin", close_after_days=5, pending_solve_after_days=2
    )


def test_machine_runs_random_permission_table_without_roster() -> None:
    """A policy with another permission table, refusing strangers, on a desk without a staff
    roster: every command is checked against the model's permission decision."""
    kept = [
        row for row in SupportPolicy().permissions if row.action is not Action.REQUEST_ESCALATION
    ]
    table = (*kept, Permission(action=Action.REQUEST_ESCALATION, roles={Role.REQUESTER}))
    policy = SupportPolicy(permissions=table, stranger_replies="refuse")
    machine = lifecycle_machine(policy, staff=None)
    run_state_machine_as_test(machine, settings=settings(QUICK, max_examples=30))
    assert machine.last_run[0].startswith("start at")


# -- the machine's options ------------------------------------------------------------------


def test_machine_refuses_model_check_of_custom_table() -> None:
    """Asking for the model on a policy with another transition table is refused (the model
    knows the default table only)."""
    table = tuple(
        row
        for row in SupportPolicy().transitions
        if (row.status, row.action) != (Status.NEW, Action.SOLVE)
    )
    with pytest.raises(ValueError, match="default transition table"):
        lifecycle_machine(SupportPolicy(transitions=table), check_model=True)


def test_machine_runs_custom_table_without_model() -> None:
    """A policy with a custom table runs with the model-free invariants only."""
    table = tuple(
        row
        for row in SupportPolicy().transitions
        if (row.status, row.action) != (Status.NEW, Action.SOLVE)
    )
    machine = lifecycle_machine(SupportPolicy(transitions=table))
    run_state_machine_as_test(machine, settings=QUICK)
    assert machine.last_run[0].startswith("start at")


def test_machine_extra_invariants_see_every_ticket() -> None:
    """Extra invariants (the auditor hook) run after every step with the desk and all ticket
    ids."""
    seen: list[tuple[UUID, ...]] = []

    def record(desk: SupportDesk, tids: Sequence[UUID]) -> None:
        assert set(tids) == set(desk.ticket_ids())
        seen.append(tuple(tids))

    run_state_machine_as_test(lifecycle_machine(extra_invariants=[record]), settings=QUICK)
    assert any(seen)


def test_machine_fails_when_extra_invariant_fails() -> None:
    """A violation an extra invariant reports fails the run."""

    def refuse(desk: SupportDesk, tids: Sequence[UUID]) -> None:
        assert not tids, "an auditor violation"

    with pytest.raises(AssertionError, match="an auditor violation"):
        run_state_machine_as_test(
            lifecycle_machine(extra_invariants=[refuse]), settings=settings(QUICK, max_examples=50)
        )
