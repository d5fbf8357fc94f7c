"""Actors and permissions: the permission table, row by row, and the stranger-reply rule.

Every row of `DEFAULT_PERMISSIONS` is tried by every role: the roles it lists succeed, every
other role is refused with `PermissionDenied` and nothing is recorded on the ticket.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportflow import ManualClock, Severity, SupportDesk, SupportPolicy
from supportflow.errors import InvalidCommand, PermissionDenied, SupportflowError
from supportflow.policy import (
    DEFAULT_PERMISSIONS,
    Action,
    Permission,
    Role,
    Status,
    StrangerReplies,
    normalize_address,
)

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Mon 09:00 in Chicago
REQUESTER = "ann@example.com"
CC = "cy@example.com"
CC2 = "dee@example.com"
STAFF = {"alice": "agent", "mona": "manager"}
ACTOR = {
    Role.REQUESTER: REQUESTER,
    Role.CC: CC,
    Role.AGENT: "alice",
    Role.MANAGER: "mona",
    Role.STRANGER: "zed@example.com",
}
PEOPLE_ROLES = [Role.REQUESTER, Role.CC, Role.AGENT, Role.MANAGER, Role.STRANGER]
NO_SLA = SupportPolicy(update_targets=())


def _desk(policy: SupportPolicy = NO_SLA) -> tuple[SupportDesk, ManualClock]:
    clock = ManualClock(START)
    return SupportDesk(clock=clock, policy=policy, staff=STAFF), clock


def _ticket(desk: SupportDesk) -> UUID:
    return desk.submit(requester=REQUESTER, subject="Cannot restore", cc=[CC, CC2])


def _closed(desk: SupportDesk, clock: ManualClock) -> UUID:
    tid = _ticket(desk)
    desk.solve(tid, agent="alice", solution="done")
    clock.advance(days=4)
    desk.run_due_timers()
    return tid


def _escalated(desk: SupportDesk, clock: ManualClock) -> UUID:
    tid = _ticket(desk)
    desk.request_escalation(tid, reason="production down")
    return tid


Perform = Callable[[SupportDesk, UUID, str], object]

# One way to attempt each people action, given the actor's name or address.
ATTEMPTS: dict[Action, tuple[Callable[[SupportDesk, ManualClock], UUID], Perform]] = {
    Action.ASSIGN: (lambda d, c: _ticket(d), lambda d, t, a: d.assign(t, agent=a)),
    Action.REPLY: (lambda d, c: _ticket(d), lambda d, t, a: d.reply(t, agent=a, body="hi")),
    Action.REQUEST_INFO: (
        lambda d, c: _ticket(d),
        lambda d, t, a: d.request_info(t, agent=a, body="?"),
    ),
    Action.SOLVE: (lambda d, c: _ticket(d), lambda d, t, a: d.solve(t, agent=a, solution="x")),
    Action.CHANGE_SEVERITY: (
        lambda d, c: _ticket(d),
        lambda d, t, a: d.change_severity(t, Severity.HIGH, by=a, reason="worse"),
    ),
    Action.LINK_BUG: (
        lambda d, c: _ticket(d),
        lambda d, t, a: d.link_bug(t, reference="BUG-1", by=a),
    ),
    Action.REVIEW_ESCALATION: (
        _escalated,
        lambda d, t, a: d.review_escalation(t, manager=a, accept=False, note="no"),
    ),
    Action.REQUEST_ESCALATION: (
        lambda d, c: _ticket(d),
        lambda d, t, a: d.request_escalation(t, reason="urgent", by=a),
    ),
    Action.ANSWER_SURVEY: (_closed, lambda d, t, a: d.record_survey(t, rating=5, by=a)),
    Action.ADD_CC: (
        lambda d, c: _ticket(d),
        lambda d, t, a: d.add_cc(t, "new@example.com", by=_by(a), agent=_agent(a)),
    ),
    Action.REMOVE_CC: (
        lambda d, c: _ticket(d),
        lambda d, t, a: d.remove_cc(t, CC2, by=_by(a), agent=_agent(a)),
    ),
}


def _by(actor: str) -> str | None:
    """CC changes name a customer with `by=` ..."""
    return actor if "@" in actor else None


def _agent(actor: str) -> str | None:
    """... and staff with `agent=`."""
    return None if "@" in actor else actor


CASES = [
    (row.action, role, role in row.roles)
    for row in DEFAULT_PERMISSIONS
    if row.action in ATTEMPTS
    for role in PEOPLE_ROLES
]


def test_every_people_action_of_the_table_is_tried() -> None:
    """The cases cover every row of the default table except the timers and replies (their
    own tests below)."""
    covered = {action for action, _, _ in CASES}
    rows = {row.action for row in DEFAULT_PERMISSIONS}
    timers = {Action.AUTO_SOLVE, Action.AUTO_CLOSE, Action.UPDATE_OVERDUE}
    assert rows - covered == timers | {Action.CUSTOMER_REPLY, Action.AUTO_REPLY}


@pytest.mark.parametrize(
    ("action", "role", "allowed"),
    CASES,
    ids=[f"{a.value}-{r.value}-{'ok' if ok else 'refused'}" for a, r, ok in CASES],
)
def test_permission_row_allows_its_roles_and_refuses_the_others(
    action: Action, role: Role, allowed: bool
) -> None:
    """A role the row lists performs the action; any other is refused, recording nothing."""
    desk, clock = _desk()
    setup, perform = ATTEMPTS[action]
    tid = setup(desk, clock)
    before = desk.history(tid)
    if allowed:
        perform(desk, tid, ACTOR[role])
        assert len(desk.history(tid)) > len(before)
    else:
        with pytest.raises(PermissionDenied) as caught:
            perform(desk, tid, ACTOR[role])
        assert caught.value.action is action
        assert desk.history(tid) == before


@pytest.mark.parametrize("role", [Role.REQUESTER, Role.CC])
def test_requester_and_cc_replies_land_on_the_ticket(role: Role) -> None:
    """The requester and a CC'd address reply as the customer: PENDING becomes OPEN."""
    desk, _ = _desk()
    tid = _ticket(desk)
    desk.request_info(tid, agent="alice", body="Which version?")
    assert desk.customer_reply(tid, body="4.2", by=ACTOR[role]) == tid
    assert desk.get(tid).status is Status.OPEN


