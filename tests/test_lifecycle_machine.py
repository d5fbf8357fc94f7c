"""The lifecycle state machine of `supportflow.testing`, run on our own desks: every command,
the passage of time, the timer worker and restarts, checked at every step against the
reference model (`supportflow.testing.model`) and the desk's own history.

The active hypothesis profile (see conftest.py) sets the examples and steps per run.
"""

from __future__ import annotations

from hypothesis import settings

from supportflow import SupportPolicy
from supportflow.testing import lifecycle_machine

_PROFILE = settings()  # the active profile (see conftest.py)


DefaultPolicyOnMemory = lifecycle_machine(name="DefaultPolicyOnMemory")
"""The default policy (America/Chicago, 3 and 7 calendar days) on a memory desk; the
machine audits the desk at every step."""

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
