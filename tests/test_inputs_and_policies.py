"""Bad input gets clear errors; policies keep the lifecycle's invariants; policy changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from supportflow import (
    FixedClock,
    InvalidCommand,
    ManualClock,
    Severity,
    Status,
    SupportDesk,
    SupportflowError,
    SupportPolicy,
    UnknownPolicyVersion,
)
from supportflow.policy import DEFAULT_TRANSITIONS, Action, Transition
from supportflow.ticket import Ticket

from .conftest import START

# -- input ----------------------------------------------------------------------------------


def test_severity_accepts_number_name_and_digit_string() -> None:
    """Severity.parse takes a Severity, 1-4, a name in any case, or a digit string."""
    assert Severity.parse(2) is Severity.HIGH
    assert Severity.parse("critical") is Severity.CRITICAL
    assert Severity.parse(" 4 ") is Severity.LOW
    assert f"{Severity.HIGH}" == "HIGH"


@pytest.mark.parametrize("bad", [None, 5, "restore"])
def test_tags_that_are_not_a_collection_are_refused(desk: SupportDesk, bad: object) -> None:
    """`tags` must be a collection of strings; anything else raises InvalidCommand."""
    with pytest.raises(InvalidCommand, match="tags"):
        desk.submit(requester="ann@example.com", subject="x", tags=bad)  # type: ignore[arg-type]


def test_max_attempts_must_be_a_positive_int() -> None:
    """A desk refuses a max_attempts that is not a positive int."""
    with pytest.raises(InvalidCommand, match="max_attempts"):
        SupportDesk(max_attempts="3")  # type: ignore[arg-type]


def test_date_out_of_range_is_invalid_command(desk: SupportDesk) -> None:
    """A command whose timer would fall past year 9999 raises InvalidCommand, not OverflowError."""
    far = datetime(9999, 12, 28, tzinfo=UTC)
    tid = desk.submit(requester="ann@example.com", subject="x", at=far)
    with pytest.raises(InvalidCommand, match="out of range"):
        desk.request_info(tid, agent="bob", body="?", at=far)


@pytest.mark.parametrize("make", [ManualClock, FixedClock])
def test_clock_refuses_naive_start(make: type) -> None:
    """Clocks refuse naive datetimes with InvalidCommand."""
    with pytest.raises(InvalidCommand, match="naive"):
        make(datetime(2026, 3, 2, 9, 0))


def test_agent_input_error_names_the_ticket(desk: SupportDesk) -> None:
    """An input error on an existing ticket's command names that ticket."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    with pytest.raises(InvalidCommand, match=str(tid)):
        desk.assign(tid, agent="  ")


def test_closed_desk_refuses_commands_on_every_store(tmp_path: Path) -> None:
    """After close(), commands raise SupportflowError on memory and SQLite alike."""
    for url in ("memory://", f"sqlite:///{tmp_path / 't.db'}"):
        desk = SupportDesk(url)
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.close()
        with pytest.raises(SupportflowError, match="closed"):
            desk.reply(tid, agent="bob", body="x")


# -- policy invariants ----------------------------------------------------------------------


def with_row(row: Transition) -> tuple[Transition, ...]:
    kept = [r for r in DEFAULT_TRANSITIONS if (r.status, r.action) != (row.status, row.action)]
    return (*kept, row)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (Transition(status=Status.CLOSED, action=Action.REPLY, to=Status.OPEN), "CLOSED is final"),
        (Transition(status=Status.OPEN, action=Action.REPLY, to=Status.NEW), "never returns"),
        (
            Transition(status=Status.SOLVED, action=Action.AUTO_CLOSE, to=Status.OPEN),
            "always leads to CLOSED",
        ),
        (Transition(status=Status.OPEN, action=Action.AUTO_REPLY, to=Status.SOLVED), "never"),
        (
            Transition(
                status=Status.OPEN, action=Action.CUSTOMER_REPLY, to=Status.OPEN, follows_up=True
            ),
            "follow-up",
        ),
    ],
)
def test_policy_refuses_table_that_breaks_an_invariant(row: Transition, message: str) -> None:
    """A transition table that breaks a lifecycle invariant is refused when the policy is built."""
    with pytest.raises(ValueError, match=message):
        SupportPolicy(transitions=with_row(row))


def test_transition_rows_are_type_checked() -> None:
    """A row made of strings instead of Status/Action values is refused."""
    with pytest.raises(TypeError):
        Transition(status="open", action="reply", to="x")  # type: ignore[arg-type]


def test_follow_up_copies_refuses_a_bare_string() -> None:
    """`follow_up_copies="subject"` is a mistake for `{"subject"}`, and says so."""
    with pytest.raises(TypeError, match="collection of field names"):
        SupportPolicy(follow_up_copies="subject")


# -- changing the policy --------------------------------------------------------------------


def test_use_policy_applies_to_new_tickets_and_is_stored(sqlite_url: str) -> None:
    """After use_policy, new tickets run under it, and another desk on the store can read them."""
    new = SupportPolicy(name="slow", close_after_days=5)
    with SupportDesk(sqlite_url, clock=ManualClock(START)) as desk:
        old_ticket = desk.submit(requester="ann@example.com", subject="x")
        desk.use_policy(new)
        new_ticket = desk.submit(requester="ann@example.com", subject="y")
        assert desk.get(new_ticket).policy_version == new.version
        assert desk.get(old_ticket).policy_version == SupportPolicy().version
    with SupportDesk(sqlite_url, clock=ManualClock(START)) as other:
        assert other.policy_for(new_ticket).close_after_days == 5


