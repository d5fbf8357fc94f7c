"""A reference model of the default lifecycle: statuses, the two timers and follow-ups, and
who may act on each ticket.

Written from the rules in DESIGN §1 and docs/security.md alone, so that it can judge the
engine: it imports nothing from `supportflow.policy` and computes due instants itself with
`zoneinfo` (PEP 495 folds), while the policy uses pendulum. It takes a policy's *numbers* (zone
and day counts) as input (`Rules.of(policy)`), never its functions or its transition table: it
models the default table only. The permission table is data, so the model reads it as data
(`Permissions.of(policy)`: action and role names) and decides roles itself: it compares
addresses in its own normal form (`normal_address`: NFC, then lower case), knows each ticket's
requester and CC list, which requesters were erased, and what a stranger's reply does.

>>> from datetime import UTC, datetime
>>> solved = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)  # Fri 10:00 CST
>>> calendar_days_later(solved, 3, "America/Chicago")  # Mon 10:00 CDT: 71 hours later
datetime.datetime(2026, 3, 9, 15, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import datetime as _dt
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo

import attrs

__all__ = [
    "AGENT",
    "AGENT_COMMANDS",
    "CC",
    "CLOSED",
    "DEFAULT_TABLE",
    "MANAGER",
    "NEW",
    "NEW_FOLLOW_UP",
    "NEW_TICKET",
    "OPEN",
    "PENDING",
    "REFUSED",
    "REQUESTER",
    "SOLVED",
    "STRANGER",
    "SYSTEM",
    "Model",
    "ModelTicket",
    "Permissions",
    "Rules",
    "calendar_days_later",
    "normal_address",
]

UTC = _dt.UTC

NEW: Final = "NEW"
OPEN: Final = "OPEN"
PENDING: Final = "PENDING"
SOLVED: Final = "SOLVED"
CLOSED: Final = "CLOSED"

AGENT_COMMANDS: Final = ("assign", "reply", "request_info", "solve", "change_severity")

NEW_FOLLOW_UP: Final = "new follow-up"
"""`Model.customer_reply` result: the message starts a new follow-up ticket."""

NEW_TICKET: Final = "new ticket"
"""`Model.stranger_reply` result: the stranger's message becomes a ticket of their own."""
REFUSED: Final = "refused"
"""`Model.stranger_reply` result: the message is refused (`PermissionDenied`)."""

REQUESTER: Final = "requester"
CC: Final = "cc"
AGENT: Final = "agent"
MANAGER: Final = "manager"
SYSTEM: Final = "system"
STRANGER: Final = "stranger"

_CUSTOMER = frozenset({REQUESTER, CC})
DEFAULT_TABLE: Final[Mapping[str, frozenset[str]]] = {
    "assign": frozenset({AGENT, MANAGER}),
    "reply": frozenset({AGENT}),
    "request_info": frozenset({AGENT}),
    "solve": frozenset({AGENT}),
    "change_severity": frozenset({AGENT, MANAGER}),
    "customer_reply": _CUSTOMER,
    "auto_reply": _CUSTOMER,
    "auto_solve": frozenset({SYSTEM}),
    "auto_close": frozenset({SYSTEM}),
    "update_overdue": frozenset({SYSTEM}),
    "request_escalation": _CUSTOMER,
    "review_escalation": frozenset({MANAGER}),
    "link_bug": frozenset({AGENT}),
    "answer_survey": _CUSTOMER,
    "add_cc": frozenset({REQUESTER, AGENT}),
    "remove_cc": frozenset({REQUESTER, AGENT}),
}
"""The default permission table, copied from docs/security.md: action -> roles."""


def normal_address(address: str) -> str:
    """The form the model compares addresses in: blanks around removed, NFC, lower case.
    Nothing else is folded (not plus-addressing, not look-alike or full-width letters).

    >>> normal_address(" Jose\u0301@Example.COM") == "jos\u00e9@example.com"
    True
    """
    return unicodedata.normalize("NFC", address.strip()).lower()


