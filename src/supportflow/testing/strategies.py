"""Hypothesis strategies for supportflow: severities, instants near DST changes, policies,
commands and whole histories."""

from __future__ import annotations

import datetime as _dt
import functools
import unicodedata
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from ..policy import (
    DEFAULT_PERMISSIONS,
    DEFAULT_TRANSITIONS,
    FOLLOW_UP_FIELDS,
    Action,
    Permission,
    Role,
    Severity,
    Status,
    StrangerReplies,
    SupportPolicy,
    Transition,
)
from .history import (
    AGENT_COMMAND_NAMES,
    Agent,
    Command,
    CustomerReply,
    Step,
    Submit,
    Wait,
    WaitForDue,
)

__all__ = [
    "ZONES",
    "addresses",
    "aware_datetimes",
    "commands",
    "dst_changes",
    "histories",
    "look_alikes",
    "permission_tables",
    "policies",
    "roles",
    "same_address",
    "severities",
    "steps",
    "transition_tables",
]

UTC = _dt.UTC

ZONES: tuple[str, ...] = (
    "America/Chicago",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/St_Johns",  # -3:30 / -2:30
    "Europe/London",
    "Europe/Berlin",
    "Europe/Dublin",  # "negative" DST in the tz database
    "Asia/Kolkata",  # no DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # southern hemisphere, midnight transitions
    "America/Havana",  # midnight transitions
    "Asia/Kathmandu",  # +5:45
    "Antarctica/Troll",  # two-hour DST
    "UTC",
)
"""Zones whose rules break naive date arithmetic; the default for the strategies here."""

_FIRST_YEAR, _LAST_YEAR = 2026, 2027


@functools.cache
def dst_changes(
    zone: str, first_year: int = _FIRST_YEAR, last_year: int = _LAST_YEAR
) -> tuple[_dt.datetime, ...]:
    """The instants (aware UTC) at which `zone` changes its UTC offset in those years."""
    tz = ZoneInfo(zone)
    hour, second = _dt.timedelta(hours=1), _dt.timedelta(seconds=1)
    at = _dt.datetime(first_year, 1, 1, tzinfo=UTC)
    end = _dt.datetime(last_year + 1, 1, 1, tzinfo=UTC)
    offset = at.astimezone(tz).utcoffset()
    changes: list[_dt.datetime] = []
    while at < end:
        later = at + hour
        if later.astimezone(tz).utcoffset() != offset:
            low, high = at, later  # bisect to the second
            while high - low > second:
                middle = low + (high - low) / 2
                if middle.astimezone(tz).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            changes.append(high.replace(microsecond=0))
            offset = later.astimezone(tz).utcoffset()
        at = later
    return tuple(changes)


def severities() -> st.SearchStrategy[Severity]:
    """Any severity."""
    return st.sampled_from(Severity)


