"""The `supportflow demo`: a simulated support desk on a SQLite file.

Customers submit tickets, agents work them, customers answer in time, late or never, out-of-office
auto-replies arrive and some mails are delivered twice. The clock is a `ManualClock` that starts on
a Monday in March 2026, so the run crosses the US daylight-saving change of 2026-03-08, and time
advances hour by hour while `run_due_timers()` runs like a worker.

The functions that decide the next step (`plan_day`, `choose_agent_move`, `plan_customer_after_*`,
`agent_ready_at`) are pure: they take a `random.Random` and instants, and never touch the desk.
`run_demo` drives a `SupportDesk` with them and then counts what the store holds.
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
from .policy import Severity, Status, SupportPolicy, add_calendar_days
from .ticket import Ticket

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_SEED",
    "DEFAULT_TICKETS_PER_DAY",
    "START",
    "AgentMove",
    "CustomerStep",
    "DemoSummary",
    "Submission",
    "TimelineEntry",
    "agent_ready_at",
    "choose_agent_move",
    "format_summary",
    "is_business_time",
    "plan_customer_after_request",
    "plan_customer_after_solve",
    "plan_day",
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
MAX_AGENT_ROUNDS = 4
"""After this many agent turns on one ticket the agent gives a solution."""

ProgressFn = Callable[[int, int], None]
"""`progress(day, days)`: called when simulated day `day` (1-based) begins."""

# -- the cast --------------------------------------------------------------------------------

_AGENTS = ("bob", "carol", "dave", "erin")
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
    {"product": "Backup Server", "version": "4.2", "os": "Ubuntu 24.04"},
    {"product": "Backup Server", "version": "3.9", "os": "Windows Server 2022"},
    {"product": "Sync Client", "version": "2.7", "os": "macOS 15"},
    {"product": "Sync Client", "version": "2.6", "os": "Windows 11"},
)
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
    tags: tuple[str, ...]
    message_id: str
    delivered_twice: bool


class AgentMove(enum.Enum):
    """What an agent does when a ticket comes up in the queue."""

    ASSIGN = "assign"
    REPLY = "reply"
    REQUEST_INFO = "request_info"
    SOLVE = "solve"
    ESCALATE = "escalate"
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
    makes the ticket ids deterministic; one email in eight is delivered twice.
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
        product = rng.choice(_PRODUCTS)
        tags = tuple(sorted(rng.sample(_TAGS, rng.randint(0, 2))))
        domain = {
            Channel.WEB: "forms.demo.example",
            Channel.EMAIL: "mail.demo.example",
            Channel.PHONE: "calls.demo.example",
        }[channel]
        out.append(
            Submission(
                at=at,
                requester=rng.choice(_CUSTOMERS),
                subject=subject,
                description=f"{subject}. {severity.definition}",
                severity=severity,
                channel=channel,
                product=tuple(sorted(product.items())),
                tags=tags,
                message_id=f"<{channel.value}-{seed}-{number}@{domain}>",
                delivered_twice=channel is Channel.EMAIL and rng.random() < 0.125,
            )
        )
    out.sort(key=lambda s: s.at)
    return out


def choose_agent_move(
    rng: random.Random, *, status: Status, severity: Severity, rounds: int, asked: int
) -> AgentMove:
    """What the agent does with a ticket in `status` after `rounds` turns, `asked` of them
    requests for information. New tickets are assigned; open ones get an answer, a question
    (at most twice), an escalation, or a solution (always after `MAX_AGENT_ROUNDS` turns)."""
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
        moves.append(AgentMove.ESCALATE)
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


# -- the summary ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TimelineEntry:
    """One event of the example ticket."""

    event: str
    at: _dt.datetime
    """When it happened (aware UTC)."""
    detail: str


@attrs.frozen(kw_only=True)
class DemoSummary:
    """What a demo run left in the store, counted from the ticket histories."""

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
    example_ticket: UUID | None
    example_subject: str
    example_follow_ups: tuple[UUID, ...]
    timeline: tuple[TimelineEntry, ...]


# -- the simulation ---------------------------------------------------------------------------


@attrs.define
class _Case:
    """What the simulation remembers about a ticket (the desk holds the truth)."""

    rounds: int = 0
    asked: int = 0


@attrs.frozen(kw_only=True)
class _Task:
    kind: str
    ticket: UUID | None = None
    submission: Submission | None = None
    step: CustomerStep | None = None


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
            elif task.kind == "agent":
                assert task.ticket is not None
                self.agent_turn(task.ticket)
            else:
                assert task.ticket is not None
                assert task.step is not None
                self.customer_message(task.ticket, task.step)

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
        def deliver() -> UUID:
            return self.desk.submit(
                requester=s.requester,
                subject=s.subject,
                description=s.description,
                severity=s.severity,
                channel=s.channel.value,
                product=dict(s.product),
                tags=s.tags,
                message_id=s.message_id,
            )

        tid = deliver()
        self.commands += 1
        if s.delivered_twice:
            self._deliver_again(tid, deliver)
        self.cases[tid] = _Case()
        self.schedule(
            agent_ready_at(self.rng, self.clock.now(), s.severity, self.zone), _agent(tid)
        )

    def customer_message(self, tid: UUID, step: CustomerStep) -> None:
        auto = step.move is CustomerMove.AUTO_REPLY
        kind = "ooo" if auto else "re"
        mid = f"<{kind}-{self.seed}-{next(self.messages)}@mail.demo.example>"

        def deliver() -> UUID:
            return self.desk.customer_reply(
                tid, body=step.body, message_id=mid, auto_submitted=auto
            )

        landed = deliver()
        self.commands += 1
        if step.delivered_twice:
            self._deliver_again(landed, deliver)
        if auto:
            return
        view = self.desk.get(landed)
        if landed not in self.cases:  # a follow-up ticket
            self.cases[landed] = _Case()
        if view.status in (Status.NEW, Status.OPEN):
            ready = agent_ready_at(self.rng, self.clock.now(), view.severity, self.zone)
            self.schedule(ready, _agent(landed))

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
            self.schedule(now + _dt.timedelta(minutes=self.rng.randint(5, 45)), _agent(tid))
        elif move is AgentMove.REPLY:
            self.desk.reply(tid, agent=agent, body="Thanks, we are reproducing this now.")
            self.schedule(agent_ready_at(self.rng, now, view.severity, self.zone), _agent(tid))
        elif move is AgentMove.ESCALATE:
            raised = Severity(int(view.severity) - 1)
            self.desk.change_severity(
                tid, raised, by="manager", reason="customer requested escalation"
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
        store=f"sqlite:///{path}", clock=clock, policy=SupportPolicy(zone=zone)
    ) as desk:
        sim = _Simulation(desk, clock, rng, seed=seed, zone=zone)
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
        )
    return summary


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
) -> DemoSummary:
    statuses: Counter[Status] = Counter()
    severities: Counter[Severity] = Counter()
    channels: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    auto_solved = auto_replies = events = 0
    best: tuple[int, int, UUID] | None = None
    for position, tid in enumerate(desk.ticket_ids()):
        view = desk.get(tid)
        statuses[view.status] += 1
        severities[view.severity] += 1
        channels[view.channel] += 1
        history = desk.history(tid)
        events += len(history)
        names = {type(e).__name__ for e in history}
        for event in history:
            kinds[type(event).__name__] += 1
            if isinstance(event, Ticket.Solved) and event.automatic:
                auto_solved += 1
            if isinstance(event, Ticket.Responded) and event.auto_submitted:
                auto_replies += 1
        # the example: the ticket with the most kinds of events, short enough to read
        score = len(names) + (2 if "FollowUpCreated" in names else 0)
        if len(history) <= 16 and (best is None or score > best[0]):
            best = (score, -position, tid)
    timeline: tuple[TimelineEntry, ...] = ()
    example: UUID | None = None
    subject = ""
    follow_ups: tuple[UUID, ...] = ()
    if best is not None:
        example = best[2]
        view = desk.get(example)
        subject = f"{view.subject} ({view.severity.name}, {view.requester}, via {view.channel})"
        follow_ups = view.follow_ups
        timeline = tuple(
            TimelineEntry(event=type(e).__name__, at=e.timestamp, detail=_detail(e))
            for e in desk.history(example)
        )
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
        example_ticket=example,
        example_subject=subject,
        example_follow_ups=follow_ups,
        timeline=timeline,
    )


def _detail(event: object) -> str:
    """A few words about one stored event, for the example timeline."""
    if isinstance(event, Ticket.Submitted):
        origin = f", follow-up of {str(event.follow_up_of)[:8]}" if event.follow_up_of else ""
        return f"{Severity(event.severity).name} via {event.channel}{origin}"
    if isinstance(event, Ticket.Assigned):
        return f"to {event.agent} -> {event.status}"
    if isinstance(event, Ticket.Responded):
        if event.role == "agent":
            what = "asked for information" if event.asks_for_input else "replied"
            return f"{event.by} {what} -> {event.status}"
        if event.auto_submitted:
            return f"auto-reply from {event.by}, status stays {event.status}"
        return f"customer replied -> {event.status}"
    if isinstance(event, Ticket.Solved):
        return "automatically, no answer for 7 days" if event.automatic else f"by {event.by}"
    if isinstance(event, Ticket.Reopened):
        return f"by {event.by} ({event.reason})"
    if isinstance(event, Ticket.Closed):
        return "automatically, 3 calendar days after solved"
    if isinstance(event, Ticket.FollowUpCreated):
        return f"reply after close -> new ticket {str(event.follow_up_id)[:8]}"
    if isinstance(event, Ticket.SeverityChanged):
        return (
            f"{Severity(event.previous).name} -> {Severity(event.severity).name} "
            f"by {event.by}: {event.reason}"
        )
    return ""


# -- formatting -------------------------------------------------------------------------------


def _local(at: _dt.datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M %Z")


def _counts(pairs: Sequence[tuple[Any, int]]) -> str:
    return ", ".join(f"{getattr(key, 'name', key)} {count}" for key, count in pairs)


def format_summary(summary: DemoSummary) -> str:
    """The summary as text for people: counts, then one ticket's timeline."""
    s = summary
    created = s.tickets - s.follow_ups
    dst = ", ".join(d.isoformat() for d in s.dst_changes) or "none"
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
        f"  events stored        {s.events}  (from {s.commands} commands and"
        f" {s.worker_runs} worker runs)",
        f"  database             {s.db_path}",
    ]
    if s.example_ticket is not None:
        lines += [
            "",
            f"Example ticket {s.example_ticket}",
            f"  {s.example_subject}",
            f"  {'event':<16} {'UTC':<17} {'local (' + s.zone + ')':<25} detail",
        ]
        for entry in s.timeline:
            utc = entry.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            lines.append(
                f"  {entry.event:<16} {utc:<17} {_local(entry.at, s.zone):<25} {entry.detail}"
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
