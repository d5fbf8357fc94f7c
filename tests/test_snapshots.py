"""Snapshots of the `Ticket` aggregate: the snapshot class round-trips every attribute, older
layouts are upcast, a desk with `snapshot_every` writes them and reads them back on every
store, and a snapshot that cannot be used falls back to the ticket's events."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from supportflow import (
    InvalidCommand,
    ManualClock,
    Severity,
    Status,
    SupportDesk,
    SupportflowError,
)
from supportflow._chain import ChainHead, event_hash
from supportflow._timers import project
from supportflow.audit import Auditor
from supportflow.ticket import Ticket

from ._pg import PgServer, fresh_schema_url

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
NO_CACHE = {"AGGREGATE_CACHE_MAXSIZE": ""}
"""Every load rebuilds from the store (a cached ticket would never read its snapshot)."""
BASE = frozenset({"_id", "_version", "_pending_events", "_created_on", "_modified_on"})
"""The attributes eventsourcing's `Aggregate` keeps itself."""


def rich_ticket(desk: SupportDesk, clock: ManualClock) -> UUID:
    """A ticket whose attributes are all set away from their defaults where the public API
    allows it: tags, product, CC, bug, escalation, severity, reassignment, solve, close,
    survey and a follow-up (20 events)."""
    tid = desk.submit(
        requester="ann@example.com",
        subject="Cannot restore",
        tags=["backup", "vip"],
        product={"os": "linux", "edition": "pro"},
        message_id="<snap-1@mail>",
        product_version="4.2",
    )
    steps: list[Callable[[], object]] = [
        lambda: desk.assign(tid, agent="bob"),
        lambda: desk.add_cc(tid, "carl@example.com"),
        lambda: desk.reply(tid, agent="bob", body="Looking into it"),
        lambda: desk.request_info(tid, agent="bob", body="Which version?"),
        lambda: desk.customer_reply(tid, body="4.2", message_id="<snap-2@mail>"),
        lambda: desk.link_bug(tid, reference="BUG-7", by="bob"),
        lambda: desk.request_escalation(tid, reason="production down", requested_severity=1),
        lambda: desk.review_escalation(
            tid, manager="mia", accept=True, severity=Severity.HIGH, reassign_to="eve", note="ok"
        ),
        lambda: desk.request_escalation(tid, reason="still down", contact="+1 555 0100"),
        lambda: desk.solve(tid, agent="eve", solution="Reinstall 4.2.1"),
    ]
    for step in steps:
        clock.advance(minutes=7)
        step()
    clock.advance(days=4)
    desk.run_due_timers()
    desk.record_survey(tid, rating=4, comment="fine")
    desk.customer_reply(tid, body="again", message_id="<snap-3@mail>")
    return tid


def comparable(ticket: Ticket) -> dict[str, Any]:
    """The ticket's attributes with the chain head as its hash (an event after a replay, a
    `ChainHead` after a snapshot)."""
    state = {k: v for k, v in vars(ticket).items() if k != "_pending_events"}
    state["_chain_last"] = event_hash(state["_chain_last"])
    return state


def stored_snapshot(desk: SupportDesk, tid: UUID) -> dict[str, Any]:
    """The JSON document of a snapshot of the ticket now, as the desk's mapper stores it."""
    stored = desk.application.mapper.to_stored_event(Ticket.Snapshot.take(desk._load(tid)))
    document: dict[str, Any] = json.loads(stored.state)
    return document


def restore(desk: SupportDesk, tid: UUID, version: int, document: dict[str, Any]) -> Any:
    """`document` stored as the ticket's snapshot at `version`, read back and restored."""
    mapper = desk.application.mapper
    stored = StoredEvent(
        originator_id=tid,
        originator_version=version,
        topic="supportflow.ticket:Ticket.Snapshot",
        state=json.dumps(document).encode(),
    )
    snapshot: Any = mapper.to_domain_event(stored)
    return snapshot.mutate(None)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def desk(clock: ManualClock) -> Iterator[SupportDesk]:
    with SupportDesk(clock=clock, env=NO_CACHE, snapshot_every=4) as opened:
        yield opened


