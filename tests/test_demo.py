"""The `supportflow demo`: a simulated desk whose summary matches what the store holds."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from supportflow import FixedClock, Severity, Status, SupportDesk, Ticket
from supportflow._demo import (
    MAX_AGENT_ROUNDS,
    AgentMove,
    CustomerMove,
    DemoSummary,
    agent_ready_at,
    choose_agent_move,
    format_summary,
    is_business_time,
    plan_customer_after_solve,
    plan_day,
    run_demo,
)
from supportflow.cli import main

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
