"""Property tests of the pure policy: calendar-day timers in many zones, the firing boundary,
the transition table and the policy fingerprint.

Expected instants are computed here with `zoneinfo` (PEP 495 folds), independently of
pendulum, which the policy uses.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pendulum
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from supportflow.policy import (
    DEFAULT_TRANSITIONS,
    DEFAULT_UPDATE_TARGETS,
    FOLLOW_UP_FIELDS,
    Action,
    Permission,
    ReplyOutcome,
    Role,
    Status,
    StrangerReplies,
    SupportPolicy,
    TimerKind,
    Transition,
)
from supportflow.testing import strategies as kit

PEOPLE_ACTIONS = frozenset(Action) - {
    Action.AUTO_SOLVE,
    Action.AUTO_CLOSE,
    Action.UPDATE_OVERDUE,
}

ZONES = (
    "America/Chicago",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/St_Johns",  # -3:30 / -2:30
    "Europe/London",
    "Asia/Kolkata",
    "Pacific/Chatham",  # +12:45 / +13:45
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "America/Santiago",  # southern hemisphere, midnight transitions
    "America/Havana",  # midnight transitions
    "America/Asuncion",
    "Europe/Berlin",
    "Europe/Dublin",  # "negative" DST in the tz database
    "Africa/Casablanca",  # Ramadan changes
    "Asia/Gaza",
    "Asia/Tehran",
    "Asia/Kathmandu",  # +5:45
    "Pacific/Auckland",
    "Pacific/Apia",
    "Australia/Adelaide",
    "Antarctica/Troll",  # two-hour DST
)

zones = st.sampled_from(ZONES)
instants_2026 = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2026, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
)
day_counts = st.integers(min_value=0, max_value=45)
naive_datetimes = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in `zone`, as aware UTC (first occurrence if ambiguous)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def policy_with(**fields: Any) -> SupportPolicy:
    """`SupportPolicy(**fields)`; the indirection keeps mypy away from attrs' inferred
    `Iterable[_T_co]` parameter type of the converted `transitions` field."""
    return SupportPolicy(**fields)


Wall = tuple[int, int, int, int, int]


def expected_wall_clock(instant: datetime, days: int, zone: str) -> datetime:
    """The naive local time the due instant must show: `days` calendar days later, same wall
    time; a wall time inside a DST gap moves forward by the size of the gap."""
    tz = ZoneInfo(zone)
    start = instant.astimezone(tz)
    target = datetime.combine(start.date() + timedelta(days=days), start.time())
    before = target.replace(tzinfo=tz, fold=0)
    after = target.replace(tzinfo=tz, fold=1)
    exists = any(
        t.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == target for t in (before, after)
    )
    if exists:
        return target
    gap = after.utcoffset() - before.utcoffset()  # type: ignore[operator]
    return target + gap


def assert_plain_utc(value: datetime) -> None:
    assert type(value) is datetime
    assert value.tzinfo is UTC


# -- calendar-day timers --------------------------------------------------------------------


@given(zone=zones, instant=instants_2026, days=day_counts)
@example(zone="America/Chicago", instant=local("America/Chicago", 2026, 3, 6, 10), days=3)
@example(zone="America/Chicago", instant=local("America/Chicago", 2026, 10, 30, 10), days=3)
@example(zone="America/Chicago", instant=local("America/Chicago", 2026, 3, 5, 2, 30), days=3)
@example(zone="America/Chicago", instant=local("America/Chicago", 2026, 10, 29, 1, 30), days=3)
@example(
    zone="Australia/Lord_Howe", instant=local("Australia/Lord_Howe", 2026, 10, 1, 2, 10), days=3
)
@example(
    zone="Australia/Lord_Howe", instant=local("Australia/Lord_Howe", 2026, 4, 2, 1, 45), days=3
)
@example(zone="America/St_Johns", instant=local("America/St_Johns", 2026, 3, 1, 2, 30), days=7)
@example(zone="America/St_Johns", instant=local("America/St_Johns", 2026, 10, 29, 1, 30), days=3)
@example(zone="Pacific/Chatham", instant=local("Pacific/Chatham", 2026, 9, 24, 3, 0), days=3)
def test_close_due_at_keeps_wall_clock_in_any_zone(zone: str, instant: datetime, days: int) -> None:
    """close_due_at is N calendar days later at the same local wall-clock time (a time inside
    a DST gap moves forward by the gap), as a plain aware UTC datetime."""
    policy = SupportPolicy(zone=zone, close_after_days=days)
    due = policy.close_due_at(instant)
    assert_plain_utc(due)
    assert due.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == expected_wall_clock(
        instant, days, zone
    )


@given(zone=zones, instant=instants_2026, days=day_counts)
@example(zone="America/Chicago", instant=local("America/Chicago", 2026, 3, 1, 2, 30), days=7)
@example(zone="America/Chicago", instant=local("America/Chicago", 2026, 10, 25, 1, 30), days=7)
@example(
    zone="Australia/Lord_Howe", instant=local("Australia/Lord_Howe", 2026, 9, 27, 2, 15), days=7
)
@example(zone="America/St_Johns", instant=local("America/St_Johns", 2026, 3, 1, 2, 0), days=7)
def test_solve_due_at_keeps_wall_clock_in_any_zone(zone: str, instant: datetime, days: int) -> None:
    """solve_due_at is N calendar days after becoming PENDING at the same local wall-clock time
    (shifted forward through a DST gap), as a plain aware UTC datetime."""
    policy = SupportPolicy(zone=zone, pending_solve_after_days=days)
    due = policy.solve_due_at(instant)
    assert_plain_utc(due)
    assert due.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == expected_wall_clock(
        instant, days, zone
    )


@pytest.mark.parametrize(
    ("zone", "solved", "closes", "elapsed"),
    [
        pytest.param(
            "America/Chicago",
            (2026, 3, 6, 10, 0),
            (2026, 3, 9, 10, 0),
            timedelta(hours=71),
            id="chicago-spring-forward",
        ),
        pytest.param(
            "America/Chicago",
            (2026, 10, 30, 10, 0),
            (2026, 11, 2, 10, 0),
            timedelta(hours=73),
            id="chicago-fall-back",
        ),
        pytest.param(
            "Australia/Lord_Howe",
            (2026, 10, 1, 10, 0),
            (2026, 10, 4, 10, 0),
            timedelta(hours=71, minutes=30),
            id="lord-howe-spring-forward",
        ),
        pytest.param(
            "Australia/Lord_Howe",
            (2026, 4, 2, 10, 0),
            (2026, 4, 5, 10, 0),
            timedelta(hours=72, minutes=30),
            id="lord-howe-fall-back",
        ),
        pytest.param(
            "America/St_Johns",
            (2026, 3, 6, 10, 0),
            (2026, 3, 9, 10, 0),
            timedelta(hours=71),
            id="st-johns-spring-forward",
        ),
        pytest.param(
            "America/St_Johns",
            (2026, 10, 30, 10, 0),
            (2026, 11, 2, 10, 0),
            timedelta(hours=73),
            id="st-johns-fall-back",
        ),
    ],
)
def test_close_due_at_elapsed_hours_across_dst_change(
    zone: str, solved: Wall, closes: Wall, elapsed: timedelta
) -> None:
    """Three calendar days across a DST change close at the same local time, which is not 72
    elapsed hours (solved Fri 2026-03-06 10:00 CST closes Mon 10:00 CDT, 71 hours)."""
    solved_at = local(zone, *solved)
    due = SupportPolicy(zone=zone).close_due_at(solved_at)
    assert due == local(zone, *closes)
    assert due - solved_at == elapsed


@pytest.mark.parametrize(
    ("zone", "pending", "solves"),
    [
        pytest.param(
            "America/Chicago", (2026, 3, 1, 2, 30), (2026, 3, 8, 3, 30), id="chicago-1h-gap"
        ),
        pytest.param(
            "Australia/Lord_Howe",
            (2026, 9, 27, 2, 10),
            (2026, 10, 4, 2, 40),
            id="lord-howe-30min-gap",
        ),
        pytest.param(
            "America/St_Johns", (2026, 3, 1, 2, 30), (2026, 3, 8, 3, 30), id="st-johns-1h-gap"
        ),
    ],
)
def test_solve_due_at_moves_forward_by_gap_when_wall_time_missing(
    zone: str, pending: Wall, solves: Wall
) -> None:
    """A wall-clock time that does not exist on the due day (spring-forward gap) moves forward
    by the size of the gap."""
    due = SupportPolicy(zone=zone).solve_due_at(local(zone, *pending))
    assert due == local(zone, *solves)


@given(zone=zones, instant=instants_2026, days=day_counts)
def test_due_at_accepts_pendulum_input_and_returns_plain_datetime(
    zone: str, instant: datetime, days: int
) -> None:
    """A pendulum DateTime in any zone gives the same due instant as the plain UTC datetime,
    and the result is a plain datetime (pendulum subclasses break the event transcoder)."""
    policy = SupportPolicy(zone=zone, close_after_days=days, pending_solve_after_days=days)
    as_pendulum = pendulum.instance(instant).in_timezone(zone)
    pairs = (
        (policy.close_due_at(as_pendulum), policy.close_due_at(instant)),
        (policy.solve_due_at(as_pendulum), policy.solve_due_at(instant)),
    )
    for from_pendulum, from_plain in pairs:
        assert_plain_utc(from_pendulum)
        assert from_pendulum == from_plain


@given(naive=naive_datetimes)
def test_due_at_refuses_naive_datetime(naive: datetime) -> None:
    """Naive datetimes are refused with a ValueError instead of being guessed as UTC."""
    policy = SupportPolicy()
    with pytest.raises(ValueError, match="naive"):
        policy.close_due_at(naive)
    with pytest.raises(ValueError, match="naive"):
        policy.solve_due_at(naive)


# -- the firing boundary --------------------------------------------------------------------

SECOND = timedelta(seconds=1)


@given(
    status=st.sampled_from([Status.PENDING, Status.SOLVED]),
    since=instants_2026,
    offset=st.integers(min_value=-3 * 86400, max_value=3 * 86400),
)
@example(status=Status.SOLVED, since=local("America/Chicago", 2026, 3, 6, 10), offset=-1)
@example(status=Status.SOLVED, since=local("America/Chicago", 2026, 3, 6, 10), offset=0)
@example(status=Status.SOLVED, since=local("America/Chicago", 2026, 3, 6, 10), offset=1)
@example(status=Status.PENDING, since=local("America/Chicago", 2026, 3, 1, 2, 30), offset=-1)
@example(status=Status.PENDING, since=local("America/Chicago", 2026, 3, 1, 2, 30), offset=0)
@example(status=Status.PENDING, since=local("America/Chicago", 2026, 3, 1, 2, 30), offset=1)
def test_timer_fires_at_due_instant_not_before(
    status: Status, since: datetime, offset: int
) -> None:
    """A timer has not fired at due - 1 s and has fired at due and at due + 1 s."""
    policy = SupportPolicy()
    if status is Status.PENDING:
        due = policy.solve_due_at(since)
        timer = policy.due_timer(status, solve_due_at=due, close_due_at=None)
        kind = TimerKind.AUTO_SOLVE
    else:
        due = policy.close_due_at(since)
        timer = policy.due_timer(status, solve_due_at=None, close_due_at=due)
        kind = TimerKind.AUTO_CLOSE
    assert timer is not None
    assert timer.kind is kind
    assert timer.due_at == due
    assert policy.is_due(timer, due + offset * SECOND) is (offset >= 0)


@given(status=st.sampled_from(Status), due=instants_2026)
def test_due_timer_armed_only_in_pending_and_solved(status: Status, due: datetime) -> None:
    """Only PENDING (auto-solve) and SOLVED (auto-close) arm a timer; other statuses arm none
    whatever due instants the ticket carries."""
    timer = SupportPolicy().due_timer(status, solve_due_at=due, close_due_at=due)
    expected = {Status.PENDING: TimerKind.AUTO_SOLVE, Status.SOLVED: TimerKind.AUTO_CLOSE}
    assert (None if timer is None else timer.kind) == expected.get(status)


# -- the transition table -------------------------------------------------------------------


KEEPS_STATUS = {
    Action.AUTO_REPLY,
    Action.UPDATE_OVERDUE,
    Action.REQUEST_ESCALATION,
    Action.REVIEW_ESCALATION,
    Action.LINK_BUG,
    Action.ANSWER_SURVEY,
}
"""Actions that record something without ever changing the status."""


def lawful(row: Transition) -> bool:
    """Whether a row keeps the invariants of every lifecycle (DESIGN §1): nothing returns to
    NEW, CLOSED is final, only a reply to CLOSED follows up, only SOLVED reopens (into an
    active status), timers lead to SOLVED / CLOSED, an auto-reply never changes the status."""
    status, action, to = row.status, row.action, row.to
    return not (
        (to is Status.NEW and status is not Status.NEW)
        or (status is Status.CLOSED and to is not Status.CLOSED)
        or (row.follows_up and (status, action) != (Status.CLOSED, Action.CUSTOMER_REPLY))
        or (row.reopens and (status is not Status.SOLVED or to is Status.SOLVED))
        or (action is Action.AUTO_SOLVE and to is not Status.SOLVED)
        or (action is Action.AUTO_CLOSE and to is not Status.CLOSED)
        or (action in KEEPS_STATUS and to is not status)
    )


LAWFUL_ROWS: dict[tuple[Status, Action], list[Transition]] = {
    (status, action): rows
    for status in Status
    for action in Action
    if (
        rows := [
            row
            for to in Status
            for reopens in (False, True)
            for records in (False, True)
            for follows_up in (False, True)
            if lawful(
                row := Transition(
                    status=status,
                    action=action,
                    to=to,
                    reopens=reopens,
                    records=records,
                    follows_up=follows_up,
                )
            )
        ]
    )
}
"""Every lawful row, by (status, action); pairs without any lawful row are left out."""


@st.composite
def transition_tables(draw: st.DrawFn) -> tuple[Transition, ...]:
    """Random lawful tables: at most one row per (status, action), in any order."""
    keys = draw(st.lists(st.sampled_from(sorted(LAWFUL_ROWS, key=str)), unique=True))
    return tuple(draw(st.sampled_from(LAWFUL_ROWS[key])) for key in keys)


tables = st.one_of(st.just(DEFAULT_TRANSITIONS), transition_tables())


@given(table=tables)
def test_is_allowed_agrees_with_transition_for_any_table(table: tuple[Transition, ...]) -> None:
    """For every status and action, is_allowed is True exactly when transition gives a row, and
    that row is the table's row for that pair; allowed_actions lists exactly those actions."""
    policy = policy_with(transitions=table)
    rows = {(row.status, row.action): row for row in table}
    for status in Status:
        for action in Action:
            row = policy.transition(status, action)
            assert row == rows.get((status, action))
            assert policy.is_allowed(status, action) is (row is not None)
        assert set(policy.allowed_actions(status)) == {
            action for action in Action if policy.is_allowed(status, action)
        }


