"""A small JSON HTTP API around a support desk, with the standard library only.

Endpoints:

- ``POST /tickets`` ``{"requester", "subject", "description"?, "severity"?, "message_id"?}``
  submits a ticket (201);
- ``POST /tickets/{id}/replies`` ``{"from": "agent", "agent", "body", "pending"?}`` is an agent
  reply (``"pending": true`` asks the customer for input), or
  ``{"from": "customer", "body", "message_id"?, "auto_submitted"?}`` a customer reply, which
  may land on a follow-up ticket (the answer is the ticket it landed on);
- ``POST /tickets/{id}/solve`` ``{"agent", "solution"}``;
- ``GET /tickets/{id}``.

Every answer is a JSON object: a ticket, or ``{"error", "message", ...}`` with 400 (a malformed
or invalid request), 404 (no such ticket or route) or 409 (the policy refuses the command in
the ticket's status; ``status`` and ``allowed`` say what is possible instead).

Run it: ``python examples/web_service.py`` starts the API on 127.0.0.1 on a free port, sends
it a few real requests, prints them and stops. Embed it with ``running(desk)``.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from supportflow import (
    ConcurrencyConflict,
    SupportDesk,
    TicketNotFound,
    TicketView,
    TransitionRejected,
)

JSON = dict[str, Any]
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


class ApiError(Exception):
    """An error answer: HTTP status and JSON body."""

    def __init__(self, status: HTTPStatus, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: JSON = {"error": error, "message": message, **extra}


def ticket_json(view: TicketView) -> JSON:
    """The parts of a ticket a client needs, as JSON values."""
    return {
        "id": str(view.id),
        "status": view.status.name,
        "severity": view.severity.name,
        "requester": view.requester,
        "subject": view.subject,
        "assignee": view.assignee,
        "created_at": view.created_at.isoformat(),
        "close_due_at": view.close_due_at.isoformat() if view.close_due_at else None,
        "follow_up_of": str(view.follow_up_of) if view.follow_up_of else None,
        "follow_ups": [str(f) for f in view.follow_ups],
        "version": view.version,
    }


def _field(body: JSON, name: str, kind: type | tuple[type, ...] = str, default: Any = ...) -> Any:
    value = body.get(name, default)
    if value is ...:
        raise ApiError(HTTPStatus.BAD_REQUEST, "missing_field", f"field {name!r} is required")
    if value is not default and not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        names = " or ".join(k.__name__ for k in kinds)
        raise ApiError(HTTPStatus.BAD_REQUEST, "bad_field", f"field {name!r} must be a {names}")
    return value


def _ticket_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ApiError(HTTPStatus.NOT_FOUND, "ticket_not_found", f"no ticket {text!r}") from None


class TicketApi:
    """The routes, as plain methods over a desk: (method, path, body) -> (status, body)."""

    def __init__(self, desk: SupportDesk) -> None:
        self.desk = desk

    def handle(self, method: str, path: str, body: JSON) -> tuple[HTTPStatus, JSON]:
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        try:
            return self._route(method, parts, body)
        except ApiError as error:
            return error.status, error.body
        except TicketNotFound as error:
            return HTTPStatus.NOT_FOUND, {"error": "ticket_not_found", "message": str(error)}
        except TransitionRejected as error:
            return HTTPStatus.CONFLICT, {
                "error": "transition_rejected",
                "message": str(error),
                "status": getattr(error.status, "name", str(error.status)),
                "allowed": [getattr(a, "value", str(a)) for a in error.allowed],
            }
        except ConcurrencyConflict as error:
            return HTTPStatus.CONFLICT, {"error": "concurrency_conflict", "message": str(error)}
        except ValueError as error:  # InvalidCommand and bad severities
            return HTTPStatus.BAD_REQUEST, {"error": "invalid_command", "message": str(error)}

    def _route(self, method: str, parts: list[str], body: JSON) -> tuple[HTTPStatus, JSON]:
        desk = self.desk
        match method, parts:
            case "POST", ["tickets"]:
                tid = desk.submit(
                    _field(body, "requester"),
                    _field(body, "subject"),
                    _field(body, "description", default=""),
                    severity=_field(body, "severity", (str, int), default="MEDIUM"),
                    message_id=_field(body, "message_id", default=None),
                )
                return HTTPStatus.CREATED, ticket_json(desk.get(tid))
            case "GET", ["tickets", tid_text]:
                return HTTPStatus.OK, ticket_json(desk.get(_ticket_id(tid_text)))
            case "POST", ["tickets", tid_text, "replies"]:
                return HTTPStatus.OK, self._reply(_ticket_id(tid_text), body)
            case "POST", ["tickets", tid_text, "solve"]:
                tid = _ticket_id(tid_text)
                desk.solve(tid, agent=_field(body, "agent"), solution=_field(body, "solution"))
                return HTTPStatus.OK, ticket_json(desk.get(tid))
        raise ApiError(
            HTTPStatus.NOT_FOUND, "no_route", f"no route for {method} /{'/'.join(parts)}"
        )

    def _reply(self, tid: uuid.UUID, body: JSON) -> JSON:
        sender = _field(body, "from")
        if sender == "agent":
            agent, text = _field(body, "agent"), _field(body, "body")
            if _field(body, "pending", bool, default=False):
                self.desk.request_info(tid, agent=agent, body=text)
            else:
                self.desk.reply(tid, agent=agent, body=text)
            return ticket_json(self.desk.get(tid))
        if sender == "customer":
            landed = self.desk.customer_reply(
                tid,
                _field(body, "body"),
                message_id=_field(body, "message_id", default=None),
                auto_submitted=_field(body, "auto_submitted", bool, default=False),
            )
            return ticket_json(self.desk.get(landed))
        raise ApiError(HTTPStatus.BAD_REQUEST, "bad_field", "'from' must be 'agent' or 'customer'")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            status, answer = HTTPStatus.BAD_REQUEST, {"error": "bad_json", "message": "not JSON"}
        else:
            if isinstance(body, dict):
                status, answer = self.server.api.handle(method, self.path, body)
            else:
                status = HTTPStatus.BAD_REQUEST
                answer = {"error": "bad_json", "message": "the body must be a JSON object"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the caller prints
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: TicketApi) -> None:
        super().__init__(address, _Handler)
        self.api = api


@contextmanager
def running(desk: SupportDesk, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `desk` in a background thread (port 0: a free one); yields the base URL."""
    server = _Server((host, port), TicketApi(desk))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="ticket-api", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def call(method: str, url: str, body: JSON | None = None) -> tuple[int, JSON]:
    """One real HTTP request with a JSON body; returns (status, JSON answer), errors included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def main() -> None:
    with SupportDesk() as desk, running(desk) as base:
        print("serving on", base)

        def show(method: str, path: str, body: JSON | None = None) -> JSON:
            status, answer = call(method, base + path, body)
            summary = answer.get("status") if "id" in answer else answer.get("error")
            print(f"{method} {path} -> {status} {summary}")
            return answer

        ticket = show("POST", "/tickets", {"requester": "ann@example.com", "subject": "No sync"})
        path = f"/tickets/{ticket['id']}"
        show(
            "POST",
            f"{path}/replies",
            {"from": "agent", "agent": "bob", "body": "Which version?", "pending": True},
        )
        show("POST", f"{path}/replies", {"from": "customer", "body": "4.2", "message_id": "<m@x>"})
        show("POST", f"{path}/solve", {"agent": "bob", "solution": "Upgrade to 4.2.1"})
        show("GET", path)
        show("POST", "/tickets", {"requester": "ann@example.com"})  # 400: no subject
        show("GET", f"/tickets/{uuid.UUID(int=0)}")  # 404


if __name__ == "__main__":
    main()
