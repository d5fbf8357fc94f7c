"""An audit split over processes (`Auditor.audit(workers=N)`) reports what one process does.

Each share verifies the tickets whose id falls in it; links between tickets, message ids,
the end of each ticket and the metrics are merged. The property below builds desks of a few
interleaved tickets (follow-ups, redelivered and reused message ids), optionally tampers with
one row, and compares the reports byte for byte.
"""

from __future__ import annotations

import datetime as _dt
import gc
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from supportflow import InvalidCommand, ManualClock, SupportDesk, SupportflowError
from supportflow._records import follow_up_id
from supportflow.audit import (
    MAX_WORKERS,
    Auditor,
    AuditReport,
    _ledger,
    _parallel,
    audit_store,
    open_auditor,
    report_json,
    report_text,
)
from supportflow.audit._ledger import Samples
from supportflow.audit._scan import read_rows, share_of
from supportflow.cli import main

from .test_audit_properties import _tamper
from .test_audit_tamper import _settings

START = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)

COMMANDS = ("submit", "assign", "reply", "ask", "solve", "customer", "wait")

plans = st.lists(
    st.tuples(
        st.sampled_from(COMMANDS),
        st.integers(min_value=0, max_value=3),  # which ticket
        st.integers(min_value=0, max_value=4),  # which message id
        st.integers(min_value=1, max_value=60 * 24 * 5),  # minutes before it
    ),
    min_size=1,
    max_size=20,
)


def play(desk: SupportDesk, clock: ManualClock, plan: list[tuple[str, int, int, int]]) -> None:
    """A few tickets worked on in turn; customer replies reuse a small pool of message ids
    (a redelivery takes effect once), and a reply to a closed ticket opens a follow-up."""
    tickets = [desk.submit(requester="ann@example.com", subject="first", message_id="<s0@x>")]
    for command, which, mid, minutes in plan:
        clock.advance(minutes=minutes)
        target = tickets[which % len(tickets)]
        try:
            if command == "submit":
                tickets.append(
                    desk.submit(
                        requester=f"c{which}@example.com",
                        subject="another",
                        message_id=f"<s{mid}@x>",
                    )
                )
            elif command == "assign":
                desk.assign(target, agent="bob")
            elif command == "reply":
                desk.reply(target, agent="bob", body="looking")
            elif command == "ask":
                desk.request_info(target, agent="bob", body="which version?")
            elif command == "solve":
                desk.solve(target, agent="bob", solution="fixed")
            elif command == "customer":
                landed = desk.customer_reply(target, body="more", message_id=f"<m{mid}@x>")
                if landed not in tickets:
                    tickets.append(landed)
            else:
                desk.run_due_timers()
        except SupportflowError:
            pass  # refused by the policy or the desk: nothing recorded
    if plan and plan[-1][0] == "wait":
        desk.run_due_timers()


def break_share(monkeypatch: pytest.MonkeyPatch, index: int) -> None:
    """Make share `index` fail while reading ("disk on fire"); forked processes see it."""
    scan = _parallel._ShareAudit.scan

    def broken(share: Any) -> Any:
        if share.spec.index == index:
            raise RuntimeError("disk on fire")
        return scan(share)

    monkeypatch.setattr(_parallel._ShareAudit, "scan", broken)


def same_reports(url: str, env: dict[str, str] | None = None, **options: Any) -> AuditReport:
    """The one-process report, after checking that 2, 3 and 4 processes give the same."""
    report = audit_store(url, env=env, **options)
    for workers in (2, 3, 4):
        split = audit_store(url, env=env, workers=workers, **options)
        if report.metrics.events == 0:  # no instant in the log: the audit time is "now"
            split = attrs.evolve(split, audit_time=report.audit_time)
        assert report_json(split) == report_json(report)
        assert report_text(split) == report_text(report)
    return report