@attrs.frozen(kw_only=True)
class Permissions:
    """Who may do what: the permission table (action name -> role names), what a stranger's
    reply does (``"new_ticket"`` or ``"refuse"``), and the desk's staff roster (lower-cased
    name -> roles; None: the desk trusts `agent=` and `manager=`)."""

    table: Mapping[str, frozenset[str]] = attrs.field(factory=lambda: dict(DEFAULT_TABLE))
    strangers: str = "new_ticket"
    staff: Mapping[str, frozenset[str]] | None = None

    @classmethod
    def of(cls, policy: Any, staff: Mapping[str, Any] | None = None) -> Permissions:
        """The table and stranger rule of a `SupportPolicy` (read as data: each row's action
        and role *names*), and a desk's `staff` roster as `SupportDesk(staff=...)` takes it."""
        table = {
            _name(row.action): frozenset(_name(role) for role in row.roles)
            for row in policy.permissions
        }
        roster = None
        if staff is not None:
            roster = {
                name.strip().lower(): frozenset(
                    _name(r) for r in ([roles] if isinstance(roles, str) else roles)
                )
                for name, roles in staff.items()
            }
        return cls(table=table, strangers=_name(policy.stranger_replies), staff=roster)

    def allows(self, role: str, action: str) -> bool:
        """Whether `role` may perform `action` (an action without a row: nobody may)."""
        return role in self.table.get(action, frozenset())

    def staff_roles(self, name: str, wanted: str) -> frozenset[str]:
        """The roles staff member `name` may act in when a command names them as `wanted`
        (``agent`` or ``manager``): `wanted` without a roster, their listed roles with one
        (none: not staff)."""
        if self.staff is None:
            return frozenset({wanted})
        return self.staff.get(name.strip().lower(), frozenset())

    def staff_role(self, name: str, wanted: str, action: str) -> str | None:
        """The role `name` performs `action` in (`wanted` first), or None when the table
        allows none of their roles."""
        roles = self.staff_roles(name, wanted)
        for role in sorted(roles, key=lambda r: (r != wanted, r)):
            if self.allows(role, action):
                return role
        return None


def _name(value: Any) -> str:
    """An enum member's value, or a plain string as it is."""
    return str(getattr(value, "value", value))


def calendar_days_later(instant: _dt.datetime, days: int, zone: str) -> _dt.datetime:
    """`days` calendar days after `instant`, at the same wall-clock time in `zone`, as UTC.

    A wall time that does not exist that day (spring forward) is pushed forward by the gap;
    an ambiguous one (fall back) is its later occurrence. Both are the later of the two
    PEP 495 readings (`fold=0`, `fold=1`) of the wall time. Zero days is `instant` itself.
    """
    if days == 0:  # no calendar day to add: due at once (even inside a fall-back fold)
        return instant.astimezone(UTC)
    tz = ZoneInfo(zone)
    wall = instant.astimezone(tz)
    target = _dt.datetime.combine(wall.date() + _dt.timedelta(days=days), wall.time(), tzinfo=tz)
    return max(target.replace(fold=fold).astimezone(UTC) for fold in (0, 1))


@attrs.frozen(kw_only=True)
class Rules:
    """The numbers the model needs: the desk's zone and the two calendar-day counts."""

    zone: str = "America/Chicago"
    close_after_days: int = 3
    pending_solve_after_days: int = 7
    follow_up_copies_requester: bool = True

    @classmethod
    def of(cls, policy: Any) -> Rules:
        """The numbers of a `SupportPolicy` (read as plain attributes)."""
        return cls(
            zone=policy.zone,
            close_after_days=policy.close_after_days,
            pending_solve_after_days=policy.pending_solve_after_days,
            follow_up_copies_requester="requester" in policy.follow_up_copies,
        )


@attrs.define(kw_only=True)
class ModelTicket:
    """One ticket of the model."""

    rules: Rules
    status: str = NEW
    requester: str = "ann@example.com"
    """The requester's address, in `normal_address` form."""
    cc: list[str] = attrs.field(factory=list)
    """The CC list, in `normal_address` form, in the order added."""
    key: int = 0
    """The requester key its personal fields are sealed under (see `Model.keys`)."""
    solve_due: _dt.datetime | None = None
    close_due: _dt.datetime | None = None
    follow_ups: list[UUID] = attrs.field(factory=list)
    fired: list[tuple[str, _dt.datetime]] = attrs.field(factory=list)
    """The automatic events so far: ("Solved" or "Closed", the due instant it is stamped with)."""

    def catch_up(self, now: _dt.datetime) -> None:
        """Fire the timers due at or before `now` (a timer fires *at* its due instant)."""
        if self.status == PENDING and self.solve_due is not None and self.solve_due <= now:
            self.status, due, self.solve_due = SOLVED, self.solve_due, None
            self.close_due = calendar_days_later(due, self.rules.close_after_days, self.rules.zone)
            self.fired.append(("Solved", due))
        if self.status == SOLVED and self.close_due is not None and self.close_due <= now:
            self.status, due, self.close_due = CLOSED, self.close_due, None
            self.fired.append(("Closed", due))

    def next_due(self) -> _dt.datetime | None:
        """The due instant of the armed timer, if any."""
        if self.status == PENDING:
            return self.solve_due
        if self.status == SOLVED:
            return self.close_due
        return None

    def agent(self, command: str, now: _dt.datetime) -> bool:
        """Apply an agent command; False when it must be refused (the ticket is CLOSED)."""
        if self.status == CLOSED:
            return False
        if command == "assign" and self.status == NEW:
            self.status = OPEN
        elif command == "reply":
            self.status, self.solve_due, self.close_due = OPEN, None, None
        elif command == "request_info":
            self.status, self.close_due = PENDING, None
            days = self.rules.pending_solve_after_days
            self.solve_due = calendar_days_later(now, days, self.rules.zone)
        elif command == "solve" and self.status != SOLVED:
            self.status, self.solve_due = SOLVED, None
            self.close_due = calendar_days_later(now, self.rules.close_after_days, self.rules.zone)
        return True

    def customer(self) -> None:
        """A customer message (not auto-submitted) on a ticket that is not CLOSED."""
        if self.status in (PENDING, SOLVED):
            self.status, self.solve_due, self.close_due = OPEN, None, None