@pytest.mark.parametrize("role", [Role.AGENT, Role.MANAGER, Role.STRANGER])
def test_reply_from_anyone_else_never_lands_and_becomes_a_new_ticket(role: Role) -> None:
    """Under the default policy a reply from a non-customer becomes a ticket of its own; the
    ticket it answered is unchanged."""
    desk, _ = _desk()
    tid = _ticket(desk)
    desk.request_info(tid, agent="alice", body="Which version?")
    before = desk.history(tid)
    landed = desk.customer_reply(tid, body="let me in", by=f"{ACTOR[role]}@elsewhere.example")
    assert landed != tid
    assert desk.history(tid) == before
    assert desk.get(tid).status is Status.PENDING
    assert desk.get(landed).requester == f"{ACTOR[role]}@elsewhere.example"


def test_stranger_reply_ticket_does_not_reveal_the_answered_ticket() -> None:
    """The stranger's new ticket copies nothing from the ticket they answered."""
    desk, _ = _desk()
    tid = desk.submit(requester=REQUESTER, subject="Secret project Falcon", tags=["vip"])
    landed = desk.customer_reply(tid, body="status?", by="zed@example.com")
    view = desk.get(landed)
    assert "Falcon" not in view.subject
    assert view.tags == ()
    assert view.follow_up_of is None
    assert view.description == "status?"


def test_stranger_reply_is_recorded_for_audit() -> None:
    """`stranger_messages` names the answered ticket, the sender and the new ticket."""
    desk, _ = _desk()
    tid = _ticket(desk)
    landed = desk.customer_reply(tid, body="hi", by="zed@example.com", message_id="<z1@x>")
    (record,) = desk.stranger_messages(tid)
    assert (record.ticket_id, record.sender, record.outcome) == (
        tid,
        "zed@example.com",
        "new_ticket",
    )
    assert record.new_ticket_id == landed
    assert desk.stranger_messages(landed) == []


def test_redelivered_stranger_reply_takes_effect_once() -> None:
    """The same stranger message delivered twice makes one new ticket and one record."""
    desk, _ = _desk()
    tid = _ticket(desk)
    first = desk.customer_reply(tid, body="hi", by="zed@example.com", message_id="<z1@x>")
    again = desk.customer_reply(tid, body="hi", by="zed@example.com", message_id="<z1@x>")
    assert first == again
    assert len(desk.stranger_messages()) == 1


