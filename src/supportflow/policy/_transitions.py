"""The transition table: which action is allowed in which status, and where it leads.

This is data. The aggregate, the timers, the docs' diagram and the property tests all
read it, so they cannot drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import attrs

from ._model import Action, Status

__all__ = ["DEFAULT_TRANSITIONS", "Transition", "transition_map"]


@attrs.frozen(kw_only=True)
class Transition:
    """One row of the table: `action` in `status` leads to `to`.

    `reopens`: a `Reopened` event is recorded first (the ticket was `SOLVED`).
    `records`: False when the command is already satisfied and nothing is recorded.
    `follows_up`: the action starts a follow-up ticket instead of changing this one.
    """

    status: Status = attrs.field(validator=attrs.validators.instance_of(Status))
    action: Action = attrs.field(validator=attrs.validators.instance_of(Action))
    to: Status = attrs.field(validator=attrs.validators.instance_of(Status))
    reopens: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    records: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    follows_up: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))


def _row(status: Status, action: Action, to: Status | None = None, **kw: bool) -> Transition:
    return Transition(status=status, action=action, to=status if to is None else to, **kw)


_N, _O, _P, _S, _C = Status.NEW, Status.OPEN, Status.PENDING, Status.SOLVED, Status.CLOSED

DEFAULT_TRANSITIONS: tuple[Transition, ...] = (
    # assign
    _row(_N, Action.ASSIGN, _O),
    _row(_O, Action.ASSIGN),
    _row(_P, Action.ASSIGN),
    _row(_S, Action.ASSIGN),
    # agent reply
    _row(_N, Action.REPLY, _O),
    _row(_O, Action.REPLY),
    _row(_P, Action.REPLY, _O),
    _row(_S, Action.REPLY, _O, reopens=True),
    # agent asks the customer for input
    _row(_N, Action.REQUEST_INFO, _P),
    _row(_O, Action.REQUEST_INFO, _P),
    _row(_P, Action.REQUEST_INFO, _P),
    _row(_S, Action.REQUEST_INFO, _P, reopens=True),
    # agent gives a solution
    _row(_N, Action.SOLVE, _S),
    _row(_O, Action.SOLVE, _S),
    _row(_P, Action.SOLVE, _S),
    _row(_S, Action.SOLVE, records=False),
    # severity
    _row(_N, Action.CHANGE_SEVERITY),
    _row(_O, Action.CHANGE_SEVERITY),
    _row(_P, Action.CHANGE_SEVERITY),
    _row(_S, Action.CHANGE_SEVERITY),
    # customer reply
    _row(_N, Action.CUSTOMER_REPLY),
    _row(_O, Action.CUSTOMER_REPLY),
    _row(_P, Action.CUSTOMER_REPLY, _O),
    _row(_S, Action.CUSTOMER_REPLY, _O, reopens=True),
    _row(_C, Action.CUSTOMER_REPLY, follows_up=True),
    # auto-submitted customer message: recorded, never changes anything
    _row(_N, Action.AUTO_REPLY),
    _row(_O, Action.AUTO_REPLY),
    _row(_P, Action.AUTO_REPLY),
    _row(_S, Action.AUTO_REPLY),
    _row(_C, Action.AUTO_REPLY),
    # timers
    _row(_P, Action.AUTO_SOLVE, _S),
    _row(_S, Action.AUTO_CLOSE, _C),
    _row(_N, Action.UPDATE_OVERDUE),
    _row(_O, Action.UPDATE_OVERDUE),
    # escalation: requested by the customer, reviewed by a manager, while the ticket is active
    _row(_N, Action.REQUEST_ESCALATION),
    _row(_O, Action.REQUEST_ESCALATION),
    _row(_P, Action.REQUEST_ESCALATION),
    _row(_S, Action.REQUEST_ESCALATION),
    _row(_N, Action.REVIEW_ESCALATION),
    _row(_O, Action.REVIEW_ESCALATION),
    _row(_P, Action.REVIEW_ESCALATION),
    _row(_S, Action.REVIEW_ESCALATION),
    # bug links are bookkeeping: allowed in every status, also on a closed ticket
    _row(_N, Action.LINK_BUG),
    _row(_O, Action.LINK_BUG),
    _row(_P, Action.LINK_BUG),
    _row(_S, Action.LINK_BUG),
    _row(_C, Action.LINK_BUG),
    # the satisfaction survey is sent when the ticket closes
    _row(_C, Action.ANSWER_SURVEY),
)


_TIMER_TARGETS = {Action.AUTO_SOLVE: Status.SOLVED, Action.AUTO_CLOSE: Status.CLOSED}
_KEEPS_STATUS = frozenset(
    {
        Action.AUTO_REPLY,
        Action.UPDATE_OVERDUE,
        Action.REQUEST_ESCALATION,
        Action.REVIEW_ESCALATION,
        Action.LINK_BUG,
        Action.ANSWER_SURVEY,
    }
)


def _check_row(row: Transition) -> None:
    """The invariants every lifecycle keeps, whatever the table says."""
    where = f"row {row.action.value} in {row.status.name}"
    if not isinstance(row, Transition):
        msg = f"transition table rows must be Transition values, got {row!r}"
        raise TypeError(msg)
    if row.to is Status.NEW and row.status is not Status.NEW:
        msg = f"{where}: a ticket never returns to NEW"
        raise ValueError(msg)
    if row.status is Status.CLOSED and row.to is not Status.CLOSED:
        msg = f"{where}: CLOSED is final (a reply to a closed ticket creates a follow-up)"
        raise ValueError(msg)
    if row.follows_up and (row.status, row.action) != (Status.CLOSED, Action.CUSTOMER_REPLY):
        msg = f"{where}: only a customer reply to a CLOSED ticket creates a follow-up"
        raise ValueError(msg)
    if row.reopens and (row.status is not Status.SOLVED or row.to is Status.SOLVED):
        msg = f"{where}: only a SOLVED ticket can be reopened, into an active status"
        raise ValueError(msg)
    target = _TIMER_TARGETS.get(row.action)
    if target is not None and row.to is not target:
        msg = f"{where}: the {row.action.value} timer always leads to {target.name}"
        raise ValueError(msg)
    if row.action in _KEEPS_STATUS and row.to is not row.status:
        msg = f"{where}: {row.action.value} never changes the status"
        raise ValueError(msg)


@functools.cache
def _index(rows: tuple[Transition, ...]) -> Mapping[tuple[Status, Action], Transition]:
    table: dict[tuple[Status, Action], Transition] = {}
    for row in rows:
        _check_row(row)
        key = (row.status, row.action)
        if key in table:
            msg = f"the transition table has two rows for {row.action.value} in {row.status.name}"
            raise ValueError(msg)
        table[key] = row
    return table


def transition_map(rows: Iterable[Transition]) -> Mapping[tuple[Status, Action], Transition]:
    """The table as a mapping `(status, action) -> Transition`; missing keys are refused."""
    return _index(tuple(rows))
