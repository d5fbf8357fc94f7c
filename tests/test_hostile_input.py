"""Hostile input: limits that are policy fields, control characters, undecodable text."""

from __future__ import annotations

import pytest

from supportflow import InvalidCommand, SupportDesk, SupportPolicy


@pytest.fixture
def strict_desk() -> SupportDesk:
    policy = SupportPolicy(
        max_subject_length=20,
        max_body_length=50,
        max_tags=2,
        max_tag_length=8,
        max_message_id_length=30,
    )
    return SupportDesk(policy=policy)


def test_subject_longer_than_the_policy_limit_is_refused(strict_desk: SupportDesk) -> None:
    """A subject over `max_subject_length` raises InvalidCommand naming the limit."""
    with pytest.raises(InvalidCommand, match="limit is 20"):
        strict_desk.submit(requester="ann@example.com", subject="x" * 21)
    assert list(strict_desk.ticket_ids()) == []


def test_body_longer_than_the_policy_limit_is_refused(strict_desk: SupportDesk) -> None:
    """A message body over `max_body_length` is refused and nothing is recorded."""
    tid = strict_desk.submit(requester="ann@example.com", subject="x")
    with pytest.raises(InvalidCommand, match="limit is 50"):
        strict_desk.customer_reply(tid, body="y" * 51)
    assert len(strict_desk.history(tid)) == 1


def test_too_many_or_too_long_tags_are_refused(strict_desk: SupportDesk) -> None:
    """More than `max_tags` tags, or a tag over `max_tag_length`, is refused."""
    with pytest.raises(InvalidCommand, match="3 tags; the limit is 2"):
        strict_desk.submit(requester="ann@example.com", subject="x", tags=["a", "b", "c"])
    with pytest.raises(InvalidCommand, match="tag is 9 characters"):
        strict_desk.submit(requester="ann@example.com", subject="x", tags=["x" * 9])


def test_message_id_longer_than_the_limit_is_refused(strict_desk: SupportDesk) -> None:
    """A message id over `max_message_id_length` is refused (angle brackets do not count)."""
    ok = "<" + "m" * 30 + ">"
    strict_desk.submit(requester="ann@example.com", subject="x", message_id=ok)
    with pytest.raises(InvalidCommand, match="message_id is 31 characters"):
        strict_desk.submit(requester="ann@example.com", subject="x", message_id="m" * 31)


@pytest.mark.parametrize("bad", ["ann\x00@example.com", "ann@example.com\x1b[31m", "a\nb"])
def test_control_characters_in_names_are_refused(bad: str) -> None:
    """Names and addresses may not carry control characters (NUL, escape sequences, newlines)."""
    with SupportDesk() as desk, pytest.raises(InvalidCommand, match="control character"):
        desk.submit(requester=bad, subject="x")


def test_bodies_keep_tabs_and_line_breaks_but_not_other_controls() -> None:
    """A body may hold tabs and line breaks; a NUL or an escape is refused."""
    with SupportDesk() as desk:
        tid = desk.submit(requester="ann@example.com", subject="x", description="a\tb\r\nc")
        assert desk.get(tid).description == "a\tb\r\nc"
        with pytest.raises(InvalidCommand, match="control character"):
            desk.customer_reply(tid, body="hello\x00world")


def test_undecodable_text_is_refused() -> None:
    """Text holding a lone surrogate (bytes decoded with surrogateescape) is refused."""
    broken = b"caf\xe9".decode("utf-8", errors="surrogateescape")
    with SupportDesk() as desk, pytest.raises(InvalidCommand, match="not valid text"):
        desk.submit(requester="ann@example.com", subject=broken)


def test_limits_are_policy_fields_in_the_fingerprint() -> None:
    """Changing a limit changes the policy's version, and survives to_dict/from_dict."""
    policy = SupportPolicy(max_body_length=10)
    assert policy.version != SupportPolicy().version
    assert SupportPolicy.from_dict(policy.to_dict()) == policy


def test_unknown_channel_is_refused_and_case_is_ignored() -> None:
    """A channel the policy does not know is refused; known ones are matched in any case."""
    from datetime import UTC, datetime

    saturday = datetime(2026, 3, 7, 18, 0, tzinfo=UTC)
    with SupportDesk() as desk:
        with pytest.raises(InvalidCommand, match="unknown channel 'fax'"):
            desk.submit(requester="ann@example.com", subject="x", channel="fax")
        assert desk.is_open("PHONE", saturday) is False
        assert desk.is_open("Web", saturday) is True
        tid = desk.submit(requester="ann@example.com", subject="x", channel="EMAIL")
        assert desk.get(tid).channel == "email"
