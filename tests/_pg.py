"""A throwaway PostgreSQL cluster for the tests: initdb into a temp dir, a free port on
127.0.0.1, stopped by its pid at the end of the session.

`SUPPORTFLOW_TEST_POSTGRES_URL` (``postgresql://user:pass@host:port/db``) uses an existing
server instead. Otherwise the server binaries come from `SUPPORTFLOW_PG_BINDIR`, the PATH
or Debian's ``/usr/lib/postgresql/<version>/bin``. PostgreSQL refuses to run as root, so as
root the cluster runs as the ``postgres`` OS user. Without a server the fixture fails (it
never skips): ``make test`` installs Debian's ``postgresql`` package when run as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

__all__ = ["PgServer", "fresh_schema_url", "pg_server", "pg_url"]

USER = "supportflow"


def _bindir() -> Path | None:
    explicit = os.environ.get("SUPPORTFLOW_PG_BINDIR")
    if explicit:
        return Path(explicit)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """A running server: `url(dbname)` gives a store URL with the password in it."""

    def __init__(self, host: str, port: int, user: str, password: str, dbname: str) -> None:
        self.host, self.port, self.user, self.password, self.dbname = (
            host,
            port,
            user,
            password,
            dbname,
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.datadir: Path | None = None

    def url(self, query: str = "") -> str:
        base = f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"
        return f"{base}?{query}" if query else base

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.dbname,
            autocommit=True,
        )

    def stop(self) -> None:
        """Stop the cluster we started, by its pid; remove its directory."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
            self.process = None
        if self.datadir is not None:
            shutil.rmtree(self.datadir.parent, ignore_errors=True)
            self.datadir = None


def _start_postgres(
    bindir: Path,
    datadir: Path,
    root: Path,
    port: int,
    log: Any,
    env: dict[str, str],
    run_as: dict[str, Any],
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            str(bindir / "postgres"),
            "-D",
            str(datadir),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(root),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        **run_as,
    )


def _start_cluster() -> PgServer:
    bindir = _bindir()
    if bindir is None or not (bindir / "initdb").exists():
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, postgres) not found: install Debian's "
            "'postgresql' package (make test does it when run as root), set "
            "SUPPORTFLOW_PG_BINDIR, or point SUPPORTFLOW_TEST_POSTGRES_URL at a server"
        )
    root = Path(tempfile.mkdtemp(prefix="supportflow-pg-"))
    datadir = root / "data"
    password = secrets.token_hex(12)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:  # postgres refuses to run as root
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        os.chown(pwfile, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "HOME": str(root)}
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        env=env,
        **run_as,
    )
    port = _free_port()
    with open(root / "server.log", "wb") as log:  # the server keeps its own descriptor
        process = _start_postgres(bindir, datadir, root, port, log, env, run_as)
    server = PgServer("127.0.0.1", port, USER, password, "postgres")
    server.process, server.datadir = process, datadir
    deadline = time.monotonic() + 60
    while True:
        try:
            with server.connect() as conn:
                conn.execute("CREATE DATABASE supportflow_test")
            break
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"PostgreSQL did not start: {(root / 'server.log').read_text()[-2000:]}"
                ) from None
            time.sleep(0.1)
    server.dbname = "supportflow_test"
    return server


def _external(url: str) -> PgServer:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    return PgServer(
        parts.hostname or "127.0.0.1",
        parts.port or 5432,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        parts.path.lstrip("/"),
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (started here unless one is given)."""
    external = os.environ.get("SUPPORTFLOW_TEST_POSTGRES_URL")
    if external:
        yield _external(external)
        return
    try:
        server = _start_cluster()
    except (RuntimeError, OSError, subprocess.CalledProcessError, KeyError) as error:
        detail = getattr(error, "stderr", b"") or b""
        pytest.fail(
            f"no PostgreSQL server for the tests: {error} {detail.decode(errors='replace')}",
            pytrace=False,
        )
    try:
        yield server
    finally:
        server.stop()


def fresh_schema_url(server: PgServer, query: str = "") -> str:
    """A store URL on a new, empty schema of the test database (cheap isolation)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with server.connect() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    extra = f"schema={schema}" + (f"&{query}" if query else "")
    return server.url(extra)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A migrated, empty PostgreSQL store (its own schema) for one test."""
    from supportflow import SupportDesk

    url = fresh_schema_url(pg_server)
    SupportDesk.migrate(url)
    return url