def test_default_table_rows_are_lawful() -> None:
    """Every row of the default table keeps the lifecycle invariants of DESIGN §1."""
    unlawful = [row for row in DEFAULT_TRANSITIONS if not lawful(row)]
    assert unlawful == []


def test_closed_allows_only_follow_up_reply_and_bookkeeping() -> None:
    """In the default table CLOSED allows only a customer reply (which follows up), an
    auto-submitted reply, a bug link and the survey answer (all recorded, stays CLOSED)."""
    policy = SupportPolicy()
    allowed = {a for a in Action if policy.is_allowed(Status.CLOSED, a)}
    assert allowed == {
        Action.CUSTOMER_REPLY,
        Action.AUTO_REPLY,
        Action.LINK_BUG,
        Action.ANSWER_SURVEY,
    }
    assert all(row.to is Status.CLOSED for row in policy.transitions if row.status is Status.CLOSED)
    reply = policy.transition(Status.CLOSED, Action.CUSTOMER_REPLY)
    auto = policy.transition(Status.CLOSED, Action.AUTO_REPLY)
    assert reply is not None
    assert reply.follows_up
    assert reply.to is Status.CLOSED
    assert auto is not None
    assert auto.to is Status.CLOSED
    assert not auto.follows_up


def test_no_transition_leads_back_to_new() -> None:
    """No row of the default table leads from another status back to NEW."""
    policy = SupportPolicy()
    for status in Status:
        if status is Status.NEW:
            continue
        for action in Action:
            row = policy.transition(status, action)
            assert row is None or row.to is not Status.NEW, (status, action)


