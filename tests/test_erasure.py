"""The right to erasure: personal fields sealed per requester, `forget_requester` destroys the
key, and the tickets still replay, audit and verify while nothing personal remains in plain
text anywhere in the store (checked by reading the raw database files)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from supportflow import ManualClock, SupportDesk, SupportPolicy
from supportflow._pii import is_sealed
from supportflow.audit import Auditor, open_auditor
from supportflow.errors import InvalidCommand, PermissionDenied, SupportflowError
from supportflow.outbox import Notification, deliver_notifications
from supportflow.policy import Status

from ._pg import PgServer, fresh_schema_url

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ADDRESS = "ann.erasable@example.com"
BODY = "my account number is 4242-SECRET"
SUBJECT = "Restore of the Kowalski family photos"
CC_ADDRESS = "cc.erasable@example.com"
MARKER = "nonpersonal-tag-7731"
"""A tag (not personal, stored in plain): proves the raw grep reads the real data."""
SECRETS = (ADDRESS, BODY, SUBJECT, CC_ADDRESS, "SECRET", "Kowalski")


def _lifecycle(desk: SupportDesk, clock: ManualClock) -> tuple[UUID, UUID, UUID]:
    """Ann's ticket (CC, replies, survey, a follow-up) and Ben's, both with every kind of
    personal field; returns (ann's ticket, ann's follow-up, ben's ticket)."""
    tid = desk.submit(
        requester=ADDRESS,
        subject=SUBJECT,
        description=BODY,
        tags=[MARKER],
        cc=[CC_ADDRESS],
        message_id="<erase-1@mail>",
    )
    desk.request_info(tid, agent="bob", body=f"Dear {ADDRESS}, which version?")
    desk.customer_reply(tid, body=BODY, message_id="<erase-2@mail>")
    desk.customer_reply(tid, body=f"{BODY} (cc)", by=CC_ADDRESS)
    desk.request_escalation(tid, reason=BODY, contact=ADDRESS)
    desk.review_escalation(tid, manager="carol", accept=True, severity=1, note=BODY)
    desk.solve(tid, agent="bob", solution=f"Done for {ADDRESS}")
    clock.advance(days=4)
    desk.run_due_timers()
    desk.record_survey(tid, rating=5, comment=BODY)
    follow_up = desk.customer_reply(tid, body=BODY, message_id="<erase-3@mail>")
    other = desk.submit(requester="ben@example.com", subject="Ben's question", description="hi")
    return tid, follow_up, other


class _Collect:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def deliver(self, notification: Notification) -> None:
        self.sent.append(notification)


def _raw_sqlite(path: Path) -> bytes:
    """Every byte of the SQLite database and its journal files."""
    parts = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def _rows(path: Path, table_part: str) -> int:
    """Rows in the SQLite tables whose name contains `table_part`."""
    import sqlite3

    with sqlite3.connect(path) as connection:
        names = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if table_part in row[0]
        ]
        total = sum(connection.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names)
    connection.close()
    return int(total)


def _found(raw: bytes, texts: tuple[str, ...]) -> list[str]:
    return [t for t in texts if t.encode() in raw or t.encode("utf-16-le") in raw]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "erase.db"
    return f"sqlite:///{path}", path


def test_personal_fields_are_never_stored_in_plain_text(sqlite_store: tuple[str, Path]) -> None:
    """Before any erasure the desk shows every personal field, yet the raw SQLite files hold
    none of them in plain text (only the non-personal tag)."""
    url, path = sqlite_store
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk:
        tid, _, _ = _lifecycle(desk, clock)
        deliver_notifications(desk, _Collect())
        view = desk.get(tid)
        assert (view.requester, view.subject, view.description) == (ADDRESS, SUBJECT, BODY)
        assert view.cc == (CC_ADDRESS,)
    raw = _raw_sqlite(path)
    assert MARKER.encode() in raw
    assert _found(raw, SECRETS) == []