@given(
    plan=plans,
    tamper=st.none() | st.tuples(st.integers(0, 10_000), st.sampled_from(["delete", "text"])),
    as_of=st.none() | st.integers(min_value=0, max_value=60 * 24 * 40),
    grace=st.sampled_from([timedelta(0), timedelta(hours=1)]),
    limit=st.sampled_from([1, 2, 10_000]),
)
def test_split_audit_reports_what_one_process_reports(
    plan: list[tuple[str, int, int, int]],
    tamper: tuple[int, str] | None,
    as_of: int | None,
    grace: timedelta,
    limit: int,
) -> None:
    """Whatever the desk did, tampered or not, as of any instant, with any grace and any
    limit on the violations listed."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.db"
        url = f"sqlite:///{path}"
        clock = ManualClock(START)
        with SupportDesk(url, clock=clock) as desk:
            play(desk, clock, plan)
        if tamper is not None:
            _tamper(path, url, *tamper)
        same_reports(
            url,
            as_of=None if as_of is None else START + timedelta(minutes=as_of),
            grace=grace,
            timelines=3,
            max_violations=limit,
        )


def test_cross_share_links_and_message_ids_are_judged_once(tmp_path: Path) -> None:
    """A follow-up in another share than its ticket, a message id reused across shares, and
    a link only one side recorded: found by the split audit as by one process."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk:
        tids = [
            desk.submit(requester=f"c{i}@example.com", subject="x", message_id=f"<s{i}@x>")
            for i in range(12)
        ]
        for tid in tids:
            desk.solve(tid, agent="bob", solution="done")
        clock.advance(days=4)
        desk.run_due_timers()
        for tid in tids[:6]:
            desk.customer_reply(tid, body="again", message_id=f"<late-{tid}@x>")
        ticket = desk._load(tids[7])
        ticket.record_follow_up(  # a follow-up that was never submitted
            follow_up_id=follow_up_id(tids[7], 1),
            by=ticket.requester,
            message_id="s3@x",  # (ticket 3's own, as the desk stores it)
            at=clock.now(),
        )
        desk.application.save(ticket)
    shares = {share_of(tid, 3) for tid in tids}
    assert len(shares) > 1  # (twelve random ids: in more than one share)
    report = same_reports(url)
    assert sorted(v.rule for v in report.violations) == ["duplicate-message", "follow-up-link"]
    assert report.metrics.follow_ups == 7


@pytest.mark.parametrize("kind", ["plain", "compressed+encrypted"])
def test_split_audit_opens_the_store_with_its_settings(tmp_path: Path, kind: str) -> None:
    """Each process opens the store as the auditor did (compression and cipher included)."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    env = _settings(kind) or None
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock, env=env) as desk:
        play(desk, clock, [("submit", i, i + 1, 30) for i in range(8)] + [("solve", 3, 0, 5)])
    report = same_reports(url, env=env)
    assert report.clean
    assert report.metrics.tickets == 9


def test_an_auditor_made_from_a_desk_splits_its_store(tmp_path: Path) -> None:
    clock = ManualClock(START)
    with SupportDesk(f"sqlite:///{tmp_path / 't.db'}", clock=clock) as desk:
        for i in range(6):
            desk.submit(requester=f"c{i}@example.com", subject="x")
        one = Auditor(desk).audit()
        split = Auditor(desk).audit(workers=2)
    assert report_json(split) == report_json(one)
    assert split.metrics.tickets == 6


def test_processes_started_fresh_give_the_same_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where forking is not used (other systems, a process with threads), the shares run in
    processes started fresh from the same settings."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk:
        play(desk, clock, [("submit", i, i, 60) for i in range(5)] + [("wait", 0, 0, 9000)])
    one = audit_store(url, timelines=2)
    monkeypatch.setattr(_parallel, "_can_fork", lambda: False)
    split = audit_store(url, timelines=2, workers=2)
    assert report_json(split) == report_json(one)


def test_a_failing_share_fails_the_audit_and_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        desk.submit(requester="ann@example.com", subject="x")
    break_share(monkeypatch, 2)
    with pytest.raises(SupportflowError, match="share 2 failed: RuntimeError: disk on fire"):
        audit_store(url, workers=3)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("workers", [0, -1, True, 2.5, "two", MAX_WORKERS + 1])
def test_bad_worker_counts_are_refused(tmp_path: Path, workers: Any) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    SupportDesk(url).close()
    with open_auditor(url) as auditor, pytest.raises(InvalidCommand, match="workers"):
        auditor.audit(workers=workers)


def test_a_memory_store_cannot_be_split_but_auto_audits_it_in_one_process() -> None:
    with SupportDesk() as desk:
        desk.submit(requester="ann@example.com", subject="x")
        with pytest.raises(InvalidCommand, match="other processes can open"):
            Auditor(desk).audit(workers=2)
        assert Auditor(desk).audit(workers="auto").clean


def test_auto_splits_only_a_large_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        for i in range(3):
            desk.submit(requester=f"c{i}@example.com", subject="x")
    calls: list[int] = []
    split = _parallel.audit_split

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["shares"])
        return split(*args, **kwargs)

    monkeypatch.setattr(_parallel, "audit_split", counted)
    monkeypatch.setattr("supportflow.audit._auditor._cpus", lambda: 3)
    audit_store(url, workers="auto")
    assert calls == []  # a small log: one process
    monkeypatch.setattr("supportflow.audit._auditor.AUTO_SPLIT_ROWS", 2)
    audit_store(url, workers="auto")
    assert calls == [3]  # one process per CPU


def test_shares_partition_the_log_as_share_of_says(tmp_path: Path) -> None:
    """Every row is in exactly one share, the one `share_of` names, up to the last position."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        for i in range(40):
            desk.submit(requester=f"c{i}@example.com", subject="x")
        recorder: Any = desk.application.recorder
        everything = read_rows(recorder, 1, 10_000, ())
        last = everything[-5][0]
        for shares in (1, 2, 3, 7):
            seen: list[int] = []
            for index in range(shares):
                rows = read_rows(recorder, 1, 10_000, (), (index, shares, last))
                assert all(share_of(row[1], shares) == index for row in rows)
                seen += [row[0] for row in rows]
            assert sorted(seen) == [row[0] for row in everything if row[0] <= last]


