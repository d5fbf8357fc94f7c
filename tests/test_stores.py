"""The same integration suite on every store: one abstract class, one subclass per store."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import pytest

from supportflow import InvalidCommand, ManualClock, Status, SupportDesk, TransitionRejected

T = TypeVar("T")

FRI = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
THREADS = 8


def race(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(i)` in `count` threads released at the same moment; return results in order."""
    barrier = threading.Barrier(count)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


class DeskContract:
    """What every store must do. Subclasses provide `store_url`."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock(FRI)

    @pytest.fixture
    def desk(self, store_url: str, clock: ManualClock) -> Iterator[SupportDesk]:
        with SupportDesk(store_url, clock=clock) as desk:
            yield desk

    def test_history_round_trips_every_event_class(self, desk: SupportDesk) -> None:
        """Every event class is stored and read back with equal values and plain UTC times."""
        tid = desk.submit(
            requester="ann@example.com",
            subject="x",
            product={"os": "linux"},
            tags=["a"],
            message_id="<rt@mail>",
        )
        desk.assign(tid, agent="bob")
        desk.change_severity(tid, 1, by="bob", reason="urgent")
        desk.request_info(tid, agent="bob", body="?")
        desk.customer_reply(tid, body="!", message_id="<rt2@mail>")
        desk.solve(tid, agent="bob", solution="done")
        desk.reply(tid, agent="bob", body="reopen")
        desk.solve(tid, agent="bob", solution="done again")
        follow_up = desk.customer_reply(tid, body="later", at=FRI + timedelta(days=5))
        events = desk.history(tid)
        assert [type(e).__name__ for e in events] == [
            "Submitted",
            "Assigned",
            "SeverityChanged",
            "Responded",
            "Responded",
            "Solved",
            "Reopened",
            "Responded",
            "Solved",
            "Closed",
            "FollowUpCreated",
        ]
        mapper = desk.application.mapper
        for event in events:
            assert mapper.to_domain_event(mapper.to_stored_event(event)) == event
            assert type(event.timestamp) is datetime
            assert event.timestamp.utcoffset() == timedelta(0)
        assert desk.get(follow_up).follow_up_of == tid

    def test_thread_race_on_one_ticket_loses_no_event(self, desk: SupportDesk) -> None:
        """Threads replying to one ticket at once: every reply is recorded once, versions 1..n."""
        tid = desk.submit(requester="ann@example.com", subject="x")
        race(THREADS, lambda i: desk.reply(tid, agent=f"agent{i}", body=f"reply {i}"))
        events = desk.history(tid)
        assert [e.originator_version for e in events] == list(range(1, THREADS + 2))
        bodies = sorted(e.body for e in events[1:])  # type: ignore[attr-defined]
        assert bodies == sorted(f"reply {i}" for i in range(THREADS))

    def test_thread_race_on_one_duplicate_message_makes_one_ticket(self, desk: SupportDesk) -> None:
        """The same inbound mail delivered concurrently submits exactly one ticket."""
        ids = race(
            THREADS,
            lambda i: desk.submit(requester="ann@example.com", subject="x", message_id="<dup@m>"),
        )
        assert len(set(ids)) == 1
        assert list(desk.ticket_ids()) == [ids[0]]

    def test_thread_race_on_duplicate_reply_to_closed_makes_one_follow_up(
        self, desk: SupportDesk
    ) -> None:
        """A reply to a closed ticket delivered concurrently creates one follow-up."""
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="done")
        later = FRI + timedelta(days=4)
        ids = race(
            THREADS,
            lambda i: desk.customer_reply(tid, body="again", message_id="<late@m>", at=later),
        )
        assert len(set(ids)) == 1
        assert desk.get(tid).follow_ups == (ids[0],)
        assert [type(e).__name__ for e in desk.history(ids[0])] == ["Submitted"]

    def test_thread_race_of_distinct_replies_to_closed_makes_one_follow_up(
        self, desk: SupportDesk
    ) -> None:
        """Different late replies racing: one follow-up is created, the others land on it."""
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="done")
        later = FRI + timedelta(days=4)
        ids = race(
            THREADS,
            lambda i: desk.customer_reply(tid, body=f"again {i}", message_id=f"<l{i}@m>", at=later),
        )
        assert len(set(ids)) == 1
        assert len(desk.get(tid).follow_ups) == 1
        assert len(desk.history(ids[0])) == THREADS  # Submitted + THREADS-1 replies

    def test_thread_race_of_timer_runs_fires_each_timer_once(
        self, desk: SupportDesk, clock: ManualClock
    ) -> None:
        """Several threads running the timers at once write each automatic event once."""
        tids = [desk.submit(requester=f"c{i}@example.com", subject="x") for i in range(5)]
        for tid in tids:
            desk.solve(tid, agent="bob", solution="done")
        clock.advance(days=4)
        written = race(4, lambda i: desk.run_due_timers())
        assert sum(written) == 5
        for tid in tids:
            assert [type(e).__name__ for e in desk.history(tid)][-1] == "Closed"
            assert sum(type(e).__name__ == "Closed" for e in desk.history(tid)) == 1

    def test_thread_race_reply_against_close_gives_one_outcome(
        self, desk: SupportDesk, clock: ManualClock
    ) -> None:
        """A reply at due - 1 s racing the close worker: reopened, never closed then reopened."""
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="done")
        due = desk.get(tid).close_due_at
        assert due is not None
        clock.set(due - timedelta(seconds=1))

        def work(i: int) -> object:
            if i == 0:
                try:
                    return desk.customer_reply(tid, body="wait")
                except InvalidCommand as error:  # lost: the close was written first
                    return str(error)
            return desk.run_due_timers(now=due + timedelta(hours=1))

        reply_result = race(2, work)[0]
        kinds = [type(e).__name__ for e in desk.history(tid)]
        if reply_result == tid:
            assert desk.get(tid).status is Status.OPEN
            assert "Closed" not in kinds
        else:
            assert "before the ticket's last event" in str(reply_result)
            assert desk.get(tid).status is Status.CLOSED
            assert "Reopened" not in kinds

    def test_refused_command_changes_nothing(self, desk: SupportDesk) -> None:
        """A refused command leaves the stored history exactly as it was."""
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="done")
        later = FRI + timedelta(days=4)
        desk.run_due_timers(now=later)
        before = desk.history(tid)
        with pytest.raises(TransitionRejected):
            desk.reply(tid, agent="bob", body="x", at=later)
        assert desk.history(tid) == before


class TestMemoryStore(DeskContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return "memory://"

    def test_each_memory_desk_has_its_own_store(self) -> None:
        """Two memory:// desks never see each other's tickets."""
        with SupportDesk() as first, SupportDesk() as second:
            tid = first.submit(requester="ann@example.com", subject="x")
            assert list(second.ticket_ids()) == []
            assert list(first.ticket_ids()) == [tid]


