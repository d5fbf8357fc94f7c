"""The auditor's internals give the same answers as the plain paths they replace: the SQLite
batch reader, the one-pass event reader, the spilled ticket ledger and message-id store, the
fixed-size filter and the cached update due instants."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from hypothesis import given, settings
from hypothesis import strategies as st

from supportflow import ManualClock, Severity, Status, SupportDesk, SupportPolicy
from supportflow._chain import event_hash
from supportflow.audit import open_auditor
from supportflow.audit._auditor import _TICKET_CLASSES
from supportflow.audit._fast import DueInstants, EventReader
from supportflow.audit._ledger import (
    Ledger,
    MessageEffects,
    Spill,
    TicketState,
    _Filter,
    pack,
    unpack,
)
from supportflow.audit._scan import as_uuid, notification, read_batch, read_rows
from supportflow.policy import Action

START = _dt.datetime(2026, 3, 2, 15, 0, tzinfo=_dt.UTC)
TOPICS = {get_topic(cls) for cls in _TICKET_CLASSES}


@pytest.fixture
def store(sqlite_url: str) -> str:
    """A SQLite store with two tickets, one closed, with message ids."""
    clock = ManualClock(START)
    with SupportDesk(sqlite_url, clock=clock) as desk:
        a = desk.submit(requester="ann@example.com", subject="Restore", message_id="<m1@x>")
        desk.assign(a, agent="bob")
        desk.request_info(a, agent="bob", body="Which version?")
        clock.advance(hours=1)
        desk.customer_reply(a, body="4.2", message_id="<m2@x>")
        desk.solve(a, agent="bob", solution="Reinstall")
        b = desk.submit(requester="raj@example.com", subject="Slow search")
        desk.reply(b, agent="carol", body="Looking")
        clock.advance(days=10)
        desk.run_due_timers()
    return sqlite_url


@pytest.fixture
def log(store: str) -> Iterator[list[Notification]]:
    with open_auditor(store) as auditor:
        yield list(auditor.notifications())


def test_read_batch_equals_select_notifications_on_sqlite(store: str) -> None:
    """The SQLite batch reader returns the recorder's notifications, field for field."""
    with open_auditor(store) as auditor:
        recorder = auditor.application.recorder
        ours = read_batch(recorder, 2, 5, ())
        theirs = recorder.select_notifications(start=2, limit=5)
    assert ours == theirs


def test_read_batch_filters_topics_on_sqlite(store: str) -> None:
    """With topics, the SQLite batch reader returns only those, as the recorder does."""
    topic = get_topic(_TICKET_CLASSES[0])
    with open_auditor(store) as auditor:
        recorder = auditor.application.recorder
        ours = read_batch(recorder, 1, 100, [topic])
        theirs = recorder.select_notifications(start=1, limit=100, topics=[topic])
    assert ours == theirs
    assert len(ours) == 2


def test_read_rows_give_the_recorders_notifications_as_tuples_on_sqlite(store: str) -> None:
    """Each row tuple holds the recorder's notification fields, and makes the same object."""
    with open_auditor(store) as auditor:
        recorder = auditor.application.recorder
        rows = read_rows(recorder, 2, 5, ())
        theirs = recorder.select_notifications(start=2, limit=5)
    assert rows == [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in theirs]
    assert [notification(row) for row in rows] == theirs


def test_reader_gives_the_mappers_field_order(store: str, log: list[Notification]) -> None:
    """An event read in one pass holds its fields in the mapper's order, not only its values."""
    with open_auditor(store) as auditor:
        mapper = auditor.application.mapper
        reader = EventReader(mapper, TOPICS)
        for n in (n for n in log if n.topic in TOPICS):
            read = reader.read(n)
            assert read is not None
            assert list(vars(read[0])) == list(vars(mapper.to_domain_event(n)))


def test_reader_gives_the_mappers_event_and_hash_for_every_ticket_event(
    store: str, log: list[Notification]
) -> None:
    """Each ticket event read in one pass equals the mapper's, and so does its chain hash."""
    with open_auditor(store) as auditor:
        mapper = auditor.application.mapper
        reader = EventReader(mapper, TOPICS)
        tickets = [n for n in log if n.topic in TOPICS]
        for n in tickets:
            read = reader.read(n)
            assert read is not None
            expected = mapper.to_domain_event(n)
            assert vars(read[0]) == vars(expected)
            assert read[1].hex() == event_hash(expected)


