"""The `supportflow demo`: a simulated support desk on a SQLite file.

Customers submit tickets, agents work them, customers answer in time, late or never, out-of-office
auto-replies arrive and some mails are delivered twice. Agents send status updates to keep the
update SLA (`SupportPolicy.update_targets`), except on a few neglected tickets and when they are
swamped, so some `UpdateOverdue` breaches happen. Customers of some HIGH and CRITICAL tickets ask
for escalation and a manager reviews each request hours later. Known bugs are linked to their
tickets, tickets name the customer's software version (old majors are flagged unsupported), and
a delivery worker sends solved notices and satisfaction surveys through the outbox with a mail
gateway that fails now and then; some customers answer the survey. The clock is a `ManualClock`
that starts on a Monday in March 2026, so the run crosses the US daylight-saving change of
2026-03-08, and time advances hour by hour while `run_due_timers()` runs like a worker.

The desk runs with a staff roster (`STAFF`: the agents and the manager). Some customers CC a
colleague when they submit, and the colleague sometimes answers instead of them (the reply lands
on the ticket). Now and then a reply comes from an address that is not on the ticket (the
customer's plus-address, or a colleague nobody CC'd): it becomes a ticket of its own. Near the
end one customer asks to be forgotten (`forget_requester`): their tickets read ``[erased]`` from
then on, they send nothing more, and the store still audits clean.

The functions that decide the next step (`plan_day`, `choose_agent_move`, `plan_customer_after_*`,
`agent_ready_at`, `plan_check_in`, `plan_escalation`, `decide_escalation`, `plan_survey_answer`,
`choose_sender`, `erasure_at`) are pure: they take a `random.Random` and instants, and never
touch the desk. `run_demo` drives a `SupportDesk` with them and then counts what the store holds.
"""

from __future__ import annotations

import datetime as _dt
import enum
import functools
import heapq
import itertools
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import attrs
import holidays

from .clock import ManualClock
from .desk import SupportDesk
from .outbox import DeliveryReport, Notification, PermanentDeliveryError, deliver_notifications
from .policy import Severity, Status, SupportPolicy, add_calendar_days
from .ticket import Ticket
from .views import TicketView

__all__ = [
    "BUGS",
    "CURRENT_MAJOR_VERSION",
    "DEFAULT_DAYS",
    "DEFAULT_SEED",
    "DEFAULT_TICKETS_PER_DAY",
    "DELIVERY_EVERY",
    "MANAGER",
    "STAFF",
    "START",
    "STATUS_UPDATE",
    "AgentMove",
    "CustomerStep",
    "DemoNotifier",
    "DemoSummary",
    "EscalationDecision",
    "EscalationPlan",
    "QueueEntry",
    "Sender",
    "SenderKind",
    "Submission",
    "SurveyAnswer",
    "TimelineEntry",
    "agent_ready_at",
    "choose_agent_move",
    "choose_sender",
    "colleagues_of",
    "decide_escalation",
    "demo_policy",
    "erasure_at",
    "format_summary",
    "is_business_time",
    "plan_check_in",
    "plan_customer_after_request",
    "plan_customer_after_solve",
    "plan_day",
    "plan_escalation",
    "plan_survey_answer",
    "remove_database",
    "run_demo",
]

UTC = _dt.UTC
ZONE = "America/Chicago"
START = _dt.datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
"""Monday 2026-03-02 00:00 in Chicago (CST); the US DST change follows on Sunday 2026-03-08."""
DEFAULT_SEED = 2026
DEFAULT_DAYS = 21
DEFAULT_TICKETS_PER_DAY = 8
WORKER_EVERY = _dt.timedelta(hours=1)
"""How often the simulated worker calls `run_due_timers()`."""
DELIVERY_EVERY = 6
"""The simulated delivery worker runs every this many worker runs (and after the last one)."""
MAX_AGENT_ROUNDS = 4
"""After this many agent turns on one ticket the agent gives a solution."""
CURRENT_MAJOR_VERSION = 5
"""The demo desk's policy: versions 5.x and 4.x are supported, older ones are flagged."""
QUEUE_TOP = 5
"""How many tickets of the triage queue the summary shows."""

ProgressFn = Callable[[int, int], None]
"""`progress(day, days)`: called when simulated day `day` (1-based) begins."""

# -- the cast --------------------------------------------------------------------------------

_AGENTS = ("bob", "carol", "dave", "erin")
MANAGER = "maria"
"""The support manager who reviews escalation requests (and handles requests for erasure)."""
STAFF: dict[str, str] = {**dict.fromkeys(_AGENTS, "agent"), MANAGER: "manager"}
"""The desk's staff roster (`SupportDesk(staff=...)`): nobody else acts as staff."""
_CUSTOMERS = (
    "ann@acme.example",
    "raj@globex.example",
    "mei@initech.example",
    "olu@umbrella.example",
    "ines@hooli.example",
    "tom@stark.example",
    "yuki@wayne.example",
    "sam@tyrell.example",
)
_COLLEAGUES: dict[str, tuple[str, str]] = {
    "ann@acme.example": ("lee@acme.example", "kim@acme.example"),
    "raj@globex.example": ("eva@globex.example", "max@globex.example"),
    "mei@initech.example": ("ana@initech.example", "joe@initech.example"),
    "olu@umbrella.example": ("ida@umbrella.example", "ben@umbrella.example"),
    "ines@hooli.example": ("noa@hooli.example", "leo@hooli.example"),
    "tom@stark.example": ("pia@stark.example", "ray@stark.example"),
    "yuki@wayne.example": ("zoe@wayne.example", "kai@wayne.example"),
    "sam@tyrell.example": ("liv@tyrell.example", "ned@tyrell.example"),
}
"""Each customer's two colleagues: the first is the one they CC, the second is never CC'd."""
_CC_CHANCE = 0.25
"""The share of web and email submissions that CC the customer's colleague."""
_CC_ANSWERS = 0.4
"""The share of customer replies on a CC'd ticket that the colleague sends."""
_STRANGER_CHANCE = 1 / 20
"""The share of customer replies sent from an address that is not on the ticket."""
ERASURE_DAYS_BEFORE_END = 3
"""The customer who asks to be forgotten does so this many days before the end, at 11:00."""
_SUBJECTS: dict[Severity, tuple[str, ...]] = {
    Severity.CRITICAL: (
        "Cannot restore from backup",
        "Cannot renew the account",
        "Account expired, nobody can log in",
    ),
    Severity.HIGH: (
        "Nightly sync fails for every project",
        "Reports time out, no workaround",
        "Uploads over 1 GB are rejected",
    ),
    Severity.MEDIUM: (
        "CSV export drops the last column",
        "Search is slow on large folders",
        "Calendar shows UTC instead of local time",
    ),
    Severity.LOW: (
        "Typo in the installation guide",
        "Suggestion: dark mode",
        "How do I rotate the API key?",
    ),
}
_SEVERITY_WEIGHTS = {
    Severity.CRITICAL: 1,
    Severity.HIGH: 2,
    Severity.MEDIUM: 4,
    Severity.LOW: 3,
}
_PRODUCTS = (
    ({"product": "Backup Server", "os": "Ubuntu 24.04"}, "5.1.0"),
    ({"product": "Backup Server", "os": "Windows Server 2022"}, "4.2.1"),
    ({"product": "Backup Server", "os": "Windows Server 2016"}, "3.9.4"),
    ({"product": "Sync Client", "os": "macOS 15"}, "5.0.2"),
    ({"product": "Sync Client", "os": "Windows 11"}, "4.8.0"),
    ({"product": "Sync Client", "os": "Windows 10"}, "2.7.1"),
)
"""Product fields and the customer's software version (3.x and 2.x are out of support)."""
BUGS: dict[str, str] = {
    "Nightly sync fails for every project": "BUG-1042",
    "CSV export drops the last column": "BUG-977",
}
"""Subjects that are known bugs, and the internal bug report an agent links them to."""
_BUG_LINK_CHANCE = 0.5
_TAGS = ("billing", "login", "performance", "docs", "mobile", "api", "upgrade")
_CUSTOMER_REPLIES = (
    "Here are the logs you asked for.",
    "We are on version 4.2.0, build 1187.",
    "It still happens after the update.",
    "Yes, that setting is enabled.",
)
_LATE_REPLIES = (
    "Sorry for the delay: the problem is back since this morning.",
    "One more question about the fix you sent last week.",
    "It worked for a while, but it fails again.",
)
_OUT_OF_OFFICE = "I am out of the office until next week and will answer on my return."
STATUS_UPDATE = "Status update: we are still working on this and will write again soon."
"""The body of the agents' update-SLA status updates (counted in the summary)."""
_ESCALATION_REASONS = (
    "Our whole team is blocked and the deadline is tomorrow.",
    "This affects every customer of ours since this morning.",
    "No answer that helps yet, and production is down.",
)
_SURVEY_COMMENTS = {
    1: "Took far too long.",
    2: "Solved in the end, but slowly.",
    3: "OK.",
    4: "Good help, thanks.",
    5: "Excellent, quick and clear.",
}

