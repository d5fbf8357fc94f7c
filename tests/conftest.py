"""Shared fixtures and hypothesis profiles.

`make test` uses the fast ``default`` profile; with ``CI=true`` (as in ``.ci/run``) the
thorough ``ci`` profile runs more examples and longer state-machine runs.
``HYPOTHESIS_PROFILE`` overrides both.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from supportflow import ManualClock, SupportDesk

from ._pg import pg_server, pg_url  # noqa: F401 - fixtures: a throwaway PostgreSQL cluster

# stateful_step_count: the most rules per run of a state machine (tests/test_lifecycle_machine.py)
settings.register_profile(
    "default",
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=300,
    stateful_step_count=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=10, stateful_step_count=20, deadline=None)
_profile = os.environ.get("HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else "default"
)
settings.load_profile(_profile)

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
"""Monday 2026-03-02 09:00 in Chicago (CST)."""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def desk(clock: ManualClock) -> Iterator[SupportDesk]:
    with SupportDesk(clock=clock) as d:
        yield d


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tickets.db'}"
