"""A mail gateway in front of a desk: duplicate deliveries and auto-replies are harmless.

Mail systems deliver the same message more than once, and robots answer mail: out-of-office
notices, bounces, vacation replies. The gateway below reads each raw message with the standard
library's `email` package and

- routes it to a ticket by the ticket reference in its subject (``[SF-<ticket id>]``) or by the
  ``In-Reply-To``/``References`` headers (the desk's own outgoing Message-IDs name the ticket),
  and otherwise submits a new ticket;
- passes the ``Message-ID`` on, so a redelivered message takes effect once;
- reads ``Auto-Submitted`` (RFC 3834: any value but ``no`` means a machine sent it): an
  auto-submitted reply is recorded and changes nothing, and an auto-submitted message that
  names no ticket opens none (that is how mail loops start).

Run it: ``python examples/mail_gateway.py``.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage

from supportflow import ManualClock, Status, SupportDesk

DESK_ADDRESS = "support@desk.example"
SUBJECT_REF = re.compile(r"\[SF-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\]")
HEADER_REF = re.compile(
    r"<ticket\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.\d+@desk\.example>"
)


def mail(
    sender: str,
    subject: str,
    body: str,
    *,
    message_id: str,
    in_reply_to: str | None = None,
    auto_submitted: str | None = None,
) -> bytes:
    """A message as it arrives from the wire (RFC 5322 bytes)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = DESK_ADDRESS
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = email.utils.format_datetime(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    if in_reply_to is not None:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    if auto_submitted is not None:
        message["Auto-Submitted"] = auto_submitted
    message.set_content(body)
    return message.as_bytes()


def is_auto_submitted(message: EmailMessage) -> bool:
    """RFC 3834 section 5: ``Auto-Submitted`` with any keyword other than ``no``."""
    value = str(message.get("Auto-Submitted", "no"))
    return value.split(";", 1)[0].strip().lower() != "no"


def ticket_reference(message: EmailMessage) -> uuid.UUID | None:
    """The ticket a message answers: a ``[SF-id]`` in the subject, else a desk Message-ID."""
    found = SUBJECT_REF.search(str(message.get("Subject", "")))
    for header in ("In-Reply-To", "References"):
        found = found or HEADER_REF.search(str(message.get(header, "")))
    return uuid.UUID(found.group(1)) if found else None


class MailGateway:
    """Feeds raw inbound mail to a desk; `deliver` returns what happened, in words."""

    def __init__(self, desk: SupportDesk) -> None:
        self.desk = desk
        self._sent = 0

    def outgoing_message_id(self, ticket_id: uuid.UUID) -> str:
        """The Message-ID of a mail the desk sends about `ticket_id` (replies point back)."""
        self._sent += 1
        return f"<ticket.{ticket_id}.{self._sent}@desk.example>"

    def deliver(self, raw: bytes) -> str:
        message = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        message_id = str(message["Message-ID"]).strip() if message["Message-ID"] else None
        sender = email.utils.parseaddr(str(message["From"]))[1]
        part = message.get_body(preferencelist=("plain",))
        body = part.get_content().strip() if isinstance(part, EmailMessage) else ""
        auto = is_auto_submitted(message)
        ticket_id = ticket_reference(message)

        if ticket_id is None:
            if auto:
                return "auto-submitted and names no ticket: dropped"
            subject = str(message.get("Subject", "")).strip() or "(no subject)"
            tid = self.desk.submit(sender, subject, body, channel="email", message_id=message_id)
            return f"ticket {tid}"
        landed = self.desk.customer_reply(
            ticket_id, body, message_id=message_id, auto_submitted=auto, by=sender
        )
        where = "" if landed == ticket_id else f" -> follow-up {landed}"
        return f"reply on {ticket_id}{where}" + (" (auto-submitted)" if auto else "")


def main() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    with SupportDesk(clock=clock) as desk:
        gateway = MailGateway(desk)

        def feed(label: str, raw: bytes, times: int = 1) -> None:
            for delivery in range(1, times + 1):
                print(f"{label} (delivery {delivery}): {gateway.deliver(raw)}")

        first = mail("Ann <ann@example.com>", "Cannot restore", "Restore stops at 12%.",
                     message_id="<a1@example.com>")  # fmt: skip
        feed("new mail", first, times=2)  # the MTA retried: one ticket
        (tid,) = desk.ticket_ids()

        desk.request_info(tid, agent="bob", body="Which version do you run?")
        asked = gateway.outgoing_message_id(tid)
        out_of_office = mail("Ann <ann@example.com>", "Out of office", "Back on Monday.",
                             message_id="<a2@example.com>", in_reply_to=asked,
                             auto_submitted="auto-replied")  # fmt: skip
        feed("out-of-office", out_of_office)
        assert desk.get(tid).status is Status.PENDING  # recorded, changed nothing

        answer = mail("Ann <ann@example.com>", f"Re: [SF-{tid}] Cannot restore", "It is 4.2.",
                      message_id="<a3@example.com>")  # fmt: skip
        before = len(desk.history(tid))
        feed("answer", answer, times=3)
        assert desk.get(tid).status is Status.OPEN
        assert len(desk.history(tid)) == before + 1  # three deliveries, one event

        bounce = mail("MAILER-DAEMON@example.net", "Undeliverable: your survey", "User unknown.",
                      message_id="<b1@example.net>", auto_submitted="auto-generated")  # fmt: skip
        feed("bounce", bounce)
        assert list(desk.ticket_ids()) == [tid]  # no ticket for a robot

        desk.solve(tid, agent="bob", solution="Upgrade to 4.2.1")
        solved = gateway.outgoing_message_id(tid)
        clock.advance(days=4)  # the close timer is due: the ticket is CLOSED
        vacation = mail("Ann <ann@example.com>", "Auto: vacation", "Away until April.",
                        message_id="<a4@example.com>", in_reply_to=solved,
                        auto_submitted="auto-replied")  # fmt: skip
        feed("vacation reply to a closed ticket", vacation)
        assert desk.get(tid).follow_ups == ()  # an auto-reply never opens a follow-up

        again = mail("Ann <ann@example.com>", "Re: Cannot restore", "It broke again.",
                     message_id="<a5@example.com>", in_reply_to=solved)  # fmt: skip
        feed("real reply to a closed ticket", again, times=2)
        assert len(desk.get(tid).follow_ups) == 1  # one follow-up, however often delivered

        names = [type(event).__name__ for event in desk.history(tid)]
        print(f"ticket {tid}: {desk.get(tid).status.name}, events {names}")
        print(f"tickets in the store: {len(list(desk.ticket_ids()))}")


if __name__ == "__main__":
    main()