# -- pure decisions ---------------------------------------------------------------------------


class Channel(enum.Enum):
    """How a ticket reaches the desk. Phone support only in business hours."""

    WEB = "web"
    EMAIL = "email"
    PHONE = "phone"


@attrs.frozen(kw_only=True)
class Submission:
    """A ticket a customer will submit, fully decided in advance."""

    at: _dt.datetime
    requester: str
    subject: str
    description: str
    severity: Severity
    channel: Channel
    product: tuple[tuple[str, str], ...]
    product_version: str | None
    """The customer's software version; callers on the phone often don't know it (None)."""
    tags: tuple[str, ...]
    message_id: str
    delivered_twice: bool
    cc: tuple[str, ...] = ()
    """Addresses the customer CCs (a colleague), who may then reply as the customer."""


class AgentMove(enum.Enum):
    """What an agent does when a ticket comes up in the queue."""

    ASSIGN = "assign"
    REPLY = "reply"
    REQUEST_INFO = "request_info"
    SOLVE = "solve"
    RAISE_SEVERITY = "raise_severity"
    """The impact is larger than reported: one step more severe."""
    WAIT = "wait"
    """Nothing to do: the ticket waits for the customer or is done."""


class CustomerMove(enum.Enum):
    """What a customer's next message is."""

    REPLY = "reply"
    LATE_REPLY = "late_reply"
    AUTO_REPLY = "auto_reply"


@attrs.frozen(kw_only=True)
class CustomerStep:
    """One message the customer will send, `after` the agent's action."""

    after: _dt.timedelta
    move: CustomerMove
    body: str
    delivered_twice: bool


class SenderKind(enum.Enum):
    """Who sends a customer's reply, as the ticket sees them."""

    REQUESTER = "requester"
    CC = "cc"
    """A colleague on the ticket's CC list: the reply lands."""
    PLUS_ADDRESS = "plus_address"
    """The requester's plus-address (``ann+support@...``): another address, a stranger."""
    COLLEAGUE_NOT_CC = "colleague_not_cc"
    """A colleague nobody put on the CC list: a stranger."""

    @property
    def stranger(self) -> bool:
        """Whether the desk sees this sender as a stranger (the reply becomes a new ticket)."""
        return self in (SenderKind.PLUS_ADDRESS, SenderKind.COLLEAGUE_NOT_CC)


@attrs.frozen(kw_only=True)
class Sender:
    """The address a customer's reply comes from, and who that is on the ticket."""

    address: str
    kind: SenderKind


@attrs.frozen(kw_only=True)
class EscalationPlan:
    """A customer's escalation request, sent `after` the ticket was submitted."""

    after: _dt.timedelta
    reason: str
    requested_severity: Severity | None
    """One step more severe; None for a CRITICAL ticket (the customer wants attention)."""
    contact: str
    review_after: _dt.timedelta
    """How long after the request the manager reviews it."""


@attrs.frozen(kw_only=True)
class EscalationDecision:
    """A manager's review of an escalation request."""

    accept: bool
    severity: Severity | None
    reassign_to: str | None
    note: str


@attrs.frozen(kw_only=True)
class SurveyAnswer:
    """A customer's answer to the satisfaction survey, `after` it was delivered."""

    after: _dt.timedelta
    rating: int
    comment: str


@functools.cache
def _holidays(year: int) -> Any:
    return holidays.country_holidays("US", years=year)


def is_business_time(at: _dt.datetime, zone: str = ZONE) -> bool:
    """Mon-Fri 09:00-17:00 in `zone`, excluding US federal holidays."""
    local = at.astimezone(ZoneInfo(zone))
    if local.weekday() >= 5 or not 9 <= local.hour < 17:
        return False
    return local.date() not in _holidays(local.year)


def _next_opening(at: _dt.datetime, zone: str) -> _dt.datetime:
    """The first business-hours instant at or after `at`."""
    tz = ZoneInfo(zone)
    local = at.astimezone(tz)
    if is_business_time(at, zone):
        return at
    day = local.date()
    if local.hour >= 9:
        day += _dt.timedelta(days=1)
    while True:
        opening = _dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=tz).astimezone(UTC)
        if is_business_time(opening, zone):
            return opening
        day += _dt.timedelta(days=1)


def agent_ready_at(
    rng: random.Random, now: _dt.datetime, severity: Severity, zone: str = ZONE
) -> _dt.datetime:
    """When an agent next works on a ticket of `severity` that needs attention at `now`.

    CRITICAL tickets are worked around the clock within two hours; the others wait for the
    next business hours, and the lower the severity the longer the queue.
    """
    if severity is Severity.CRITICAL:
        return now + _dt.timedelta(minutes=rng.randint(10, 120))
    queue_minutes = {
        Severity.HIGH: (20, 240),
        Severity.MEDIUM: (60, 480),
        Severity.LOW: (120, 960),
    }[severity]
    ready = now + _dt.timedelta(minutes=rng.randint(*queue_minutes))
    if not is_business_time(ready, zone):
        ready = _next_opening(ready, zone) + _dt.timedelta(minutes=rng.randint(0, 90))
    return ready


def plan_check_in(rng: random.Random, now: _dt.datetime, due: _dt.datetime) -> _dt.datetime:
    """When an agent sends a status update on a ticket whose next update is due at `due`.

    Usually 15 to 90 minutes before it is due (never before `now`); one time in twelve the
    agent is swamped and writes 10 minutes to 3 hours late, after the breach.
    """
    if rng.random() < 1 / 12:
        return max(now, due + _dt.timedelta(minutes=rng.randint(10, 180)))
    return max(now, due - _dt.timedelta(minutes=rng.randint(15, 90)))


def plan_escalation(rng: random.Random, severity: Severity) -> EscalationPlan | None:
    """Whether the customer of a new ticket of `severity` will ask for escalation, and how.

    Only HIGH and CRITICAL tickets are escalated, about one in four, between one hour and a
    day and a half after submission; the manager reviews the request one to eight hours later.
    """
    if severity not in (Severity.CRITICAL, Severity.HIGH) or rng.random() >= 0.25:
        return None
    return EscalationPlan(
        after=_dt.timedelta(minutes=rng.randint(60, 36 * 60)),
        reason=rng.choice(_ESCALATION_REASONS),
        requested_severity=None if severity is Severity.CRITICAL else Severity(severity - 1),
        contact=f"+1 312 555 01{rng.randint(0, 99):02d}",
        review_after=_dt.timedelta(minutes=rng.randint(60, 8 * 60)),
    )