def aware_datetimes(
    zones: Sequence[str] = ZONES,
    *,
    days_before_changes: int = 10,
    years: tuple[int, int] = (_FIRST_YEAR, _LAST_YEAR),
) -> st.SearchStrategy[_dt.datetime]:
    """Aware datetimes in one of `zones` (tzinfo is that zone's `ZoneInfo`), whole seconds.

    Half of them lie up to `days_before_changes` days (and a few hours either way) before
    one of the zone's DST changes, so that calendar-day timers started there cross it; a
    calendar-day timer of up to that many days then differs from the elapsed-time one.
    """
    if not zones:
        raise ValueError("zones must name at least one IANA time zone")
    first, last = years

    @st.composite
    def near_change(draw: st.DrawFn, zone: str) -> _dt.datetime:
        changes = dst_changes(zone, first, last)
        if not changes:
            return draw(anywhere(zone))
        change = draw(st.sampled_from(changes))
        days = draw(st.integers(min_value=0, max_value=days_before_changes))
        seconds = draw(st.integers(min_value=-6 * 3600, max_value=6 * 3600))
        instant = change - _dt.timedelta(days=days, seconds=seconds)
        return instant.astimezone(ZoneInfo(zone))

    def anywhere(zone: str) -> st.SearchStrategy[_dt.datetime]:
        return st.datetimes(
            min_value=_dt.datetime(first, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
            max_value=_dt.datetime(last, 12, 31, 23, 59, 59),  # noqa: DTZ001
            timezones=st.just(ZoneInfo(zone)),
        ).map(lambda value: value.replace(microsecond=0))

    def in_zone(zone: str) -> st.SearchStrategy[_dt.datetime]:
        return st.one_of(near_change(zone), anywhere(zone))

    return st.sampled_from(tuple(zones)).flatmap(in_zone)


@functools.cache
def _valid_rows() -> dict[tuple[Status, Action], tuple[Transition, ...]]:
    """Every row `SupportPolicy` accepts, by (status, action)."""
    rows: dict[tuple[Status, Action], list[Transition]] = {}
    for status in Status:
        for action in Action:
            for to in Status:
                for flags in range(8):
                    row = Transition(
                        status=status,
                        action=action,
                        to=to,
                        reopens=bool(flags & 1),
                        records=bool(flags & 2),
                        follows_up=bool(flags & 4),
                    )
                    try:
                        SupportPolicy(transitions=(row,))
                    except ValueError:
                        continue
                    rows.setdefault((status, action), []).append(row)
    return {key: tuple(value) for key, value in rows.items()}


def transition_tables() -> st.SearchStrategy[tuple[Transition, ...]]:
    """Transition tables a policy accepts: at most one valid row per (status, action), in any
    order (rows are validated when a policy is built; these pass)."""
    rows = _valid_rows()
    keys = sorted(rows, key=lambda key: (key[0].value, key[1].value))
    return st.lists(st.sampled_from(keys), unique=True).flatmap(
        lambda chosen: st.tuples(*(st.sampled_from(rows[key]) for key in chosen))
    )


# -- people: addresses, roles and permission tables ----------------------------------------

_LOCAL_PARTS = ("ann", "bo", "cy", "dee", "paul.x", "jos\u00e9", "zo\u00eb", "\u00e5sa")
_DOMAINS = ("example.com", "example.org", "mail.example.net")
_CYRILLIC = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "i": "\u0456",
    "j": "\u0458",
    "o": "\u043e",
    "p": "\u0440",
    "s": "\u0455",
    "x": "\u0445",
    "y": "\u0443",
}
"""Latin letters and the Cyrillic letters that look the same."""


def addresses() -> st.SearchStrategy[str]:
    """E-mail addresses in lower case: a local part from a few names (some with accented
    letters) or random letters and digits, at one of a few example domains."""
    local = st.one_of(
        st.sampled_from(_LOCAL_PARTS),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8),
    )
    return st.builds("{}@{}".format, local, st.sampled_from(_DOMAINS))


def _normal(address: str) -> str:
    return unicodedata.normalize("NFC", address.strip()).lower()


def same_address(address: str) -> st.SearchStrategy[str]:
    """Other spellings of `address` that are the *same* address (the same person): any of
    its letters in upper case, its accented letters decomposed (NFD), or both. They compare
    equal to `address` after normalisation (NFC, lower case)."""
    casable = [
        i
        for i, char in enumerate(address)
        if len(char.upper()) == 1 and _normal(char.upper()) == _normal(char)
    ]

    def spell(upper: frozenset[int], decompose: bool) -> str:
        text = "".join(c.upper() if i in upper else c for i, c in enumerate(address))
        return unicodedata.normalize("NFD", text) if decompose else text

    chosen = st.frozensets(st.sampled_from(casable)) if casable else st.just(frozenset[int]())
    return st.builds(spell, chosen, st.booleans())


