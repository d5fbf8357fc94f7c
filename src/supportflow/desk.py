"""`SupportDesk`: the application. Commands, atomic follow-ups, idempotency, timers, queries."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import random
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import (
    IntegrityError,
    MapperDeserialisationError,
    OperationalError,
    PersistenceError,
)
from eventsourcing.utils import TopicError, get_topic

from ._pii import ERASED, KeyRing, key_id_of, seal
from ._recorders import DueRow, TimerIndex
from ._records import (
    MessageReceipt,
    PolicyRecord,
    StrangerMessage,
    follow_up_id,
    policy_record_id,
    receipt_id,
    ticket_id_for_message,
)
from ._store import redact
from ._timers import Sweep, open_application, project, scan_log, ticket_ids
from ._timers import migrate as _migrate
from .clock import Clock, SystemClock
from .errors import (
    ConcurrencyConflict,
    CorruptedHistory,
    InvalidCommand,
    PermissionDenied,
    SupportflowError,
    TicketNotFound,
    UnknownPolicyVersion,
)
from .policy import (
    Action,
    ReplyOutcome,
    Role,
    Severity,
    Status,
    StrangerReplies,
    SupportPolicy,
    normalize_address,
    require_aware_utc,
)
from .ticket import PERSONAL_FIELDS, Ticket
from .views import EscalationRequest, StrangerMessageView, TicketView

__all__ = ["SupportDesk"]

T = TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 12
"""How many times a command reloads and re-decides after losing a write race."""

_TRANSIENT = ("locked", "busy", "lock timeout", "deadlock", "could not serialize")
"""Words of store errors worth a bounded retry: SQLite's busy file, PostgreSQL's lock timeouts,
deadlocks and serialisation failures."""


def _is_transient(error: Exception) -> bool:
    text = str(error).lower()
    return any(word in text for word in _TRANSIENT)


NAME_LIMIT = 320
"""Longest name, address, reference or label a command accepts (an e-mail address is <= 254)."""

_ALLOWED_IN_BODIES = frozenset("\t\n\r")


def _text(
    value: object,
    name: str,
    *,
    allow_empty: bool = False,
    strip: bool = True,
    ticket_id: UUID | None = None,
    limit: int = NAME_LIMIT,
) -> str:
    """Validate a text argument; names (`strip=True`) lose surrounding blanks, bodies keep them.

    Refused with `InvalidCommand`: a non-string, an empty value (unless `allow_empty`), text
    that is not valid Unicode (lone surrogates, as left by undecodable bytes), control
    characters (bodies may keep tabs and line breaks) and text longer than `limit` characters.
    """
    if not isinstance(value, str):
        raise InvalidCommand(
            f"{name} must be a string, got {type(value).__name__}", ticket_id=ticket_id
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidCommand(
            f"{name} is not valid text: an undecodable character at position {error.start} "
            "(decode the input as UTF-8 first)",
            ticket_id=ticket_id,
        ) from None
    text = value.strip() if strip else value
    allowed = frozenset() if strip else _ALLOWED_IN_BODIES
    for position, char in enumerate(text):
        if (char < " " or "\x7f" <= char <= "\x9f") and char not in allowed:
            raise InvalidCommand(
                f"{name} contains the control character {char!r} at position {position}",
                ticket_id=ticket_id,
            )
    if not text.strip() and not allow_empty:
        raise InvalidCommand(f"{name} must not be empty", ticket_id=ticket_id)
    if len(text) > limit:
        raise InvalidCommand(
            f"{name} is {len(text)} characters long; the limit is {limit}", ticket_id=ticket_id
        )
    return text


def _message_id(value: str | None, *, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidCommand(f"message_id must be a string, got {type(value).__name__}")
    text = _text(value, "message_id", allow_empty=True, limit=limit + 2)
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        raise InvalidCommand("message_id must not be empty; omit it (None) if there is none")
    if len(text) > limit:
        raise InvalidCommand(f"message_id is {len(text)} characters long; the limit is {limit}")
    return text


def _staff_name(name: str) -> str:
    """Staff names compare like addresses: NFC, lower case; nothing else is folded."""
    return unicodedata.normalize("NFC", name.strip()).lower()


def _roster(
    staff: Mapping[str, Role | str | Iterable[Role | str]] | None,
) -> dict[str, frozenset[Role]] | None:
    if staff is None:
        return None
    if not isinstance(staff, Mapping):
        raise InvalidCommand("staff must map names to roles, e.g. {'bob': 'agent'}")
    out: dict[str, frozenset[Role]] = {}
    for name, roles in staff.items():
        listed = [roles] if isinstance(roles, (str, Role)) else list(roles)
        try:
            parsed = frozenset(Role(r) for r in listed)
        except ValueError:
            raise InvalidCommand(f"staff {name!r}: unknown role in {roles!r}") from None
        if not parsed or not parsed <= {Role.AGENT, Role.MANAGER}:
            raise InvalidCommand(f"staff {name!r}: roles must be agent and/or manager")
        out[_staff_name(_text(name, "staff name"))] = parsed
    return out


class SupportDesk:
    """A support desk over one event store.

    >>> from supportflow import SupportDesk
    >>> with SupportDesk() as desk:
    ...     tid = desk.submit(requester="ann@example.com", subject="Cannot restore")
    ...     desk.get(tid).status.name
    'NEW'

    `store` is a URL: ``memory://`` (the default; private to this desk), or
    ``sqlite:///tickets.db``. `clock` gives the time of commands that don't state `at=`.
    `policy` applies to tickets submitted from now on; tickets keep the policy version they
    were submitted under (pass older policies in `policies` if the store does not hold them).
    `env` passes further eventsourcing settings, e.g. compression and encryption at rest:
    ``{"COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher", "CIPHER_KEY": key}``.

    `snapshot_every=N` stores a snapshot of a ticket every N events, so that rebuilding a
    ticket with a long history reads its latest snapshot and the events after it (default
    None: no snapshots; see docs/operations.md, "Snapshots").

    `staff` maps each staff name to its role(s) (``agent``, ``manager``). Without it the
    desk trusts its caller: a name given as `agent=` acts as an agent, as `manager=` as a
    manager. With it, a name acts only in the roles listed, and a command by anyone else is
    refused with `PermissionDenied`. Customers are never listed: whether an address acts as
    the requester, a CC or a stranger is worked out from the ticket.
    """

    def __init__(
        self,
        store: str = "memory://",
        *,
        clock: Clock | None = None,
        policy: SupportPolicy | None = None,
        policies: Iterable[SupportPolicy] = (),
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        env: Mapping[str, str] | None = None,
        staff: Mapping[str, Role | str | Iterable[Role | str]] | None = None,
        snapshot_every: int | None = None,
    ) -> None:
        if clock is not None and not isinstance(clock, Clock):
            raise InvalidCommand(f"clock must have a now() method, got {clock!r}")
        if policy is not None and not isinstance(policy, SupportPolicy):
            raise InvalidCommand(f"policy must be a SupportPolicy, got {type(policy).__name__}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidCommand(f"max_attempts must be >= 1, got {max_attempts}")
        self._store_url = store
        self.store = redact(store)
        """The store URL with any password masked (safe to print)."""
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._policy: SupportPolicy = policy if policy is not None else SupportPolicy()
        self.max_attempts = max_attempts
        app = open_application(store, env, snapshot_every=snapshot_every)  # PG: migrated
        self._app: Application[UUID] = app
        self._timers: TimerIndex = app.timer_index  # due timers, written with the events
        self._keys = KeyRing(app.key_table)  # per-requester keys of personal fields
        self._staff = _roster(staff)
        self._policies: dict[str, SupportPolicy] = {}
        self._policies_lock = threading.Lock()
        for known in (*policies, self._policy):
            if not isinstance(known, SupportPolicy):
                raise InvalidCommand(f"policies must be SupportPolicy values, got {known!r}")
            self._policies[known.version] = known
        self._closed = False
        self._adopt(self._policy)

    # -- lifecycle of the desk --------------------------------------------------------------

    @property
    def policy(self) -> SupportPolicy:
        """The policy new tickets are submitted under (change it with `use_policy`)."""
        return self._policy

    def use_policy(self, policy: SupportPolicy) -> None:
        """From now on, submit new tickets (and follow-ups) under `policy`.

        The policy is stored next to the tickets, so every desk on this store can replay them.
        Existing tickets keep the policy version they recorded.
        """
        if not isinstance(policy, SupportPolicy):
            raise InvalidCommand(f"policy must be a SupportPolicy, got {type(policy).__name__}")
        self._check_open()
        self._adopt(policy)
        with self._policies_lock:
            self._policies.setdefault(policy.version, policy)
        self._policy = policy

    def close(self) -> None:
        """Release the store's connections. Any later call raises `SupportflowError`."""
        self._closed = True
        self._app.close()

    def _check_open(self) -> None:
        if self._closed:
            raise SupportflowError("this SupportDesk is closed; open a new one on the store")

    def __enter__(self) -> SupportDesk:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        scheme = self.store.split(":", 1)[0]
        return f"SupportDesk(store={scheme.lower()}://..., policy={self._policy.version!r})"

    @property
    def application(self) -> Application[UUID]:
        """The underlying eventsourcing application (notification log, recorder)."""
        return self._app

    # -- commands ---------------------------------------------------------------------------

    def submit(
        self,
        requester: str,
        subject: str,
        description: str = "",
        *,
        severity: Severity | int | str = Severity.MEDIUM,
        channel: str = "web",
        product: Mapping[str, str] | None = None,
        tags: Iterable[str] = (),
        message_id: str | None = None,
        product_version: str | None = None,
        cc: Iterable[str] = (),
        at: _dt.datetime | None = None,
    ) -> UUID:
        """Open a ticket; returns its id. With a `message_id`, a second delivery of the same
        message returns the same ticket and records nothing.

        The requester's address, the subject and the description are stored sealed under the
        requester's key (see `forget_requester`). `cc` puts addresses on the CC list, as if
        the requester had added them: they may then reply as the customer.

        `product_version` is the customer's software version; a version older than the
        policy's supported majors is flagged (`view.supported is False`), never refused.
        Whether the `channel` is staffed at that moment is `is_open(channel, at)`; a ticket
        is recorded either way, so nothing a customer sent is lost."""
        self._at(at)  # validate early: a bad `at` is refused before anything else
        requester_ = self._address(requester, "requester")
        if isinstance(cc, str) or not isinstance(cc, Iterable):
            raise InvalidCommand("cc must be a collection of addresses, e.g. ['bo@example.com']")
        cc_ = [self._address(address, "cc") for address in cc]
        if len(cc_) > self._policy.max_tags:
            raise InvalidCommand(f"{len(cc_)} CC addresses; the limit is {self._policy.max_tags}")
        subject_ = _text(subject, "subject", limit=self._policy.max_subject_length)
        description_ = _text(
            description,
            "description",
            allow_empty=True,
            strip=False,
            limit=self._policy.max_body_length,
        )
        severity_ = self._severity(severity)
        channel_ = self._channel(channel)
        product_ = self._product(product)
        tags_ = self._tags(tags)
        version_ = None if product_version is None else _text(product_version, "product_version")
        mid = _message_id(message_id, limit=self._policy.max_message_id_length)
        ticket_id = ticket_id_for_message(mid) if mid else uuid.uuid4()

        def attempt() -> UUID:
            when = self._at(at)  # re-read per attempt: a retry happens later
            if mid is not None:
                existing = self._receipt(mid)
                if existing is not None:  # a redelivery, if the same requester sends it
                    return self._resubmitted(existing, requester_)
            key = self._keys.key_for_address(requester_)
            sealed_requester = self._seal(key, requester_, address=True)
            ticket = Ticket.submit(
                ticket_id=ticket_id,
                policy=self._policy,
                product_version=version_,
                at=when,
                requester=sealed_requester,
                subject=self._seal(key, subject_),
                description=self._seal(key, description_),
                severity=severity_,
                channel=channel_,
                product=product_,
                tags=tags_,
                message_id=mid,
            )
            if cc_:  # the requester puts them on the CC list (the error names no token)
                ticket.permit(self._policy, Action.ADD_CC, Role.REQUESTER, requester_)
            for address in cc_:
                ticket.add_cc(
                    self._policy,
                    address=self._seal(key, address, address=True),
                    by=sealed_requester,
                    role=Role.REQUESTER,
                    at=when,
                )
            self._save(ticket, self._new_receipt(mid, ticket_id, when))
            return ticket_id

        return self._retrying(ticket_id, attempt)

    def assign(self, ticket_id: UUID, *, agent: str, at: _dt.datetime | None = None) -> None:
        """An agent takes the ticket (`NEW` becomes `OPEN`)."""
        tid = self._ticket_id(ticket_id)
        agent_ = _text(agent, "agent", ticket_id=tid)
        self._command(
            tid,
            at,
            lambda t, p, when: t.assign(
                p,
                agent=agent_,
                at=when,
                role=self._staff_role(agent_, Action.ASSIGN, p, Role.AGENT),
            ),
            self._staff_vet(agent_, Action.ASSIGN, Role.AGENT),
        )

    def reply(
        self, ticket_id: UUID, *, agent: str, body: str, at: _dt.datetime | None = None
    ) -> None:
        """An agent replies; the ticket is (or becomes) `OPEN`. A `SOLVED` ticket is reopened."""
        self._agent_message(ticket_id, agent, body, asks_for_input=False, at=at)

    def request_info(
        self, ticket_id: UUID, *, agent: str, body: str, at: _dt.datetime | None = None
    ) -> None:
        """An agent asks the customer for input: `PENDING`, and the auto-solve timer starts
        (or restarts)."""
        self._agent_message(ticket_id, agent, body, asks_for_input=True, at=at)

    def _agent_message(
        self,
        ticket_id: UUID,
        agent: str,
        body: str,
        *,
        asks_for_input: bool,
        at: _dt.datetime | None,
    ) -> None:
        tid = self._ticket_id(ticket_id)
        agent_ = _text(agent, "agent", ticket_id=tid)
        body_ = _text(body, "body", strip=False, ticket_id=tid, limit=self._policy.max_body_length)
        action = Action.REQUEST_INFO if asks_for_input else Action.REPLY
        self._command(
            tid,
            at,
            lambda t, p, when: t.respond(
                p,
                agent=agent_,
                body=self._seal(self._ticket_key(t), body_),
                asks_for_input=asks_for_input,
                at=when,
                role=self._staff_role(agent_, action, p, Role.AGENT),
            ),
            self._staff_vet(agent_, action, Role.AGENT),
        )

    def solve(
        self, ticket_id: UUID, *, agent: str, solution: str, at: _dt.datetime | None = None
    ) -> None:
        """An agent gives a solution: `SOLVED`, and the close timer starts. Solving a solved
        ticket records nothing."""
        tid = self._ticket_id(ticket_id)
        agent_ = _text(agent, "agent", ticket_id=tid)
        solution_ = _text(
            solution, "solution", strip=False, ticket_id=tid, limit=self._policy.max_body_length
        )
        self._command(
            tid,
            at,
            lambda t, p, when: t.solve(
                p,
                agent=agent_,
                solution=self._seal(self._ticket_key(t), solution_),
                at=when,
                role=self._staff_role(agent_, Action.SOLVE, p, Role.AGENT),
            ),
            self._staff_vet(agent_, Action.SOLVE, Role.AGENT),
        )

    def change_severity(
        self,
        ticket_id: UUID,
        severity: Severity | int | str,
        *,
        by: str,
        reason: str,
        at: _dt.datetime | None = None,
    ) -> None:
        """Change the severity; who and why are recorded. The same severity records nothing."""
        tid = self._ticket_id(ticket_id)
        severity_ = self._severity(severity)
        by_ = _text(by, "by", ticket_id=tid)
        reason_ = _text(reason, "reason", ticket_id=tid, limit=self._policy.max_body_length)
        self._command(
            tid,
            at,
            lambda t, p, when: t.change_severity(
                p,
                severity=severity_,
                by=by_,
                reason=self._seal(self._ticket_key(t), reason_),
                at=when,
                role=self._staff_role(by_, Action.CHANGE_SEVERITY, p, Role.AGENT),
            ),
            self._staff_vet(by_, Action.CHANGE_SEVERITY, Role.AGENT),
        )

    def customer_reply(
        self,
        ticket_id: UUID,
        body: str,
        *,
        message_id: str | None = None,
        auto_submitted: bool = False,
        by: str | None = None,
        at: _dt.datetime | None = None,
    ) -> UUID:
        """The customer answers. Returns the id of the ticket the message landed on: this one,
        or — if it is `CLOSED` — its open follow-up or a new follow-up ticket.

        `PENDING` becomes `OPEN`; `SOLVED` is reopened; an `auto_submitted` message (RFC 3834)
        is recorded and changes nothing. With a `message_id`, the message takes effect once.

        `by` is the sender's address (default: the requester). Only the requester and
        addresses on the CC list reply as the customer (compared case-insensitively, in NFC;
        plus-addressed and look-alike addresses are other addresses). A reply from anyone
        else never lands on this ticket: under the default policy it becomes a new ticket of
        the sender's own (whose id is returned); with ``SupportPolicy(stranger_replies=
        "refuse")`` it raises `PermissionDenied`. Either way it is recorded for audit
        (`stranger_messages`). An auto-submitted message from a stranger is dropped (recorded,
        and `PermissionDenied` is raised).
        """
        self._at(at)
        body_ = _text(
            body, "body", allow_empty=True, strip=False, limit=self._policy.max_body_length
        )
        by_ = None if by is None else self._address(by, "by", ticket_id=self._ticket_id(ticket_id))
        mid = _message_id(message_id, limit=self._policy.max_message_id_length)
        if not isinstance(auto_submitted, bool):
            raise InvalidCommand("auto_submitted must be True or False")

        tid = self._ticket_id(ticket_id)

        def attempt() -> UUID:
            when = self._at(at)
            if mid is not None:
                existing = self._receipt(mid)
                if existing is not None:  # a redelivery, if the same sender sends it
                    return self._redelivered(existing, tid, by_, mid, when)
            action = Action.AUTO_REPLY if auto_submitted else Action.CUSTOMER_REPLY
            ticket, policy = self._load_for_command(tid, when, check_time=False)
            try:
                if by_ is None:  # the requester; refused if they were erased
                    self._sender(ticket, None, action)
                address = by_ if by_ is not None else self._keys.reveal(ticket.requester)
                role = self._customer_role(ticket, address)
                if role is not Role.STRANGER:
                    ticket.check_time(when)  # a stranger learns nothing of the ticket
            except SupportflowError:
                self._save(ticket)  # the timers caught up are facts
                raise
            if role is Role.STRANGER:
                self._save(ticket)  # the message never lands on this ticket
                return self._stranger_message(
                    ticket,
                    policy,
                    address,
                    body_,
                    mid=mid,
                    auto_submitted=auto_submitted,
                    when=when,
                )
            key = self._ticket_key(ticket)
            outcome = ticket.customer_reply(
                policy,
                by=ticket.requester if by_ is None else self._seal(key, by_, address=True),
                body=self._seal(key, body_),
                message_id=mid,
                auto_submitted=auto_submitted,
                at=when,
                role=role,
            )
            if outcome is not ReplyOutcome.FOLLOW_UP:
                self._save(ticket, self._new_receipt(mid, ticket.id, when))
                return ticket.id
            return self._follow_up(ticket, policy, address=address, body=body_, mid=mid, when=when)

        return self._retrying(tid, attempt)

    def _follows(self, ticket: Ticket, ancestor: UUID) -> bool:
        """Whether `ticket` is a follow-up (of a follow-up ...) of ticket `ancestor`."""
        seen = 0
        parent = ticket.follow_up_of
        while parent is not None and seen < 1000:
            if parent == ancestor:
                return True
            parent = self._load(parent).follow_up_of
            seen += 1
        return False

    def _resubmitted(self, landed: UUID, requester: str) -> UUID:
        """Message `mid` submitted ticket `landed` already: the same requester gets it back;
        another sender reusing the message id is refused without learning the ticket."""
        try:
            owner = self._load(landed)
        except TicketNotFound:
            return landed
        if self._customer_role(owner, requester) in (Role.REQUESTER, Role.CC):
            return landed
        raise InvalidCommand(
            "this message id was already used by another sender; nothing was recorded"
        )

    def _redelivered(
        self, landed: UUID, tid: UUID, by: str | None, mid: str, when: _dt.datetime
    ) -> UUID:
        """Message `mid` took effect already, on ticket `landed`. The same sender gets that
        ticket back (nothing is recorded again); anyone else reusing the message id is
        refused and recorded, and learns nothing about the ticket it landed on."""
        answered = self._load(tid)
        address = by if by is not None else self._keys.reveal(answered.requester)
        try:
            owner = self._load(landed)
        except TicketNotFound:
            return landed
        customer = (Role.REQUESTER, Role.CC)
        if self._customer_role(owner, address) in customer:
            return landed
        if self._customer_role(answered, address) in customer and self._follows(owner, tid):
            return landed  # their reply to a closed ticket started (or reached) this follow-up
        if address != ERASED:
            self._record_refusal(tid, address, mid=mid, auto_submitted=False, when=when)
        refused = PermissionDenied(
            tid,
            actor=address,
            role=Role.STRANGER,
            action=Action.CUSTOMER_REPLY,
            allowed=(Role.REQUESTER, Role.CC),
        )
        refused.add_note("this message id was already used by another sender")
        raise refused

    def request_escalation(
        self,
        ticket_id: UUID,
        *,
        reason: str,
        requested_severity: Severity | int | str | None = None,
        contact: str | None = None,
        by: str | None = None,
        at: _dt.datetime | None = None,
    ) -> None:
        """The customer asks for escalation: why, to which severity, how to reach them.

        Refused on a CLOSED ticket and while an earlier request waits for review. `by` (default:
        the requester) must be the requester or on the CC list (`PermissionDenied`)."""
        tid = self._ticket_id(ticket_id)
        reason_ = _text(reason, "reason", ticket_id=tid, limit=self._policy.max_body_length)
        wanted = None if requested_severity is None else self._severity(requested_severity)
        contact_ = None if contact is None else _text(contact, "contact", ticket_id=tid)
        by_ = None if by is None else self._address(by, "by", ticket_id=tid)

        def decide(t: Ticket, p: SupportPolicy, when: _dt.datetime) -> None:
            sender, role, key = self._sender(t, by_, Action.REQUEST_ESCALATION)
            t.request_escalation(
                p,
                by=sender,
                reason=self._seal(key, reason_),
                requested_severity=wanted,
                contact=None if contact_ is None else self._seal(key, contact_),
                at=when,
                role=role,
            )

        self._command(tid, at, decide, lambda t, p: self._sender(t, by_, Action.REQUEST_ESCALATION))

    def review_escalation(
        self,
        ticket_id: UUID,
        *,
        manager: str,
        accept: bool,
        severity: Severity | int | str | None = None,
        reassign_to: str | None = None,
        note: str = "",
        at: _dt.datetime | None = None,
    ) -> None:
        """A manager reviews the pending escalation request. Accepting may change the severity
        and reassign the ticket (each its own event); declining changes nothing else."""
        tid = self._ticket_id(ticket_id)
        manager_ = _text(manager, "manager", ticket_id=tid)
        if not isinstance(accept, bool):
            raise InvalidCommand("accept must be True or False", ticket_id=tid)
        severity_ = None if severity is None else self._severity(severity)
        agent_ = None if reassign_to is None else _text(reassign_to, "reassign_to", ticket_id=tid)
        note_ = _text(
            note,
            "note",
            allow_empty=True,
            strip=False,
            ticket_id=tid,
            limit=self._policy.max_body_length,
        )

        def decide(t: Ticket, p: SupportPolicy, when: _dt.datetime) -> None:
            key = self._ticket_key(t)
            t.review_escalation(
                p,
                manager=manager_,
                accept=accept,
                severity=severity_,
                reassign_to=agent_,
                note=self._seal(key, note_),
                at=when,
                role=self._staff_role(manager_, Action.REVIEW_ESCALATION, p, Role.MANAGER),
                severity_reason=self._seal(key, f"escalation: {note_}"),
            )

        self._command(
            tid, at, decide, self._staff_vet(manager_, Action.REVIEW_ESCALATION, Role.MANAGER)
        )

    def link_bug(
        self, ticket_id: UUID, *, reference: str, by: str, at: _dt.datetime | None = None
    ) -> None:
        """Link the ticket to an internal bug report (once per reference)."""
        tid = self._ticket_id(ticket_id)
        reference_ = _text(reference, "reference", ticket_id=tid)
        by_ = _text(by, "by", ticket_id=tid)
        self._command(
            tid,
            at,
            lambda t, p, when: t.link_bug(
                p,
                reference=reference_,
                by=by_,
                at=when,
                role=self._staff_role(by_, Action.LINK_BUG, p, Role.AGENT),
            ),
            self._staff_vet(by_, Action.LINK_BUG, Role.AGENT),
        )

    def tickets_for_bug(self, reference: str) -> list[UUID]:
        """The tickets linked to bug `reference`, in the order they were linked."""
        reference_ = _text(reference, "reference")
        found: list[UUID] = []
        for event in self._scan(Ticket.BugLinked):
            if event.reference == reference_ and event.originator_id not in found:
                found.append(event.originator_id)
        return found

    def record_survey(
        self,
        ticket_id: UUID,
        *,
        rating: int,
        comment: str = "",
        by: str | None = None,
        at: _dt.datetime | None = None,
    ) -> None:
        """Record the requester's answer to the satisfaction survey (1-5), once, on the
        CLOSED ticket; a second answer is refused. `by` (default: the requester) must be the
        requester or on the CC list (`PermissionDenied`)."""
        tid = self._ticket_id(ticket_id)
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise InvalidCommand(
                f"rating must be a whole number 1..5, got {rating!r}", ticket_id=tid
            )
        comment_ = _text(
            comment,
            "comment",
            allow_empty=True,
            strip=False,
            ticket_id=tid,
            limit=self._policy.max_body_length,
        )
        by_ = None if by is None else self._address(by, "by", ticket_id=tid)

        def decide(t: Ticket, p: SupportPolicy, when: _dt.datetime) -> None:
            sender, role, key = self._sender(t, by_, Action.ANSWER_SURVEY)
            t.answer_survey(
                p, rating=rating, comment=self._seal(key, comment_), by=sender, at=when, role=role
            )

        self._command(tid, at, decide, lambda t, p: self._sender(t, by_, Action.ANSWER_SURVEY))

    def add_cc(
        self,
        ticket_id: UUID,
        address: str,
        *,
        by: str | None = None,
        agent: str | None = None,
        at: _dt.datetime | None = None,
    ) -> None:
        """Put `address` on the ticket's CC list: it may then reply as the customer, ask for
        escalation and answer the survey. Added by the requester (`by`, the default) or by an
        `agent`, never by anyone else (`PermissionDenied`). An address already on the list
        records nothing. CC changes are allowed in every status."""
        self._cc(ticket_id, address, by=by, agent=agent, at=at, adding=True)

    def remove_cc(
        self,
        ticket_id: UUID,
        address: str,
        *,
        by: str | None = None,
        agent: str | None = None,
        at: _dt.datetime | None = None,
    ) -> None:
        """Take `address` off the CC list (by the requester, the default, or an `agent`)."""
        self._cc(ticket_id, address, by=by, agent=agent, at=at, adding=False)

    def _cc(
        self,
        ticket_id: UUID,
        address: str,
        *,
        by: str | None,
        agent: str | None,
        at: _dt.datetime | None,
        adding: bool,
    ) -> None:
        tid = self._ticket_id(ticket_id)
        address_ = self._address(address, "address", ticket_id=tid)
        if by is not None and agent is not None:
            raise InvalidCommand("give either by= (a customer) or agent=, not both", ticket_id=tid)
        by_ = None if by is None else self._address(by, "by", ticket_id=tid)
        agent_ = None if agent is None else _text(agent, "agent", ticket_id=tid)
        action = Action.ADD_CC if adding else Action.REMOVE_CC

        def who(t: Ticket, p: SupportPolicy) -> tuple[str, Role]:
            if agent_ is not None:
                role = self._staff_role(agent_, action, p, Role.AGENT)
                t.permit(p, action, role, agent_)
                return agent_, role
            sender, role, _ = self._sender(t, by_, action)
            t.permit(p, action, role, by_ or "the requester")
            return sender, role

        def decide(t: Ticket, p: SupportPolicy, when: _dt.datetime) -> None:
            actor, role = who(t, p)
            key = self._ticket_key(t)
            if key is None:
                raise InvalidCommand(
                    "the requester's personal data was erased: the CC list can no longer change",
                    ticket_id=t.id,
                )
            if adding and len(t.cc) >= p.max_tags:
                raise InvalidCommand(
                    f"the CC list has {len(t.cc)} addresses; the limit is {p.max_tags}",
                    ticket_id=t.id,
                )
            change = t.add_cc if adding else t.remove_cc
            change(p, address=self._seal(key, address_, address=True), by=actor, role=role, at=when)

        self._command(tid, at, decide, who)

    def forget_requester(
        self, address: str, *, by: str = "system", at: _dt.datetime | None = None
    ) -> int:
        """Erase requester `address`'s personal data (crypto-shredding); returns the number of
        tickets erased.

        Every ticket submitted by `address` (follow-ups included) records an `Erased` event
        (who asked, when; no personal data), then the requester's key is destroyed. Their
        tickets still replay, audit and verify — the hash chain covers the sealed form — but
        every personal field (addresses, subject, every message body) reads ``[erased]``, and
        nothing personal remains in plain text in the store. Later commands on those tickets
        still work; any text they carry is not kept. Idempotent: an address without a key
        erases nothing and returns 0."""
        address_ = self._address(address, "address")
        by_ = _text(by, "by")
        self._at(at)
        found = self._keys.existing_key_for(address_)
        if found is None:
            # nothing to erase; but finish a destruction an earlier call could not complete
            # (its key row is gone, its bytes may still sit in the database files)
            self._destroy_key(None)
            return 0
        key_id = found[0]
        erased = 0

        def erase_from(start: int) -> int:
            nonlocal erased
            topics = [get_topic(Ticket.Submitted)]
            for item in scan_log(self._app.recorder, topics, start=start):
                start = item.id + 1
                event: Any = self._app.mapper.to_domain_event(item)
                if key_id_of(event.requester) == key_id:
                    self._command(
                        event.originator_id, at, lambda t, p, when: t.erase(by=by_, at=when)
                    )
                    erased += 1
            return start

        position = erase_from(1)
        self._destroy_key(key_id)
        erase_from(position)  # a ticket another process submitted meanwhile under that key
        return erased

    def _destroy_key(self, key_id: UUID | None) -> None:
        try:
            if key_id is None:
                self._keys.scrub()
            else:
                self._keys.destroy(key_id)
        except PersistenceError as error:
            raise SupportflowError(
                "the key row is deleted, but the store could not yet wipe its bytes from the "
                f"database files ({type(error).__name__}: {error}); run forget_requester "
                "again when no other connection holds a long transaction"
            ) from None

    def stranger_messages(self, ticket_id: UUID | None = None) -> list[StrangerMessageView]:
        """Messages that answered a ticket from an address neither its requester nor CC'd
        (all of them, or those answering `ticket_id`), in the order they arrived."""
        tid = None if ticket_id is None else self._ticket_id(ticket_id)
        out: list[StrangerMessageView] = []
        for event in self._scan(StrangerMessage.Received):
            if tid is not None and event.ticket_id != tid:
                continue
            out.append(
                StrangerMessageView(
                    id=event.originator_id,
                    ticket_id=event.ticket_id,
                    sender=self._keys.reveal(event.sender),
                    outcome=event.outcome,
                    new_ticket_id=event.new_ticket_id,
                    message_id=event.message_id,
                    auto_submitted=event.auto_submitted,
                    at=event.timestamp,
                )
            )
        return out

    def _scan(self, event_class: type) -> Iterator[Any]:
        """Every stored event of `event_class`, in log order."""
        for item in scan_log(self._app.recorder, [get_topic(event_class)]):
            yield self._app.mapper.to_domain_event(item)

    def queue(
        self,
        *,
        assignee: str | None = None,
        status: Status | Iterable[Status] | None = None,
    ) -> list[TicketView]:
        """The triage view: active tickets (NEW, OPEN, PENDING) ordered by severity, then by
        when their next agent update is due (no due instant last), then by age. Filter by
        `assignee` and by `status` (one or several)."""
        active = {Status.NEW, Status.OPEN, Status.PENDING}
        if status is None:
            wanted = active
        elif isinstance(status, Status):
            wanted = {status}
        else:
            wanted = set(status)
        far = _dt.datetime.max.replace(tzinfo=_dt.UTC)
        views = [
            view
            for view in (self.get(tid) for tid in self.ticket_ids())
            if view.status in wanted and (assignee is None or view.assignee == assignee)
        ]
        return sorted(views, key=lambda v: (int(v.severity), v.update_due_at or far, v.created_at))

    def is_open(self, channel: str, at: _dt.datetime | None = None) -> bool:
        """Whether `channel` takes requests at `at` (default: now) under the desk's policy."""
        return self._policy.is_open(self._channel(channel), self._at(at))

    def _channel(self, channel: str) -> str:
        """A channel the policy knows (`SupportPolicy.channel_hours`), in lower case."""
        name = _text(channel, "channel").lower()
        known = dict(self._policy.channel_hours)
        if name not in known:
            raise InvalidCommand(
                f"unknown channel {channel!r}; the policy knows {', '.join(sorted(known))} "
                "(add a channel with SupportPolicy(channel_hours=...))"
            )
        return name

    def run_due_timers(self, now: _dt.datetime | None = None) -> int:
        """Write every timer due at or before `now` (default: the clock), each stamped with its
        due instant. Returns the number of events written. Idempotent; safe to run from several
        threads, desks or processes at once. Reads only the due rows of the timer index, so
        its cost grows with the number of due timers, not with the number of tickets.

        A ticket that cannot be processed (e.g. its policy version is unknown) does not stop
        the others: every other due ticket is processed first, then the first error is raised.
        """
        when = self._at(now)
        sweep = self._sweep(when)
        if sweep.failures:
            first = sweep.failures[0]
            if len(sweep.failures) > 1:
                rest = sweep.failures[1:]
                first.add_note(f"{len(rest)} more ticket(s) failed: {rest!r}")
            raise first
        return sweep.written

    # -- queries ----------------------------------------------------------------------------

    def get(self, ticket_id: UUID, *, as_of: _dt.datetime | None = None) -> TicketView:
        """The ticket now (or `as_of` an instant), with due timers shown as applied."""
        tid = self._ticket_id(ticket_id)
        if as_of is None:
            ticket = self._load(tid)
            until = max(self._at(None), ticket.modified_on)
        else:
            until = self._at(as_of)
            events = self._events(tid)
            if not events:
                raise TicketNotFound(tid)
            ticket = project(None, (e for e in events if e.timestamp <= until))
            if ticket is None:
                raise TicketNotFound(tid, detail=f"it did not exist yet at {until.isoformat()}")
        recorded = ticket.version
        pending = ticket.catch_up(self._policy_for(ticket), until=until, written_at=until)
        return self._view(ticket, recorded_version=recorded, as_of=until, unwritten=pending)

    def history(self, ticket_id: UUID, *, sealed: bool = False) -> list[CanMutateAggregate[UUID]]:
        """The ticket's stored events, in order; each has an aware UTC `.timestamp`.

        Personal fields read as people wrote them (``[erased]`` once the requester is
        forgotten). `sealed=True` gives the events exactly as stored, personal fields sealed:
        the form the hash chain covers."""
        tid = self._ticket_id(ticket_id)
        events = self._events(tid)
        if not events:
            raise TicketNotFound(tid)
        return events if sealed else [self._revealed(e) for e in events]

    def ticket_ids(self) -> Iterator[UUID]:
        """Every ticket id in the store, in the order they were submitted."""
        return ticket_ids(self._app)

    def policy_for(self, ticket_id: UUID) -> SupportPolicy:
        """The policy a ticket runs under (the version recorded when it was submitted)."""
        return self._policy_for(self._load(self._ticket_id(ticket_id)))

    # -- internals: loading and saving ------------------------------------------------------

    def _at(self, at: _dt.datetime | None) -> _dt.datetime:
        self._check_open()
        value = self.clock.now() if at is None else at
        try:
            return require_aware_utc(value, name="at")
        except (TypeError, ValueError) as error:
            raise InvalidCommand(str(error)) from None

    @staticmethod
    def _ticket_id(ticket_id: object) -> UUID:
        if isinstance(ticket_id, UUID):
            return ticket_id
        if isinstance(ticket_id, str):
            try:
                return UUID(ticket_id)
            except ValueError:
                pass
        raise TicketNotFound(ticket_id, detail="ticket ids are UUIDs")

    @staticmethod
    def _severity(value: object) -> Severity:
        try:
            return Severity.parse(value)
        except ValueError as error:
            raise InvalidCommand(str(error)) from None

    @staticmethod
    def _product(value: Mapping[str, str] | None) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise InvalidCommand("product must be a mapping of field name to text")
        out: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not isinstance(item, str) or not key.strip():
                raise InvalidCommand(f"product field {key!r}: names and values must be text")
            out[key.strip()] = item
        return out

    def _tags(self, value: Iterable[str]) -> list[str]:
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise InvalidCommand("tags must be a collection of strings, e.g. ['restore', 'vip']")
        out: list[str] = []
        for tag in value:
            if not isinstance(tag, str) or not tag.strip():
                raise InvalidCommand(f"tag {tag!r} must be non-empty text")
            text = _text(tag, "tag", limit=self._policy.max_tag_length)
            if text not in out:
                out.append(text)
        if len(out) > self._policy.max_tags:
            raise InvalidCommand(f"{len(out)} tags; the limit is {self._policy.max_tags}")
        return out

    # -- internals: people, roles and personal data -----------------------------------------

    @staticmethod
    def _address(value: object, name: str, *, ticket_id: UUID | None = None) -> str:
        """An e-mail address (or other customer identifier) a command names, validated."""
        text = _text(value, name, ticket_id=ticket_id)
        try:
            normalize_address(text)
        except ValueError as error:
            raise InvalidCommand(f"{name}: {error}", ticket_id=ticket_id) from None
        return text

    def _staff_role(self, name: str, action: Action, policy: SupportPolicy, wanted: Role) -> Role:
        """The role staff member `name` acts in for `action`: `wanted` when the desk has no
        roster; otherwise a listed role of theirs the policy allows (else one it refuses)."""
        if self._staff is None:
            return wanted
        roles = self._staff.get(_staff_name(name))
        if not roles:
            return Role.STRANGER
        ordered = sorted(roles, key=lambda r: (r is not wanted, r.value))
        return next((r for r in ordered if policy.may(r, action)), ordered[0])

    def _staff_vet(
        self, name: str, action: Action, wanted: Role
    ) -> Callable[[Ticket, SupportPolicy], None]:
        """The permission check of a staff command, run before anything else is decided."""

        def vet(ticket: Ticket, policy: SupportPolicy) -> None:
            ticket.permit(policy, action, self._staff_role(name, action, policy, wanted), name)

        return vet

    def _customer_role(self, ticket: Ticket, address: str) -> Role:
        """Whether `address` is the ticket's requester, on its CC list, or a stranger
        (compared in normalised form; an erased requester is nobody)."""
        if self._keys.is_address(ticket.requester, address):
            return Role.REQUESTER
        if any(self._keys.is_address(cc, address) for cc in ticket.cc):
            return Role.CC
        return Role.STRANGER

    def _ticket_key(self, ticket: Ticket) -> tuple[UUID, bytes] | None:
        """The key the ticket's personal fields are sealed with; None once erased."""
        key_id = key_id_of(ticket.requester)
        if key_id is None:  # stored before sealing existed: new fields get a key now
            if ticket.erased_at is not None:
                return None
            try:
                return self._keys.key_for_address(ticket.requester)
            except ValueError:
                return None
        key = self._keys.key(key_id)
        return None if key is None else (key_id, key)

    @staticmethod
    def _seal(key: tuple[UUID, bytes] | None, text: str, *, address: bool = False) -> str:
        """`text` sealed under `key`; on an erased ticket (no key) the text is not kept."""
        if key is None:
            return ERASED
        return seal(text, key_id=key[0], key=key[1], address=address)

    def _sender(
        self, ticket: Ticket, by: str | None, action: Action
    ) -> tuple[str, Role, tuple[UUID, bytes] | None]:
        """Who sends a customer-side command: (stored address, role, ticket key). No `by`
        means the requester. A stranger is refused here (customer replies handle them)."""
        key = self._ticket_key(ticket)
        if by is None and key is None:  # the requester was erased: nobody is the requester
            refused = PermissionDenied(
                ticket.id,
                actor="the requester",
                role=Role.STRANGER,
                action=action,
                allowed=self._policy_for(ticket).roles_for(action),
            )
            refused.add_note("the ticket's requester was erased: name the sender with by=")
            raise refused
        if by is None:
            return ticket.requester, Role.REQUESTER, key
        role = self._customer_role(ticket, by)
        if role is Role.STRANGER:
            raise PermissionDenied(
                ticket.id,
                actor=by,
                role=role,
                action=action,
                allowed=self._policy_for(ticket).roles_for(action),
            )
        return self._seal(key, by, address=True), role, key

    def reveal(self, value: str) -> str:
        """A stored personal field as people read it: opened with its requester's key, or
        ``[erased]`` once that key is destroyed. Plain values are returned as they are."""
        return self._keys.reveal(value)

    def _revealed(self, event: Any) -> Any:
        fields = PERSONAL_FIELDS.get(type(event))
        if not fields:
            return event
        changes = {
            name: self._keys.reveal(getattr(event, name))
            for name in fields
            if isinstance(getattr(event, name, None), str)
        }
        return dataclasses.replace(event, **changes) if changes else event

    def _events(self, ticket_id: UUID) -> list[CanMutateAggregate[UUID]]:
        try:
            events: list[CanMutateAggregate[UUID]] = list(
                self._app.events.get(ticket_id)  # type: ignore[arg-type]
            )
        except (MapperDeserialisationError, TopicError) as error:
            raise CorruptedHistory(ticket_id, detail=type(error).__name__) from None
        if events and not isinstance(events[0], Ticket.Submitted):
            return []
        return events

    def _load(self, ticket_id: UUID) -> Ticket:
        try:
            aggregate = self._app.repository.get(ticket_id, projector_func=project)
        except AggregateNotFoundError:
            raise TicketNotFound(ticket_id) from None
        except (MapperDeserialisationError, TopicError) as error:
            raise CorruptedHistory(ticket_id, detail=type(error).__name__) from None
        if not isinstance(aggregate, Ticket):
            raise TicketNotFound(ticket_id)
        return aggregate

    def _load_for_command(
        self,
        ticket_id: UUID,
        when: _dt.datetime,
        vet: Callable[[Ticket, SupportPolicy], object] | None = None,
        *,
        check_time: bool = True,
    ) -> tuple[Ticket, SupportPolicy]:
        """Load a ticket and apply its due timers, then refuse `when` if it is in its past.

        Timers due by the desk's now count as the ticket's past even if no worker has
        written them yet, so whether a back-dated command is accepted never depends on
        when the worker ran. The caught-up timer events are saved even if `when` is refused.
        `vet` (the actor's permission) is checked before the time, so a refused actor learns
        nothing about the ticket's history.
        """
        ticket = self._load(ticket_id)
        policy = self._policy_for(ticket)
        now = self._at(None)
        ticket.catch_up(policy, until=max(when, now), written_at=max(when, now))
        try:
            if vet is not None:
                vet(ticket, policy)
            if check_time:
                ticket.check_time(when)
        except SupportflowError:
            self._save(ticket)
            raise
        return ticket, policy

    def _command(
        self,
        ticket_id: UUID,
        at: _dt.datetime | None,
        decide: Callable[[Ticket, SupportPolicy, _dt.datetime], object],
        vet: Callable[[Ticket, SupportPolicy], object] | None = None,
    ) -> None:
        tid = self._ticket_id(ticket_id)
        self._at(at)

        def attempt() -> None:
            when = self._at(at)
            ticket, policy = self._load_for_command(tid, when, vet)
            try:
                decide(ticket, policy, when)
            except SupportflowError:
                # Refused: the timers that catch-up applied are facts; keep them.
                self._save(ticket)
                raise
            self._save(ticket)

        self._retrying(tid, attempt)

    def _follow_up(
        self,
        closed: Ticket,
        policy: SupportPolicy,
        *,
        address: str,
        body: str,
        mid: str | None,
        when: _dt.datetime,
    ) -> UUID:
        """A reply from `address` (in plain; a requester or CC of `closed`) to a CLOSED
        ticket: it lands on the latest open follow-up, if the sender may act there, or
        starts a new follow-up ticket. Personal fields are sealed per target ticket."""
        to_save: list[Aggregate] = [closed]
        latest_id = closed.follow_ups[-1] if closed.follow_ups else None
        while latest_id is not None:
            # follow the chain of latest follow-ups to the first one that is not CLOSED
            try:
                latest, latest_policy = self._load_for_command(latest_id, when)
            except InvalidCommand:
                self._save(*to_save)  # the timers caught up so far are facts: keep them
                raise
            to_save.append(latest)
            if latest.status is Status.CLOSED:
                latest_id = latest.follow_ups[-1] if latest.follow_ups else None
                continue
            role = self._customer_role(latest, address)  # who they are *there*
            if role is Role.STRANGER:
                self._save(*to_save)
                return self._stranger_message(
                    latest, latest_policy, address, body, mid=mid, auto_submitted=False, when=when
                )
            key = self._ticket_key(latest)
            outcome = latest.customer_reply(
                latest_policy,
                by=self._seal(key, address, address=True),
                body=self._seal(key, body),
                message_id=mid,
                auto_submitted=False,
                at=when,
                role=role,
            )
            if outcome is not ReplyOutcome.FOLLOW_UP:
                self._save(*to_save, self._new_receipt(mid, latest.id, when))
                return latest.id
            break  # a custom table that follows up from a status other than CLOSED
        new_id = follow_up_id(closed.id, len(closed.follow_ups) + 1)
        current = self._policy  # a follow-up runs under the desk's current policy
        copied = current.follow_up_fields(closed.copyable_fields())
        closed_key = self._ticket_key(closed)
        if "requester" in copied:  # the same requester: the same key
            key, requester = closed_key, copied["requester"]
        else:  # the sender's own ticket: sealed under the sender's own key
            key = self._keys.key_for_address(address)
            requester = self._seal(key, address, address=True)
        subject = (
            self._seal(key, self._keys.reveal(copied["subject"]))
            if "subject" in copied and key != closed_key
            else copied.get("subject") or self._seal(key, f"Follow-up to ticket {closed.id}")
        )
        follow_up = Ticket.submit(
            ticket_id=new_id,
            policy=current,
            at=when,
            requester=requester,
            subject=subject,
            description=self._seal(key, body),
            severity=copied.get("severity", Severity.MEDIUM),
            channel=copied.get("channel", "email"),
            product=copied.get("product", {}),
            tags=copied.get("tags", []),
            follow_up_of=closed.id,
            message_id=mid,
            product_version=closed.product_version
            if "product" in current.follow_up_copies
            else None,
        )
        closed.record_follow_up(
            follow_up_id=new_id,
            by=self._seal(closed_key, address, address=True),
            message_id=mid,
            at=when,
        )
        self._save(*to_save, follow_up, self._new_receipt(mid, new_id, when))
        return new_id

    def _stranger_message(
        self,
        ticket: Ticket,
        policy: SupportPolicy,
        sender: str,
        body: str,
        *,
        mid: str | None,
        auto_submitted: bool,
        when: _dt.datetime,
    ) -> UUID:
        """A reply to `ticket` from an address that is neither its requester nor CC'd: a new
        ticket of the sender's own, or a refusal (policy `stranger_replies`); recorded either
        way, with the sender sealed under their own key and no body."""
        if auto_submitted or policy.stranger_replies is StrangerReplies.REFUSE:
            self._record_refusal(
                ticket.id, sender, mid=mid, auto_submitted=auto_submitted, when=when
            )
            raise PermissionDenied(
                ticket.id,
                actor=sender,
                role=Role.STRANGER,
                action=Action.AUTO_REPLY if auto_submitted else Action.CUSTOMER_REPLY,
                allowed=policy.roles_for(Action.CUSTOMER_REPLY),
            )
        key = self._keys.key_for_address(sender)
        sealed_sender = self._seal(key, sender, address=True)
        new_id = ticket_id_for_message(mid) if mid else uuid.uuid4()
        current = self._policy
        new_ticket = Ticket.submit(
            ticket_id=new_id,
            policy=current,
            at=when,
            requester=sealed_sender,
            subject=self._seal(key, "Message from an address not on an earlier ticket"),
            description=self._seal(key, body),
            severity=Severity.MEDIUM,
            channel="email" if "email" in dict(current.channel_hours) else ticket.channel,
            product={},
            tags=[],
            message_id=mid,
        )
        record = StrangerMessage.record(
            ticket_id=ticket.id,
            sender=sealed_sender,
            outcome="new_ticket",
            new_ticket_id=new_id,
            message_id=mid,
            auto_submitted=False,
            at=when,
        )
        self._save(new_ticket, record, self._new_receipt(mid, new_id, when))
        return new_id

    def _record_refusal(
        self,
        ticket_id: UUID,
        sender: str,
        *,
        mid: str | None,
        auto_submitted: bool,
        when: _dt.datetime,
    ) -> None:
        """Record that a stranger's message to `ticket_id` was refused (or, auto-submitted,
        dropped), with the sender sealed under their own key and no body."""
        key = self._keys.key_for_address(sender)
        record = StrangerMessage.record(
            ticket_id=ticket_id,
            sender=self._seal(key, sender, address=True),
            outcome="dropped" if auto_submitted else "refused",
            new_ticket_id=None,
            message_id=mid,
            auto_submitted=auto_submitted,
            at=when,
        )
        with contextlib.suppress(IntegrityError):  # a redelivery: recorded already
            self._app.save(record)

    def _receipt(self, mid: str) -> UUID | None:
        try:
            receipt = self._app.repository.get(receipt_id(mid), projector_func=project)
        except AggregateNotFoundError:
            return None
        if not isinstance(receipt, MessageReceipt):
            return None
        return receipt.ticket_id

    @staticmethod
    def _new_receipt(mid: str | None, ticket_id: UUID, when: _dt.datetime) -> MessageReceipt | None:
        if mid is None:
            return None
        return MessageReceipt.record(message_id=mid, ticket_id=ticket_id, at=when)

    def _save(self, *aggregates: Aggregate | None) -> None:
        """Save all pending events of `aggregates` in one atomic write (the application also
        writes each ticket's pending timer to the due-timer index, in the same transaction)."""
        if not any(a is not None and a.pending_events for a in aggregates):
            return
        self._app.save(*aggregates)

    def _retrying(self, ticket_id: UUID, attempt: Callable[[], T]) -> T:
        for number in range(1, self.max_attempts + 1):
            try:
                return attempt()
            except IntegrityError:
                pass  # another writer won this version: reload and re-decide
            except OverflowError:
                raise InvalidCommand(
                    "a date this command needs is out of range", ticket_id=ticket_id
                ) from None
            except OperationalError as error:
                if not _is_transient(error):
                    raise
            if number < self.max_attempts:
                time.sleep(random.uniform(0, 0.002 * number))
        raise ConcurrencyConflict(ticket_id, attempts=self.max_attempts)

    # -- internals: policies ----------------------------------------------------------------

    def _adopt(self, policy: SupportPolicy) -> None:
        record = PolicyRecord.adopt(
            version=policy.version, policy=policy.to_dict(), at=self._at(None)
        )
        with contextlib.suppress(IntegrityError):  # already adopted by this or another desk
            self._app.save(record)

    def _policy_for(self, ticket: Ticket) -> SupportPolicy:
        version = ticket.policy_version
        known = self._policies.get(version)
        if known is not None:
            return known
        try:
            record = self._app.repository.get(policy_record_id(version), projector_func=project)
        except AggregateNotFoundError:
            raise UnknownPolicyVersion(version, ticket_id=ticket.id) from None
        policy = SupportPolicy.from_dict(record.policy)
        with self._policies_lock:
            self._policies.setdefault(version, policy)
        return self._policies[version]

    def _view(
        self, ticket: Ticket, *, recorded_version: int, as_of: _dt.datetime, unwritten: int
    ) -> TicketView:
        return TicketView(
            id=ticket.id,
            status=ticket.status,
            severity=ticket.severity,
            requester=self._keys.reveal(ticket.requester),
            subject=self._keys.reveal(ticket.subject),
            description=self._keys.reveal(ticket.description),
            channel=ticket.channel,
            product=tuple(sorted(ticket.product.items())),
            tags=ticket.tags,
            assignee=ticket.assignee,
            created_at=ticket.created_on,
            updated_at=ticket.modified_on,
            close_due_at=ticket.close_due_at,
            solve_due_at=ticket.solve_due_at,
            solved_at=ticket.solved_at,
            first_response_at=ticket.first_response_at,
            follow_up_of=ticket.follow_up_of,
            follow_ups=ticket.follow_ups,
            reopen_count=ticket.reopen_count,
            policy_version=ticket.policy_version,
            product_version=ticket.product_version,
            supported=ticket.supported,
            update_due_at=ticket.update_due_at,
            update_overdue_at=ticket.update_overdue_at,
            sla_breaches=ticket.sla_breaches,
            pending_escalation=None
            if ticket.pending_escalation is None
            else self._escalation(ticket.pending_escalation),
            escalations=ticket.escalations,
            bugs=ticket.bugs,
            survey_rating=ticket.survey_rating,
            survey_comment=None
            if ticket.survey_comment is None
            else self._keys.reveal(ticket.survey_comment),
            cc=tuple(self._keys.reveal(a) for a in ticket.cc),
            erased_at=ticket.erased_at,
            version=recorded_version,
            as_of=as_of,
            unwritten_timer_events=unwritten,
        )

    def _escalation(self, stored: Mapping[str, Any]) -> EscalationRequest:
        fields = dict(stored)
        for name in ("by", "reason", "contact"):
            if isinstance(fields.get(name), str):
                fields[name] = self._keys.reveal(fields[name])
        return EscalationRequest(**fields)

    def _seal_for(self, ticket_id: UUID, text: str) -> str:
        """`text` sealed under the key of ticket `ticket_id` (error texts that may name the
        requester: a mail server's refusal often does)."""
        if not text:
            return text
        try:
            return self._seal(self._ticket_key(self._load(ticket_id)), text)
        except SupportflowError:
            return ERASED

    def _contact(self, ticket_id: UUID) -> tuple[str, str]:
        """The stored (sealed) requester and subject of a ticket (they never change)."""
        ticket = self._load(ticket_id)
        return ticket.requester, ticket.subject

    # -- due timers: sweeps and migration ---------------------------------------------------

    @classmethod
    def migrate(cls, store: str, *, env: Mapping[str, str] | None = None) -> int:
        """Create the store's tables and indexes, then index the pending timers of the
        tickets already stored; returns the number of timers indexed. Idempotent, and safe
        to run from several processes at once. Required once before a PostgreSQL desk opens
        (desks and workers never create tables there); SQLite and memory stores create their
        tables themselves."""
        return _migrate(store, env=env)

    def _fire(self, ticket_id: UUID, when: _dt.datetime) -> int:
        ticket = self._load(ticket_id)
        count = ticket.catch_up(self._policy_for(ticket), until=when, written_at=when)
        if count:
            self._save(ticket)
        return count

    def _sweep(
        self,
        when: _dt.datetime,
        *,
        batch_size: int = 500,
        should_stop: Callable[[], bool] | None = None,
        on_ticket: Callable[[DueRow, int], None] | None = None,
    ) -> Sweep:
        """Handle every index row due at or before `when`, `batch_size` rows per claim.

        Each row's ticket is reloaded and caught up under its policy with optimistic
        concurrency, so a stale row writes nothing and a row two sweeps both handle fires
        once. A row whose ticket fails stays in the index (retried next sweep) and is
        skipped for the rest of this one. `should_stop` is asked before each ticket.
        """
        written = tickets = 0
        failures: list[SupportflowError] = []
        after: DueRow | None = None
        stopped = False
        while not stopped:
            try:
                with self._timers.claim_due(when, limit=batch_size, after=after) as claim:
                    for row in claim.rows:
                        if should_stop is not None and should_stop():
                            stopped = True
                            break
                        after = row
                        try:
                            count = self._retrying(
                                row.ticket_id,
                                lambda tid=row.ticket_id: self._fire(tid, when),  # type: ignore[misc]
                            )
                        except SupportflowError as error:
                            failures.append(error)
                            continue
                        claim.done(row)
                        tickets += 1
                        written += count
                        if on_ticket is not None:
                            on_ticket(row, count)
                    more = len(claim.rows) >= batch_size
            except PersistenceError as error:
                failures.append(SupportflowError(f"timer sweep on {self.store} stopped: {error}"))
                break
            if not more:
                break
        return Sweep(written=written, tickets=tickets, failures=tuple(failures), stopped=stopped)