def test_forget_requester_erases_every_ticket_of_that_requester(
    sqlite_store: tuple[str, Path],
) -> None:
    """After `forget_requester` the requester's tickets (follow-up included) read [erased],
    record an `Erased` event with who and when, still audit clean; others are untouched."""
    url, _ = sqlite_store
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk:
        tid, follow_up, other = _lifecycle(desk, clock)
        clock.advance(hours=1)
        assert desk.forget_requester(ADDRESS.upper(), by="dpo") == 2
        for erased in (tid, follow_up):
            view = desk.get(erased)
            assert view.requester == "[erased]"
            assert view.subject == "[erased]"
            assert view.description == "[erased]"
            assert view.erased_at == clock.now()
            last = desk.history(erased)[-1]
            assert type(last).__name__ == "Erased"
            assert (last.by, last.timestamp) == ("dpo", clock.now())  # type: ignore[attr-defined]
            assert set(vars(last)) - {"by"} <= {
                "originator_id",
                "originator_version",
                "timestamp",
                "previous_hash",
            }
        view = desk.get(tid)
        assert view.status is Status.CLOSED
        assert view.cc == ("[erased]",)
        assert view.survey_comment == "[erased]"
        bodies = [getattr(e, "body", None) for e in desk.history(tid)]
        assert BODY not in bodies
        assert "[erased]" in bodies
        assert desk.get(other).requester == "ben@example.com"
        report = Auditor(desk).audit()
        assert report.clean, report.violations
        assert report.metrics.tickets == 3


def test_erased_tickets_replay_and_verify_from_a_fresh_process_view(
    sqlite_store: tuple[str, Path],
) -> None:
    """A new desk and a store-level audit on the erased store: same statuses, chain intact."""
    url, _ = sqlite_store
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk:
        tid, follow_up, _ = _lifecycle(desk, clock)
        statuses = {t: desk.get(t).status for t in (tid, follow_up)}
        desk.forget_requester(ADDRESS)
    with SupportDesk(url, clock=clock) as again:
        assert {t: again.get(t).status for t in (tid, follow_up)} == statuses
        assert again.get(tid).requester == "[erased]"
        sealed = again.history(tid, sealed=True)
        assert all(is_sealed(e.requester) for e in sealed[:1])  # type: ignore[attr-defined]
    with open_auditor(url) as auditor:
        report = auditor.audit()
        history = auditor.history(tid)
    assert report.clean, report.violations
    assert history.requester == "[erased]"
    assert BODY not in "\n".join(e.what for e in history.entries)


def test_erasure_grep_of_the_raw_sqlite_database(sqlite_store: tuple[str, Path]) -> None:
    """The raw SQLite files (events, snapshots, timer index, outbox, key table) hold neither
    the address nor the body text before or after the erasure, the key is gone afterwards,
    and the non-personal tag is still there."""
    url, path = sqlite_store
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock, snapshot_every=2) as desk:
        _lifecycle(desk, clock)
        assert _rows(path, "snapshots") > 0
        deliver_notifications(desk, _Collect())
        keys = desk.application.key_table.count_keys()  # type: ignore[attr-defined]
        before = _raw_sqlite(path)
        desk.forget_requester(ADDRESS)
        deliver_notifications(desk, _Collect())
        assert desk.application.key_table.count_keys() == keys - 1  # type: ignore[attr-defined]
    after = _raw_sqlite(path)
    assert MARKER.encode() in before
    assert MARKER.encode() in after
    assert _found(before, SECRETS) == []
    assert _found(after, SECRETS) == []


def test_notifications_carry_the_address_and_stop_after_erasure(
    sqlite_store: tuple[str, Path],
) -> None:
    """The notifier gets the opened address; once erased, pending notifications fail for good
    instead of going to nobody."""
    url, _ = sqlite_store
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk:
        tid = desk.submit(requester=ADDRESS, subject=SUBJECT)
        desk.solve(tid, agent="bob", solution="done")
        sent = _Collect()
        deliver_notifications(desk, sent)
        assert [(n.requester, n.subject) for n in sent.sent] == [(ADDRESS, SUBJECT)]
        clock.advance(days=4)
        desk.run_due_timers()  # the survey request is pending
        desk.forget_requester(ADDRESS)
        report = deliver_notifications(desk, sent)
        assert report.failed == 1
        assert len(sent.sent) == 1