def test_refuse_policy_refuses_stranger_replies_and_records_them() -> None:
    """With `stranger_replies="refuse"` the reply raises PermissionDenied, changes nothing,
    and is recorded as refused."""
    desk, _ = _desk(SupportPolicy(update_targets=(), stranger_replies=StrangerReplies.REFUSE))
    tid = _ticket(desk)
    before = desk.history(tid)
    tickets = list(desk.ticket_ids())
    with pytest.raises(PermissionDenied, match="stranger"):
        desk.customer_reply(tid, body="let me in", by="zed@example.com")
    assert desk.history(tid) == before
    assert list(desk.ticket_ids()) == tickets
    (record,) = desk.stranger_messages()
    assert (record.outcome, record.new_ticket_id) == ("refused", None)


def test_auto_submitted_stranger_message_is_dropped_and_recorded() -> None:
    """An out-of-office from a stranger opens no ticket (no mail loops): refused, recorded."""
    desk, _ = _desk()
    tid = _ticket(desk)
    with pytest.raises(PermissionDenied):
        desk.customer_reply(tid, body="away", by="zed@example.com", auto_submitted=True)
    assert len(list(desk.ticket_ids())) == 1
    assert [r.outcome for r in desk.stranger_messages()] == ["dropped"]


def test_reply_to_closed_ticket_from_cc_creates_the_follow_up() -> None:
    """A CC'd address replying to a CLOSED ticket gets the usual follow-up ticket."""
    desk, clock = _desk()
    tid = _closed(desk, clock)
    follow_up = desk.customer_reply(tid, body="again", by=CC)
    assert desk.get(follow_up).follow_up_of == tid
    assert desk.get(follow_up).requester == REQUESTER


# -- the Ticket Trick: replying as somebody else --------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [
        "ANN@EXAMPLE.COM",
        " Ann@Example.Com ",
    ],
)
def test_requester_address_in_another_case_is_the_requester(sender: str) -> None:
    """Addresses compare case-insensitively: the reply lands on the ticket."""
    desk, _ = _desk()
    tid = _ticket(desk)
    assert desk.customer_reply(tid, body="me", by=sender) == tid


def test_composed_and_decomposed_unicode_are_one_address() -> None:
    """NFC normalisation: `josé` typed with a combining accent is the same requester."""
    desk, _ = _desk()
    composed = "jos\u00e9@example.com"
    tid = desk.submit(requester=composed, subject="x")
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert desk.customer_reply(tid, body="me", by=decomposed) == tid


@pytest.mark.parametrize(
    "sender",
    [
        "ann+support@example.com",  # plus-addressing
        "\u0430nn@example.com",  # Cyrillic a
        "\uff41nn@example.com",  # full-width a (NFKC would fold it)
        "ann@examp1e.com",  # digit one for l
        "ann@example.com.evil.example",
        "ann@xn--exmple-cua.com",  # punycode look-alike domain
    ],
)
def test_look_alike_address_is_a_stranger(sender: str) -> None:
    """Plus-addressing and look-alike characters do not pass for the requester: the reply
    becomes a new ticket and the requester's ticket is unchanged."""
    desk, _ = _desk()
    tid = _ticket(desk)
    desk.request_info(tid, agent="alice", body="?")
    before = desk.history(tid)
    assert desk.customer_reply(tid, body="me", by=sender) != tid
    assert desk.history(tid) == before


@pytest.mark.parametrize(
    "sender", ["ann\u200b@example.com", "ann@example.com\u202e", "ann @example.com", "@example.com"]
)
def test_invisible_characters_or_blanks_in_an_address_are_refused(sender: str) -> None:
    """Zero-width, bidi controls, blanks inside and an empty local part are bad input."""
    desk, _ = _desk()
    tid = _ticket(desk)
    with pytest.raises(InvalidCommand):
        desk.customer_reply(tid, body="me", by=sender)


def test_removed_cc_may_no_longer_reply_as_the_customer() -> None:
    """After the requester takes an address off the CC list, its reply is a stranger's."""
    desk, _ = _desk()
    tid = _ticket(desk)
    desk.remove_cc(tid, CC)
    assert CC not in desk.get(tid).cc
    assert desk.customer_reply(tid, body="still me", by=CC) != tid


