"""Who acts on a ticket, and what each role may do: the permission table (data).

Request Tracker's per-transition rights are the model: every command states who acts, the
desk works out that actor's `Role` on the ticket, and the policy's permission table says
whether that role may perform the action. A refused command records nothing.

Roles:

- `REQUESTER`: the address that submitted the ticket.
- `CC`: an address the requester or an agent added to the ticket's CC list.
- `AGENT`, `MANAGER`: the desk's staff.
- `SYSTEM`: the policy's timers (auto-solve, auto-close, update overdue).
- `STRANGER`: anyone else. No row grants a stranger anything; a stranger's reply to an
  existing ticket never lands on it (`StrangerReplies`).
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable, Mapping

import attrs

from ._model import Action

__all__ = [
    "DEFAULT_PERMISSIONS",
    "Permission",
    "Role",
    "StrangerReplies",
    "normalize_address",
    "permission_map",
]


class Role(enum.Enum):
    """The part an actor plays on one ticket."""

    REQUESTER = "requester"
    CC = "cc"
    AGENT = "agent"
    MANAGER = "manager"
    SYSTEM = "system"
    STRANGER = "stranger"

    def __str__(self) -> str:
        return self.value


class StrangerReplies(enum.Enum):
    """What a reply from an address that is neither the requester nor on the CC list does."""

    NEW_TICKET = "new_ticket"
    """It becomes a new ticket of its own, requested by the stranger (the default)."""
    REFUSE = "refuse"
    """It is refused with `PermissionDenied`."""


def _to_roles(value: Iterable[Role | str]) -> frozenset[Role]:
    if isinstance(value, (str, Role)):
        value = [value]
    return frozenset(Role(r) for r in value)


def _no_strangers(instance: object, attribute: attrs.Attribute[object], value: object) -> None:
    if Role.STRANGER in value:  # type: ignore[operator]
        msg = "no permission row may grant anything to Role.STRANGER"
        raise ValueError(msg)


@attrs.frozen(kw_only=True)
class Permission:
    """One row of the permission table: the `roles` that may perform `action`."""

    action: Action = attrs.field(converter=Action)
    roles: frozenset[Role] = attrs.field(converter=_to_roles, validator=_no_strangers)


_TIMERS = (Action.AUTO_SOLVE, Action.AUTO_CLOSE, Action.UPDATE_OVERDUE)
_CUSTOMER = frozenset({Role.REQUESTER, Role.CC})

DEFAULT_PERMISSIONS: tuple[Permission, ...] = (
    Permission(action=Action.ASSIGN, roles={Role.AGENT, Role.MANAGER}),
    Permission(action=Action.REPLY, roles={Role.AGENT}),
    Permission(action=Action.REQUEST_INFO, roles={Role.AGENT}),
    Permission(action=Action.SOLVE, roles={Role.AGENT}),
    Permission(action=Action.CHANGE_SEVERITY, roles={Role.AGENT, Role.MANAGER}),
    Permission(action=Action.CUSTOMER_REPLY, roles=_CUSTOMER),
    Permission(action=Action.AUTO_REPLY, roles=_CUSTOMER),
    *(Permission(action=action, roles={Role.SYSTEM}) for action in _TIMERS),
    Permission(action=Action.REQUEST_ESCALATION, roles=_CUSTOMER),
    Permission(action=Action.REVIEW_ESCALATION, roles={Role.MANAGER}),
    Permission(action=Action.LINK_BUG, roles={Role.AGENT}),
    Permission(action=Action.ANSWER_SURVEY, roles=_CUSTOMER),
    Permission(action=Action.ADD_CC, roles={Role.REQUESTER, Role.AGENT}),
    Permission(action=Action.REMOVE_CC, roles={Role.REQUESTER, Role.AGENT}),
)
"""Who may do what under the default policy: only agents solve, request info, reply as agent
and link bugs; only managers review escalations; agents and managers assign and change the
severity; only the requester or a CC'd address replies as the customer, asks for escalation
and answers the survey; the requester and agents manage the CC list; only the system fires
timers."""


def permission_map(rows: Iterable[Permission]) -> Mapping[Action, frozenset[Role]]:
    """The table as `action -> roles`; two rows for one action are refused. An action
    without a row may be performed by nobody."""
    table: dict[Action, frozenset[Role]] = {}
    for row in rows:
        if not isinstance(row, Permission):
            msg = f"permission table rows must be Permission values, got {row!r}"
            raise TypeError(msg)
        if row.action in table:
            msg = f"the permission table has two rows for {row.action.value}"
            raise ValueError(msg)
        table[row.action] = row.roles
    for timer in _TIMERS:
        if table.get(timer, frozenset({Role.SYSTEM})) != frozenset({Role.SYSTEM}):
            msg = f"only Role.SYSTEM fires the {timer.value} timer"
            raise ValueError(msg)
    return table


_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def normalize_address(address: str) -> str:
    """The form two addresses are compared in: surrounding blanks removed, Unicode NFC, lower
    case; of ``Ann Smith <ann@example.com>`` only the address in angle brackets counts.

    Raises `ValueError` for an empty address, control or invisible (format) characters
    anywhere, a blank inside an e-mail address, or an ``@`` with nothing before or after it.
    (A requester is normally an e-mail address; another identifier, such as a customer
    number or a name, is compared the same way, blanks included.)

    Nothing else is folded: ``ann+x@example.com`` (plus-addressing) and ``\u0430nn@example.com``
    (a Cyrillic ``a``, U+0430) are other addresses than ``ann@example.com``, because whoever
    can send from them is not necessarily Ann. Compatibility forms (NFKC: full-width letters,
    ligatures) are not folded for the same reason.

    >>> normalize_address("  Ann@Example.COM ")
    'ann@example.com'
    >>> normalize_address("Ann Smith <Ann@Example.com>")
    'ann@example.com'
    """
    if not isinstance(address, str):
        msg = f"an address must be text, got {type(address).__name__}"
        raise ValueError(msg)
    text = unicodedata.normalize("NFC", address.strip())
    for char in text:
        if unicodedata.category(char) in _INVISIBLE or (char.isspace() and char != " "):
            msg = f"address {address!r} contains a control or invisible character"
            raise ValueError(msg)
    if text.endswith(">") and "<" in text:  # "Display Name <address>"
        text = text[text.rindex("<") + 1 : -1].strip()
    if not text:
        msg = "an address must not be empty"
        raise ValueError(msg)
    local, at, domain = text.rpartition("@")
    if at and (not local or not domain or " " in text):
        msg = f"{address!r} is not an e-mail address (expected local@domain, no blanks)"
        raise ValueError(msg)
    return text.lower()