def _edited(n: Notification, edit: dict[str, object]) -> Notification:
    fields = json.loads(n.state)
    fields.update(edit)
    return Notification(
        id=n.id,
        originator_id=n.originator_id,
        originator_version=n.originator_version,
        topic=n.topic,
        state=json.dumps(fields).encode(),
    )


def test_reader_hashes_a_nested_transcoded_value_as_the_mapper_does(
    store: str, log: list[Notification]
) -> None:
    """A time inside a dict field takes the nested path, with the mapper's hash."""
    with open_auditor(store) as auditor:
        mapper = auditor.application.mapper
        reader = EventReader(mapper, TOPICS)
        first = next(n for n in log if n.topic == get_topic(_TICKET_CLASSES[0]))
        assert reader.read(first) is not None  # the class is trusted
        nested = {"name": "backup", "at": {"_type_": "datetime_iso", "_data_": START.isoformat()}}
        n = _edited(first, {"product": nested})
        read = reader.read(n)
        assert read is not None
        assert read[1].hex() == event_hash(mapper.to_domain_event(n))


def test_reader_leaves_a_naive_time_to_the_mapper(store: str, log: list[Notification]) -> None:
    """An edited time without an offset is not read in one pass: the auditor's check sees it."""
    with open_auditor(store) as auditor:
        reader = EventReader(auditor.application.mapper, TOPICS)
        first = next(n for n in log if n.topic == get_topic(_TICKET_CLASSES[0]))
        assert reader.read(first) is not None
        naive = {"_type_": "datetime_iso", "_data_": "2026-03-02T15:00:00"}
        assert reader.read(_edited(first, {"timestamp": naive})) is None


def _closed(version: int) -> TicketState:
    state = TicketState(version, bytes(32), START)
    state.policy = SupportPolicy()
    state.status = Status.CLOSED
    return state


def test_ledger_restores_a_spilled_ticket_exactly() -> None:
    """A finished ticket written to the spill file comes back with the same packed record."""
    spill = Spill()
    ledger = Ledger(spill, flush=2)
    ids = [uuid4() for _ in range(5)]
    for i, tid in enumerate(ids):
        ledger.add(tid, _closed(i + 3))
        ledger.settle(tid)
    back = ledger.get(ids[0])
    assert back is not None
    assert pack(back, {}, []) == pack(_closed(3), {}, [])
    spill.close()


def test_ledger_forgets_nothing_it_did_not_see() -> None:
    """A ticket never added is not found, even after records were spilled."""
    spill = Spill()
    ledger = Ledger(spill, flush=1)
    tid = uuid4()
    ledger.add(tid, _closed(5))
    ledger.settle(tid)
    assert ledger.get(uuid4()) is None
    assert ledger.get(tid) is not None
    spill.close()


def test_ledger_lists_live_and_unquiet_spilled_tickets_in_log_order() -> None:
    """Open tickets and spilled ones with something left to check come back in order of
    first appearance; a quiet spilled ticket (closed, nothing pending) is not listed."""
    spill = Spill()
    ledger = Ledger(spill, flush=1)
    ids = [uuid4() for _ in range(5)]
    for i, tid in enumerate(ids):
        state = TicketState(1, bytes(32), START)
        state.policy = SupportPolicy()
        if i % 2:  # closed, but a Reopened still waits for its message: not quiet
            state.status = Status.CLOSED
            state.reopen_action = Action.CUSTOMER_REPLY
        elif i == 4:  # closed, nothing pending: quiet
            state.status = Status.CLOSED
        ledger.add(tid, state)
        ledger.settle(tid)
    assert [tid for tid, _ in ledger.in_log_order()] == ids[:4]
    spill.close()