def test_an_id_that_is_not_a_uuid_is_share_0s() -> None:
    """(Such a row was altered: share 0 reports it, as one process does.)"""
    assert {share_of(value, 3) for value in ("order-17", None, b"\x00", 17)} == {0}
    assert {share_of(uuid.UUID(int=i), 3) for i in range(6)} == {0, 1, 2}


@given(
    first=st.lists(st.integers(min_value=-(10**9), max_value=10**12), max_size=40),
    second=st.lists(st.integers(min_value=-(10**9), max_value=10**12), max_size=40),
)
def test_merged_samples_summarise_as_all_samples_added_to_one(
    first: list[int], second: list[int]
) -> None:
    """Also across the exact/sketch boundary (made small here)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_ledger, "EXACT_SAMPLES", 16)
        one, a, b = Samples(), Samples(), Samples()
        for micros in first + second:
            one.add(_dt.timedelta(microseconds=micros))
        for target, values in ((a, first), (b, second)):
            for micros in values:
                target.add(_dt.timedelta(microseconds=micros))
        a.merge(b)
        assert a.summary() == one.summary()


def test_cli_workers_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk:
        play(desk, clock, [("submit", i, i, 60) for i in range(4)])
    outputs = []
    for workers in ("1", "3", "auto"):
        assert main(["audit", "--store", url, "--format", "json", "--workers", workers]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == outputs[2]
    with pytest.raises(SystemExit) as stopped:
        main(["audit", "--store", url, "--workers", "0"])
    assert stopped.value.code == 2
    assert "--workers: expected 1 or more, got 0" in capsys.readouterr().err


def test_split_audit_on_postgresql_reports_the_same(pg_url: str) -> None:
    """PostgreSQL picks each share's rows in the query (the same rows as `share_of`), and the
    split report is the one-process report."""
    clock = ManualClock(START)
    plan = [("submit", i, i + 1, 45) for i in range(10)]
    plan += [("solve", i, 0, 30) for i in range(0, 10, 2)] + [("wait", 0, 0, 60 * 24 * 5)]
    plan += [("customer", 2, 3, 10), ("customer", 4, 3, 10)]  # a follow-up; a reused id
    with SupportDesk(pg_url, clock=clock) as desk:
        play(desk, clock, plan)
        recorder: Any = desk.application.recorder
        everything = read_rows(recorder, 1, 10_000, ())
        last = everything[-1][0]
        seen: list[int] = []
        for index in range(3):
            rows = read_rows(recorder, 1, 10_000, (), (index, 3, last))
            assert all(share_of(row[1], 3) == index for row in rows)
            seen += [row[0] for row in rows]
        assert sorted(seen) == [row[0] for row in everything]
    report = same_reports(pg_url, timelines=3)
    assert report.clean
    assert report.metrics.follow_ups == 1


def test_a_relative_sqlite_path_is_the_same_file_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The share processes open the file the auditor has open, even after the program
    changed directory (and create no empty database elsewhere)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    with SupportDesk("sqlite:///rel.db", clock=ManualClock(START)) as desk:
        for i in range(12):
            desk.submit(requester=f"c{i}@example.com", subject="x")
        monkeypatch.chdir(tmp_path / "b")
        one = Auditor(desk).audit()
        split = Auditor(desk).audit(workers=3)
    assert report_json(split) == report_json(one)
    assert split.metrics.tickets == 12
    assert list((tmp_path / "b").iterdir()) == []


def test_an_application_under_another_name_is_opened_under_that_name(tmp_path: Path) -> None:
    """Settings prefixed with the application's name (and, on PostgreSQL, its table names)
    are read by the share processes as the auditor reads them."""
    from eventsourcing.application import Application

    from supportflow.audit import _auditor

    path = tmp_path / "t.db"
    with SupportDesk(f"sqlite:///{path}", clock=ManualClock(START)) as desk:
        for i in range(6):
            desk.submit(requester=f"c{i}@example.com", subject="x")
        env = {k: v for k, v in desk.application.env.items() if "SQLITE_DBNAME" not in k}

    class Helpdesk(Application[Any]):
        name = "SupportDesk"  # the table names of the desk's store

    app = Helpdesk(env={**env, "SUPPORTDESK_SQLITE_DBNAME": str(path)})
    try:
        auditor = Auditor(app)
        assert auditor._split_source() is not None
        one, split = auditor.audit(), auditor.audit(workers=2)
    finally:
        app.close()
    assert report_json(split) == report_json(one)
    assert one.metrics.tickets == 6
    assert _auditor.Auditor is Auditor


@pytest.mark.parametrize(
    "stored",
    [
        "braced",  # a form UUID() reads: still that ticket's row
        "upper",  # upper-case hex: the same
        "garbage",  # no UUID at all
        "nul",  # 32 hex digits, then a NUL and more (SQLite's text functions stop at NUL)
        None,
        b"\x01\x02",
    ],
)
def test_a_row_whose_id_was_rewritten_is_judged_the_same_by_a_split_audit(
    tmp_path: Path, stored: object
) -> None:
    """An altered originator id is read by the share its ticket is in (or by share 0 when it
    is no UUID, and then reported, never a crash)."""
    path = tmp_path / "t.db"
    url = f"sqlite:///{path}"
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock) as desk:
        tids = [desk.submit(requester=f"c{i}@example.com", subject="x") for i in range(8)]
        for tid in tids:
            desk.reply(tid, agent="bob", body="on it")
    victim = tids[5]
    value = {
        "braced": "{" + victim.hex + "}",
        "upper": victim.hex.upper(),
        "nul": victim.hex + "\x00zz",
    }.get(str(stored), stored)
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE stored_events SET originator_id=? WHERE originator_id=? "
            "AND originator_version=2",
            (value, victim.hex),
        )
    db.close()
    report = same_reports(url)
    if stored in ("braced", "upper"):
        assert report.clean
    else:
        assert [v.rule for v in report.violations] == ["unreadable"]
        assert "is not a UUID" in report.violations[0].message


def test_a_share_started_fresh_waits_for_a_slow_auditor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A share process started fresh (no fork) that finishes long before the auditor's own
    share waits for the audit time instead of giving up."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        for i in range(6):
            desk.submit(requester=f"c{i}@example.com", subject="x")
    one = audit_store(url)
    scan = _parallel._ShareAudit.scan

    def slow(share: Any) -> Any:
        time.sleep(1.5)  # stands for a bigger share (only this process's: nothing forks)
        return scan(share)

    monkeypatch.setattr(_parallel, "_can_fork", lambda: False)
    monkeypatch.setattr(_parallel._ShareAudit, "scan", slow)
    assert report_json(audit_store(url, workers=2)) == report_json(one)


def test_a_script_without_a_main_guard_is_not_run_again(tmp_path: Path) -> None:
    """With a thread running (no fork), the share processes start fresh and import nothing
    of the caller's script: a script without ``if __name__ == "__main__"`` runs once."""
    script = tmp_path / "script.py"
    script.write_text(
        "import threading, sys\n"
        "from supportflow import SupportDesk\n"
        "from supportflow.audit import audit_store\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        f"url = 'sqlite:///{tmp_path / 't.db'}'\n"
        "with SupportDesk(url) as desk:\n"
        "    desk.submit(requester='ann@example.com', subject='once')\n"
        "report = audit_store(url, workers=2)\n"
        "print(report.metrics.tickets)\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1"]


