"""`supportflow notify`: the outbox from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from supportflow import ManualClock, SupportDesk
from supportflow.cli import main
from supportflow.outbox import Notification

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
NOW = (T0 + timedelta(days=4)).isoformat()
RECEIVED: list[str] = []


class ListNotifier:
    def deliver(self, notification: Notification) -> None:
        RECEIVED.append(notification.key)


def make_notifier() -> ListNotifier:
    return ListNotifier()


@pytest.fixture
def store(sqlite_url: str) -> str:
    with SupportDesk(sqlite_url, clock=ManualClock(T0)) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        desk.solve(tid, agent="bob", solution="y")
        desk.run_due_timers(now=T0 + timedelta(days=4))
    return sqlite_url


def test_notify_once_prints_json_lines_and_never_repeats(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`notify --once` with the stdout notifier prints each notification once, as JSON."""
    assert main(["notify", "--store", store, "--once", "--now", NOW]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(line["kind"] for line in lines) == ["solved_notice", "survey_request"]
    assert {line["requester"] for line in lines} == {"ann@example.com"}
    assert main(["notify", "--store", store, "--once", "--now", NOW]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "delivered=0" in err


def test_notify_loads_a_notifier_by_import_path(store: str) -> None:
    """`--notifier package.module:factory` builds the user's notifier."""
    RECEIVED.clear()
    spec = f"{__name__}:make_notifier"
    assert main(["notify", "--store", store, "--once", "--now", NOW, "--notifier", spec]) == 0
    assert len(RECEIVED) == 2


def test_notify_refuses_an_unloadable_notifier(store: str) -> None:
    """A notifier that cannot be imported is an argument error (exit 2)."""
    with pytest.raises(SystemExit) as exited:
        main(["notify", "--store", store, "--once", "--notifier", "nowhere:thing"])
    assert exited.value.code == 2
