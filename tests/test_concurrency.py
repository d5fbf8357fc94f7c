"""Optimistic concurrency: the loser reloads and re-decides, or gets a clear conflict."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from supportflow import ConcurrencyConflict, ManualClock, Status, SupportDesk

from .conftest import START


def test_loser_reloads_and_redecides_on_fresh_state(tmp_path: Path) -> None:
    """A writer that loses the race sees the winner's event and decides again on it."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk, SupportDesk(url, clock=clock) as rival:
        tid = desk.submit(requester="ann@example.com", subject="x")
        original_load = desk._load
        calls = {"n": 0}

        def load_then_rival_writes(ticket_id: UUID) -> Any:
            ticket = original_load(ticket_id)
            calls["n"] += 1
            if calls["n"] == 1:  # the rival solves it between our load and our save
                rival.solve(tid, agent="carol", solution="fixed")
            return ticket

        desk._load = load_then_rival_writes  # type: ignore[method-assign]
        desk.reply(tid, agent="bob", body="On it")
        kinds = [type(e).__name__ for e in desk.history(tid)]
        # re-decided on SOLVED: the agent reply reopened the solved ticket
        assert kinds == ["Submitted", "Solved", "Reopened", "Responded"]
        assert calls["n"] == 2
        assert desk.get(tid).status is Status.OPEN


def test_conflict_after_bounded_retries_records_nothing(desk: SupportDesk) -> None:
    """When every attempt loses, ConcurrencyConflict names the ticket and attempts."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    before = desk.history(tid)

    def always_conflict(*aggregates: object, **kwargs: object) -> Any:
        raise IntegrityError("simulated concurrent write")

    desk.application.save = always_conflict  # type: ignore[method-assign]
    with pytest.raises(ConcurrencyConflict) as caught:
        desk.reply(tid, agent="bob", body="x")
    assert caught.value.ticket_id == tid
    assert caught.value.attempts == desk.max_attempts
    assert "retry" in str(caught.value)
    assert desk.history(tid) == before