def test_auto_reply_never_changes_status() -> None:
    """In the default table an auto-submitted reply is allowed in every status and keeps it."""
    policy = SupportPolicy()
    for status in Status:
        row = policy.transition(status, Action.AUTO_REPLY)
        assert row is not None
        assert row.to is status
        assert not row.reopens
        assert not row.follows_up


DESIGN_REPLY_OUTCOMES = {
    Status.NEW: ReplyOutcome.RECORD,
    Status.OPEN: ReplyOutcome.RECORD,
    Status.PENDING: ReplyOutcome.REACTIVATE,
    Status.SOLVED: ReplyOutcome.REOPEN,
    Status.CLOSED: ReplyOutcome.FOLLOW_UP,
}


@given(status=st.sampled_from(Status), auto_submitted=st.booleans())
def test_reply_outcome_matches_design_in_default_policy(
    status: Status, auto_submitted: bool
) -> None:
    """A customer reply keeps NEW/OPEN, reactivates PENDING, reopens SOLVED and follows up on
    CLOSED; an auto-submitted one is only recorded, in every status."""
    outcome = SupportPolicy().reply_outcome(status, auto_submitted=auto_submitted)
    if auto_submitted:
        assert outcome is ReplyOutcome.IGNORE_AUTO_SUBMITTED
    else:
        assert outcome is DESIGN_REPLY_OUTCOMES[status]


