"""`supportflow audit`, `history` and `seal` on the command line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.cryptography import AESCipher

from supportflow import ManualClock, SupportDesk
from supportflow.cli import main

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CIPHER = {
    "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
}


def make_store(path: Path, env: dict[str, str] | None = None) -> tuple[str, UUID]:
    url = f"sqlite:///{path}"
    clock = ManualClock(START)
    with SupportDesk(url, clock=clock, env=env) as desk:
        tid = desk.submit(requester="ann@example.com", subject="Cannot restore")
        desk.assign(tid, agent="bob")
        desk.solve(tid, agent="bob", solution="Reinstall")
        clock.advance(days=4)
        desk.run_due_timers()
    return url, tid


def test_audit_of_clean_store_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clean store: exit 0 and the text report says CLEAN."""
    url, _ = make_store(tmp_path / "t.db")
    assert main(["audit", "--store", url]) == 0
    assert "result: CLEAN" in capsys.readouterr().out


def test_audit_with_violations_exits_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deleted middle event: exit 1 and the JSON report lists the violation."""
    url, tid = make_store(tmp_path / "t.db")
    with sqlite3.connect(tmp_path / "t.db") as db:
        db.execute(
            "DELETE FROM stored_events WHERE originator_id=? AND originator_version=2", (tid.hex,)
        )
    db.close()
    assert main(["audit", "--store", url, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["clean"] is False
    assert data["violations"][0]["ticket_id"] == str(tid)
    assert data["violations"][0]["position"] == 3


def test_audit_html_writes_one_file(tmp_path: Path) -> None:
    """--format html --out writes a self-contained page with an SVG timeline."""
    url, _ = make_store(tmp_path / "t.db")
    out = tmp_path / "report.html"
    assert main(["audit", "--store", url, "--format", "html", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page
    assert "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_audit_as_of_before_the_close_time_reports_an_open_timer_as_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--as-of takes an ISO instant; the report shows that audit time."""
    url, _ = make_store(tmp_path / "t.db")
    assert main(["audit", "--store", url, "--as-of", "2026-03-03T00:00:00Z"]) == 0
    assert "audit time 2026-03-03T00:00:00Z" in capsys.readouterr().out


def test_audit_refuses_an_as_of_without_offset(tmp_path: Path) -> None:
    """A naive --as-of is a usage error (exit 2)."""
    url, _ = make_store(tmp_path / "t.db")
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "--store", url, "--as-of", "2026-03-03T00:00:00"])
    assert exit_info.value.code == 2


def test_audit_of_missing_store_is_a_usage_error(tmp_path: Path) -> None:
    """A SQLite path that does not exist is refused without creating a file."""
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "--store", f"sqlite:///{tmp_path / 'nope.db'}"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "nope.db").exists()


def test_what_if_reads_a_toml_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--what-if FILE prints what would differ under that policy."""
    url, _ = make_store(tmp_path / "t.db")
    policy = tmp_path / "policy.toml"
    policy.write_text('name = "quick"\nclose_after_days = 1\n', encoding="utf-8")
    assert main(["audit", "--store", url, "--what-if", str(policy)]) == 0
    assert "1 ticket would close earlier" in capsys.readouterr().out


def test_seal_then_expect_seal_detects_a_deleted_last_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """seal prints a digest; after deleting the last event, audit --expect-seal exits 1."""
    url, tid = make_store(tmp_path / "t.db")
    assert main(["seal", "--store", url]) == 0
    digest = capsys.readouterr().out.strip()
    assert len(digest) == 64
    assert main(["audit", "--store", url, "--expect-seal", digest]) == 0
    capsys.readouterr()
    with sqlite3.connect(tmp_path / "t.db") as db:
        db.execute(
            "DELETE FROM stored_events WHERE originator_id=? AND originator_version=4", (tid.hex,)
        )
    db.close()
    assert main(["audit", "--store", url, "--expect-seal", digest]) == 1
    out = capsys.readouterr().out
    assert f"ticket {tid} event 4: sealed" in out


def test_history_prints_utc_and_desk_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """history shows each event in UTC and in Chicago time, and marks the automatic close."""
    url, tid = make_store(tmp_path / "t.db")
    assert main(["history", str(tid), "--store", url]) == 0
    out = capsys.readouterr().out
    assert "2026-03-02T15:00:00Z" in out
    assert "2026-03-02 09:00:00 CST" in out
    assert "[automatic]" in out


def test_history_json_as_of(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json --as-of gives the entries up to that instant."""
    url, tid = make_store(tmp_path / "t.db")
    as_of = (START + timedelta(minutes=1)).isoformat()
    assert main(["history", str(tid), "--store", url, "--format", "json", "--as-of", as_of]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in data["entries"]] == ["Submitted", "Assigned", "Solved"]
    assert data["status"] == "solved"


def test_history_of_unknown_ticket_exits_one(tmp_path: Path) -> None:
    """An id that is no ticket: exit 1."""
    url, _ = make_store(tmp_path / "t.db")
    assert main(["history", "6d57918353fe59eba8d99c62bab559c9", "--store", url]) == 1


def test_env_key_alone_reads_the_cipher_key_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--env CIPHER_KEY takes the key from the environment; without it the events are unreadable."""
    key = AESCipher.create_key(num_bytes=32)
    url, _ = make_store(tmp_path / "t.db", env={**CIPHER, "CIPHER_KEY": key})
    monkeypatch.setenv("CIPHER_KEY", key)
    options = [f"--env={k}={v}" for k, v in CIPHER.items()]
    assert main(["audit", "--store", url, *options, "--env", "CIPHER_KEY"]) == 0
    wrong = AESCipher.create_key(num_bytes=32)
    assert main(["audit", "--store", url, *options, "--env", f"CIPHER_KEY={wrong}"]) == 1
    assert "[unreadable]" in capsys.readouterr().out


def test_env_key_missing_from_the_environment_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--env KEY for an unset variable exits 2."""
    url, _ = make_store(tmp_path / "t.db")
    monkeypatch.delenv("SUPPORTFLOW_NOT_SET", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "--store", url, "--env", "SUPPORTFLOW_NOT_SET"])
    assert exit_info.value.code == 2


def test_audit_runs_as_a_subprocess(tmp_path: Path) -> None:
    """`python -m supportflow audit` exits 0 on a clean store and prints the report."""
    url, _ = make_store(tmp_path / "t.db")
    result = subprocess.run(
        [sys.executable, "-m", "supportflow", "audit", "--store", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "result: CLEAN" in result.stdout