def test_policy_attribute_is_read_only(desk: SupportDesk) -> None:
    """`desk.policy` cannot be assigned (use `use_policy`, which stores the policy)."""
    with pytest.raises(AttributeError):
        desk.policy = SupportPolicy(close_after_days=5)  # type: ignore[misc]


def test_follow_up_copies_per_current_policy(desk: SupportDesk) -> None:
    """A follow-up copies the fields the desk's current policy names, not the old one's."""
    tid = desk.submit(requester="ann@example.com", subject="Cannot restore", tags=["t"])
    desk.solve(tid, agent="bob", solution="x")
    desk.use_policy(SupportPolicy(name="lean", follow_up_copies={"requester"}))
    new = desk.customer_reply(tid, body="again", at=START + timedelta(days=4))
    view = desk.get(new)
    assert view.subject == f"Follow-up to ticket {tid}"
    assert view.tags == ()
    assert view.requester == "ann@example.com"


def test_unknown_policy_ticket_does_not_stop_other_timers(desk: SupportDesk) -> None:
    """A ticket under an unknown policy is reported, but every other due timer still fires."""
    stray_policy = SupportPolicy(name="never-adopted")
    stray = Ticket.submit(
        ticket_id=Ticket.create_id(),
        policy=stray_policy,
        at=START,
        requester="x@example.com",
        subject="x",
        description="",
        severity=Severity.LOW,
        channel="web",
        product={},
        tags=[],
    )
    stray.solve(stray_policy, agent="bob", solution="x", at=START)
    desk.application.save(stray)
    tids = [desk.submit(requester=f"c{i}@example.com", subject="x") for i in range(3)]
    for tid in tids:
        desk.solve(tid, agent="bob", solution="x")
    with pytest.raises(UnknownPolicyVersion) as caught:
        desk.run_due_timers(now=START + timedelta(days=4))
    assert caught.value.ticket_id == stray.id
    for tid in tids:
        assert [type(e).__name__ for e in desk.history(tid)][-1] == "Closed"


# -- time and follow-up chains --------------------------------------------------------------


@pytest.mark.parametrize("worker_ran", [False, True])
def test_back_dated_reply_after_due_close_is_refused_either_way(
    clock: ManualClock, worker_ran: bool
) -> None:
    """Whether a back-dated reply is accepted never depends on whether the worker ran."""
    with SupportDesk(clock=clock) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="x")
        clock.advance(days=5)
        if worker_ran:
            desk.run_due_timers()
        with pytest.raises(InvalidCommand, match="before the ticket's last event"):
            desk.customer_reply(tid, body="late", at=START + timedelta(days=1))
        assert desk.get(tid).status is Status.CLOSED
        assert [type(e).__name__ for e in desk.history(tid)][-1] == "Closed"


def test_reply_follows_chain_to_open_follow_up_of_follow_up(desk: SupportDesk) -> None:
    """Closed T -> closed F1 -> open F1a: a reply to T lands on F1a, no new ticket."""
    tid = desk.submit(requester="ann@example.com", subject="x", at=START)
    desk.solve(tid, agent="bob", solution="x", at=START)
    f1 = desk.customer_reply(tid, body="again", at=START + timedelta(days=4))
    desk.solve(f1, agent="bob", solution="x", at=START + timedelta(days=4))
    f1a = desk.customer_reply(f1, body="and again", at=START + timedelta(days=8))
    landed = desk.customer_reply(tid, body="still", at=START + timedelta(days=9))
    assert landed == f1a
    assert desk.get(tid).follow_ups == (f1,)
    assert desk.get(f1).follow_ups == (f1a,)


def test_retry_rereads_the_clock_after_losing_a_race(sqlite_url: str) -> None:
    """A command that loses a race while the clock moves on is re-decided, not refused."""
    clock = ManualClock(START)
    with SupportDesk(sqlite_url, clock=clock) as a, SupportDesk(sqlite_url, clock=clock) as b:
        tid = a.submit(requester="ann@example.com", subject="x")
        real_save = a.application.save

        def rival_wins_first(*args: object, **kwargs: object) -> object:
            a.application.save = real_save  # type: ignore[method-assign]
            clock.advance(seconds=1)
            b.reply(tid, agent="carol", body="hi")
            return real_save(*args, **kwargs)  # type: ignore[arg-type]

        a.application.save = rival_wins_first  # type: ignore[method-assign,assignment]
        a.reply(tid, agent="bob", body="hello")
        bodies = [getattr(e, "body", None) for e in a.history(tid)]
        assert bodies == [None, "hi", "hello"]


def test_fields_added_later_keep_old_policy_versions() -> None:
    """A policy dict stored before the limit fields existed reads back to the same version;
    the registered defaults of those fields equal the attrs defaults."""
    import attrs

    from supportflow.policy._policy import _ADDED_WITH_DEFAULTS

    defaults = {f.name: f.default for f in attrs.fields(SupportPolicy)}
    assert {k: defaults[k] for k in _ADDED_WITH_DEFAULTS} == _ADDED_WITH_DEFAULTS
    old = SupportPolicy(current_major_version=5).to_dict()
    assert not set(_ADDED_WITH_DEFAULTS) & set(old)
    assert SupportPolicy.from_dict(old).version == SupportPolicy(current_major_version=5).version
    assert "max_tags" in SupportPolicy(max_tags=3).to_dict()