def test_cc_added_by_an_agent_may_answer_the_survey() -> None:
    """An address an agent added to the CC list may answer the survey."""
    desk, clock = _desk()
    tid = desk.submit(requester=REQUESTER, subject="x")
    desk.add_cc(tid, "boss@example.com", agent="alice")
    desk.solve(tid, agent="alice", solution="done")
    clock.advance(days=4)
    desk.record_survey(tid, rating=2, by="Boss@Example.com")
    assert desk.get(tid).survey_rating == 2


def test_adding_an_address_twice_records_nothing() -> None:
    """The CC list holds each address once (compared in normalised form)."""
    desk, _ = _desk()
    tid = _ticket(desk)
    before = len(desk.history(tid))
    desk.add_cc(tid, "CY@example.com")
    desk.add_cc(tid, REQUESTER)
    assert len(desk.history(tid)) == before
    assert desk.get(tid).cc == (CC, CC2)


# -- staff and the roster -------------------------------------------------------------------


def test_without_a_roster_the_desk_trusts_the_named_role() -> None:
    """No `staff`: a name given as `agent=` acts as an agent, `manager=` as a manager."""
    with SupportDesk(clock=ManualClock(START)) as desk:
        tid = desk.submit(requester=REQUESTER, subject="x")
        desk.request_escalation(tid, reason="urgent")
        desk.review_escalation(tid, manager="anyone", accept=True, severity=1)
        desk.solve(tid, agent="someone", solution="done")
        assert desk.get(tid).status is Status.SOLVED


def test_staff_with_both_roles_acts_in_the_one_the_action_needs() -> None:
    """A name listed as agent and manager solves and reviews escalations."""
    clock = ManualClock(START)
    with SupportDesk(clock=clock, staff={"lee": ["agent", "manager"]}) as desk:
        tid = desk.submit(requester=REQUESTER, subject="x")
        desk.request_escalation(tid, reason="urgent")
        desk.review_escalation(tid, manager="Lee", accept=True, reassign_to="lee")
        desk.solve(tid, agent="lee", solution="done")
        assert desk.get(tid).status is Status.SOLVED


def test_manager_reassigning_on_review_needs_no_agent_role() -> None:
    """Accepting an escalation may reassign and change severity: managers may do both."""
    desk, _ = _desk()
    tid = _escalated(desk, ManualClock(START))
    desk.review_escalation(tid, manager="mona", accept=True, severity=1, reassign_to="alice")
    view = desk.get(tid)
    assert (view.severity, view.assignee) == (Severity.CRITICAL, "alice")


@pytest.mark.parametrize("staff", [{"bob": "customer"}, {"bob": []}, {"bob": "system"}])
def test_roster_with_a_non_staff_role_is_refused(staff: dict[str, object]) -> None:
    """Staff are agents and managers; anything else in the roster is a clear error."""
    with pytest.raises(InvalidCommand, match="staff 'bob'"):
        SupportDesk(staff=staff)  # type: ignore[arg-type]


def test_permission_table_may_not_let_people_fire_timers() -> None:
    """Only the system fires timers: a table granting an agent auto_close is refused."""
    rows = [p for p in DEFAULT_PERMISSIONS if p.action is not Action.AUTO_CLOSE]
    rows.append(Permission(action=Action.AUTO_CLOSE, roles={Role.AGENT}))
    with pytest.raises(ValueError, match=r"only Role\.SYSTEM"):
        SupportPolicy(permissions=rows)


def test_permission_table_may_not_grant_strangers() -> None:
    """No row may grant anything to strangers."""
    with pytest.raises(ValueError, match="STRANGER"):
        Permission(action=Action.CUSTOMER_REPLY, roles={Role.STRANGER})


def test_custom_table_lets_managers_solve() -> None:
    """The table is data: a policy granting managers `solve` lets them solve."""
    rows = [p for p in DEFAULT_PERMISSIONS if p.action is not Action.SOLVE]
    rows.append(Permission(action=Action.SOLVE, roles={Role.AGENT, Role.MANAGER}))
    desk, _ = _desk(SupportPolicy(update_targets=(), permissions=rows))
    tid = _ticket(desk)
    desk.solve(tid, agent="mona", solution="done")
    assert desk.get(tid).status is Status.SOLVED


def test_normalize_address_folds_case_and_nfc_only() -> None:
    """Lower case and NFC, nothing else."""
    assert normalize_address(" Ann@Example.COM ") == "ann@example.com"
    assert normalize_address("ann+x@example.com") == "ann+x@example.com"
    assert normalize_address("\uff41nn@example.com") == "\uff41nn@example.com"