def test_reply_from_the_erased_address_becomes_a_new_ticket() -> None:
    """An erased requester is nobody: their later reply to the old ticket opens a new one."""
    clock = ManualClock(START)
    with SupportDesk(clock=clock) as desk:
        tid = desk.submit(requester=ADDRESS, subject=SUBJECT)
        desk.forget_requester(ADDRESS)
        landed = desk.customer_reply(tid, body="hello again", by=ADDRESS)
        assert landed != tid
        assert desk.get(landed).requester == ADDRESS
        assert desk.get(tid).requester == "[erased]"


def test_commands_on_an_erased_ticket_keep_no_text() -> None:
    """Agents can still finish an erased ticket; text they write is not kept."""
    clock = ManualClock(START)
    with SupportDesk(clock=clock) as desk:
        tid = desk.submit(requester=ADDRESS, subject=SUBJECT)
        desk.forget_requester(ADDRESS)
        desk.solve(tid, agent="bob", solution=f"sent to {ADDRESS}")
        assert desk.get(tid).status is Status.SOLVED
        assert desk.history(tid)[-1].solution == "[erased]"  # type: ignore[attr-defined]


def test_forgetting_an_unknown_address_erases_nothing() -> None:
    """No key for the address: 0 tickets, nothing recorded; forgetting twice is harmless."""
    clock = ManualClock(START)
    with SupportDesk(clock=clock) as desk:
        tid = desk.submit(requester=ADDRESS, subject=SUBJECT)
        assert desk.forget_requester("nobody@example.com") == 0
        assert desk.forget_requester(ADDRESS) == 1
        assert desk.forget_requester(ADDRESS) == 0
        assert len(desk.history(tid)) == 2


def test_forget_requester_refuses_a_malformed_address() -> None:
    """The address is validated like any other input."""
    with SupportDesk() as desk, pytest.raises(InvalidCommand):
        desk.forget_requester("ann\u200b@example.com")


# -- PostgreSQL: the same grep on the server's files ------------------------------------------


def _raw_postgres(server: PgServer) -> bytes:
    """Every byte under the cluster's data directory (tables, indexes, WAL), after a
    CHECKPOINT so that the pages are on disk."""
    with server.connect() as conn:
        conn.execute("CHECKPOINT")
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    chunks = []
    for path in Path(str(row[0])).rglob("*"):
        if path.is_file():
            try:
                chunks.append(path.read_bytes())
            except OSError:
                continue
    return b"".join(chunks)


def test_erasure_grep_of_the_raw_postgres_files(pg_server: PgServer) -> None:
    """On PostgreSQL too: the data directory (WAL included) never holds the address or the
    body text in plain, before or after the erasure; the tag is there; the key is gone."""
    url = fresh_schema_url(pg_server)
    SupportDesk.migrate(url)
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk:
        tid, _, _ = _lifecycle(desk, clock)
        deliver_notifications(desk, _Collect())
        assert desk.get(tid).requester == ADDRESS
        keys = desk.application.key_table.count_keys()  # type: ignore[attr-defined]
        before = _raw_postgres(pg_server)
        assert desk.forget_requester(ADDRESS, by="dpo") == 2
        assert desk.get(tid).requester == "[erased]"
        assert desk.application.key_table.count_keys() == keys - 1  # type: ignore[attr-defined]
        report = Auditor(desk).audit()
    after = _raw_postgres(pg_server)
    assert report.clean, report.violations
    assert MARKER.encode() in before
    assert MARKER.encode() in after
    assert _found(before, SECRETS) == []
    assert _found(after, SECRETS) == []