def look_alikes(address: str) -> st.SearchStrategy[str]:
    """Addresses that look like `address` but are someone else's (strangers to its tickets):
    plus-addressing (``ann+x@…``), one letter replaced by the Cyrillic letter that looks the
    same (``\u0430nn@…``), or by its full-width form (``\uff41nn@…``, which NFKC would
    fold back), or a digit for a letter in the domain (``examp1e.com``). None of them
    compares equal to `address` after normalisation (NFC, lower case)."""
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    suffix = f"@{domain}" if at else ""
    options: list[st.SearchStrategy[str]] = [
        st.sampled_from(["x", "support", "1"]).map(lambda tag: f"{local}+{tag}{suffix}")
    ]
    lower = address.lower()
    cyrillic = [i for i, char in enumerate(lower) if char in _CYRILLIC]
    if cyrillic:
        options.append(
            st.sampled_from(cyrillic).map(
                lambda i: lower[:i] + _CYRILLIC[lower[i]] + lower[i + 1 :]
            )
        )
    wide = [i for i, char in enumerate(address) if char.isascii() and char.isalnum()]
    if wide:
        options.append(
            st.sampled_from(wide).map(
                lambda i: address[:i] + chr(ord(address[i]) + 0xFEE0) + address[i + 1 :]
            )
        )
    swaps = {"l": "1", "o": "0", "i": "1"}
    start = len(address) - len(domain)
    digits = [i for i in range(start, len(address)) if address[i].lower() in swaps]
    if at and digits:
        options.append(
            st.sampled_from(digits).map(
                lambda i: address[:i] + swaps[address[i].lower()] + address[i + 1 :]
            )
        )
    return st.one_of(options).filter(lambda other: _normal(other) != _normal(address))


def roles(*, people_only: bool = False) -> st.SearchStrategy[Role]:
    """Any `Role` (with `people_only`: requester, CC, agent or manager)."""
    if people_only:
        return st.sampled_from(_PEOPLE)
    return st.sampled_from(Role)


_PEOPLE = (Role.REQUESTER, Role.CC, Role.AGENT, Role.MANAGER)
_TIMER_ACTIONS = frozenset({Action.AUTO_SOLVE, Action.AUTO_CLOSE, Action.UPDATE_OVERDUE})


def permission_tables() -> st.SearchStrategy[tuple[Permission, ...]]:
    """Permission tables a policy accepts that keep the table's invariants: the timers'
    rows grant `Role.SYSTEM` only, and no row grants anything to `Role.STRANGER`. Every other
    action keeps its default row, gets any set of people roles (possibly none), or has no row
    (nobody may); rows come in any order."""
    default = {row.action: row for row in DEFAULT_PERMISSIONS}
    people = st.frozensets(st.sampled_from(_PEOPLE))

    def row_for(action: Action) -> st.SearchStrategy[Permission | None]:
        if action in _TIMER_ACTIONS:
            return st.just(Permission(action=action, roles={Role.SYSTEM}))
        return st.one_of(
            st.just(default.get(action)),
            st.none(),
            people.map(lambda chosen: Permission(action=action, roles=chosen)),
        )

    rows = st.tuples(*(row_for(action) for action in Action))
    kept = rows.map(lambda drawn: [row for row in drawn if row is not None])
    return kept.flatmap(st.permutations).map(tuple)


