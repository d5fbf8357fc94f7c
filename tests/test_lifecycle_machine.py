"""The lifecycle state machine of `supportflow.testing`, run on our own desks: every command,
the passage of time, the timer worker and restarts, checked at every step against the
reference model (`supportflow.testing.model`) and the desk's own history.

The active hypothesis profile (see conftest.py) sets the examples and steps per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from hypothesis import settings

from supportflow import SupportDesk, SupportPolicy
from supportflow.audit import Auditor
from supportflow.testing import lifecycle_machine

_PROFILE = settings()  # the active profile (see conftest.py)


def audits_clean(desk: SupportDesk, ticket_ids: Sequence[UUID]) -> None:
    """The auditor finds no violation in what the machine produced. Timers the machine let
    pass without running the worker are not written yet by design, so overdue timers are
    left to the machine's own checks (`timer-overdue` is the only rule not asserted)."""
    report = Auditor(desk).audit()
    broken = [v for v in report.violations if v.rule != "timer-overdue"]
    assert not broken, broken


DefaultPolicyOnMemory = lifecycle_machine(
    name="DefaultPolicyOnMemory", extra_invariants=[audits_clean]
)
"""The default policy (America/Chicago, 3 and 7 calendar days) on a memory desk, audited at
every step."""

DefaultPolicyOnSqlite = lifecycle_machine(store="sqlite", name="DefaultPolicyOnSqlite")
"""The default policy on a SQLite file, with restarts of the desk from its store."""

LordHoweZeroDayPolicy = lifecycle_machine(
    SupportPolicy(zone="Australia/Lord_Howe", close_after_days=0, pending_solve_after_days=1),
    name="LordHoweZeroDayPolicy",
)
"""A 30-minute-DST zone, a close timer due at the instant of solving, a one-day auto-solve."""

TestDefaultPolicyOnMemory = DefaultPolicyOnMemory.TestCase
TestDefaultPolicyOnMemory.settings = settings(
    _PROFILE, max_examples=max(120, _PROFILE.max_examples)
)
TestDefaultPolicyOnSqlite = DefaultPolicyOnSqlite.TestCase
TestDefaultPolicyOnSqlite.settings = settings(
    _PROFILE, max_examples=max(10, _PROFILE.max_examples // 3)
)
TestLordHoweZeroDayPolicy = LordHoweZeroDayPolicy.TestCase
TestLordHoweZeroDayPolicy.settings = settings(
    _PROFILE, max_examples=max(10, _PROFILE.max_examples // 2)
)
