"""Notifications and surveys, delivered through an outbox.

`Solved` asks for a notification to the requester; `Closed` asks for a satisfaction survey.
Each request becomes a `Delivery` record in the store (id and idempotency key derived from
the event that asked for it), and `deliver_notifications` hands pending ones to your
`Notifier`:

- at least once: a delivery is marked delivered only after the notifier returned, so a crash
  in between delivers it again after a restart (the stable `key` lets the receiver dedupe);
- never twice by the worker itself once it is marked delivered;
- one worker at a time per delivery: a worker claims a delivery (an optimistic write) before
  calling the notifier; a claim expires after `lease`, so a crashed worker's claims return;
- failures are retried with exponential backoff; a `PermanentDeliveryError`, or running out
  of attempts, records the delivery as failed for good.
"""

from __future__ import annotations

import datetime as _dt
import threading
import uuid
import weakref
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from ._pii import ERASED
from ._records import NAMESPACE
from ._timers import scan_log
from .desk import SupportDesk
from .ticket import Ticket

__all__ = [
    "Delivery",
    "DeliveryReport",
    "Notification",
    "Notifier",
    "PermanentDeliveryError",
    "deliver_notifications",
    "pending_notifications",
]

SOLVED_NOTICE = "solved_notice"
SURVEY_REQUEST = "survey_request"

_KIND_BY_TOPIC = {
    get_topic(Ticket.Solved): SOLVED_NOTICE,
    get_topic(Ticket.Closed): SURVEY_REQUEST,
}


class PermanentDeliveryError(Exception):
    """Raise from `Notifier.deliver` when retrying cannot help (e.g. the address is invalid)."""


@attrs.frozen(kw_only=True)
class Notification:
    """One message to deliver. `key` is stable: the same request always has the same key."""

    key: str
    kind: str
    """``solved_notice`` (the ticket was solved) or ``survey_request`` (it was closed)."""
    ticket_id: UUID
    requester: str
    """The requester's address (stored sealed; opened when handed to the notifier)."""
    subject: str
    requested_at: _dt.datetime
    """The instant of the event that asked for it."""


@runtime_checkable
class Notifier(Protocol):
    """What you implement: send one notification (email, webhook, ...).

    Return normally when it was accepted. Raise `PermanentDeliveryError` when retrying cannot
    help; any other exception is retried with backoff.
    """

    def deliver(self, notification: Notification) -> None: ...


class Delivery(Aggregate):
    """The outbox record of one notification: requested, claimed, attempted, delivered."""

    class Requested(Aggregate.Created):
        key: str
        kind: str
        ticket_id: UUID
        requester: str
        subject: str
        requested_at: _dt.datetime

        def apply(self, aggregate: Any) -> None:
            d: Delivery = aggregate
            d.notification = Notification(
                key=self.key,
                kind=self.kind,
                ticket_id=self.ticket_id,
                requester=self.requester,
                subject=self.subject,
                requested_at=self.requested_at,
            )
            d.attempts = 0
            d.state = "pending"
            d.next_attempt_at = self.timestamp
            d.claimed_by = None
            d.claimed_until = None
            d.last_error = None

    class Claimed(Aggregate.Event):
        worker: str
        until: _dt.datetime

        def apply(self, aggregate: Any) -> None:
            aggregate.claimed_by = self.worker
            aggregate.claimed_until = self.until

    class Failed(Aggregate.Event):
        attempt: int
        error: str
        permanent: bool
        next_attempt_at: _dt.datetime | None

        def apply(self, aggregate: Any) -> None:
            d: Delivery = aggregate
            d.attempts = self.attempt
            d.last_error = self.error
            d.claimed_by = None
            d.claimed_until = None
            if self.permanent:
                d.state = "failed"
                d.next_attempt_at = None
            else:
                d.next_attempt_at = self.next_attempt_at

    class Delivered(Aggregate.Event):
        attempt: int
        worker: str

        def apply(self, aggregate: Any) -> None:
            d: Delivery = aggregate
            d.attempts = self.attempt
            d.state = "delivered"
            d.claimed_by = None
            d.claimed_until = None
            d.next_attempt_at = None

    notification: Notification
    attempts: int
    state: str
    next_attempt_at: _dt.datetime | None
    claimed_by: str | None
    claimed_until: _dt.datetime | None
    last_error: str | None

    def __init__(self) -> None:
        """State is set by `Requested.apply`."""

    def is_ready(self, now: _dt.datetime) -> bool:
        if self.state != "pending" or self.next_attempt_at is None:
            return False
        if self.claimed_until is not None and self.claimed_until > now:
            return False
        return self.next_attempt_at <= now