def test_cli_forget_erases_and_says_how_many(
    sqlite_store: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`supportflow forget ADDRESS --store URL --by NAME` erases and reports the count; a
    second run finds no key."""
    from supportflow.cli import main

    url, _ = sqlite_store
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        tid = desk.submit(requester=ADDRESS, subject=SUBJECT)
    assert main(["forget", ADDRESS, "--store", url, "--by", "dpo"]) == 0
    assert "erased 1 ticket(s)" in capsys.readouterr().out
    assert main(["forget", ADDRESS, "--store", url, "--by", "dpo"]) == 0
    assert "erased 0 ticket(s)" in capsys.readouterr().out
    with SupportDesk(url) as desk:
        assert desk.get(tid).requester == "[erased]"
        assert desk.history(tid)[-1].by == "dpo"  # type: ignore[attr-defined]


def test_nobody_acts_as_the_erased_requester_or_as_erased_text() -> None:
    """On an erased ticket `by="[erased]"` is a stranger, omitting `by` is refused, and the
    CC list can no longer change."""
    clock = ManualClock(START)
    with SupportDesk(clock=clock, staff={"bob": "agent"}) as desk:
        tid = desk.submit(requester=ADDRESS, subject=SUBJECT)
        desk.forget_requester(ADDRESS)
        with pytest.raises(InvalidCommand, match="erased"):
            desk.add_cc(tid, "new@example.com", agent="bob")
        assert desk.customer_reply(tid, body="hi", by="[ERASED]") != tid
        with pytest.raises(PermissionDenied, match="erased"):
            desk.customer_reply(tid, body="hi")
        with pytest.raises(PermissionDenied):
            desk.request_escalation(tid, reason="x", by="[erased]")


def test_notifier_errors_are_stored_sealed(sqlite_store: tuple[str, Path]) -> None:
    """A mail server's refusal that names the recipient is kept only sealed, and reads
    [erased] once the requester is forgotten."""
    url, path = sqlite_store
    clock = ManualClock(START)

    class Refusing:
        def deliver(self, notification: Notification) -> None:
            raise RuntimeError(f"550 mailbox unavailable: {notification.requester}")

    with SupportDesk(url, clock=clock) as desk:
        tid = desk.submit(requester=ADDRESS, subject=SUBJECT)
        desk.solve(tid, agent="bob", solution="done")
        assert deliver_notifications(desk, Refusing()).retried == 1
        assert ADDRESS.encode() not in _raw_sqlite(path)
        desk.forget_requester(ADDRESS)
    assert _found(_raw_sqlite(path), SECRETS) == []


def test_follow_up_of_a_cc_is_sealed_under_the_cc_own_key() -> None:
    """When follow-ups do not copy the requester, a CC's follow-up is the CC's own ticket:
    forgetting the CC erases it, forgetting the original requester does not."""
    clock = ManualClock(START)
    policy = SupportPolicy(follow_up_copies={"subject", "severity"})
    with SupportDesk(clock=clock, policy=policy) as desk:
        tid = desk.submit(requester=ADDRESS, subject=SUBJECT, cc=[CC_ADDRESS])
        desk.solve(tid, agent="bob", solution="done")
        clock.advance(days=4)
        follow_up = desk.customer_reply(tid, body="again", by=CC_ADDRESS)
        assert desk.get(follow_up).requester == CC_ADDRESS
        assert desk.get(follow_up).subject == SUBJECT
        assert desk.forget_requester(ADDRESS) == 1
        assert desk.get(follow_up).requester == CC_ADDRESS
        assert desk.forget_requester(CC_ADDRESS) == 1
        assert desk.get(follow_up).requester == "[erased]"


def test_interrupted_key_destruction_is_completed_by_a_retry(
    sqlite_store: tuple[str, Path],
) -> None:
    """A reader holding a transaction keeps the WAL from being wiped: `forget_requester`
    says so with a SupportflowError, and running it again wipes the key's bytes."""
    import sqlite3

    url, path = sqlite_store
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        desk.submit(requester=ADDRESS, subject=SUBJECT)
        found = desk._keys.existing_key_for(ADDRESS)
        assert found is not None
        key = found[1]
        reader = sqlite3.connect(path)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM stored_events").fetchone()
        with pytest.raises(SupportflowError, match="run forget_requester again"):
            desk.forget_requester(ADDRESS)
        assert key in _raw_sqlite(path)
        reader.rollback()
        reader.close()
        assert desk.forget_requester(ADDRESS) == 0
        assert key not in _raw_sqlite(path)
