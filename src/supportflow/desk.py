"""`SupportDesk`: the application. Commands, atomic follow-ups, idempotency, timers, queries."""

from __future__ import annotations

import contextlib
import datetime as _dt
import random
import threading
import time
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

from ._recorders import DueRow, TimerIndex
from ._records import (
    MessageReceipt,
    PolicyRecord,
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
    SupportflowError,
    TicketNotFound,
    UnknownPolicyVersion,
)
from .policy import ReplyOutcome, Severity, Status, SupportPolicy, require_aware_utc
from .ticket import Ticket
from .views import EscalationRequest, TicketView

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
        app = open_application(store, env)  # PostgreSQL: the schema must be migrated
        self._app: Application[UUID] = app
        self._timers: TimerIndex = app.timer_index  # due timers, written with the events
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
        at: _dt.datetime | None = None,
    ) -> UUID:
        """Open a ticket; returns its id. With a `message_id`, a second delivery of the same
        message returns the same ticket and records nothing.

        `product_version` is the customer's software version; a version older than the
        policy's supported majors is flagged (`view.supported is False`), never refused.
        Whether the `channel` is staffed at that moment is `is_open(channel, at)`; a ticket
        is recorded either way, so nothing a customer sent is lost."""
        self._at(at)  # validate early: a bad `at` is refused before anything else
        requester_ = _text(requester, "requester")
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
                if existing is not None:
                    return existing
            ticket = Ticket.submit(
                ticket_id=ticket_id,
                policy=self._policy,
                product_version=version_,
                at=when,
                requester=requester_,
                subject=subject_,
                description=description_,
                severity=severity_,
                channel=channel_,
                product=product_,
                tags=tags_,
                message_id=mid,
            )
            self._save(ticket, self._new_receipt(mid, ticket_id, when))
            return ticket_id

        return self._retrying(ticket_id, attempt)

    def assign(self, ticket_id: UUID, *, agent: str, at: _dt.datetime | None = None) -> None:
        """An agent takes the ticket (`NEW` becomes `OPEN`)."""
        tid = self._ticket_id(ticket_id)
        agent_ = _text(agent, "agent", ticket_id=tid)
        self._command(tid, at, lambda t, p, when: t.assign(p, agent=agent_, at=when))

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
        self._command(
            tid,
            at,
            lambda t, p, when: t.respond(
                p, agent=agent_, body=body_, asks_for_input=asks_for_input, at=when
            ),
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
            tid, at, lambda t, p, when: t.solve(p, agent=agent_, solution=solution_, at=when)
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
                p, severity=severity_, by=by_, reason=reason_, at=when
            ),
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
        `by` is the sender's address (default: the requester).
        """
        self._at(at)
        body_ = _text(
            body, "body", allow_empty=True, strip=False, limit=self._policy.max_body_length
        )
        by_ = None if by is None else _text(by, "by", ticket_id=self._ticket_id(ticket_id))
        mid = _message_id(message_id, limit=self._policy.max_message_id_length)
        if not isinstance(auto_submitted, bool):
            raise InvalidCommand("auto_submitted must be True or False")

        tid = self._ticket_id(ticket_id)

        def attempt() -> UUID:
            when = self._at(at)
            if mid is not None:
                existing = self._receipt(mid)
                if existing is not None:
                    return existing
            ticket, policy = self._load_for_command(tid, when)
            sender = by_ or ticket.requester
            outcome = ticket.customer_reply(
                policy,
                by=sender,
                body=body_,
                message_id=mid,
                auto_submitted=auto_submitted,
                at=when,
            )
            if outcome is not ReplyOutcome.FOLLOW_UP:
                self._save(ticket, self._new_receipt(mid, ticket.id, when))
                return ticket.id
            return self._follow_up(ticket, policy, sender=sender, body=body_, mid=mid, when=when)

        return self._retrying(tid, attempt)

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

        Refused on a CLOSED ticket and while an earlier request waits for review."""
        tid = self._ticket_id(ticket_id)
        reason_ = _text(reason, "reason", ticket_id=tid, limit=self._policy.max_body_length)
        wanted = None if requested_severity is None else self._severity(requested_severity)
        contact_ = None if contact is None else _text(contact, "contact", ticket_id=tid)
        by_ = None if by is None else _text(by, "by", ticket_id=tid)
        self._command(
            tid,
            at,
            lambda t, p, when: t.request_escalation(
                p,
                by=by_ or t.requester,
                reason=reason_,
                requested_severity=wanted,
                contact=contact_,
                at=when,
            ),
        )

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
        self._command(
            tid,
            at,
            lambda t, p, when: t.review_escalation(
                p,
                manager=manager_,
                accept=accept,
                severity=severity_,
                reassign_to=agent_,
                note=note_,
                at=when,
            ),
        )

    def link_bug(
        self, ticket_id: UUID, *, reference: str, by: str, at: _dt.datetime | None = None
    ) -> None:
        """Link the ticket to an internal bug report (once per reference)."""
        tid = self._ticket_id(ticket_id)
        reference_ = _text(reference, "reference", ticket_id=tid)
        by_ = _text(by, "by", ticket_id=tid)
        self._command(
            tid, at, lambda t, p, when: t.link_bug(p, reference=reference_, by=by_, at=when)
        )

    def tickets_for_bug(self, reference: str) -> list[UUID]:
        """The tickets linked to bug `reference`, in the order they were linked."""
        reference_ = _text(reference, "reference")
        found: list[UUID] = []
        for item in scan_log(self._app.recorder, [get_topic(Ticket.BugLinked)]):
            event: Any = self._app.mapper.to_domain_event(item)
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
        CLOSED ticket; a second answer is refused."""
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
        by_ = None if by is None else _text(by, "by", ticket_id=tid)
        self._command(
            tid,
            at,
            lambda t, p, when: t.answer_survey(
                p, rating=rating, comment=comment_, by=by_ or t.requester, at=when
            ),
        )

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

    def history(self, ticket_id: UUID) -> list[CanMutateAggregate[UUID]]:
        """The ticket's stored events, in order; each has an aware UTC `.timestamp`."""
        tid = self._ticket_id(ticket_id)
        events = self._events(tid)
        if not events:
            raise TicketNotFound(tid)
        return events

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
        self, ticket_id: UUID, when: _dt.datetime
    ) -> tuple[Ticket, SupportPolicy]:
        """Load a ticket and apply its due timers, then refuse `when` if it is in its past.

        Timers due by the desk's now count as the ticket's past even if no worker has
        written them yet, so whether a back-dated command is accepted never depends on
        when the worker ran. The caught-up timer events are saved even if `when` is refused.
        """
        ticket = self._load(ticket_id)
        policy = self._policy_for(ticket)
        now = self._at(None)
        ticket.catch_up(policy, until=max(when, now), written_at=max(when, now))
        try:
            ticket.check_time(when)
        except InvalidCommand:
            self._save(ticket)
            raise
        return ticket, policy

    def _command(
        self,
        ticket_id: UUID,
        at: _dt.datetime | None,
        decide: Callable[[Ticket, SupportPolicy, _dt.datetime], object],
    ) -> None:
        tid = self._ticket_id(ticket_id)
        self._at(at)

        def attempt() -> None:
            when = self._at(at)
            ticket, policy = self._load_for_command(tid, when)
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
        sender: str,
        body: str,
        mid: str | None,
        when: _dt.datetime,
    ) -> UUID:
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
            outcome = latest.customer_reply(
                latest_policy,
                by=sender,
                body=body,
                message_id=mid,
                auto_submitted=False,
                at=when,
            )
            if outcome is not ReplyOutcome.FOLLOW_UP:
                self._save(*to_save, self._new_receipt(mid, latest.id, when))
                return latest.id
            break  # a custom table that follows up from a status other than CLOSED
        new_id = follow_up_id(closed.id, len(closed.follow_ups) + 1)
        current = self._policy  # a follow-up runs under the desk's current policy
        copied = current.follow_up_fields(closed.copyable_fields())
        follow_up = Ticket.submit(
            ticket_id=new_id,
            policy=current,
            at=when,
            requester=copied.get("requester", sender),
            subject=copied.get("subject", f"Follow-up to ticket {closed.id}"),
            description=body,
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
        closed.record_follow_up(follow_up_id=new_id, by=sender, message_id=mid, at=when)
        self._save(*to_save, follow_up, self._new_receipt(mid, new_id, when))
        return new_id

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
            requester=ticket.requester,
            subject=ticket.subject,
            description=ticket.description,
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
            else EscalationRequest(**ticket.pending_escalation),
            escalations=ticket.escalations,
            bugs=ticket.bugs,
            survey_rating=ticket.survey_rating,
            survey_comment=ticket.survey_comment,
            version=recorded_version,
            as_of=as_of,
            unwritten_timer_events=unwritten,
        )

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
