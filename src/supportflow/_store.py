"""Store URLs -> eventsourcing environment settings."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit

from .errors import InvalidCommand

__all__ = ["store_env"]


def store_env(url: str) -> dict[str, str]:
    """The eventsourcing environment for a store URL.

    - ``memory://``: a private in-memory store for this desk;
    - ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: one file;
      ``sqlite:///:memory:`` is an in-memory database shared by this desk's threads.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidCommand(
            f"store must be a URL such as 'memory://' or 'sqlite:///tickets.db', got {url!r}"
        )
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if scheme == "sqlite":
        if parts.netloc:
            raise InvalidCommand(
                f"sqlite store URL has a host part {parts.netloc!r}; use sqlite:///relative.db "
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
        }
    if scheme in {"postgres", "postgresql"}:
        raise InvalidCommand(
            "the PostgreSQL store is not available in this release; use memory:// or sqlite:///..."
        )
    raise InvalidCommand(
        f"unknown store scheme {scheme!r} in {parts.scheme}://...; "
        "use memory:// or sqlite:///path/tickets.db"
    )
