"""The PostgreSQL store: URL settings, explicit migration, credentials kept out of messages."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest

from supportflow import InvalidCommand, ManualClock, SupportDesk, SupportflowError
from supportflow._store import redact, store_env

from ._pg import PgServer, fresh_schema_url

FRI = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)


def test_url_query_sets_timeouts_and_pool() -> None:
    """lock_timeout, idle_in_transaction_timeout and pool_size come from the URL query."""
    env = store_env(
        "postgresql://u:p@db.example:6543/tickets?lock_timeout=3"
        "&idle_in_transaction_timeout=20&pool_size=7&max_overflow=2&schema=desk"
    )
    assert env["POSTGRES_LOCK_TIMEOUT"] == "3"
    assert env["POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"] == "20"
    assert env["POSTGRES_POOL_SIZE"] == "7"
    assert env["POSTGRES_MAX_OVERFLOW"] == "2"
    assert env["POSTGRES_SCHEMA"] == "desk"
    assert env["POSTGRES_PORT"] == "6543"
    assert env["CREATE_TABLE"] == "n"
    assert env["POSTGRES_ENABLE_DB_FUNCTIONS"] == "n"


def test_url_defaults_bound_every_wait() -> None:
    """Without a query, lock and idle-in-transaction timeouts are finite, not 'forever'."""
    env = store_env("postgres://u:p@localhost/tickets")
    assert int(env["POSTGRES_LOCK_TIMEOUT"]) > 0
    assert int(env["POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"]) > 0
    assert env["POSTGRES_PORT"] == "5432"


def test_url_percent_encoded_credentials_are_decoded() -> None:
    """User and password may be percent-encoded in the URL."""
    env = store_env("postgresql://ann%40corp:p%2Fw%3A1@localhost/db")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("ann@corp", "p/w:1")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:s3cret@localhost/db?lock_timeout=0",
        "postgresql://u:s3cret@localhost/db?nonsense=1",
        "postgresql://u:s3cret@localhost/",
        "postgresql://u:s3cret@localhost/db?pool_size=1&max_overflow=0",
    ],
)
def test_bad_url_is_refused_without_the_password(url: str) -> None:
    """A malformed PostgreSQL URL raises InvalidCommand whose text hides the password."""
    with pytest.raises(InvalidCommand) as caught:
        store_env(url)
    assert "s3cret" not in str(caught.value)


def test_redact_hides_the_password() -> None:
    """`redact` keeps user, host, port and database, not the password."""
    assert redact("postgresql://ann:s3cret@h:5433/db?x=1") == "postgresql://ann:***@h:5433/db"


def test_unreachable_server_error_hides_the_password() -> None:
    """A desk on a server that does not answer fails with a SupportflowError, no password."""
    url = "postgresql://ann:s3cret@127.0.0.1:1/db?connect_timeout=1"
    with pytest.raises(SupportflowError) as caught:
        SupportDesk(url)
    assert "s3cret" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_wrong_password_error_hides_the_password(pg_server: PgServer) -> None:
    """Authentication failure is reported without the password that was tried."""
    url = pg_server.url().replace(pg_server.password, "wrong-s3cret") + "?connect_timeout=2"
    with pytest.raises(SupportflowError) as caught:
        SupportDesk(url)
    assert "wrong-s3cret" not in str(caught.value)


def test_desk_on_unmigrated_database_says_to_migrate(pg_server: PgServer) -> None:
    """Desks never create tables on PostgreSQL: an empty schema asks for `migrate`."""
    url = fresh_schema_url(pg_server)
    with pytest.raises(SupportflowError, match="supportflow migrate"):
        SupportDesk(url)


def test_repr_and_messages_hide_the_password(pg_url: str, pg_server: PgServer) -> None:
    """The desk's repr does not contain the password."""
    with SupportDesk(pg_url, clock=ManualClock(FRI)) as desk:
        assert pg_server.password not in repr(desk)


def test_concurrent_migrations_all_succeed(pg_server: PgServer) -> None:
    """Four migrations of one empty schema at once all succeed (they wait for each other)."""
    url = fresh_schema_url(pg_server)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            SupportDesk.migrate(url)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with SupportDesk(url, clock=ManualClock(FRI)) as desk:
        tid = desk.submit(requester="ann@example.com", subject="x")
        assert list(desk.ticket_ids()) == [tid]


def test_migrate_command_is_idempotent_and_hides_the_password(pg_server: PgServer) -> None:
    """`supportflow migrate --store URL` twice: exit 0 both times, password never printed."""
    url = fresh_schema_url(pg_server)
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "supportflow", "migrate", "--store", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert pg_server.password not in result.stdout + result.stderr
        assert "migrated" in result.stdout


def test_worker_log_lines_hide_the_password(pg_url: str, pg_server: PgServer) -> None:
    """The worker's structured log names the store without its password."""
    result = subprocess.run(
        [sys.executable, "-m", "supportflow", "worker", "--store", pg_url, "--once"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "event=sweep" in result.stdout
    assert pg_server.password not in result.stdout + result.stderr
