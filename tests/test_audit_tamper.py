"""Tampering with a SQLite store's rows is detected, named by ticket and position.

Each test edits the `stored_events` table directly with `sqlite3` (the schema is
``originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB``; the log position is
the implicit ``rowid``), once on a plain store and once with eventsourcing's compression and AES
cipher switched on.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.cryptography import AESCipher

from supportflow import ManualClock, SupportDesk
from supportflow.audit import AuditReport, audit_store, report_json, seal

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _settings(kind: str) -> dict[str, str]:
    if kind == "plain":
        return {}
    return {
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(num_bytes=32),
    }


class Store:
    """A small SQLite store: two tickets with a few events each, and a closed one."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.env = env
        clock = ManualClock(START)
        with SupportDesk(self.url, clock=clock, env=env or None) as desk:
            self.a = desk.submit(requester="ann@example.com", subject="Cannot restore")
            desk.assign(self.a, agent="bob")
            desk.request_info(self.a, agent="bob", body="Which version?")
            clock.advance(hours=1)
            desk.customer_reply(self.a, body="4.2")
            desk.reply(self.a, agent="bob", body="Thanks")
            self.b = desk.submit(requester="raj@example.com", subject="Slow search")
            desk.assign(self.b, agent="carol")
            desk.reply(self.b, agent="carol", body="Looking")
            desk.reply(self.b, agent="carol", body="Still looking")

    def audit(self, **options: Any) -> AuditReport:
        """The audit's report; also split over processes, which must report the same
        (a seal check runs in one process either way)."""
        report = audit_store(self.url, env=self.env or None, **options)
        split = audit_store(self.url, env=self.env or None, workers=3, **options)
        assert report_json(split) == report_json(report)
        return report

    def seal(self) -> str:
        return seal(self.url, env=self.env or None)

    def sql(self, statement: str, *params: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.path) as connection:
            rows = connection.execute(statement, params).fetchall()
        connection.close()
        return rows

    def rowid(self, ticket: UUID, version: int) -> int:
        rows = self.sql(
            "SELECT rowid FROM stored_events WHERE originator_id=? AND originator_version=?",
            ticket.hex,
            version,
        )
        value = rows[0][0]
        assert isinstance(value, int)
        return value