@given(table=tables, status=st.sampled_from(Status))
def test_reply_outcome_agrees_with_table_for_any_table(
    table: tuple[Transition, ...], status: Status
) -> None:
    """reply_outcome follows the CUSTOMER_REPLY row: follow-up only when the row follows up,
    reopen only when it reopens, reactivate only when it changes the status, else record."""
    policy = policy_with(transitions=table)
    row = policy.transition(status, Action.CUSTOMER_REPLY)
    outcome = policy.reply_outcome(status)
    if row is None:
        assert outcome is ReplyOutcome.RECORD
        return
    assert (outcome is ReplyOutcome.FOLLOW_UP) is row.follows_up
    if outcome is ReplyOutcome.REOPEN:
        assert row.reopens
    if outcome is ReplyOutcome.REACTIVATE:
        assert row.to is not status
    if outcome is ReplyOutcome.RECORD:
        assert row.to is status
        assert not row.reopens


# -- the policy fingerprint -----------------------------------------------------------------

names = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12)
policies = kit.policies(
    zones=ZONES,
    close_after_days=st.integers(min_value=0, max_value=60),
    pending_solve_after_days=st.integers(min_value=0, max_value=60),
    transitions=st.one_of(tables, kit.transition_tables()),
    names=names,
)


@given(policy=policies)
def test_version_is_stable_across_dict_round_trip(policy: SupportPolicy) -> None:
    """to_dict -> JSON -> from_dict gives an equal policy with the same version."""
    restored = SupportPolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert restored == policy
    assert restored.version == policy.version