class TestSQLiteStore(DeskContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'tickets.db'}"

    def test_reopened_store_rebuilds_equal_views(self, store_url: str, clock: ManualClock) -> None:
        """A desk opened later on the same file sees equal tickets."""
        with SupportDesk(store_url, clock=clock) as desk:
            tid = desk.submit(requester="ann@example.com", subject="x", tags=["t"])
            desk.request_info(tid, agent="bob", body="?")
            view = desk.get(tid)
        with SupportDesk(store_url, clock=clock) as again:
            assert again.get(tid) == view

    def test_two_desks_on_one_file_share_tickets_and_dedupe(
        self, store_url: str, clock: ManualClock
    ) -> None:
        """Two desks (as two processes would) on one SQLite file dedupe one message id."""
        with SupportDesk(store_url, clock=clock) as a, SupportDesk(store_url, clock=clock) as b:
            first = a.submit(requester="ann@example.com", subject="x", message_id="<x@m>")
            second = b.submit(requester="ann@example.com", subject="x", message_id="<x@m>")
            assert first == second
            assert list(b.ticket_ids()) == [first]

    def test_in_memory_sqlite_url_works_across_threads(self, clock: ManualClock) -> None:
        """sqlite:///:memory: uses a shared-cache database, so threads see one store."""
        with SupportDesk("sqlite:///:memory:", clock=clock) as desk:
            tid = desk.submit(requester="ann@example.com", subject="x")
            race(4, lambda i: desk.reply(tid, agent="bob", body=str(i)))
            assert len(desk.history(tid)) == 5


class TestPostgreSQLStore(DeskContract):
    @pytest.fixture
    def store_url(self, pg_url: str) -> str:
        return pg_url

    def test_two_desks_on_one_database_share_tickets_and_dedupe(
        self, store_url: str, clock: ManualClock
    ) -> None:
        """Two desks (as two processes would) on one PostgreSQL database dedupe a message."""
        with SupportDesk(store_url, clock=clock) as a, SupportDesk(store_url, clock=clock) as b:
            first = a.submit(requester="ann@example.com", subject="x", message_id="<x@m>")
            second = b.submit(requester="ann@example.com", subject="x", message_id="<x@m>")
            assert first == second
            assert list(b.ticket_ids()) == [first]


def test_unknown_store_scheme_is_refused() -> None:
    """An unknown store URL raises InvalidCommand naming the supported schemes."""
    with pytest.raises(InvalidCommand, match="memory://"):
        SupportDesk("mongodb://localhost/x")


def test_ids_are_uuids(tmp_path: Path) -> None:
    """Ticket ids are uuid.UUID on every store."""
    with SupportDesk(f"sqlite:///{tmp_path / 't.db'}") as desk:
        assert isinstance(desk.submit(requester="a@example.com", subject="x"), UUID)


def test_compressed_and_encrypted_store_round_trips(tmp_path: Path) -> None:
    """With eventsourcing's compressor and AES cipher on, tickets work and nothing is plain."""
    from eventsourcing.cryptography import AESCipher

    env = {
        "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(num_bytes=32),
    }
    path = tmp_path / "secret.db"
    with SupportDesk(f"sqlite:///{path}", env=env, clock=ManualClock(FRI)) as desk:
        tid = desk.submit(requester="ann@example.com", subject="Secret subject")
        desk.solve(tid, agent="bob", solution="x")
        assert desk.get(tid).subject == "Secret subject"
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("secret.db*"))
    assert b"ann@example.com" not in raw
    assert b"Secret subject" not in raw
    with SupportDesk(f"sqlite:///{path}", env=env, clock=ManualClock(FRI)) as again:
        assert again.get(tid).requester == "ann@example.com"


def test_env_may_not_override_the_store() -> None:
    """`env` cannot change what the store URL chose."""
    from supportflow import InvalidCommand as Invalid

    with pytest.raises(Invalid, match="PERSISTENCE_MODULE"):
        SupportDesk("memory://", env={"PERSISTENCE_MODULE": "eventsourcing.sqlite"})