def test_ledger_counts_live_and_spilled_tickets_by_status() -> None:
    """Status counts add the live records and the spilled ones."""
    spill = Spill()
    ledger = Ledger(spill, flush=1)
    for status in (Status.OPEN, Status.CLOSED, Status.CLOSED):
        state = TicketState(1, bytes(32), START)
        state.policy = SupportPolicy()
        state.status = status
        tid = uuid4()
        ledger.add(tid, state)
        ledger.settle(tid)
    counts = ledger.status_counts()
    assert (counts[Status.OPEN], counts[Status.CLOSED], ledger.count) == (1, 2, 3)
    spill.close()


def test_message_effects_remember_every_id_after_spilling() -> None:
    """Message ids written to the spill file are found again, with their ticket and kind."""
    spill = Spill()
    effects = MessageEffects(spill, flush=3)
    seen = {f"<m{i}@x>": (uuid4(), "reply") for i in range(10)}
    for mid, value in seen.items():
        effects[mid] = value
    effects["<m0@x>"] = (seen["<m0@x>"][0], "done")
    assert effects.get("<m0@x>") == (seen["<m0@x>"][0], "done")
    assert all(effects.get(mid) == value for mid, value in list(seen.items())[1:])
    assert effects.get("<other@x>") is None
    spill.close()


@given(st.lists(st.uuids(), max_size=50), st.uuids())
@settings(max_examples=30)
def test_filter_never_forgets_an_added_key(keys: list[UUID], other: UUID) -> None:
    """Every added key is a "maybe"; the filter has no false negatives."""
    bloom = _Filter(bits_log2=12)
    for key in keys:
        bloom.add(key.int)
    assert all(bloom.maybe(key.int) for key in keys)
    assert bloom.maybe(other.int) or other not in keys


@given(
    st.datetimes(
        min_value=_dt.datetime(2026, 1, 1),
        max_value=_dt.datetime(2027, 12, 31),
        timezones=st.just(_dt.UTC),
    ),
    st.sampled_from(list(Severity)),
)
@settings(max_examples=30)
def test_due_instants_update_due_at_equals_the_policy(at: _dt.datetime, severity: Severity) -> None:
    """The cached update due instant is the policy's, asked once or twice."""
    policy = SupportPolicy()
    due = DueInstants(policy)
    expected = policy.update_due_at(severity, at)
    assert due.update_due_at(severity, at) == expected
    assert due.update_due_at(severity, at) == expected


@given(st.uuids())
@settings(max_examples=30)
def test_scan_uuid_equals_the_uuid_constructor(value: UUID) -> None:
    """An id read from a SQLite row equals `UUID(hex)`: value, hash, text and safety."""
    got = as_uuid(value.hex)
    expected = UUID(value.hex)
    assert (got, hash(got), str(got), got.is_safe) == (
        expected,
        hash(expected),
        str(expected),
        expected.is_safe,
    )


@given(
    st.one_of(st.none(), st.text(max_size=40)),
    st.lists(st.text(max_size=40), max_size=5).map(tuple),
    st.one_of(st.none(), st.text(max_size=20)),
)
@settings(max_examples=30)
def test_packed_record_keeps_the_people_on_the_ticket(
    requester: str | None, cc: tuple[str, ...], assignee: str | None
) -> None:
    """A packed record restores the requester's key, the CC keys and the assignee exactly."""
    state = _closed(4)
    state.requester, state.cc, state.assignee = requester, cc, assignee
    known: list[SupportPolicy] = []
    packed = pack(state, {}, known)
    assert packed is not None
    back = unpack(packed, known)
    assert (back.requester, back.cc, back.assignee) == (requester, cc, assignee)


@given(
    st.sampled_from(list(Status)),
    *(st.one_of(st.none(), st.just(START + _dt.timedelta(hours=h))) for h in (1, 2, 3)),
)
def test_due_instants_timer_due_at_equals_the_policys_due_timer(
    status: Status,
    solve: _dt.datetime | None,
    close: _dt.datetime | None,
    update: _dt.datetime | None,
) -> None:
    """The armed timer's due instant is the one `SupportPolicy.due_timer` gives (or None)."""
    policy = SupportPolicy()
    timer = policy.due_timer(status, solve_due_at=solve, close_due_at=close, update_due_at=update)
    expected = None if timer is None else timer.due_at
    assert DueInstants(policy).timer_due_at(status, solve, close, update) == expected