def decide_escalation(
    rng: random.Random,
    *,
    severity: Severity,
    requested: Severity | None,
    assignee: str | None,
) -> EscalationDecision:
    """The manager's review of a request on a ticket of `severity` assigned to `assignee`.

    Two requests in five are declined (nothing else changes). An accepted one raises the
    severity to the `requested` one if that is more severe, and in three cases of five hands
    the ticket to another agent.
    """
    if rng.random() < 0.4:
        return EscalationDecision(
            accept=False,
            severity=None,
            reassign_to=None,
            note="The impact matches the current severity; the agent keeps the ticket.",
        )
    raised = requested if requested is not None and requested < severity else None
    reassign = None
    if rng.random() < 0.6:
        reassign = rng.choice([a for a in _AGENTS if a != assignee])
    done = [f"raised to {raised.name}"] if raised is not None else []
    if reassign is not None:
        done.append(f"handed to {reassign}")
    note = "Accepted: " + (", ".join(done) if done else "a call with the customer today") + "."
    return EscalationDecision(accept=True, severity=raised, reassign_to=reassign, note=note)


def plan_survey_answer(rng: random.Random) -> SurveyAnswer | None:
    """Whether a customer answers the satisfaction survey (a bit under half do), when (ten
    minutes to two days after it arrived), and what they say."""
    if rng.random() >= 0.45:
        return None
    rating = rng.choices((1, 2, 3, 4, 5), weights=(6, 8, 16, 32, 38))[0]
    return SurveyAnswer(
        after=_dt.timedelta(minutes=rng.randint(10, 2 * 24 * 60)),
        rating=rating,
        comment=_SURVEY_COMMENTS[rating],
    )


def colleagues_of(customer: str) -> tuple[str, str] | None:
    """The customer's colleague who gets CC'd and one who never is; None for an address that
    is not one of the demo's customers (e.g. the sender of a stranger's ticket)."""
    return _COLLEAGUES.get(customer)


def _plus_address(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local}+support@{domain}"


def choose_sender(rng: random.Random, *, requester: str, cc: Sequence[str]) -> Sender:
    """Who sends a customer's reply on a ticket of `requester` CC'ing `cc`.

    One reply in twenty comes from an address that is not on the ticket: the requester's
    plus-address or a colleague nobody CC'd. On a ticket with a CC list, the colleague sends
    two replies in five of the others. Senders who are not demo customers (the senders of
    strangers' tickets) always answer themselves.
    """
    colleagues = colleagues_of(requester)
    if colleagues is None:
        return Sender(address=requester, kind=SenderKind.REQUESTER)
    if rng.random() < _STRANGER_CHANCE:
        if rng.random() < 0.5:
            return Sender(address=_plus_address(requester), kind=SenderKind.PLUS_ADDRESS)
        return Sender(address=colleagues[1], kind=SenderKind.COLLEAGUE_NOT_CC)
    if cc and rng.random() < _CC_ANSWERS:
        return Sender(address=rng.choice(list(cc)), kind=SenderKind.CC)
    return Sender(address=requester, kind=SenderKind.REQUESTER)


def erasure_at(days: int, zone: str = ZONE) -> _dt.datetime:
    """When the demo's customer asks to be forgotten: `ERASURE_DAYS_BEFORE_END` days before
    the end of a `days`-day run (on the first day for shorter runs), at 11:00 local time."""
    day = add_calendar_days(START, max(0, days - ERASURE_DAYS_BEFORE_END), zone)
    local = day.astimezone(ZoneInfo(zone)).replace(hour=11)  # wall time, even on a DST day
    return local.astimezone(UTC)