def delivery_id(key: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"delivery:{key}")


@attrs.frozen(kw_only=True)
class DeliveryReport:
    """What one `deliver_notifications` run did."""

    requested: int = 0
    """New outbox records created from the log in this run."""
    delivered: int = 0
    retried: int = 0
    """Attempts that failed and will be tried again later."""
    failed: int = 0
    """Deliveries given up for good in this run."""
    pending: int = 0
    """Deliveries still waiting (for their next attempt or for a claim to expire)."""


class _Cursor:
    """What this process knows of a desk's outbox: the log position read so far, and the keys
    of the deliveries that were still pending. The first run reads the whole log once; later
    runs read only new events and look only at pending deliveries."""

    def __init__(self) -> None:
        self.position = 0
        self.pending: dict[str, None] = {}  # insertion-ordered set of keys
        self.lock = threading.Lock()


_CURSORS: weakref.WeakKeyDictionary[SupportDesk, _Cursor] = weakref.WeakKeyDictionary()
_CURSORS_LOCK = threading.Lock()


def _cursor(desk: SupportDesk) -> _Cursor:
    with _CURSORS_LOCK:
        cursor = _CURSORS.get(desk)
        if cursor is None:
            cursor = _CURSORS[desk] = _Cursor()
        return cursor


def _requests(desk: SupportDesk, start: int) -> Iterator[tuple[int, Notification]]:
    """The notifications the log asks for from position `start` on, in log order."""
    tickets: dict[UUID, tuple[str, str]] = {}
    for item in scan_log(desk.application.recorder, list(_KIND_BY_TOPIC), start=start):
        event: Any = desk.application.mapper.to_domain_event(item)
        tid: UUID = event.originator_id
        if tid not in tickets:  # requester and subject never change on a ticket
            tickets[tid] = desk._contact(tid)  # sealed: the outbox keeps no personal text
        requester, subject = tickets[tid]
        kind = _KIND_BY_TOPIC[item.topic]
        key = f"{kind}:{tid}:{event.originator_version}"
        yield (
            item.id,
            Notification(
                key=key,
                kind=kind,
                ticket_id=tid,
                requester=requester,
                subject=subject,
                requested_at=event.timestamp,
            ),
        )


def _load(desk: SupportDesk, key: str) -> Delivery | None:
    try:
        delivery: Any = desk.application.repository.get(delivery_id(key))
    except AggregateNotFoundError:
        return None
    return delivery if isinstance(delivery, Delivery) else None


def pending_notifications(desk: SupportDesk) -> list[Delivery]:
    """Every outbox record not delivered and not failed for good (creating missing ones).

    The records are as stored: `delivery.notification` holds the requester and subject
    sealed; `desk.reveal(value)` opens them (``[erased]`` once the requester is forgotten)."""
    cursor = _cursor(desk)
    with cursor.lock:
        _enqueue(desk, cursor, desk.clock.now())
        out: list[Delivery] = []
        for key in list(cursor.pending):
            delivery = _load(desk, key)
            if delivery is not None and delivery.state == "pending":
                out.append(delivery)
            else:
                cursor.pending.pop(key, None)
        return out


def _enqueue(desk: SupportDesk, cursor: _Cursor, now: _dt.datetime) -> int:
    """Create the outbox records the log asks for since the cursor; remember pending keys."""
    created = 0
    for position, note in _requests(desk, cursor.position + 1):
        cursor.position = position
        existing = _load(desk, note.key)
        if existing is not None:
            if existing.state == "pending":
                cursor.pending[note.key] = None
            continue
        record = Delivery._create(
            Delivery.Requested,
            id=delivery_id(note.key),
            timestamp=now,
            key=note.key,
            kind=note.kind,
            ticket_id=note.ticket_id,
            requester=note.requester,
            subject=note.subject,
            requested_at=note.requested_at,
        )
        try:
            desk.application.save(record)
            created += 1
        except IntegrityError:
            pass  # another worker created it first
        cursor.pending[note.key] = None
    return created


