"""Histories: commands with the time that passes before each, and how to play them on desks.

A history refers to tickets by their index in `desk.ticket_ids()` (modulo how many there are),
so every generated history is valid on any desk: its first step always submits a ticket.
Message ids come from small integer keys, so equal keys are repeated deliveries of one message.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import attrs

from ..clock import ManualClock
from ..desk import SupportDesk
from ..errors import TransitionRejected
from ..policy import Severity
from ..views import TicketView

__all__ = [
    "AGENT_COMMAND_NAMES",
    "Agent",
    "Command",
    "CustomerReply",
    "Outcome",
    "Step",
    "Submit",
    "Wait",
    "WaitForDue",
    "facts",
    "perform",
    "play",
    "reply_message_id",
    "submit_message_id",
    "wait_target",
]

SECOND = _dt.timedelta(seconds=1)
AGENT_COMMAND_NAMES = ("assign", "reply", "request_info", "solve", "change_severity")


@attrs.frozen
class Wait:
    """Let `seconds` of elapsed time pass."""

    seconds: int


@attrs.frozen
class WaitForDue:
    """Move to the armed timer's due instant of the `ticket`-th ticket, plus `offset` seconds
    (no wait if it has no armed timer, or that instant is not in the future)."""

    ticket: int
    offset: int


@attrs.frozen
class Submit:
    """A customer submits a ticket; the same `key` is another delivery of the same message."""

    key: int


@attrs.frozen
class Agent:
    """An agent command (one of `AGENT_COMMAND_NAMES`) on the `ticket`-th ticket."""

    command: str
    ticket: int
    severity: Severity = Severity.MEDIUM
    """The new severity of a `change_severity`."""


@attrs.frozen
class CustomerReply:
    """A customer message on the `ticket`-th ticket; `key` None means no message id."""

    ticket: int
    auto_submitted: bool
    key: int | None


Command = Submit | Agent | CustomerReply
Outcome = tuple[Any, ...]
"""What a command did: ("submitted", id), ("landed", id), ("done", name, id), or
("rejected", ticket id, status, action, allowed actions)."""


@attrs.frozen
class Step:
    """Time passes (`wait`), the worker runs at `sweeps` moments within it, then `command`."""

    wait: Wait | WaitForDue
    sweeps: tuple[int, ...]
    """Moments within the wait, in thousandths of it, at which the worker runs."""
    command: Command


def submit_message_id(key: int) -> str:
    return f"submit-{key}@example.com"


def reply_message_id(key: int) -> str:
    return f"reply-{key}@example.com"


def _armed_due(view: TicketView) -> _dt.datetime | None:
    return view.solve_due_at if view.solve_due_at is not None else view.close_due_at


def wait_target(desk: SupportDesk, now: _dt.datetime, wait: Wait | WaitForDue) -> _dt.datetime:
    """The instant `wait` leads to from `now` on `desk`."""
    if isinstance(wait, Wait):
        return now + wait.seconds * SECOND
    tids = list(desk.ticket_ids())
    if not tids:
        return now
    due = _armed_due(desk.get(tids[wait.ticket % len(tids)]))
    if due is None or due + wait.offset * SECOND <= now:
        return now
    return due + wait.offset * SECOND


def perform(desk: SupportDesk, command: Command) -> Outcome:
    """Run `command` on `desk`; the outcome is its result, or the facts of its refusal."""
    if isinstance(command, Submit):
        tid = desk.submit(
            requester="ann@example.com",
            subject="Cannot restore",
            message_id=submit_message_id(command.key),
        )
        return ("submitted", tid)
    tids = list(desk.ticket_ids())
    tid = tids[command.ticket % len(tids)]
    try:
        if isinstance(command, CustomerReply):
            mid = None if command.key is None else reply_message_id(command.key)
            landed = desk.customer_reply(
                tid, body="more", message_id=mid, auto_submitted=command.auto_submitted
            )
            return ("landed", landed)
        if command.command == "assign":
            desk.assign(tid, agent="bob")
        elif command.command == "reply":
            desk.reply(tid, agent="bob", body="Looking into it")
        elif command.command == "request_info":
            desk.request_info(tid, agent="bob", body="Which version?")
        elif command.command == "solve":
            desk.solve(tid, agent="bob", solution="Reinstall")
        else:
            desk.change_severity(tid, command.severity, by="bob", reason="impact")
    except TransitionRejected as error:
        return ("rejected", error.ticket_id, error.status, error.action, error.allowed)
    return ("done", command.command, tid)


def play(
    history: Sequence[Step],
    clock: ManualClock,
    *desks: SupportDesk,
    run_worker: Sequence[bool] | None = None,
) -> list[tuple[Outcome, ...]]:
    """Play `history` in lockstep on `desks` sharing `clock`; returns each step's outcomes,
    one per desk. Desk `i` runs its timer worker at each step's sweep moments when
    `run_worker[i]` (default: every desk does)."""
    workers = [True] * len(desks) if run_worker is None else list(run_worker)
    if len(workers) != len(desks):
        raise ValueError("run_worker needs one flag per desk")
    outcomes: list[tuple[Outcome, ...]] = []
    for step in history:
        now = clock.now()
        target = wait_target(desks[0], now, step.wait)
        for moment in step.sweeps:
            clock.set(now + (target - now) * moment // 1000)
            for desk, worker in zip(desks, workers, strict=True):
                if worker:
                    desk.run_due_timers()
        clock.set(target)
        outcomes.append(tuple(perform(desk, step.command) for desk in desks))
    return outcomes


_BOOKKEEPING = frozenset({"written_at", "previous_hash"})
"""When an automatic event was written, and the hash chain that covers it: not facts of the
lifecycle (two desks whose workers ran at different moments differ only there)."""


def facts(desk: SupportDesk, tid: UUID) -> list[tuple[str, dict[str, Any]]]:
    """The ticket's events as (class name, fields), without the `written_at` bookkeeping
    (which records when an automatic event was written, so it depends on the worker)."""
    return [
        (type(event).__name__, {k: v for k, v in vars(event).items() if k not in _BOOKKEEPING})
        for event in desk.history(tid)
    ]