@st.composite
def changed_policies(draw: st.DrawFn) -> tuple[SupportPolicy, SupportPolicy]:
    """A policy and a copy with exactly one field changed."""
    policy = draw(policies)
    field = draw(st.sampled_from([f.name for f in attrs.fields(SupportPolicy)]))
    value: object
    if field == "name":
        value = policy.name + draw(names)
    elif field == "zone":
        value = draw(st.sampled_from([z for z in ZONES if z != policy.zone]))
    elif field in {"close_after_days", "pending_solve_after_days"}:
        value = getattr(policy, field) + draw(st.integers(min_value=1, max_value=10))
    elif field == "follow_up_copies":
        flipped = draw(st.sampled_from(sorted(FOLLOW_UP_FIELDS)))
        value = policy.follow_up_copies ^ {flipped}
    elif field == "calendar":
        value = attrs.evolve(
            policy.calendar, holiday_country=None if policy.calendar.holiday_country else "US"
        )
    elif field == "update_targets":
        value = () if policy.update_targets else DEFAULT_UPDATE_TARGETS
    elif field == "channel_hours":
        hours = dict(policy.channel_hours)
        hours["phone"] = "always" if hours.get("phone") == "business" else "business"
        value = hours
    elif field == "current_major_version":
        value = 1 + (policy.current_major_version or 0) + draw(st.integers(0, 5))
    elif field.startswith("max_"):
        value = getattr(policy, field) + draw(st.integers(min_value=1, max_value=100))
    elif field == "supported_major_versions":
        value = policy.supported_major_versions + draw(st.integers(min_value=1, max_value=3))
    elif field == "stranger_replies":
        value = next(s for s in StrangerReplies if s is not policy.stranger_replies)
    elif field == "permissions":
        grants = {p.action: p for p in policy.permissions}
        action = draw(st.sampled_from(sorted(PEOPLE_ACTIONS, key=lambda a: a.value)))
        roles = grants[action].roles if action in grants else frozenset()
        role = draw(st.sampled_from([Role.AGENT, Role.MANAGER, Role.REQUESTER, Role.CC]))
        grants[action] = Permission(action=action, roles=roles ^ {role})
        value = tuple(grants.values())
    else:
        rows = list(policy.transitions)
        taken = {(r.status, r.action): i for i, r in enumerate(rows)}
        key = draw(st.sampled_from(sorted(LAWFUL_ROWS, key=str)))
        others = [row for row in LAWFUL_ROWS[key] if key not in taken or row != rows[taken[key]]]
        if key in taken and (not others or draw(st.booleans())):
            del rows[taken[key]]
        elif key in taken:
            rows[taken[key]] = draw(st.sampled_from(others))
        else:
            rows.append(draw(st.sampled_from(others)))
        value = tuple(rows)
    change: dict[str, Any] = {field: value}
    return policy, attrs.evolve(policy, **change)


@given(pair=changed_policies())
def test_version_differs_when_any_field_differs(
    pair: tuple[SupportPolicy, SupportPolicy],
) -> None:
    """Changing any one field of a policy changes its version."""
    policy, changed = pair
    assert changed != policy
    assert changed.version != policy.version