# -- the snapshot class -----------------------------------------------------------------------


def test_snapshot_round_trips_every_attribute_with_its_type_through_the_mapper(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """Every attribute of a ticket survives the store's JSON with its exact type (enums,
    tuples, dicts, datetimes, UUIDs, the chain head): an attribute added to the ticket that
    does not, fails here."""
    tid = rich_ticket(desk, clock)
    ticket = project(None, desk.application.events.get(tid))
    restored = restore(desk, tid, ticket.version, stored_snapshot(desk, tid))
    want, got = comparable(ticket), comparable(restored)
    assert got == want
    for name, value in want.items():
        assert type(got[name]) is type(value), name
    assert ticket.follow_ups
    assert ticket.bugs
    assert ticket.cc
    assert ticket.pending_escalation is not None


def test_state_block_declares_every_attribute_a_ticket_has_when_rebuilt(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """The attributes a ticket has are exactly those its state block declares: a snapshot
    restores types, and requires attributes, from those declarations."""
    tid = rich_ticket(desk, clock)
    ticket = project(None, desk.application.events.get(tid))
    names, _ = Ticket.Snapshot.layout()
    assert set(vars(ticket)) - {"_id", "_version", "_pending_events"} == names


def test_snapshot_stores_the_chain_head_as_a_hash_when_taken(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """The snapshot holds the hash of the ticket's last event, and a restored ticket's head is
    that hash alone (`ChainHead`)."""
    tid = rich_ticket(desk, clock)
    last = desk.history(tid, sealed=True)[-1]
    document = stored_snapshot(desk, tid)
    assert document["state"]["_chain_last"] == event_hash(last)
    restored = restore(desk, tid, last.originator_version, document)
    assert restored._chain_last == ChainHead(event_hash(last))


def test_old_layout_snapshot_loads_with_defaults_when_attributes_are_missing(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """A hand-made class-version-1 snapshot (before the CC list and erasure: no `cc`, no
    `erased_at`, no stored class_version) is upcast: those attributes get their defaults."""
    tid = desk.submit(requester="ann@example.com", subject="x", tags=["a"])
    desk.assign(tid, agent="bob")
    document = stored_snapshot(desk, tid)
    for name in ("cc", "erased_at", "class_version"):
        del document["state"][name]
    restored = restore(desk, tid, 2, document)
    assert restored.cc == ()
    assert restored.erased_at is None
    assert restored.assignee == "bob"
    assert restored.tags == ("a",)
    assert restored.status is Status.OPEN


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda state: state.pop("subject"), "lacks subject"),
        (lambda state: state.update(class_version=99), "layout 99"),
        (lambda state: state.update(class_version="2"), "layout '2'"),
        (lambda state: state.update(status="bogus"), "bogus"),
        (lambda state: state.update(_chain_last="not a hash"), "chain head"),
    ],
)
def test_snapshot_restore_refuses_a_state_it_cannot_restore_exactly(
    desk: SupportDesk, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    """A snapshot that lacks an attribute no upcaster supplies, has a layout this release
    does not read, or holds a value that is not its type's is refused with a clear error."""
    tid = desk.submit(requester="ann@example.com", subject="x")
    document = stored_snapshot(desk, tid)
    change(document["state"])
    with pytest.raises((ValueError, TypeError), match=message):
        restore(desk, tid, 1, document)


def test_snapshot_holds_personal_fields_sealed_when_stored(
    desk: SupportDesk, clock: ManualClock
) -> None:
    """A stored snapshot holds the ticket's personal fields as the events do, sealed: no
    address or subject in plain text (erasing the requester's key covers snapshots too)."""
    tid = rich_ticket(desk, clock)
    store = desk.application.snapshots
    assert store is not None
    records = list(store.recorder.select_events(tid))
    assert records
    for record in records:
        for secret in (b"ann@example.com", b"carl@example.com", b"Cannot restore"):
            assert secret not in record.state


# -- the desk's settings ----------------------------------------------------------------------


def test_desk_keeps_no_snapshots_by_default(clock: ManualClock) -> None:
    """Without `snapshot_every` the desk has no snapshot store and writes no snapshot."""
    with SupportDesk(clock=clock) as plain:
        plain.submit(requester="ann@example.com", subject="x")
        assert plain.application.snapshots is None


@pytest.mark.parametrize("value", [0, -3, True, 2.5, "10"])
def test_snapshot_every_is_refused_when_not_a_positive_whole_number(
    clock: ManualClock, value: Any
) -> None:
    """`snapshot_every` must be an int >= 1 (None turns snapshots off)."""
    with pytest.raises(InvalidCommand, match="snapshot_every"):
        SupportDesk(clock=clock, snapshot_every=value)


def test_failed_snapshot_write_never_fails_the_command(
    desk: SupportDesk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If storing a snapshot fails, the command's events are saved all the same and the
    failure is logged."""
    tid = desk.submit(requester="ann@example.com", subject="x")

    def broken(cls: Any, aggregate: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Ticket.Snapshot, "take", classmethod(broken))
    with caplog.at_level(logging.WARNING, logger="supportflow.snapshots"):
        for number in range(4):
            desk.reply(tid, agent="bob", body=str(number))
    assert desk.get(tid).version == 5
    assert "disk full" in caplog.text


# -- the same behaviour on every store --------------------------------------------------------


class SnapshotContract:
    """Snapshots on one store. Subclasses provide `store_url` (a fresh, migrated store)."""

    EVERY = 4

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        raise NotImplementedError

    @pytest.fixture
    def snapping(self, store_url: str, clock: ManualClock) -> Iterator[SupportDesk]:
        with SupportDesk(store_url, clock=clock, env=NO_CACHE, snapshot_every=self.EVERY) as d:
            yield d

    def snapshot_versions(self, desk: SupportDesk, tid: UUID) -> list[int]:
        store = desk.application.snapshots
        assert store is not None
        return [record.originator_version for record in store.recorder.select_events(tid)]

    def test_snapshots_are_written_every_n_events(
        self, snapping: SupportDesk, clock: ManualClock
    ) -> None:
        """A save that takes a ticket to or past a multiple of N events stores a snapshot of
        the ticket as saved."""
        tid = snapping.submit(requester="ann@example.com", subject="x")
        for number in range(10):
            clock.advance(minutes=1)
            snapping.reply(tid, agent="bob", body=str(number))
        assert self.snapshot_versions(snapping, tid) == [4, 8]

    def test_ticket_from_a_snapshot_equals_the_ticket_from_its_events(
        self, snapping: SupportDesk, clock: ManualClock
    ) -> None:
        """Loaded from its latest snapshot plus the events after it, a ticket has the same
        attributes and chain head as rebuilt from all its events, and gives the same view."""
        tid = rich_ticket(snapping, clock)
        assert self.snapshot_versions(snapping, tid)
        full = project(None, snapping.application.events.get(tid))
        assert comparable(snapping._load(tid)) == comparable(full)
        assert snapping.get(tid) == snapping.get(tid, as_of=clock.now())

    def test_snapshot_is_read_when_the_ticket_is_loaded(
        self, snapping: SupportDesk, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A load restores the latest snapshot (and replays only the events after it)."""
        tid = rich_ticket(snapping, clock)
        restored: list[int] = []
        original = Ticket.Snapshot.mutate

        def counting(snapshot: Any, _: None) -> Ticket:
            restored.append(snapshot.originator_version)
            return original(snapshot, None)

        monkeypatch.setattr(Ticket.Snapshot, "mutate", counting)
        snapping.get(tid)
        assert restored[-1] == max(self.snapshot_versions(snapping, tid))

    def test_commands_continue_the_hash_chain_after_a_snapshot(
        self, snapping: SupportDesk, clock: ManualClock
    ) -> None:
        """Events written by a ticket restored from a snapshot chain to the stored events
        exactly as without snapshots."""
        tid = snapping.submit(requester="ann@example.com", subject="x")
        for number in range(9):
            clock.advance(minutes=1)
            snapping.reply(tid, agent="bob", body=str(number))
        events = snapping.history(tid, sealed=True)
        for before, after in itertools.pairwise(events):
            assert after.previous_hash == event_hash(before)  # type: ignore[attr-defined]

    def test_as_of_before_the_snapshot_rebuilds_from_the_events(
        self, snapping: SupportDesk, clock: ManualClock
    ) -> None:
        """`get(as_of=t)` before the latest snapshot shows the ticket as it was at t, not as
        the snapshot has it."""
        tid = snapping.submit(requester="ann@example.com", subject="x")
        clock.advance(minutes=1)
        snapping.request_info(tid, agent="bob", body="Which version?")
        pending_at = clock.now()
        for number in range(8):
            clock.advance(minutes=1)
            snapping.reply(tid, agent="bob", body=str(number))
        assert min(self.snapshot_versions(snapping, tid)) > 2
        then = snapping.get(tid, as_of=pending_at)
        assert (then.status, then.version) == (Status.PENDING, 2)
        assert snapping.get(tid).status is Status.OPEN

    @pytest.mark.parametrize(
        "damage",
        [
            "unknown snapshot class",
            "unknown ticket class",
            "not JSON",
            "value of no enum member",
            "attribute missing",
            "layout from a newer release",
        ],
    )
    def test_unusable_snapshot_falls_back_to_the_events(
        self,
        snapping: SupportDesk,
        clock: ManualClock,
        caplog: pytest.LogCaptureFixture,
        damage: str,
    ) -> None:
        """A latest snapshot that cannot be decoded or restored is logged and ignored: the
        ticket is rebuilt from all its events, and commands keep working."""
        tid = snapping.submit(requester="ann@example.com", subject="x")
        for number in range(9):
            clock.advance(minutes=1)
            snapping.reply(tid, agent="bob", body=str(number))
        document = stored_snapshot(snapping, tid)
        topic = "supportflow.ticket:Ticket.Snapshot"
        state = json.dumps(document).encode()
        if damage == "unknown snapshot class":
            topic = "gone.module:Snapshot"
        elif damage == "unknown ticket class":
            document["topic"] = "gone.module:Ticket"
        elif damage == "not JSON":
            state = b"\x00 not json"
        elif damage == "value of no enum member":
            document["state"]["status"] = "bogus"
        elif damage == "attribute missing":
            del document["state"]["requester"]
        else:
            document["state"]["class_version"] = Ticket.class_version + 1
        if damage not in {"unknown snapshot class", "not JSON"}:
            state = json.dumps(document).encode()
        store = snapping.application.snapshots
        assert store is not None
        store.recorder.insert_events([StoredEvent(tid, 10, topic, state)])
        full = project(None, snapping.application.events.get(tid))
        with caplog.at_level(logging.WARNING, logger="supportflow.snapshots"):
            assert comparable(snapping._load(tid)) == comparable(full)
        assert "unusable" in caplog.text
        snapping.solve(tid, agent="bob", solution="done")
        events = snapping.history(tid, sealed=True)
        assert events[-1].previous_hash == event_hash(events[-2])  # type: ignore[attr-defined]

    def test_auditor_reads_the_event_log_not_the_snapshots(
        self, snapping: SupportDesk, clock: ManualClock
    ) -> None:
        """The audit of a snapshotting desk checks every event, and a garbage snapshot
        changes nothing in its verdict (snapshots are outside the hash chain)."""
        tid = snapping.submit(requester="ann@example.com", subject="x")
        for number in range(9):
            clock.advance(minutes=1)
            snapping.reply(tid, agent="bob", body=str(number))
        snapping.solve(tid, agent="bob", solution="done")
        clock.advance(days=4)
        snapping.run_due_timers()
        assert self.snapshot_versions(snapping, tid) == [4, 8, 12]
        store = snapping.application.snapshots
        assert store is not None
        store.recorder.insert_events([StoredEvent(tid, 3, "gone.module:Snapshot", b"{}")])
        report = Auditor(snapping).audit()
        assert report.clean
        assert report.metrics.events == len(snapping.history(tid)) == 12


class SharedStoreContract(SnapshotContract):
    """Stores that several desks can open: a desk without snapshots sees the same ticket."""

    def test_desk_without_snapshots_sees_the_same_ticket(
        self, snapping: SupportDesk, store_url: str, clock: ManualClock
    ) -> None:
        """View, history and `get(as_of=...)` are the same from a desk with snapshots and
        from one without, on the same store."""
        tid = rich_ticket(snapping, clock)
        middle = START + timedelta(minutes=30)
        with SupportDesk(store_url, clock=clock, env=NO_CACHE) as plain:
            assert plain.get(tid) == snapping.get(tid)
            assert plain.get(tid, as_of=middle) == snapping.get(tid, as_of=middle)
            assert [vars(e) for e in plain.history(tid)] == [vars(e) for e in snapping.history(tid)]


class TestMemorySnapshots(SnapshotContract):
    @pytest.fixture
    def store_url(self) -> str:
        return "memory://"


class TestSQLiteSnapshots(SharedStoreContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'tickets.db'}"


class TestPostgreSQLSnapshots(SharedStoreContract):
    @pytest.fixture
    def store_url(self, pg_url: str) -> str:
        return pg_url


def test_migration_creates_the_snapshot_table_on_postgresql(pg_server: PgServer) -> None:
    """A PostgreSQL store migrated before snapshots existed refuses a desk with
    `snapshot_every` (naming the migration); migrating again creates the table."""
    url = fresh_schema_url(pg_server)
    SupportDesk.migrate(url)
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    with pg_server.connect() as conn:
        conn.execute(f"DROP TABLE {schema}.supportdesk_snapshots")
    with pytest.raises(SupportflowError, match=r"no snapshot table.*migrate"):
        SupportDesk(url, snapshot_every=10)
    SupportDesk.migrate(url)
    with SupportDesk(url, clock=ManualClock(START), snapshot_every=1) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        snapshots = desk.application.snapshots
        assert snapshots is not None
        assert [s.originator_version for s in snapshots.recorder.select_events(tid)] == [1]


# -- a property: snapshots never change what a desk shows -------------------------------------

COMMANDS = ("reply", "request_info", "customer_reply", "solve", "wait_hours", "wait_days")


@given(
    every=st.integers(min_value=1, max_value=6),
    commands=st.lists(st.sampled_from(COMMANDS), max_size=20),
)
def test_snapshotting_desk_shows_what_its_events_show_for_any_commands(
    every: int, commands: list[str]
) -> None:
    """Whatever the commands, the time that passes and the snapshot interval, the ticket a
    snapshotting desk loads equals the one its events rebuild, and so does its view."""
    clock = ManualClock(START)
    with SupportDesk(clock=clock, env=NO_CACHE, snapshot_every=every) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        for command in commands:
            try:
                if command == "reply":
                    desk.reply(tid, agent="bob", body="hi")
                elif command == "request_info":
                    desk.request_info(tid, agent="bob", body="?")
                elif command == "customer_reply":
                    desk.customer_reply(tid, body="!")
                elif command == "solve":
                    desk.solve(tid, agent="bob", solution="done")
                elif command == "wait_hours":
                    clock.advance(hours=5)
                else:
                    clock.advance(days=4)
                    desk.run_due_timers()
            except SupportflowError:
                pass  # refused in this status: nothing recorded
            full = project(None, desk.application.events.get(tid))
            assert comparable(desk._load(tid)) == comparable(full)
        assert desk.get(tid) == desk.get(tid, as_of=clock.now())