def test_no_file_is_left_and_a_callers_gc_freeze_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        desk.submit(requester="ann@example.com", subject="x", message_id="<a@x>")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        audit_store(url, workers=3)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    assert list(scratch.iterdir()) == []


def test_cli_refuses_too_many_workers_and_reports_a_failed_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    SupportDesk(url).close()
    with pytest.raises(SystemExit) as stopped:
        main(["audit", "--store", url, "--workers", str(MAX_WORKERS + 1)])
    assert stopped.value.code == 2
    assert f"at most {MAX_WORKERS}" in capsys.readouterr().err

    break_share(monkeypatch, 1)
    assert main(["audit", "--store", url, "--workers", "2"]) == 2
    assert "disk on fire" in capsys.readouterr().err


def _store_of(tmp_path: Path, name: str, tickets: int) -> str:
    url = f"sqlite:///{tmp_path / name}"
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        for i in range(tickets):
            desk.submit(requester=f"c{i}@example.com", subject="x")
    return url


@pytest.mark.parametrize("fork", [True, False])
def test_a_store_replaced_or_deleted_during_the_audit_fails_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    """A share process opens the store by its path: if another file is there now (or none),
    the audit fails instead of mixing two stores (and makes no new, empty store)."""
    monkeypatch.setattr(_parallel, "_can_fork", lambda: fork)
    url = _store_of(tmp_path, "t.db", 4)
    _store_of(tmp_path, "other.db", 9)
    with open_auditor(url) as auditor:
        before = report_json(auditor.audit())
        (tmp_path / "t.db").rename(tmp_path / "kept.db")
        (tmp_path / "other.db").rename(tmp_path / "t.db")
        assert report_json(auditor.audit()) == before  # one process: the file it has open
        with pytest.raises(SupportflowError, match="replaced or changed"):
            auditor.audit(workers=2)
        (tmp_path / "t.db").unlink()
        with pytest.raises(SupportflowError, match="is gone"):
            auditor.audit(workers=2)
    assert not (tmp_path / "t.db").exists()