def policies(
    *,
    zones: Sequence[str] = ZONES,
    close_after_days: st.SearchStrategy[int] | None = None,
    pending_solve_after_days: st.SearchStrategy[int] | None = None,
    follow_up_copies: st.SearchStrategy[frozenset[str]] | None = None,
    transitions: st.SearchStrategy[tuple[Transition, ...]] | None = None,
    names: st.SearchStrategy[str] | None = None,
    permissions: st.SearchStrategy[tuple[Permission, ...]] | None = None,
    stranger_replies: st.SearchStrategy[StrangerReplies] | None = None,
) -> st.SearchStrategy[SupportPolicy]:
    """Valid `SupportPolicy` variations. Defaults: a zone from `zones`, 0-10 calendar days for
    each timer, any follow-up copy rule, the default transition table (pass
    `transitions=transition_tables()` for random valid tables), the default permission table
    (pass `permissions=permission_tables()` for random ones that keep its invariants),
    stranger replies either way (a new ticket or refused), the name "generated"."""
    days = st.integers(min_value=0, max_value=10)
    return st.builds(
        SupportPolicy,
        name=st.just("generated") if names is None else names,
        zone=st.sampled_from(tuple(zones)),
        close_after_days=days if close_after_days is None else close_after_days,
        pending_solve_after_days=(
            days if pending_solve_after_days is None else pending_solve_after_days
        ),
        follow_up_copies=(
            st.frozensets(st.sampled_from(sorted(FOLLOW_UP_FIELDS)))
            if follow_up_copies is None
            else follow_up_copies
        ),
        transitions=st.just(DEFAULT_TRANSITIONS) if transitions is None else transitions,
        permissions=st.just(DEFAULT_PERMISSIONS) if permissions is None else permissions,
        stranger_replies=(
            st.sampled_from(StrangerReplies) if stranger_replies is None else stranger_replies
        ),
    )


def commands(*, tickets: int = 4, message_keys: int = 3) -> st.SearchStrategy[Command]:
    """Submits, agent commands and customer replies on ticket indexes below `tickets`;
    message-id keys below `message_keys` repeat, so the same message is delivered again.
    `solve` and `request_info` arm the timers, so they come up more often."""
    indexes = st.integers(min_value=0, max_value=tickets - 1)
    keys = st.integers(min_value=0, max_value=message_keys - 1)
    weighted = ("solve", "request_info", *AGENT_COMMAND_NAMES)
    agent = st.builds(
        Agent, command=st.sampled_from(weighted), ticket=indexes, severity=severities()
    )
    return st.one_of(
        st.builds(Submit, key=keys),
        agent,
        agent,
        st.builds(
            CustomerReply, ticket=indexes, auto_submitted=st.booleans(), key=st.none() | keys
        ),
    )


def steps(
    policy: SupportPolicy | None = None, *, tickets: int = 4, message_keys: int = 3
) -> st.SearchStrategy[Step]:
    """One step: a wait (random, a round number of days, or to a ticket's armed timer's due
    instant -1 s / 0 / +1 s), up to two worker runs within it, then a command."""
    policy = SupportPolicy() if policy is None else policy
    longest = max(policy.close_after_days, policy.pending_solve_after_days) + 3
    round_waits = sorted({0, 1, 3600, 86400, *(d * 86400 for d in range(1, longest + 1))})
    waits = st.one_of(
        st.builds(Wait, st.integers(min_value=0, max_value=longest * 86400)),
        st.builds(Wait, st.sampled_from(round_waits)),
        st.builds(
            WaitForDue,
            ticket=st.integers(min_value=0, max_value=tickets - 1),
            offset=st.sampled_from([-1, 0, 1]),
        ),
    )
    sweeps = st.lists(st.integers(min_value=0, max_value=1000), max_size=2).map(
        lambda moments: tuple(sorted(moments))
    )
    return st.builds(
        Step,
        wait=waits,
        sweeps=sweeps,
        command=commands(tickets=tickets, message_keys=message_keys),
    )


def histories(
    policy: SupportPolicy | None = None,
    *,
    min_steps: int = 2,
    max_steps: int = 30,
    tickets: int = 4,
    message_keys: int = 3,
) -> st.SearchStrategy[list[Step]]:
    """Valid histories for desks under `policy`: a first submit, then `min_steps` to
    `max_steps` steps (see `steps`), including repeated deliveries of one message and
    commands at a timer's due instant -1 s, 0 and +1 s. Waits scale with the policy's days."""
    first = Step(wait=Wait(0), sweeps=(), command=Submit(key=0))
    rest = st.lists(
        steps(policy, tickets=tickets, message_keys=message_keys),
        min_size=min_steps,
        max_size=max_steps,
    )
    return rest.map(lambda later: [first, *later])