# -- the property: nobody but the customer and staff changes a status ------------------------

STRANGER_COMMANDS: list[Callable[[SupportDesk, UUID, str], object]] = [
    lambda d, t, who: d.customer_reply(t, body="hi", by=who),
    lambda d, t, who: d.customer_reply(t, body="away", by=who, auto_submitted=True),
    lambda d, t, who: d.request_escalation(t, reason="now", by=who),
    lambda d, t, who: d.record_survey(t, rating=1, by=who),
    lambda d, t, who: d.add_cc(t, who, by=who),
    lambda d, t, who: d.remove_cc(t, CC, by=who),
    lambda d, t, who: d.solve(t, agent=who, solution="x"),
    lambda d, t, who: d.reply(t, agent=who, body="x"),
    lambda d, t, who: d.request_info(t, agent=who, body="x"),
    lambda d, t, who: d.assign(t, agent=who),
    lambda d, t, who: d.change_severity(t, Severity.LOW, by=who, reason="x"),
    lambda d, t, who: d.review_escalation(t, manager=who, accept=True, severity=1),
    lambda d, t, who: d.link_bug(t, reference="B-1", by=who),
]


def _solve_and_wait(desk: SupportDesk, tid: UUID, clock: ManualClock) -> None:
    desk.solve(tid, agent="alice", solution="x")
    clock.advance(days=4)


SETUPS: list[Callable[[SupportDesk, UUID, ManualClock], object]] = [
    lambda d, t, c: None,  # NEW
    lambda d, t, c: d.reply(t, agent="alice", body="on it"),  # OPEN
    lambda d, t, c: d.request_info(t, agent="alice", body="?"),  # PENDING
    lambda d, t, c: d.solve(t, agent="alice", solution="done"),  # SOLVED
    lambda d, t, c: _solve_and_wait(d, t, c),  # CLOSED
    lambda d, t, c: d.request_escalation(t, reason="urgent"),  # NEW, escalation pending
]

strangers = st.sampled_from(
    [
        "zed@example.com",
        "ann+x@example.com",
        "\u0430nn@example.com",
        "alice@example.com",
        "mona@example.com",
        "alicia",
        "root",
    ]
)


@settings(deadline=None)
@given(
    setup=st.sampled_from(SETUPS),
    commands=st.lists(
        st.tuples(st.sampled_from(STRANGER_COMMANDS), strangers, st.integers(0, 90)),
        max_size=6,
    ),
)
def test_no_command_by_a_non_requester_changes_a_status(
    setup: Callable[[SupportDesk, UUID, ManualClock], object],
    commands: list[tuple[Callable[[SupportDesk, UUID, str], object], str, int]],
) -> None:
    """Whatever a stranger (or a look-alike of the requester or of staff) tries, in any
    status, the ticket's status and events stay exactly as they were."""
    desk, clock = _desk()
    tid = desk.submit(requester=REQUESTER, subject="x", cc=[CC])
    setup(desk, tid, clock)
    desk.run_due_timers()
    before = desk.history(tid)
    status = desk.get(tid).status
    for command, who, minutes in commands:
        clock.advance(minutes=minutes)
        with contextlib.suppress(SupportflowError):
            command(desk, tid, who)
        assert desk.get(tid).status is status
    assert desk.history(tid) == before


# -- found by attacking the desk ------------------------------------------------------------


def test_reusing_someone_elses_message_id_is_refused_and_recorded() -> None:
    """A stranger replying with the requester's message id gets no ticket id back: refused,
    recorded; the requester's own redelivery still returns their ticket."""
    desk, _ = _desk()
    tid = desk.submit(requester=REQUESTER, subject="secret", message_id="<a1@mail>")
    with pytest.raises(PermissionDenied, match="already used by another sender"):
        desk.customer_reply(tid, body="x", by="eve@example.com", message_id="<a1@mail>")
    assert [m.outcome for m in desk.stranger_messages(tid)] == ["refused"]
    with pytest.raises(InvalidCommand, match="already used by another sender"):
        desk.submit(requester="eve@example.com", subject="x", message_id="<a1@mail>")
    assert desk.submit(requester=REQUESTER, subject="secret", message_id="<a1@mail>") == tid
    assert len(list(desk.ticket_ids())) == 1


