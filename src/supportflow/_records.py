"""Small internal aggregates saved next to tickets: message receipts, adopted policies and
messages from strangers."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

__all__ = [
    "NAMESPACE",
    "MessageReceipt",
    "PolicyRecord",
    "StrangerMessage",
    "follow_up_id",
    "policy_record_id",
    "receipt_id",
    "stranger_message_id",
    "ticket_id_for_message",
]

NAMESPACE = UUID("5b0e7a52-3f8e-5d7c-9a41-6f2c1d8e4b90")
"""The uuid5 namespace of every deterministic supportflow id."""


def receipt_id(message_id: str) -> UUID:
    """The id of the receipt of inbound message `message_id`."""
    return uuid.uuid5(NAMESPACE, f"message-receipt:{message_id}")


def ticket_id_for_message(message_id: str) -> UUID:
    """The id of the ticket that inbound message `message_id` submits."""
    return uuid.uuid5(NAMESPACE, f"ticket:{message_id}")


def follow_up_id(closed_ticket_id: UUID, number: int) -> UUID:
    """The id of the `number`-th follow-up (1-based) of a closed ticket."""
    return uuid.uuid5(NAMESPACE, f"follow-up:{closed_ticket_id}:{number}")


def stranger_message_id(message_id: str) -> UUID:
    """The id of the record of a stranger's message `message_id` that was refused or dropped."""
    return uuid.uuid5(NAMESPACE, f"stranger-message:{message_id}")


def policy_record_id(version: str) -> UUID:
    return uuid.uuid5(NAMESPACE, f"policy:{version}")


class MessageReceipt(Aggregate):
    """An inbound message id took effect, on `ticket_id`. Saved atomically with that effect,
    so a second delivery (even a concurrent one) finds it, or loses the write race."""

    class Received(Aggregate.Created):
        message_id: str
        ticket_id: UUID

        def apply(self, aggregate: Any) -> None:
            aggregate.message_id = self.message_id
            aggregate.ticket_id = self.ticket_id

    message_id: str
    ticket_id: UUID

    def __init__(self) -> None:
        """State is set by `Received.apply`."""

    @classmethod
    def record(cls, *, message_id: str, ticket_id: UUID, at: Any) -> MessageReceipt:
        return cls._create(
            cls.Received,
            id=receipt_id(message_id),
            timestamp=at,
            message_id=message_id,
            ticket_id=ticket_id,
        )


class PolicyRecord(Aggregate):
    """A policy version this store's tickets may run under, kept so that any desk (and any
    later replay) can find the rules a ticket recorded."""

    class Adopted(Aggregate.Created):
        version: str
        policy: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.policy_version = self.version
            aggregate.policy = self.policy

    policy_version: str
    policy: dict[str, Any]

    def __init__(self) -> None:
        """State is set by `Adopted.apply`."""

    @classmethod
    def adopt(cls, *, version: str, policy: dict[str, Any], at: Any) -> PolicyRecord:
        return cls._create(
            cls.Adopted, id=policy_record_id(version), timestamp=at, version=version, policy=policy
        )


class StrangerMessage(Aggregate):
    """A message that answered ticket `ticket_id` from an address that is neither its
    requester nor on its CC list. It never landed on that ticket: it became ticket
    `new_ticket_id` (``new_ticket``), was refused (``refused``), or, auto-submitted, was
    dropped (``dropped``). `sender` is sealed under the sender's own key; no body is kept
    here."""

    class Received(Aggregate.Created):
        ticket_id: UUID
        sender: str
        outcome: str
        new_ticket_id: UUID | None
        message_id: str | None
        auto_submitted: bool

        def apply(self, aggregate: Any) -> None:
            aggregate.ticket_id = self.ticket_id
            aggregate.sender = self.sender
            aggregate.outcome = self.outcome
            aggregate.new_ticket_id = self.new_ticket_id
            aggregate.message_id = self.message_id
            aggregate.auto_submitted = self.auto_submitted

    ticket_id: UUID
    sender: str
    outcome: str
    new_ticket_id: UUID | None
    message_id: str | None
    auto_submitted: bool

    def __init__(self) -> None:
        """State is set by `Received.apply`."""

    @classmethod
    def record(
        cls,
        *,
        ticket_id: UUID,
        sender: str,
        outcome: str,
        new_ticket_id: UUID | None,
        message_id: str | None,
        auto_submitted: bool,
        at: Any,
    ) -> StrangerMessage:
        return cls._create(
            cls.Received,
            id=uuid.uuid4() if message_id is None else stranger_message_id(message_id),
            timestamp=at,
            ticket_id=ticket_id,
            sender=sender,
            outcome=outcome,
            new_ticket_id=new_ticket_id,
            message_id=message_id,
            auto_submitted=auto_submitted,
        )