def _opened(desk: SupportDesk, sealed: Notification) -> Notification:
    """The notification with its requester and subject opened for the notifier; a requester
    who was forgotten cannot be notified (a permanent failure)."""
    requester = desk.reveal(sealed.requester)
    if requester == ERASED:
        raise PermanentDeliveryError("the requester's personal data was erased")
    return attrs.evolve(sealed, requester=requester, subject=desk.reveal(sealed.subject))


def backoff(attempt: int, *, base: _dt.timedelta, cap: _dt.timedelta) -> _dt.timedelta:
    """Exponential backoff: `base`, 2x, 4x ... capped at `cap`."""
    delay: _dt.timedelta = base * (2 ** max(0, attempt - 1))
    return min(cap, delay)


def deliver_notifications(
    desk: SupportDesk,
    notifier: Notifier,
    *,
    now: _dt.datetime | None = None,
    worker: str = "worker",
    batch_size: int = 100,
    max_attempts: int = 8,
    lease: _dt.timedelta = _dt.timedelta(minutes=5),
    base_delay: _dt.timedelta = _dt.timedelta(seconds=30),
    max_delay: _dt.timedelta = _dt.timedelta(hours=6),
) -> DeliveryReport:
    """Create outbox records for new `Solved`/`Closed` events and deliver what is due.

    Safe to run from several processes at once and after a crash (see the module docs).
    """
    if not isinstance(notifier, Notifier):
        msg = f"notifier must have a deliver(notification) method, got {notifier!r}"
        raise TypeError(msg)
    if batch_size < 1 or max_attempts < 1:
        msg = "batch_size and max_attempts must be >= 1"
        raise ValueError(msg)
    when = desk._at(now)
    cursor = _cursor(desk)
    with cursor.lock:
        requested = _enqueue(desk, cursor, when)
        keys = list(cursor.pending)
    delivered = retried = failed = pending = 0
    handled = 0
    for key in keys:
        delivery = _load(desk, key)
        if delivery is None or delivery.state != "pending":
            cursor.pending.pop(key, None)
            continue
        if handled >= batch_size or not delivery.is_ready(when):
            pending += 1
            continue
        delivery.trigger_event(Delivery.Claimed, timestamp=when, worker=worker, until=when + lease)
        try:
            desk.application.save(delivery)
        except IntegrityError:
            pending += 1  # another worker claimed it
            continue
        handled += 1
        attempt = delivery.attempts + 1
        try:
            notifier.deliver(_opened(desk, delivery.notification))
        except PermanentDeliveryError as error:
            delivery.trigger_event(
                Delivery.Failed,
                timestamp=when,
                attempt=attempt,
                error=desk._seal_for(delivery.notification.ticket_id, str(error))
                or type(error).__name__,
                permanent=True,
                next_attempt_at=None,
            )
            failed += 1
            cursor.pending.pop(key, None)
        except Exception as error:  # any other failure is retried
            give_up = attempt >= max_attempts
            delivery.trigger_event(
                Delivery.Failed,
                timestamp=when,
                attempt=attempt,
                error=desk._seal_for(
                    delivery.notification.ticket_id, f"{type(error).__name__}: {error}"
                ),
                permanent=give_up,
                next_attempt_at=None
                if give_up
                else when + backoff(attempt, base=base_delay, cap=max_delay),
            )
            if give_up:
                failed += 1
            else:
                retried += 1
                pending += 1
        else:
            delivery.trigger_event(
                Delivery.Delivered, timestamp=when, attempt=attempt, worker=worker
            )
            delivered += 1
            cursor.pending.pop(key, None)
        desk.application.save(delivery)
    return DeliveryReport(
        requested=requested, delivered=delivered, retried=retried, failed=failed, pending=pending
    )
