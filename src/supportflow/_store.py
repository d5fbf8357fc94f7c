"""Store URLs -> eventsourcing environment settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import InvalidCommand

__all__ = ["POSTGRES_OPTIONS", "redact", "store_env", "store_kind"]

_RECORDERS = "supportflow._recorders"

POSTGRES_OPTIONS: dict[str, tuple[str, int, int]] = {
    # query parameter: (eventsourcing setting, default, minimum)
    "lock_timeout": ("POSTGRES_LOCK_TIMEOUT", 5, 1),
    "idle_in_transaction_timeout": ("POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT", 10, 1),
    "pool_size": ("POSTGRES_POOL_SIZE", 4, 1),
    "max_overflow": ("POSTGRES_MAX_OVERFLOW", 4, 0),
    "connect_timeout": ("POSTGRES_CONNECT_TIMEOUT", 5, 1),
    "max_waiting": ("POSTGRES_MAX_WAITING", 0, 0),
}
"""The PostgreSQL store URL's query parameters (whole seconds or connections)."""


def store_kind(url: str) -> str:
    """``"memory"``, ``"sqlite"`` or ``"postgresql"`` for a valid store URL."""
    return str(store_env(url)["SUPPORTFLOW_STORE_KIND"])


def redact(url: str) -> str:
    """The URL without its password, safe for logs, reprs and error messages."""
    try:
        parts = urlsplit(url.strip())
        if parts.password is None:
            return url.split("?", 1)[0] if parts.scheme.lower().startswith("postgres") else url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = parts.username or ""
        return f"{parts.scheme}://{user}:***@{host}{parts.path}"
    except ValueError:
        return f"{url.split(':', 1)[0]}://..."


def store_env(url: str) -> dict[str, str]:
    """The eventsourcing environment for a store URL.

    - ``memory://``: a private in-memory store for this desk;
    - ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: one file;
      ``sqlite:///:memory:`` is an in-memory database shared by this desk's threads;
    - ``postgresql://user:password@host:5432/dbname`` (or ``postgres://``), with optional
      query parameters ``lock_timeout``, ``idle_in_transaction_timeout``, ``connect_timeout``
      (seconds), ``pool_size``, ``max_overflow``, ``max_waiting`` and ``schema``.

    ``SUPPORTFLOW_STORE_KIND`` in the result names the kind; eventsourcing ignores it.
    Messages never contain the password.
    """
    if not isinstance(url, str) or not url.strip():
        shown = redact(url) if isinstance(url, str) else type(url).__name__
        raise InvalidCommand(
            f"store must be a URL such as 'memory://' or 'sqlite:///tickets.db', got {shown!r}"
        )
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return {
            "PERSISTENCE_MODULE": f"{_RECORDERS}:MemoryFactory",
            "SUPPORTFLOW_STORE_KIND": "memory",
        }
    if scheme == "sqlite":
        if parts.netloc:
            raise InvalidCommand(
                f"sqlite store URL has a host part {parts.hostname!r}; use sqlite:///relative.db "
                "or sqlite:////absolute/path.db"
            )
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise InvalidCommand("sqlite store URL has no file path; e.g. sqlite:///tickets.db")
        if path == ":memory:":
            # Threads need a shared-cache URI; a plain :memory: gives each connection its own db.
            path = f"file:supportflow-{uuid.uuid4().hex}?mode=memory&cache=shared"
        else:
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise InvalidCommand(f"sqlite store directory does not exist: {parent}")
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": f"{_RECORDERS}:SQLiteTimerRecorder",
            "SUPPORTFLOW_STORE_KIND": "sqlite",
        }
    if scheme in {"postgres", "postgresql"}:
        return _postgres_env(url.strip())
    raise InvalidCommand(
        f"unknown store scheme {scheme!r} in {scheme}://...; "
        "use memory://, sqlite:///path/tickets.db or postgresql://user:pass@host:5432/db"
    )


def _postgres_env(url: str) -> dict[str, str]:
    """``postgresql://user:password@host:port/dbname?lock_timeout=5&pool_size=4``.

    User and password are percent-decoded. Query parameters: see `POSTGRES_OPTIONS`, plus
    ``schema`` (default ``public``). Tables are never created here: run ``migrate`` first.
    """
    safe = redact(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidCommand(f"PostgreSQL store URL {safe} has an invalid port") from None
    dbname = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not dbname or "/" in dbname:
        raise InvalidCommand(
            f"PostgreSQL store URL {safe} needs a host and a database name, "
            "e.g. postgresql://user:password@127.0.0.1:5432/tickets"
        )
    if not parts.username:
        raise InvalidCommand(f"PostgreSQL store URL {safe} needs a user name")
    settings = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": "supportflow._pg_recorder:PostgresTimerRecorder",
        "SUPPORTFLOW_STORE_KIND": "postgresql",
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(port or 5432),
        "POSTGRES_USER": unquote(parts.username),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": "public",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",  # DESIGN 5: db functions skip tracking rows
        "CREATE_TABLE": "n",  # DESIGN 5: one explicit migration, never at start-up
    }
    for key, default, _ in POSTGRES_OPTIONS.values():
        settings[key] = str(default)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "schema":
            if not value.isidentifier() or len(value) > 63:
                raise InvalidCommand(f"PostgreSQL schema must be an identifier, got {value!r}")
            settings["POSTGRES_SCHEMA"] = value
            continue
        if name not in POSTGRES_OPTIONS:
            known = ", ".join(["schema", *POSTGRES_OPTIONS])
            raise InvalidCommand(
                f"unknown PostgreSQL store option {name!r} in {safe}; known: {known}"
            )
        key, _, minimum = POSTGRES_OPTIONS[name]
        if not value.isdigit() or int(value) < minimum:
            raise InvalidCommand(
                f"PostgreSQL store option {name} must be a whole number >= {minimum}, got {value!r}"
            )
        settings[key] = str(int(value))
    if int(settings["POSTGRES_POOL_SIZE"]) + int(settings["POSTGRES_MAX_OVERFLOW"]) < 2:
        raise InvalidCommand("PostgreSQL pool_size + max_overflow must be >= 2 (timer leases)")
    return settings


def store_settings(url: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`store_env(url)` plus further eventsourcing settings (`env`), which may not override
    what the URL chose."""
    settings = store_env(url)
    for key, value in (env or {}).items():
        if key in settings:
            raise InvalidCommand(f"env may not override {key}; it comes from the store URL")
        settings[key] = str(value)
    return settings