def test_a_caller_that_reaps_its_children_itself_can_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _store_of(tmp_path, "t.db", 5)
    one = report_json(audit_store(url))
    monkeypatch.setattr(_parallel, "_can_fork", lambda: True)
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel
    try:
        assert report_json(audit_store(url, workers=3)) == one
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_a_forked_share_does_not_run_the_callers_signal_handlers() -> None:
    previous = signal.signal(signal.SIGUSR1, lambda number, frame: None)
    try:
        pid = os.fork()
        if pid == 0:  # (a forked share's first step)
            ok = False
            try:
                _parallel._leave_the_callers_signals()
                ok = signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert os.waitstatus_to_exitcode(status) == 0


SCRIPT = """
import os, signal, sys, threading
from supportflow.audit import _parallel, audit_store
if sys.argv[2] == "dies-at-once":  # a fresh share that dies before reading its (large) task
    threading.Thread(target=threading.Event().wait, daemon=True).start()
    _parallel._BOOTSTRAP = "import sys; sys.exit(1)"
else:  # a share gone after its scan, with SIGPIPE's default action (it would kill us)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    recv = _parallel._Channel.recv
    main = os.getpid()
    def recv_or_die(self):
        if os.getpid() != main:
            os._exit(3)
        return recv(self)
    _parallel._Channel.recv = recv_or_die
try:
    audit_store(sys.argv[1], workers=2)
except Exception as error:
    print(type(error).__name__, error)
"""


@pytest.mark.parametrize("how", ["dies-at-once", "gone-after-scan"])
def test_a_share_process_that_dies_fails_the_audit_without_hanging(
    tmp_path: Path, how: str
) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    with SupportDesk(url, clock=ManualClock(START)) as desk:
        base = desk.policy
        for i in range(40):  # 40 policy versions: a task larger than a pipe's buffer
            desk.use_policy(attrs.evolve(base, name=f"v{i}"))
            desk.submit(requester=f"c{i}@example.com", subject="x")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, how],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("SupportflowError the audit's process for share 1")


def test_ids_given_as_text_by_a_recorder_are_read_as_uuids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A recorder that gives originator ids as text (not `UUID`s) is audited as one that
    gives `UUID`s; only text that is no UUID is reported."""
    with SupportDesk(clock=ManualClock(START)) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.reply(tid, agent="bob", body="on it")
        expected = report_json(Auditor(desk).audit())

        def as_text(*args: Any) -> Any:
            return [(r[0], str(r[1]), *r[2:]) for r in read_rows(*args)]

        monkeypatch.setattr("supportflow.audit._auditor.read_rows", as_text)
        assert report_json(Auditor(desk).audit()) == expected
