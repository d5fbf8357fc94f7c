"""examples/web_service.py: the JSON HTTP API, exercised with real HTTP requests on 127.0.0.1."""

from __future__ import annotations

import http.client
import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from supportflow import ManualClock, Status, SupportDesk

ROOT = Path(__file__).resolve().parent.parent


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "supportflow_example_web_service", ROOT / "examples" / "web_service.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


web = _load_example()


@pytest.fixture
def base(desk: SupportDesk) -> Iterator[str]:
    """The API over the test desk (ManualClock), served on a free port for one test."""
    with web.running(desk) as url:
        yield url


def call(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    status, answer = web.call(method, url, body)
    assert isinstance(status, int)
    assert isinstance(answer, dict)
    return status, answer


def submitted(base: str, **fields: Any) -> dict[str, Any]:
    body = {"requester": "ann@example.com", "subject": "Cannot restore", **fields}
    status, ticket = call("POST", f"{base}/tickets", body)
    assert status == 201, ticket
    return ticket


def test_submit_answers_201_with_the_new_ticket(base: str, desk: SupportDesk) -> None:
    """POST /tickets creates a NEW ticket in the desk and returns it as JSON."""
    ticket = submitted(base, severity="HIGH")
    assert ticket["status"] == "NEW"
    assert ticket["severity"] == "HIGH"
    assert desk.get(uuid.UUID(ticket["id"])).subject == "Cannot restore"


def test_get_returns_the_ticket_after_replies_and_solve(base: str) -> None:
    """Agent and customer replies and a solve over HTTP move the ticket; GET shows SOLVED."""
    path = f"{base}/tickets/{submitted(base)['id']}"
    ask = {"from": "agent", "agent": "bob", "body": "Which version?", "pending": True}
    assert call("POST", f"{path}/replies", ask)[1]["status"] == "PENDING"
    answer = {"from": "customer", "body": "4.2", "message_id": "<m1@mail>"}
    assert call("POST", f"{path}/replies", answer)[1]["status"] == "OPEN"
    status, solved = call("POST", f"{path}/solve", {"agent": "bob", "solution": "Upgrade"})
    assert status == 200
    assert solved["close_due_at"] is not None
    status, ticket = call("GET", path)
    assert (status, ticket["status"]) == (200, "SOLVED")


def test_customer_reply_to_closed_ticket_answers_the_follow_up(
    base: str, desk: SupportDesk, clock: ManualClock
) -> None:
    """A customer reply after the close timer lands on a new follow-up, which is returned."""
    tid = submitted(base)["id"]
    call("POST", f"{base}/tickets/{tid}/solve", {"agent": "bob", "solution": "Reinstall"})
    clock.advance(days=4)
    status, landed = call(
        "POST", f"{base}/tickets/{tid}/replies", {"from": "customer", "body": "Broken again"}
    )
    assert status == 200
    assert landed["follow_up_of"] == tid
    assert desk.get(uuid.UUID(tid)).status is Status.CLOSED


def test_agent_reply_to_closed_ticket_answers_409_with_allowed_actions(
    base: str, clock: ManualClock
) -> None:
    """The policy's refusal is a 409 whose body names the status and the allowed actions."""
    tid = submitted(base)["id"]
    call("POST", f"{base}/tickets/{tid}/solve", {"agent": "bob", "solution": "Reinstall"})
    clock.advance(days=4)
    reply = {"from": "agent", "agent": "bob", "body": "Hello?"}
    status, error = call("POST", f"{base}/tickets/{tid}/replies", reply)
    assert status == 409
    assert error["error"] == "transition_rejected"
    assert error["status"] == "CLOSED"
    assert "customer_reply" in error["allowed"]


def test_unknown_ticket_answers_404(base: str) -> None:
    """GET of an id no ticket has, and of a malformed id, are both 404 with a JSON body."""
    assert call("GET", f"{base}/tickets/{uuid.uuid4()}")[0] == 404
    status, error = call("GET", f"{base}/tickets/not-a-uuid")
    assert (status, error["error"]) == (404, "ticket_not_found")


def test_missing_field_answers_400_and_records_nothing(base: str, desk: SupportDesk) -> None:
    """A submission without a subject is a 400 naming the field; no ticket is created."""
    status, error = call("POST", f"{base}/tickets", {"requester": "ann@example.com"})
    assert (status, error["error"]) == (400, "missing_field")
    assert "subject" in error["message"]
    assert list(desk.ticket_ids()) == []


def test_invalid_severity_answers_400(base: str) -> None:
    """A severity the desk refuses (ValueError inside the desk) is a 400, not a 500."""
    status, error = call(
        "POST", f"{base}/tickets", {"requester": "a@example.com", "subject": "x", "severity": 9}
    )
    assert (status, error["error"]) == (400, "invalid_command")


def test_malformed_json_answers_400(base: str) -> None:
    """A body that is not JSON is a 400 with a JSON error body."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", "/tickets", body=b"{not json", headers={"Content-Length": "9"})
        response = connection.getresponse()
        assert response.status == 400
        assert b'"bad_json"' in response.read()
    finally:
        connection.close()


def test_duplicate_submission_returns_the_same_ticket(base: str, desk: SupportDesk) -> None:
    """Submitting twice with one message_id creates one ticket and answers it both times."""
    first = submitted(base, message_id="<dup@mail>")
    second = submitted(base, message_id="<dup@mail>")
    assert first["id"] == second["id"]
    assert len(list(desk.ticket_ids())) == 1