def test_cc_of_a_closed_ticket_is_a_stranger_on_a_follow_up_that_dropped_them() -> None:
    """A reply to a CLOSED ticket lands on its open follow-up only if the sender may act on
    the follow-up itself."""
    desk, clock = _desk()
    tid = _closed(desk, clock)
    follow_up = desk.customer_reply(tid, body="again")
    assert desk.get(follow_up).cc == ()
    before = desk.history(follow_up)
    landed = desk.customer_reply(tid, body="via the closed one", by=CC)
    assert landed not in (tid, follow_up)
    assert desk.history(follow_up) == before
    assert desk.stranger_messages(follow_up)[0].new_ticket_id == landed


def test_back_dated_stranger_reply_learns_nothing_of_the_ticket() -> None:
    """A stranger's reply dated before the ticket's last event is not told that time: it
    becomes the stranger's own ticket like any other."""
    desk, clock = _desk()
    tid = _ticket(desk)
    clock.advance(hours=2)
    desk.reply(tid, agent="alice", body="on it")
    landed = desk.customer_reply(tid, body="x", by="zed@example.com", at=START)
    assert landed != tid
    assert desk.get(landed).created_at == START


def test_staff_names_fold_case_but_not_compatibility_characters() -> None:
    """With a roster, `Fiona` is `fiona`, but `\ufb01ona` (a compatibility ligature, folded
    only by NFKC or casefold) and `Ki\u0307m` are other names. (The Kelvin sign is canonically
    `K`: NFC makes it one.)"""
    clock = ManualClock(START)
    with SupportDesk(clock=clock, staff={"fiona": "agent", "kim": "agent"}) as desk:
        tid = desk.submit(requester=REQUESTER, subject="x")
        desk.reply(tid, agent="Fiona", body="hi")
        desk.reply(tid, agent="\u212aim", body="hi")  # canonically "Kim"
        for impostor in ("\ufb01ona", "ki\u0307m", "fiona\u00df"):
            with pytest.raises(PermissionDenied):
                desk.reply(tid, agent=impostor, body="hi")


def test_cc_list_has_a_limit() -> None:
    """`add_cc` stops at the policy's `max_tags` addresses."""
    desk, _ = _desk(SupportPolicy(update_targets=(), max_tags=2))
    tid = desk.submit(requester=REQUESTER, subject="x", cc=[CC])
    desk.add_cc(tid, CC2)
    with pytest.raises(InvalidCommand, match="the limit is 2"):
        desk.add_cc(tid, "third@example.com")


def test_display_name_form_compares_by_its_address() -> None:
    """`Ann Smith <ANN@example.com>` is the requester; a name alone is its own identifier."""
    desk, _ = _desk()
    tid = _ticket(desk)
    assert desk.customer_reply(tid, body="me", by="Ann Smith <ANN@example.com>") == tid
    named = desk.submit(requester="Customer 42", subject="x")
    assert desk.customer_reply(named, body="me", by="customer 42") == named
    assert desk.customer_reply(named, body="me", by="Customer 43") != named


def test_refused_cc_at_submit_names_the_requester_not_a_token() -> None:
    """A table in which requesters may not add CCs refuses `submit(cc=...)`, naming the
    requester's address."""
    rows = [p for p in DEFAULT_PERMISSIONS if p.action is not Action.ADD_CC]
    rows.append(Permission(action=Action.ADD_CC, roles={Role.AGENT}))
    desk, _ = _desk(SupportPolicy(update_targets=(), permissions=rows))
    with pytest.raises(PermissionDenied) as refused:
        desk.submit(requester=REQUESTER, subject="x", cc=[CC])
    assert refused.value.actor == REQUESTER
    assert "\x1e" not in str(refused.value)
    assert list(desk.ticket_ids()) == []


def test_redelivered_cc_reply_to_a_closed_ticket_returns_its_follow_up() -> None:
    """A CC's reply to a CLOSED ticket starts a follow-up; the same message delivered again
    returns that follow-up (it took effect once) instead of being refused."""
    desk, clock = _desk()
    tid = _closed(desk, clock)
    first = desk.customer_reply(tid, body="again", by=CC, message_id="<m1@x>")
    again = desk.customer_reply(tid, body="again", by=CC, message_id="<m1@x>")
    assert first == again != tid
    assert desk.stranger_messages() == []