@attrs.define
class Model:
    """Every ticket of one desk. Ticket ids come from the desk; the model decides the rest."""

    rules: Rules = attrs.field(factory=Rules)
    tickets: dict[UUID, ModelTicket] = attrs.field(factory=dict)
    permissions: Permissions = attrs.field(factory=Permissions)
    keys: dict[str, int] = attrs.field(factory=dict)
    """The live requester keys: normalised address -> key number. A key is made when an
    address first submits (or writes as a stranger) and destroyed when it is forgotten."""
    erased: set[UUID] = attrs.field(factory=set)
    """The tickets an erasure recorded `Erased` on."""
    _next_key: int = 0

    def at(self, tid: UUID, now: _dt.datetime) -> ModelTicket:
        """Ticket `tid` with its timers caught up to `now`."""
        ticket = self.tickets[tid]
        ticket.catch_up(now)
        return ticket

    def key_for(self, address: str) -> int:
        """The key of `address`, made on first use."""
        normal = normal_address(address)
        if normal not in self.keys:
            self._next_key += 1
            self.keys[normal] = self._next_key
        return self.keys[normal]

    def submit(
        self, tid: UUID, *, requester: str = "ann@example.com", cc: Iterable[str] = ()
    ) -> None:
        """A new ticket with id `tid`, submitted by `requester` with `cc` on its CC list."""
        if tid in self.tickets:
            raise AssertionError(f"{tid} is not a new ticket id")
        ticket = ModelTicket(
            rules=self.rules, requester=normal_address(requester), key=self.key_for(requester)
        )
        self.tickets[tid] = ticket
        for address in cc:
            self.add_cc(tid, address)

    def sealed(self, tid: UUID) -> bool:
        """Whether the ticket's personal fields can still be read (its key is live)."""
        return self.tickets[tid].key in self.keys.values()

    # -- who acts ---------------------------------------------------------------------------

    def role(self, tid: UUID, address: str | None) -> str:
        """The role of customer `address` on ticket `tid` (None: the requester). Once the
        ticket's key is destroyed nobody is its requester or CC any more, not even the
        default (None): the CC list was sealed under that key too."""
        ticket = self.tickets[tid]
        if not self.sealed(tid):
            return STRANGER
        if address is None:
            return REQUESTER
        normal = normal_address(address)
        if normal == ticket.requester:
            return REQUESTER
        if normal in ticket.cc:
            return CC
        return STRANGER

    def customer_may(self, tid: UUID, address: str | None, action: str) -> bool:
        """Whether customer `address` may perform `action` on ticket `tid`."""
        return self.permissions.allows(self.role(tid, address), action)

    def staff_may(self, name: str, wanted: str, action: str) -> bool:
        """Whether staff `name`, named as `wanted`, may perform `action`."""
        return self.permissions.staff_role(name, wanted, action) is not None

    def redelivered_to(self, landed: UUID, sender: str | None, tid: UUID | None = None) -> bool:
        """Whether a message id that already took effect on ticket `landed`, delivered again
        by `sender` (None: the requester of ticket `tid`), gives `landed` back: only its
        requester or a CC'd address may; anyone else reusing the id is refused."""
        if sender is None:
            if tid is None or not self.sealed(tid):
                return False
            sender = self.tickets[tid].requester
        return self.role(landed, sender) in (REQUESTER, CC)

    def open_follow_up(self, tid: UUID, is_closed: Any) -> UUID | None:
        """The first follow-up down the chain of latest follow-ups of `tid` that is not
        closed (`is_closed(ticket_id)` says which are), or None."""
        ticket = self.tickets[tid]
        latest = ticket.follow_ups[-1] if ticket.follow_ups else None
        while latest is not None and is_closed(latest):
            follow_ups = self.tickets[latest].follow_ups
            latest = follow_ups[-1] if follow_ups else None
        return latest

    def stranger_reply(self, tid: UUID, sender: str, *, auto_submitted: bool) -> str:
        """What a reply from stranger `sender` to ticket `tid` does: `NEW_TICKET` (then tell
        the model the new id with `stranger_ticket_created`) or `REFUSED`. Either way the
        ticket itself is unchanged and the sender gets a key of their own."""
        del tid  # whatever ticket it answers, nothing of it is used
        self.key_for(sender)
        if auto_submitted or self.permissions.strangers == "refuse":
            return REFUSED
        return NEW_TICKET

    def stranger_ticket_created(self, new: UUID, sender: str) -> None:
        """The desk made ticket `new` of stranger `sender` out of their message."""
        self.submit(new, requester=sender)

    # -- the CC list and erasure ------------------------------------------------------------

    def add_cc(self, tid: UUID, address: str) -> bool:
        """Put `address` on the CC list; False (nothing recorded) if it is there already or
        is the requester."""
        ticket, normal = self.tickets[tid], normal_address(address)
        if normal == ticket.requester or normal in ticket.cc:
            return False
        ticket.cc.append(normal)
        return True

    def remove_cc(self, tid: UUID, address: str) -> bool:
        """Take `address` off the CC list; False if it is not on it."""
        ticket, normal = self.tickets[tid], normal_address(address)
        if normal not in ticket.cc:
            return False
        ticket.cc.remove(normal)
        return True

    def forget(self, address: str) -> list[UUID]:
        """Erase requester `address`: the tickets sealed under their key (each records
        `Erased`), whose key is then destroyed. None without a key."""
        key = self.keys.pop(normal_address(address), None)
        if key is None:
            return []
        erased = [tid for tid, ticket in self.tickets.items() if ticket.key == key]
        self.erased.update(erased)
        return erased

    # -- the lifecycle ----------------------------------------------------------------------

    def agent(self, tid: UUID, command: str, now: _dt.datetime) -> bool:
        """Apply an agent command at `now`; False when it must be refused."""
        return self.at(tid, now).agent(command, now)

    def customer_reply(self, tid: UUID, now: _dt.datetime, *, auto_submitted: bool) -> UUID | str:
        """Where a (first delivery of a) customer message lands: a ticket id, or
        `NEW_FOLLOW_UP` (then tell the model the new id with `follow_up_created`)."""
        ticket = self.at(tid, now)
        if auto_submitted:
            return tid
        if ticket.status != CLOSED:
            ticket.customer()
            return tid
        latest = ticket.follow_ups[-1] if ticket.follow_ups else None
        while latest is not None:  # the first follow-up down the chain that is not CLOSED
            follow_up = self.at(latest, now)
            if follow_up.status != CLOSED:
                follow_up.customer()
                return latest
            latest = follow_up.follow_ups[-1] if follow_up.follow_ups else None
        return NEW_FOLLOW_UP

    def follow_up_created(self, closed: UUID, new: UUID, *, sender: str | None = None) -> None:
        """The desk created follow-up `new` of the closed ticket `closed`, from a message by
        `sender` (None: the requester). It keeps the requester if the policy copies it, else
        the sender is its requester; either way its own requester's key seals it."""
        old = self.tickets[closed]
        if new in self.tickets:
            raise AssertionError(f"{new} is not a new ticket id")
        if self.rules.follow_up_copies_requester or sender is None:
            follow_up = ModelTicket(rules=self.rules, requester=old.requester, key=old.key)
        else:
            follow_up = ModelTicket(
                rules=self.rules, requester=normal_address(sender), key=self.key_for(sender)
            )
        self.tickets[new] = follow_up
        old.follow_ups.append(new)

    def due_instants(self, now: _dt.datetime) -> list[_dt.datetime]:
        """Every armed timer's due instant after catching up to `now`, soonest first."""
        dues = (self.at(tid, now).next_due() for tid in self.tickets)
        return sorted(due for due in dues if due is not None)
