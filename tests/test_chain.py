"""The per-ticket hash chain and its canonical encoding."""

from __future__ import annotations

import enum
import itertools
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.cryptography import AESCipher

import supportflow._chain as chain_module
import supportflow.ticket as ticket_module
from supportflow import ManualClock, Severity, SupportDesk
from supportflow._chain import GENESIS, canonical_bytes, event_hash, render

START = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)


class Colour(enum.StrEnum):
    RED = "red"


def test_render_tags_uuid_and_datetime_in_utc() -> None:
    """UUIDs and aware datetimes render as tagged text; the datetime in UTC with a Z."""
    uid = UUID("12345678-1234-5678-1234-567812345678")
    local = datetime(2026, 3, 6, 10, 0, tzinfo=timezone(timedelta(hours=-6)))
    assert render(uid) == {"$uuid": str(uid)}
    assert render(local) == {"$datetime": "2026-03-06T16:00:00.000000Z"}


def test_render_enum_as_its_value_like_the_transcoder_returns_it() -> None:
    """A StrEnum renders as its str and an IntEnum as its int (what comes back from a store)."""
    assert render(Colour.RED) == render("red")
    assert render(Severity.HIGH) == render(2)


def test_render_tuple_as_list_and_set_sorted() -> None:
    """Tuples equal lists (the transcoder returns lists); sets render sorted."""
    assert render((1, "a")) == render([1, "a"])
    assert render({"b", "a"}) == ["a", "b"]


def test_render_escapes_dollar_keys_so_mappings_cannot_imitate_tags() -> None:
    """A mapping with a "$uuid" key does not render like a UUID."""
    uid = UUID(int=1)
    assert render({"$uuid": str(uid)}) != render(uid)


def test_render_distinguishes_naive_from_aware_datetimes() -> None:
    """A naive datetime never hashes like the aware one with the same digits."""
    assert render(datetime(2026, 1, 1)) != render(datetime(2026, 1, 1, tzinfo=UTC))


def test_render_refuses_unknown_types() -> None:
    """A value with no deterministic rendering raises TypeError rather than hashing repr()."""
    with pytest.raises(TypeError, match="object"):
        render(object())


def test_first_event_carries_genesis_and_each_next_the_previous_hash(desk: SupportDesk) -> None:
    """Event 1 carries GENESIS; event n carries the hash of event n-1."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.request_info(tid, agent="bob", body="?")
    desk.customer_reply(tid, body="!")
    events = desk.history(tid, sealed=True)  # the chain covers the stored, sealed form
    assert events[0].previous_hash == GENESIS  # type: ignore[attr-defined]
    for before, after in itertools.pairwise(events):
        assert after.previous_hash == event_hash(before)  # type: ignore[attr-defined]


def test_hash_covers_every_field(desk: SupportDesk) -> None:
    """Changing any one fact of an event changes its canonical bytes."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    desk.reply(tid, agent="bob", body="hello")
    event = desk.history(tid)[1]
    for name, value in vars(event).items():
        changed = dict(vars(event))
        changed[name] = "tampered" if value != "tampered" else "other"
        clone = object.__new__(type(event))
        object.__setattr__(clone, "__dict__", changed)
        assert canonical_bytes(clone) != canonical_bytes(event), name


def test_chain_survives_compressed_and_encrypted_round_trip(tmp_path: Path) -> None:
    """Hashes computed when writing equal those of the events read back with the cipher on."""
    env = {
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(num_bytes=32),
    }
    clock = ManualClock(START)
    url = f"sqlite:///{tmp_path / 't.db'}"
    with SupportDesk(url, clock=clock, env=env) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x", product={"os": "linux"})
        desk.solve(tid, agent="bob", solution="done")
        clock.advance(days=4)
        desk.customer_reply(tid, body="again")
    with SupportDesk(url, clock=clock, env=env) as again:
        events = again.history(tid, sealed=True)
    assert [type(e).__name__ for e in events] == [
        "Submitted",
        "Solved",
        "Closed",
        "FollowUpCreated",
    ]
    for before, after in itertools.pairwise(events):
        assert after.previous_hash == event_hash(before)  # type: ignore[attr-defined]


def test_replay_computes_no_hash(desk: SupportDesk, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rebuilding a ticket hashes nothing; only triggering a new event hashes its predecessor."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    for number in range(5):
        desk.reply(tid, agent="bob", body=str(number))
    calls: list[object] = []
    original = chain_module.event_hash

    def counting(event: object) -> str:
        calls.append(event)
        return original(event)

    monkeypatch.setattr(ticket_module, "event_hash", counting)
    desk.get(tid)
    assert calls == []
    desk.reply(tid, agent="bob", body="one more")
    assert len(calls) == 1