@pytest.fixture(params=["plain", "compressed+encrypted"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return Store(tmp_path / "tickets.db", _settings(request.param))


def _named(report: AuditReport, ticket: UUID, position: int) -> list[str]:
    """The violation messages naming `ticket` and event `position`."""
    return [
        v.message
        for v in report.violations
        if v.ticket_id == ticket and v.position == position and str(ticket) in v.message
    ]


def test_untouched_store_audits_clean(store: Store) -> None:
    """The store as written audits clean, also with compression and the cipher on."""
    report = store.audit()
    assert report.clean, report.violations
    assert report.metrics.tickets == 2


def test_changed_byte_in_event_is_detected(store: Store) -> None:
    """One changed byte in a middle event's stored state is reported at that ticket and event."""
    rowid = store.rowid(store.a, 3)
    (state,) = store.sql("SELECT state FROM stored_events WHERE rowid=?", rowid)[0]
    assert isinstance(state, bytes)
    # encrypted: any byte; plain JSON: one character inside the (sealed) body, so the JSON
    # stays valid
    index = len(state) // 2 if store.env else state.index(b'"body":"') + 40
    changed = state[:index] + bytes([state[index] ^ 0x01]) + state[index + 1 :]
    store.sql("UPDATE stored_events SET state=? WHERE rowid=?", changed, rowid)
    report = store.audit()
    named = _named(report, store.a, 3) + _named(report, store.a, 4)
    assert named, report.violations
    print("\n".join(named))


def test_two_swapped_events_are_detected(store: Store) -> None:
    """Swapping the contents of events 3 and 4 of a ticket breaks its chain at event 3."""
    r3, r4 = store.rowid(store.a, 3), store.rowid(store.a, 4)
    s3 = store.sql("SELECT topic, state FROM stored_events WHERE rowid=?", r3)[0]
    s4 = store.sql("SELECT topic, state FROM stored_events WHERE rowid=?", r4)[0]
    store.sql("UPDATE stored_events SET topic=?, state=? WHERE rowid=?", *s4, r3)
    store.sql("UPDATE stored_events SET topic=?, state=? WHERE rowid=?", *s3, r4)
    report = store.audit()
    assert _named(report, store.a, 3), report.violations
    print("\n".join(_named(report, store.a, 3)))


def test_event_copied_from_another_ticket_is_detected(store: Store) -> None:
    """Ticket b's event 3 copied over ticket a's event 3 breaks a's chain at event 3."""
    topic, state = store.sql(
        "SELECT topic, state FROM stored_events WHERE rowid=?", store.rowid(store.b, 3)
    )[0]
    store.sql(
        "UPDATE stored_events SET topic=?, state=? WHERE rowid=?",
        topic,
        state,
        store.rowid(store.a, 3),
    )
    report = store.audit()
    assert _named(report, store.a, 3), report.violations
    print("\n".join(_named(report, store.a, 3)))


def test_deleted_middle_event_is_detected(store: Store) -> None:
    """Deleting event 3 of a ticket is reported at event 4 as a missing event 3."""
    store.sql("DELETE FROM stored_events WHERE rowid=?", store.rowid(store.a, 3))
    report = store.audit()
    named = _named(report, store.a, 4)
    assert any("event 3 is missing" in text for text in named), report.violations
    print("\n".join(named))


def test_deleted_last_event_is_detected_by_the_seal(store: Store) -> None:
    """Deleting a ticket's last event leaves a valid chain; the seal names what is missing."""
    digest = store.seal()
    store.sql("DELETE FROM stored_events WHERE rowid=?", store.rowid(store.b, 4))
    assert store.audit().clean  # the chain alone cannot see a truncation
    report = store.audit(expect_seal=digest)
    named = _named(report, store.b, 4)
    assert any("missing" in text and "deleted" in text for text in named), report.violations
    print("\n".join(named))


def test_changed_last_event_is_detected_by_the_seal(store: Store) -> None:
    """A changed last event (here: replaced by the ticket's event 3) differs from the seal."""
    digest = store.seal()
    _, state = store.sql(
        "SELECT topic, state FROM stored_events WHERE rowid=?", store.rowid(store.b, 3)
    )[0]
    store.sql("UPDATE stored_events SET state=? WHERE rowid=?", state, store.rowid(store.b, 4))
    report = store.audit(expect_seal=digest)
    assert any("differs from the sealed" in t for t in _named(report, store.b, 4)), report


def test_row_reinserted_with_another_id_is_detected(store: Store) -> None:
    """A middle event moved to the end of the log is reported where it now appears."""
    rowid = store.rowid(store.a, 3)
    row = store.sql("SELECT * FROM stored_events WHERE rowid=?", rowid)[0]
    store.sql("DELETE FROM stored_events WHERE rowid=?", rowid)
    store.sql(
        "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state)"
        " VALUES ((SELECT MAX(rowid) + 100 FROM stored_events), ?, ?, ?, ?)",
        *row,
    )
    report = store.audit()
    named = _named(report, store.a, 3)
    assert any("re-inserted with another id" in text for text in named), report.violations
    print("\n".join(named + _named(report, store.a, 4)))


def test_last_row_reinserted_with_another_id_is_detected_by_the_seal(store: Store) -> None:
    """A ticket's last event moved to another log position is named by the seal check."""
    digest = store.seal()
    rowid = store.rowid(store.b, 4)
    row = store.sql("SELECT * FROM stored_events WHERE rowid=?", rowid)[0]
    store.sql("DELETE FROM stored_events WHERE rowid=?", rowid)
    store.sql(
        "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state)"
        " VALUES ((SELECT MAX(rowid) + 100 FROM stored_events), ?, ?, ?, ?)",
        *row,
    )
    report = store.audit(expect_seal=digest)
    named = _named(report, store.b, 4)
    assert any("re-inserted with another id" in text for text in named), report.violations


def test_seal_of_another_store_is_reported(store: Store, tmp_path: Path) -> None:
    """An unknown digest is a seal violation, not a crash."""
    report = store.audit(expect_seal="0" * 64)
    assert [v.rule for v in report.violations] == ["seal"]


def test_events_after_the_seal_keep_it_valid(store: Store) -> None:
    """New events written after a seal do not break it."""
    digest = store.seal()
    with SupportDesk(
        store.url, clock=ManualClock(START + timedelta(days=1)), env=store.env or None
    ) as desk:
        desk.reply(store.a, agent="bob", body="More")
        desk.submit(requester="mei@example.com", subject="New")
    assert store.audit(expect_seal=digest).clean