def plan_day(
    rng: random.Random,
    day_start: _dt.datetime,
    *,
    tickets: int,
    seed: int,
    first_number: int,
    zone: str = ZONE,
) -> list[Submission]:
    """The tickets customers submit on the local day starting at `day_start`, in time order.

    Business days get `tickets` submissions, weekends and holidays a third of that. Every
    submission has a message id (mail Message-ID, web form or call reference), which also
    makes the ticket ids deterministic; one email in eight is delivered twice. Web and email
    tickets name the customer's software version; phone tickets don't. A quarter of the web and
    email tickets CC the customer's colleague.
    """
    local = day_start.astimezone(ZoneInfo(zone))
    quiet = local.weekday() >= 5 or local.date() in _holidays(local.year)
    count = max(1, tickets // 3) if quiet else tickets
    out: list[Submission] = []
    for number in range(first_number, first_number + count):
        hour = rng.choice((7, 8, 9, 9, 10, 10, 11, 13, 14, 14, 15, 16, 17, 19, 22))
        at = day_start + _dt.timedelta(hours=hour, minutes=rng.randint(0, 59))
        severity = rng.choices(list(_SEVERITY_WEIGHTS), weights=list(_SEVERITY_WEIGHTS.values()))[0]
        channel = rng.choices(list(Channel), weights=(5, 4, 2))[0]
        if channel is Channel.PHONE and not is_business_time(at, zone):
            channel = Channel.WEB  # phone support only answers in business hours
        subject = rng.choice(_SUBJECTS[severity])
        product, version = rng.choice(_PRODUCTS)
        tags = tuple(sorted(rng.sample(_TAGS, rng.randint(0, 2))))
        requester = rng.choice(_CUSTOMERS)
        cc_chance = 0.0 if channel is Channel.PHONE else _CC_CHANCE
        cc = (_COLLEAGUES[requester][0],) if rng.random() < cc_chance else ()
        domain = {
            Channel.WEB: "forms.demo.example",
            Channel.EMAIL: "mail.demo.example",
            Channel.PHONE: "calls.demo.example",
        }[channel]
        out.append(
            Submission(
                at=at,
                requester=requester,
                subject=subject,
                description=f"{subject}. {severity.definition}",
                severity=severity,
                channel=channel,
                product=tuple(sorted(product.items())),
                product_version=None if channel is Channel.PHONE else version,
                tags=tags,
                message_id=f"<{channel.value}-{seed}-{number}@{domain}>",
                delivered_twice=channel is Channel.EMAIL and rng.random() < 0.125,
                cc=cc,
            )
        )
    out.sort(key=lambda s: s.at)
    return out


def choose_agent_move(
    rng: random.Random, *, status: Status, severity: Severity, rounds: int, asked: int
) -> AgentMove:
    """What the agent does with a ticket in `status` after `rounds` turns, `asked` of them
    requests for information. New tickets are assigned; open ones get an answer, a question
    (at most twice), a higher severity, or a solution (always after `MAX_AGENT_ROUNDS` turns)."""
    if status is Status.NEW:
        return AgentMove.ASSIGN
    if status is not Status.OPEN:
        return AgentMove.WAIT
    if rounds >= MAX_AGENT_ROUNDS:
        return AgentMove.SOLVE
    moves = [AgentMove.SOLVE, AgentMove.REPLY]
    weights = [40, 20]
    if asked < 2:
        moves.append(AgentMove.REQUEST_INFO)
        weights.append(40)
    if severity is not Severity.CRITICAL:
        moves.append(AgentMove.RAISE_SEVERITY)
        weights.append(5)
    return rng.choices(moves, weights=weights)[0]


def _twice(rng: random.Random) -> bool:
    return rng.random() < 0.12


def plan_customer_after_request(rng: random.Random) -> tuple[CustomerStep, ...]:
    """How the customer reacts to a request for information.

    Most answer within four days; some are away (an out-of-office auto-reply, then perhaps an
    answer after their return); some never answer, and the ticket is solved automatically.
    """
    roll = rng.random()
    if roll < 0.55:
        return (
            CustomerStep(
                after=_dt.timedelta(minutes=rng.randint(30, 4 * 24 * 60)),
                move=CustomerMove.REPLY,
                body=rng.choice(_CUSTOMER_REPLIES),
                delivered_twice=_twice(rng),
            ),
        )
    if roll < 0.8:
        return ()
    away: list[CustomerStep] = [
        CustomerStep(
            after=_dt.timedelta(minutes=rng.randint(1, 5)),
            move=CustomerMove.AUTO_REPLY,
            body=_OUT_OF_OFFICE,
            delivered_twice=_twice(rng),
        )
    ]
    if rng.random() < 0.5:
        away.append(
            CustomerStep(
                after=_dt.timedelta(days=rng.randint(3, 6), minutes=rng.randint(0, 600)),
                move=CustomerMove.REPLY,
                body="Back in the office: " + rng.choice(_CUSTOMER_REPLIES).lower(),
                delivered_twice=_twice(rng),
            )
        )
    return tuple(away)


def plan_customer_after_solve(
    rng: random.Random, *, close_in: _dt.timedelta
) -> tuple[CustomerStep, ...]:
    """How the customer reacts to a solution that closes `close_in` from now.

    Most say nothing (the ticket closes; a few out-of-office replies answer the satisfaction
    survey); some reply in time (the ticket reopens); some reply after the close (a follow-up).
    """
    roll = rng.random()
    if roll < 0.2:
        latest = max(int(close_in.total_seconds() // 60) - 60, 31)
        return (
            CustomerStep(
                after=_dt.timedelta(minutes=rng.randint(30, latest)),
                move=CustomerMove.REPLY,
                body="It still happens: " + rng.choice(_CUSTOMER_REPLIES).lower(),
                delivered_twice=_twice(rng),
            ),
        )
    if roll < 0.36:
        return (
            CustomerStep(
                after=close_in + _dt.timedelta(minutes=rng.randint(60, 5 * 24 * 60)),
                move=CustomerMove.LATE_REPLY,
                body=rng.choice(_LATE_REPLIES),
                delivered_twice=_twice(rng),
            ),
        )
    if roll < 0.46:
        return (
            CustomerStep(
                after=close_in + _dt.timedelta(minutes=rng.randint(1, 10)),
                move=CustomerMove.AUTO_REPLY,
                body=_OUT_OF_OFFICE,
                delivered_twice=_twice(rng),
            ),
        )
    return ()


class DemoNotifier:
    """The demo's mail gateway: accepts most notifications, fails now and then.

    About one attempt in eight times out (retried with backoff by the delivery worker) and
    one in sixty bounces for good (`PermanentDeliveryError`). Deterministic for a seed.
    Everything accepted is kept in `delivered`, in order.
    """

    def __init__(self, seed: int, *, transient: float = 1 / 8, permanent: float = 1 / 60) -> None:
        self._rng = random.Random(seed)
        self.transient = transient
        self.permanent = permanent
        self.delivered: list[Notification] = []

    def deliver(self, notification: Notification) -> None:
        roll = self._rng.random()
        if roll < self.permanent:
            msg = f"mailbox {notification.requester} is full and refuses mail"
            raise PermanentDeliveryError(msg)
        if roll < self.permanent + self.transient:
            msg = "the mail relay timed out"
            raise TimeoutError(msg)
        self.delivered.append(notification)


# -- the summary ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TimelineEntry:
    """One event of the example ticket."""

    event: str
    at: _dt.datetime
    """When it happened (aware UTC)."""
    detail: str


@attrs.frozen(kw_only=True)
class QueueEntry:
    """One ticket of the triage queue (`SupportDesk.queue()`) as the demo left it."""

    ticket: UUID
    severity: Severity
    status: Status
    assignee: str | None
    update_due_at: _dt.datetime | None
    breached: bool
    subject: str


@attrs.frozen(kw_only=True)
class DemoSummary:
    """What a demo run left in the store, counted from the ticket histories (and, for the
    notifications, from what the delivery worker reported)."""

    db_path: str
    seed: int
    days: int
    tickets_per_day: int
    zone: str
    start: _dt.datetime
    end: _dt.datetime
    """The simulated end instant (aware UTC); open a desk with `FixedClock(end)` to see the
    tickets as the demo left them."""
    tickets: int
    by_status: tuple[tuple[Status, int], ...]
    by_severity: tuple[tuple[Severity, int], ...]
    by_channel: tuple[tuple[str, int], ...]
    auto_solved: int
    """`Solved` events with `automatic=True`."""
    auto_closed: int
    reopened: int
    """`Reopened` events."""
    follow_ups: int
    """`FollowUpCreated` events."""
    duplicates_delivered: int
    duplicates_absorbed: int
    """Second deliveries that returned the first delivery's ticket and recorded nothing."""
    auto_replies: int
    """Customer messages recorded with `auto_submitted=True`."""
    events: int
    """Ticket events in the store."""
    commands: int
    """Commands the simulated people sent to the desk."""
    worker_runs: int
    dst_changes: tuple[_dt.date, ...]
    with_version: int
    """Tickets whose `product_version` is known."""
    unsupported: int
    """Tickets flagged `supported=False` (version older than the supported majors)."""
    status_updates: int
    """Agent replies with the `STATUS_UPDATE` body, sent to keep the update SLA."""
    sla_breaches: int
    """`UpdateOverdue` events."""
    breached_tickets: int
    """Tickets with at least one `UpdateOverdue` event."""
    escalations_requested: int
    """`EscalationRequested` events."""
    escalations_accepted: int
    escalations_declined: int
    """`EscalationReviewed` events with `accepted` True / False."""
    escalations_waiting: int
    """Tickets whose escalation request still waits for review (or closed before it)."""
    escalation_severity_changes: int
    """`SeverityChanged` events made by an accepted escalation."""
    reassignments: int
    """`Assigned` events that moved a ticket from one agent to another."""
    bugs: tuple[tuple[str, int], ...]
    """Each linked bug reference and how many tickets `tickets_for_bug` lists for it."""
    surveys_answered: int
    """`SurveyAnswered` events."""
    survey_ratings: tuple[tuple[int, int], ...]
    """(rating, count) for ratings 1..5."""
    notifications_requested: int
    """Outbox records the delivery worker created (one per `Solved` and per `Closed`)."""
    notifications_delivered: int
    notifications_retried: int
    """Failed attempts that were retried later."""
    notifications_failed: int
    """Deliveries given up for good."""
    notifications_pending: int
    """Deliveries still waiting for their next attempt at the end."""
    delivery_runs: int
    cc_tickets: int
    """Tickets whose customer CC'd a colleague at submit (tickets with a `CcAdded` event)."""
    cc_replies: int
    """Customer replies a CC'd colleague sent that landed on the ticket (or its follow-up)."""
    stranger_replies: int
    """Replies from an address not on the ticket that became a ticket of their own
    (`stranger_messages()` with outcome ``new_ticket``)."""
    erased_requesters: int
    """Requesters forgotten (`forget_requester`): 1, or 0 if nobody had submitted yet."""
    erased_tickets: int
    """Tickets whose personal fields read ``[erased]`` (`erased_at` set)."""
    erased_at: _dt.datetime | None
    """When the requester was forgotten (aware UTC), None if nobody was."""
    erased_address: str | None
    """The forgotten requester's address (kept here for checks; never printed)."""
    queue_size: int
    """Active tickets at the end (`len(desk.queue())`)."""
    queue_top: tuple[QueueEntry, ...]
    """The first `QUEUE_TOP` tickets of the triage queue at the end."""
    example_ticket: UUID | None
    example_subject: str
    example_follow_ups: tuple[UUID, ...]
    timeline: tuple[TimelineEntry, ...]

    @property
    def average_rating(self) -> float | None:
        """The mean survey rating, or None if nobody answered."""
        if not self.surveys_answered:
            return None
        return sum(r * n for r, n in self.survey_ratings) / self.surveys_answered


# -- the simulation ---------------------------------------------------------------------------


@attrs.define
class _Case:
    """What the simulation remembers about a ticket (the desk holds the truth)."""

    rounds: int = 0
    asked: int = 0
    neglected: bool = False
    """Nobody sends status updates on this ticket: it breaches the update SLA."""
    watched: _dt.datetime | None = None
    """The update due instant a status update is already planned for."""


@attrs.frozen(kw_only=True)
class _Task:
    kind: str
    ticket: UUID | None = None
    submission: Submission | None = None
    step: CustomerStep | None = None
    due: _dt.datetime | None = None
    escalation: EscalationPlan | None = None
    survey: SurveyAnswer | None = None


_NEGLECT_CHANCE = 0.1
"""The share of tickets nobody sends status updates on."""


class _Simulation:
    def __init__(
        self, desk: SupportDesk, clock: ManualClock, rng: random.Random, *, seed: int, zone: str
    ) -> None:
        self.desk = desk
        self.clock = clock
        self.rng = rng
        self.seed = seed
        self.zone = zone
        self.queue: list[tuple[_dt.datetime, int, _Task]] = []
        self.order = itertools.count()
        self.cases: dict[UUID, _Case] = {}
        self.messages = itertools.count(1)
        self.commands = 0
        self.duplicates_delivered = 0
        self.duplicates_absorbed = 0
        self.notifier = DemoNotifier(seed * 7919 + 17)
        self.reports: list[DeliveryReport] = []
        self._seen_deliveries = 0
        self.requesters: set[str] = set()
        """The demo customers who submitted a ticket so far."""
        self.cc_replies = 0
        self.forgotten: str | None = None
        self.forgotten_at: _dt.datetime | None = None

    def schedule(self, at: _dt.datetime, task: _Task) -> None:
        heapq.heappush(self.queue, (max(at, self.clock.now()), next(self.order), task))

    def run_until(self, until: _dt.datetime) -> None:
        """Perform every task due before `until`, each at its own instant."""
        while self.queue and self.queue[0][0] < until:
            at, _, task = heapq.heappop(self.queue)
            self.clock.set(at)
            if task.kind == "submit":
                assert task.submission is not None
                self.submit(task.submission)
                continue
            if task.kind == "forget":
                self.forget()
                continue
            assert task.ticket is not None
            if task.kind == "agent":
                self.agent_turn(task.ticket)
            elif task.kind == "check_in":
                assert task.due is not None
                self.check_in(task.ticket, task.due)
            elif task.kind == "escalate":
                assert task.escalation is not None
                self.escalate(task.ticket, task.escalation)
            elif task.kind == "review":
                self.review(task.ticket)
            elif task.kind == "survey":
                assert task.survey is not None
                self.answer_survey(task.ticket, task.survey)
            else:
                assert task.step is not None
                self.customer_message(task.ticket, task.step)

    def new_case(self, tid: UUID) -> _Case:
        case = _Case(neglected=self.rng.random() < _NEGLECT_CHANCE)
        self.cases[tid] = case
        return case

    # -- the update SLA -----------------------------------------------------------------------

    def watch(self, tid: UUID) -> None:
        """Plan a status update before the ticket's next update is due (not if neglected)."""
        view = self.desk.get(tid)
        case = self.cases[tid]
        due = view.update_due_at
        if due is None or view.sla_breached or case.neglected or due == case.watched:
            return
        case.watched = due
        at = plan_check_in(self.rng, self.clock.now(), due)
        self.schedule(at, _Task(kind="check_in", ticket=tid, due=due))

    def check_in(self, tid: UUID, due: _dt.datetime) -> None:
        """Send the planned status update, unless the update clock moved on meanwhile."""
        view = self.desk.get(tid)
        if view.update_due_at != due or view.status not in (Status.NEW, Status.OPEN):
            return
        agent = view.assignee or self.rng.choice(_AGENTS)
        if view.status is Status.NEW:
            self.desk.assign(tid, agent=agent)
            self.commands += 1
        self.desk.reply(tid, agent=agent, body=STATUS_UPDATE)
        self.commands += 1
        self.watch(tid)

    # -- deliveries ---------------------------------------------------------------------------

    def _deliver_again(self, first: UUID, deliver: Callable[[], UUID]) -> None:
        """Deliver a message a second time (a mail gateway retry) and check it is absorbed."""
        self.duplicates_delivered += 1
        before = self.desk.get(first).version
        again = deliver()
        self.commands += 1
        if again == first and self.desk.get(first).version == before:
            self.duplicates_absorbed += 1

    def submit(self, s: Submission) -> None:
        if s.requester == self.forgotten:
            return  # a customer who asked to be forgotten has left
        self.requesters.add(s.requester)

        def deliver() -> UUID:
            return self.desk.submit(
                requester=s.requester,
                subject=s.subject,
                description=s.description,
                severity=s.severity,
                channel=s.channel.value,
                product=dict(s.product),
                product_version=s.product_version,
                tags=s.tags,
                message_id=s.message_id,
                cc=s.cc,
            )

        tid = deliver()
        self.commands += 1
        if s.delivered_twice:
            self._deliver_again(tid, deliver)
        self.new_case(tid)
        now = self.clock.now()
        self.schedule(agent_ready_at(self.rng, now, s.severity, self.zone), _agent(tid))
        escalation = plan_escalation(self.rng, s.severity)
        if escalation is not None:
            self.schedule(
                now + escalation.after, _Task(kind="escalate", ticket=tid, escalation=escalation)
            )
        self.watch(tid)

    def customer_message(self, tid: UUID, step: CustomerStep) -> None:
        """The customer's message: out-of-office replies come from the requester; a reply
        may come from a CC'd colleague or, now and then, from an address not on the ticket."""
        answered = self.desk.get(tid)
        if answered.erased_at is not None:
            return  # the customer asked to be forgotten: they write no more
        auto = step.move is CustomerMove.AUTO_REPLY
        sender = Sender(address=answered.requester, kind=SenderKind.REQUESTER)
        if not auto:
            # After the close a reply starts a follow-up, which has no CC list; the colleague
            # is then left out (a redelivery of their message would be refused, see the
            # report on `SupportDesk._redelivered`), and the requester answers.
            cc = () if answered.status is Status.CLOSED else answered.cc
            sender = choose_sender(self.rng, requester=answered.requester, cc=cc)
        kind = "ooo" if auto else "re"
        mid = f"<{kind}-{self.seed}-{next(self.messages)}@mail.demo.example>"

        def deliver() -> UUID:
            return self.desk.customer_reply(
                tid, body=step.body, message_id=mid, auto_submitted=auto, by=sender.address
            )

        landed = deliver()
        self.commands += 1
        if step.delivered_twice:
            self._deliver_again(landed, deliver)
        if auto:
            return
        view = self.desk.get(landed)
        if sender.kind is SenderKind.CC and view.requester != sender.address:
            self.cc_replies += 1  # landed on the ticket or its follow-up, not a ticket of its own
        if landed not in self.cases:  # a follow-up ticket
            self.new_case(landed)
        if view.status in (Status.NEW, Status.OPEN):
            ready = agent_ready_at(self.rng, self.clock.now(), view.severity, self.zone)
            self.schedule(ready, _agent(landed))
        self.watch(landed)

    # -- escalations --------------------------------------------------------------------------

    def escalate(self, tid: UUID, plan: EscalationPlan) -> None:
        """The customer asks for escalation (not on a closed or erased ticket)."""
        view = self.desk.get(tid)
        if view.is_closed or view.pending_escalation is not None or view.erased_at is not None:
            return
        self.desk.request_escalation(
            tid,
            reason=plan.reason,
            requested_severity=plan.requested_severity,
            contact=plan.contact,
        )
        self.commands += 1
        self.schedule(self.clock.now() + plan.review_after, _Task(kind="review", ticket=tid))

    def review(self, tid: UUID) -> None:
        """The manager reviews the request, if the ticket did not close meanwhile."""
        view = self.desk.get(tid)
        request = view.pending_escalation
        if view.is_closed or request is None:
            return
        requested = request.requested_severity
        decision = decide_escalation(
            self.rng,
            severity=view.severity,
            requested=None if requested is None else Severity(requested),
            assignee=view.assignee,
        )
        self.desk.review_escalation(
            tid,
            manager=MANAGER,
            accept=decision.accept,
            severity=decision.severity,
            reassign_to=decision.reassign_to,
            note=decision.note,
        )
        self.commands += 1
        self.watch(tid)

    # -- notifications and surveys --------------------------------------------------------------

    def deliver_notifications(self) -> None:
        """One run of the delivery worker; customers may answer the surveys it delivered."""
        report = deliver_notifications(self.desk, self.notifier, worker="demo-notifier")
        self.reports.append(report)
        fresh = self.notifier.delivered[self._seen_deliveries :]
        self._seen_deliveries = len(self.notifier.delivered)
        now = self.clock.now()
        for note in fresh:
            if note.kind != "survey_request":
                continue
            answer = plan_survey_answer(self.rng)
            if answer is not None:
                task = _Task(kind="survey", ticket=note.ticket_id, survey=answer)
                self.schedule(now + answer.after, task)

    def answer_survey(self, tid: UUID, answer: SurveyAnswer) -> None:
        if self.desk.get(tid).erased_at is not None:
            return
        self.desk.record_survey(tid, rating=answer.rating, comment=answer.comment)
        self.commands += 1

    # -- erasure ------------------------------------------------------------------------------

    def forget(self) -> None:
        """A customer who submitted tickets asks to be forgotten; the manager erases them."""
        if not self.requesters:
            return
        address = self.rng.choice(sorted(self.requesters))
        self.desk.forget_requester(address, by=MANAGER)
        self.commands += 1
        self.forgotten = address
        self.forgotten_at = self.clock.now()

    # -- agents -------------------------------------------------------------------------------

    def agent_turn(self, tid: UUID) -> None:
        case = self.cases[tid]
        view = self.desk.get(tid)
        move = choose_agent_move(
            self.rng,
            status=view.status,
            severity=view.severity,
            rounds=case.rounds,
            asked=case.asked,
        )
        if move is AgentMove.WAIT:
            return
        agent = view.assignee or self.rng.choice(_AGENTS)
        case.rounds += 1
        self.commands += 1
        now = self.clock.now()
        if move is AgentMove.ASSIGN:
            self.desk.assign(tid, agent=agent)
            bug = BUGS.get(view.subject)
            if bug is not None and self.rng.random() < _BUG_LINK_CHANCE:
                self.desk.link_bug(tid, reference=bug, by=agent)
                self.commands += 1
            self.schedule(now + _dt.timedelta(minutes=self.rng.randint(5, 45)), _agent(tid))
        elif move is AgentMove.REPLY:
            self.desk.reply(tid, agent=agent, body="Thanks, we are reproducing this now.")
            self.schedule(agent_ready_at(self.rng, now, view.severity, self.zone), _agent(tid))
        elif move is AgentMove.RAISE_SEVERITY:
            raised = Severity(int(view.severity) - 1)
            self.desk.change_severity(
                tid, raised, by=agent, reason="the impact is larger than reported"
            )
            self.schedule(agent_ready_at(self.rng, now, raised, self.zone), _agent(tid))
        elif move is AgentMove.REQUEST_INFO:
            case.asked += 1
            self.desk.request_info(
                tid, agent=agent, body="Could you send the logs and the exact version?"
            )
            for step in plan_customer_after_request(self.rng):
                self.schedule(now + step.after, _customer(tid, step))
        else:
            self.desk.solve(tid, agent=agent, solution="Fixed in 4.2.1; please upgrade.")
            close_due = self.desk.get(tid).close_due_at
            assert close_due is not None
            for step in plan_customer_after_solve(self.rng, close_in=close_due - now):
                self.schedule(now + step.after, _customer(tid, step))
        self.watch(tid)


def _agent(tid: UUID) -> _Task:
    return _Task(kind="agent", ticket=tid)


def _customer(tid: UUID, step: CustomerStep) -> _Task:
    return _Task(kind="customer", ticket=tid, step=step)


# -- running it -------------------------------------------------------------------------------


def _sidecars(path: Path) -> list[Path]:
    return [path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def remove_database(db_path: str | os.PathLike[str]) -> bool:
    """Remove a previous demo database (and its SQLite side files). True if there was one."""
    path = Path(db_path)
    if path.is_dir():
        msg = f"{path} is a directory, not a demo database"
        raise IsADirectoryError(msg)
    existed = path.exists()
    for file in _sidecars(path):
        file.unlink(missing_ok=True)
    return existed


def _dst_changes(start: _dt.datetime, days: int, zone: str) -> tuple[_dt.date, ...]:
    tz = ZoneInfo(zone)
    changes = []
    for number in range(days):
        day_start = add_calendar_days(start, number, zone)
        day_end = add_calendar_days(start, number + 1, zone)
        if day_end - day_start != _dt.timedelta(hours=24):
            changes.append(day_start.astimezone(tz).date())
    return tuple(changes)


def demo_policy(zone: str = ZONE) -> SupportPolicy:
    """The demo desk's policy: the defaults, with `CURRENT_MAJOR_VERSION` set."""
    return SupportPolicy(zone=zone, current_major_version=CURRENT_MAJOR_VERSION)


def run_demo(
    db_path: str | os.PathLike[str],
    *,
    seed: int = DEFAULT_SEED,
    days: int = DEFAULT_DAYS,
    tickets_per_day: int = DEFAULT_TICKETS_PER_DAY,
    progress: ProgressFn | None = None,
) -> DemoSummary:
    """Simulate `days` days of a support desk on a new SQLite file and summarise the store.

    Deterministic for a given `seed`. Refuses to write into an existing file (see
    `remove_database`), so that the counts describe this run only.
    """
    if days < 1:
        msg = f"days must be >= 1, got {days}"
        raise ValueError(msg)
    if tickets_per_day < 1:
        msg = f"tickets_per_day must be >= 1, got {tickets_per_day}"
        raise ValueError(msg)
    path = Path(db_path).absolute()
    if path.exists():
        msg = f"{path} already exists; remove it first (remove_database)"
        raise FileExistsError(msg)
    zone = ZONE
    rng = random.Random(seed)
    clock = ManualClock(START)
    end = add_calendar_days(START, days, zone)
    worker_runs = 0
    with SupportDesk(
        store=f"sqlite:///{path}", clock=clock, policy=demo_policy(zone), staff=STAFF
    ) as desk:
        sim = _Simulation(desk, clock, rng, seed=seed, zone=zone)
        sim.schedule(erasure_at(days, zone), _Task(kind="forget"))
        number = 1
        for day in range(days):
            day_start = add_calendar_days(START, day, zone)
            day_end = add_calendar_days(START, day + 1, zone)
            if progress is not None:
                progress(day + 1, days)
            clock.set(day_start)
            for submission in plan_day(
                rng, day_start, tickets=tickets_per_day, seed=seed, first_number=number
            ):
                sim.schedule(submission.at, _Task(kind="submit", submission=submission))
                number += 1
            step_end = day_start
            while step_end < day_end:
                step_end = min(step_end + WORKER_EVERY, day_end)
                sim.run_until(step_end)
                clock.set(step_end)
                desk.run_due_timers()
                worker_runs += 1
                if worker_runs % DELIVERY_EVERY == 0 or step_end == end:
                    sim.deliver_notifications()
        summary = _summarise(
            desk,
            path=path,
            seed=seed,
            days=days,
            tickets_per_day=tickets_per_day,
            zone=zone,
            end=end,
            commands=sim.commands,
            worker_runs=worker_runs,
            duplicates=(sim.duplicates_delivered, sim.duplicates_absorbed),
            reports=sim.reports,
            sim=sim,
        )
    return summary


def _queue_entry(view: TicketView) -> QueueEntry:
    return QueueEntry(
        ticket=view.id,
        severity=view.severity,
        status=view.status,
        assignee=view.assignee,
        update_due_at=view.update_due_at,
        breached=view.sla_breached,
        subject=view.subject,
    )


def _summarise(
    desk: SupportDesk,
    *,
    path: Path,
    seed: int,
    days: int,
    tickets_per_day: int,
    zone: str,
    end: _dt.datetime,
    commands: int,
    worker_runs: int,
    duplicates: tuple[int, int],
    reports: Sequence[DeliveryReport],
    sim: _Simulation,
) -> DemoSummary:
    statuses: Counter[Status] = Counter()
    severities: Counter[Severity] = Counter()
    channels: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    ratings: Counter[int] = Counter()
    auto_solved = auto_replies = events = 0
    with_version = unsupported = status_updates = breached_tickets = 0
    accepted = declined = waiting = escalation_changes = reassignments = 0
    cc_tickets = erased_tickets = 0
    references: list[str] = []
    best: tuple[tuple[bool, int], UUID] | None = None
    for tid in desk.ticket_ids():
        view = desk.get(tid)
        statuses[view.status] += 1
        severities[view.severity] += 1
        channels[view.channel] += 1
        with_version += view.product_version is not None
        unsupported += view.supported is False
        waiting += view.pending_escalation is not None
        erased_tickets += view.erased_at is not None
        history = desk.history(tid)
        events += len(history)
        names = {type(e).__name__ for e in history}
        breached_tickets += "UpdateOverdue" in names
        cc_tickets += "CcAdded" in names
        for event in history:
            kinds[type(event).__name__] += 1
            if isinstance(event, Ticket.Solved) and event.automatic:
                auto_solved += 1
            elif isinstance(event, Ticket.Responded):
                auto_replies += event.auto_submitted
                status_updates += event.role == "agent" and event.body == STATUS_UPDATE
            elif isinstance(event, Ticket.EscalationReviewed):
                accepted += event.accepted
                declined += not event.accepted
            elif isinstance(event, Ticket.SeverityChanged):
                escalation_changes += event.reason.startswith("escalation:")
            elif isinstance(event, Ticket.Assigned):
                reassignments += event.previous not in (None, event.agent)
            elif isinstance(event, Ticket.BugLinked) and event.reference not in references:
                references.append(event.reference)
            elif isinstance(event, Ticket.SurveyAnswered):
                ratings[event.rating] += 1
        # the example: a ticket a CC'd colleague answered on, if any, with the most kinds of
        # events, short enough to read, and not erased (its texts read [erased])
        cc_replied = any(
            isinstance(e, Ticket.Responded)
            and e.role == "customer"
            and not e.auto_submitted
            and e.by != view.requester
            for e in history
        )
        score = (cc_replied, len(names) + (2 if "FollowUpCreated" in names else 0))
        readable = view.erased_at is None
        if readable and len(history) <= 18 and (best is None or score > best[0]):
            best = (score, tid)
    timeline: tuple[TimelineEntry, ...] = ()
    example: UUID | None = None
    subject = ""
    follow_ups: tuple[UUID, ...] = ()
    if best is not None:
        example = best[1]
        view = desk.get(example)
        subject = f"{view.subject} ({view.severity.name}, {view.requester}, via {view.channel})"
        follow_ups = view.follow_ups
        timeline = tuple(
            TimelineEntry(event=type(e).__name__, at=e.timestamp, detail=_detail(e, view.requester))
            for e in desk.history(example)
        )
    queue = desk.queue()
    last = reports[-1] if reports else DeliveryReport()
    return DemoSummary(
        db_path=str(path),
        seed=seed,
        days=days,
        tickets_per_day=tickets_per_day,
        zone=zone,
        start=START,
        end=end,
        tickets=sum(statuses.values()),
        by_status=tuple((s, statuses[s]) for s in Status),
        by_severity=tuple((s, severities[s]) for s in Severity),
        by_channel=tuple(sorted(channels.items())),
        auto_solved=auto_solved,
        auto_closed=kinds["Closed"],
        reopened=kinds["Reopened"],
        follow_ups=kinds["FollowUpCreated"],
        duplicates_delivered=duplicates[0],
        duplicates_absorbed=duplicates[1],
        auto_replies=auto_replies,
        events=events,
        commands=commands,
        worker_runs=worker_runs,
        dst_changes=_dst_changes(START, days, zone),
        with_version=with_version,
        unsupported=unsupported,
        status_updates=status_updates,
        sla_breaches=kinds["UpdateOverdue"],
        breached_tickets=breached_tickets,
        escalations_requested=kinds["EscalationRequested"],
        escalations_accepted=accepted,
        escalations_declined=declined,
        escalations_waiting=waiting,
        escalation_severity_changes=escalation_changes,
        reassignments=reassignments,
        bugs=tuple(
            (reference, len(desk.tickets_for_bug(reference))) for reference in sorted(references)
        ),
        surveys_answered=kinds["SurveyAnswered"],
        survey_ratings=tuple((rating, ratings[rating]) for rating in range(1, 6)),
        notifications_requested=sum(r.requested for r in reports),
        notifications_delivered=sum(r.delivered for r in reports),
        notifications_retried=sum(r.retried for r in reports),
        notifications_failed=sum(r.failed for r in reports),
        notifications_pending=last.pending,
        delivery_runs=len(reports),
        cc_tickets=cc_tickets,
        cc_replies=sim.cc_replies,
        stranger_replies=sum(m.outcome == "new_ticket" for m in desk.stranger_messages()),
        erased_requesters=int(sim.forgotten is not None),
        erased_tickets=erased_tickets,
        erased_at=sim.forgotten_at,
        erased_address=sim.forgotten,
        queue_size=len(queue),
        queue_top=tuple(_queue_entry(view) for view in queue[:QUEUE_TOP]),
        example_ticket=example,
        example_subject=subject,
        example_follow_ups=follow_ups,
        timeline=timeline,
    )


def _detail(event: object, requester: str) -> str:
    """A few words about one stored event of `requester`'s ticket, for the example timeline."""
    if isinstance(event, Ticket.Submitted):
        origin = f", follow-up of {str(event.follow_up_of)[:8]}" if event.follow_up_of else ""
        version = ""
        if event.product_version is not None:
            flag = "" if event.supported is not False else ", unsupported"
            version = f", version {event.product_version}{flag}"
        return f"{Severity(event.severity).name} via {event.channel}{version}{origin}"
    if isinstance(event, Ticket.Assigned):
        return f"to {event.agent} -> {event.status}"
    if isinstance(event, Ticket.Responded):
        if event.role == "agent":
            if event.body == STATUS_UPDATE:
                return f"{event.by} sent a status update -> {event.status}"
            what = "asked for information" if event.asks_for_input else "replied"
            return f"{event.by} {what} -> {event.status}"
        if event.auto_submitted:
            return f"auto-reply from {event.by}, status stays {event.status}"
        if event.by != requester:
            return f"{event.by} (CC) replied -> {event.status}"
        return f"customer replied -> {event.status}"
    if isinstance(event, Ticket.Solved):
        return "automatically, no answer for 7 days" if event.automatic else f"by {event.by}"
    if isinstance(event, Ticket.Reopened):
        return f"by {event.by} ({event.reason})"
    if isinstance(event, Ticket.Closed):
        return "automatically, 3 calendar days after solved; survey requested"
    if isinstance(event, Ticket.FollowUpCreated):
        return f"reply after close -> new ticket {str(event.follow_up_id)[:8]}"
    if isinstance(event, Ticket.SeverityChanged):
        return (
            f"{Severity(event.previous).name} -> {Severity(event.severity).name} "
            f"by {event.by}: {event.reason}"
        )
    if isinstance(event, Ticket.UpdateOverdue):
        return f"no agent update by {event.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if isinstance(event, Ticket.EscalationRequested):
        wanted = event.requested_severity
        target = f" to {Severity(wanted).name}" if wanted is not None else ""
        return f"{event.by} asks{target}: {event.reason}"
    if isinstance(event, Ticket.EscalationReviewed):
        verdict = "accepted" if event.accepted else "declined"
        return f"{verdict} by {event.manager}: {event.note}"
    if isinstance(event, Ticket.BugLinked):
        return f"{event.reference} by {event.by}"
    if isinstance(event, Ticket.SurveyAnswered):
        return f"rating {event.rating}/5: {event.comment}"
    if isinstance(event, Ticket.CcAdded | Ticket.CcRemoved):
        return f"{event.address} by the {event.role}"
    if isinstance(event, Ticket.Erased):
        return f"personal data erased at the request of {event.by}"
    return ""


# -- formatting -------------------------------------------------------------------------------


def _local(at: _dt.datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M %Z")


def _counts(pairs: Sequence[tuple[Any, int]]) -> str:
    return ", ".join(f"{getattr(key, 'name', key)} {count}" for key, count in pairs)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _erased(s: DemoSummary) -> str:
    if s.erased_at is None:
        return "0 requesters  (nobody had submitted before the erasure request)"
    return (
        f"{_plural(s.erased_requesters, 'requester')} ({_plural(s.erased_tickets, 'ticket')})"
        f"  (forget_requester on {_local(s.erased_at, s.zone)}: personal fields read [erased])"
    )


def format_summary(summary: DemoSummary) -> str:
    """The summary as text for people: counts, the triage queue, then one ticket's timeline."""
    s = summary
    created = s.tickets - s.follow_ups
    dst = ", ".join(d.isoformat() for d in s.dst_changes) or "none"
    supported = f"{CURRENT_MAJOR_VERSION - 1}.x and {CURRENT_MAJOR_VERSION}.x"
    bugs = ", ".join(f"{ref} on {n} tickets" for ref, n in s.bugs) or "none"
    average = "-" if s.average_rating is None else f"{s.average_rating:.1f}"
    ratings = ", ".join(f"{r}: {n}" for r, n in reversed(s.survey_ratings))
    lines = [
        f"supportflow demo: {s.days} simulated days, seed {s.seed}, "
        f"{s.tickets_per_day} tickets per business day",
        "",
        f"  period               {_local(s.start, s.zone)} -> {_local(s.end, s.zone)} ({s.zone})",
        f"  DST changes crossed  {dst}",
        f"  tickets              {s.tickets} ({created} submitted, {s.follow_ups} follow-ups)",
        f"    by status          {_counts(s.by_status)}",
        f"    by severity        {_counts(s.by_severity)}",
        f"    by channel         {_counts(s.by_channel)}",
        f"  auto-solved          {s.auto_solved}  (PENDING with no answer for 7 days)",
        f"  auto-closed          {s.auto_closed}  (3 calendar days after SOLVED)",
        f"  reopened             {s.reopened}  (customer replied before the close)",
        f"  follow-ups created   {s.follow_ups}  (customer replied after the close)",
        f"  duplicates absorbed  {s.duplicates_absorbed} of {s.duplicates_delivered}"
        "  (same message delivered twice)",
        f"  auto-replies         {s.auto_replies}  (out-of-office, recorded, changed nothing)",
        f"  CC replies           {s.cc_replies}  (colleagues CC'd at submit on"
        f" {_plural(s.cc_tickets, 'ticket')}; their replies landed)",
        f"  stranger replies     {s.stranger_replies} (new tickets)  (sender not on the ticket:"
        " a plus-address or a colleague nobody CC'd)",
        f"  unsupported version  {s.unsupported} of {s.with_version} tickets that named one"
        f"  (supported: {supported})",
        f"  update SLA breaches  {s.sla_breaches} on {s.breached_tickets} tickets"
        f"  (UpdateOverdue; {s.status_updates} status updates sent in time or late)",
        f"  escalations          {s.escalations_requested} requested: {s.escalations_accepted}"
        f" accepted, {s.escalations_declined} declined, {s.escalations_waiting} not reviewed"
        f"  ({s.escalation_severity_changes} severities raised, {s.reassignments} reassigned)",
        f"  bug links            {bugs}",
        f"  surveys answered     {s.surveys_answered} of {s.auto_closed} closed tickets"
        f"  (average {average}; {ratings})",
        f"  notifications        {s.notifications_delivered} delivered of"
        f" {s.notifications_requested} requested: {s.notifications_retried} retried,"
        f" {s.notifications_failed} failed for good, {s.notifications_pending} pending"
        f"  ({s.delivery_runs} delivery runs)",
        f"  erased               {_erased(s)}",
        f"  events stored        {s.events}  (from {s.commands} commands and"
        f" {s.worker_runs} worker runs)",
        f"  database             {s.db_path}",
    ]
    lines += [
        "",
        f"Triage queue at the end: {s.queue_size} active tickets, the first {len(s.queue_top)}",
        f"  {'severity':<9} {'status':<8} {'assignee':<9} {'update due (local)':<25}"
        f" {'breached':<9} subject",
    ]
    for row in s.queue_top:
        due = "-" if row.update_due_at is None else _local(row.update_due_at, s.zone)
        lines.append(
            f"  {row.severity.name:<9} {row.status.name:<8} {row.assignee or '-':<9}"
            f" {due:<25} {'yes' if row.breached else 'no':<9} {row.subject}"
        )
    if s.example_ticket is not None:
        lines += [
            "",
            f"Example ticket {s.example_ticket}",
            f"  {s.example_subject}",
            f"  {'event':<19} {'UTC':<17} {'local (' + s.zone + ')':<25} detail",
        ]
        for entry in s.timeline:
            utc = entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            lines.append(
                f"  {entry.event:<19} {utc:<17} {_local(entry.at, s.zone):<25} {entry.detail}"
            )
        for follow_up in s.example_follow_ups:
            lines.append(f"  follow-up ticket: {follow_up}")
    lines += [
        "",
        "Open the store yourself:",
        "  from datetime import datetime",
        "  from supportflow import FixedClock, SupportDesk",
        f"  desk = SupportDesk(store='sqlite:///{s.db_path}',"
        f" clock=FixedClock(datetime.fromisoformat('{s.end.isoformat()}')))",
    ]
    return "\n".join(lines)
