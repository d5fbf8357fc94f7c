"""The per-requester key table (crypto-shredding): one key per lookup in every store, agreed
on by concurrent writers, and gone from the store's files once destroyed."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from supportflow._recorders import KeyTable
from supportflow._timers import IndexedApplication, open_application
from supportflow.errors import SupportflowError

from ._pg import PgServer


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tickets.db'}"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return _sqlite_url(tmp_path)
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store several processes can open."""
    if request.param == "sqlite":
        return _sqlite_url(tmp_path)
    url: str = request.getfixturevalue("pg_url")
    return url


@contextlib.contextmanager
def _open(store: str) -> Iterator[IndexedApplication]:
    app = open_application(store)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def app(store: str) -> Iterator[IndexedApplication]:
    with _open(store) as opened:
        yield opened


@pytest.fixture
def keys(app: IndexedApplication) -> KeyTable:
    return app.key_table


def _new_key() -> bytes:
    return secrets.token_bytes(32)


def _schema(url: str) -> str:
    return url.split("schema=", 1)[1].split("&", 1)[0]


def _keys_table(app: IndexedApplication) -> str:
    """The key table's name (``{events_table_name}_keys``) in the app's store."""
    name: str = getattr(app.recorder, "keys_table_name")  # noqa: B009 - not on the Protocol
    return name


# -- behaviour on every store ----------------------------------------------------------------


def test_created_key_is_found_by_id_and_by_lookup(keys: KeyTable) -> None:
    """A created key is returned as stored and found both by its id and by its lookup."""
    key_id, key = uuid.uuid4(), _new_key()
    assert keys.count_keys() == 0
    assert keys.create_key(key_id, "lookup-ann", key) == (key_id, key)
    assert keys.find_key(key_id) == key
    assert keys.key_for("lookup-ann") == (key_id, key)
    assert keys.count_keys() == 1


def test_unknown_key_id_and_lookup_find_nothing(keys: KeyTable) -> None:
    """An id or lookup nobody created finds None, even when other keys exist."""
    keys.create_key(uuid.uuid4(), "lookup-ann", _new_key())
    assert keys.find_key(uuid.uuid4()) is None
    assert keys.key_for("lookup-bob") is None


def test_second_create_for_a_lookup_returns_the_first_key(keys: KeyTable) -> None:
    """Creating a key for a lookup that has one keeps and returns the first (id, key)."""
    first = keys.create_key(uuid.uuid4(), "lookup-ann", _new_key())
    second_id = uuid.uuid4()
    assert keys.create_key(second_id, "lookup-ann", _new_key()) == first
    assert keys.find_key(second_id) is None
    assert keys.count_keys() == 1


def test_create_with_a_used_key_id_for_another_lookup_is_rejected(keys: KeyTable) -> None:
    """A key id already stored for another lookup raises IntegrityError and stores nothing."""
    key_id = uuid.uuid4()
    keys.create_key(key_id, "lookup-ann", _new_key())
    with pytest.raises(IntegrityError):
        keys.create_key(key_id, "lookup-bob", _new_key())
    assert keys.key_for("lookup-bob") is None
    assert keys.count_keys() == 1


def test_concurrent_creates_for_one_lookup_agree_across_threads(keys: KeyTable) -> None:
    """Eight threads creating a key for the same lookup at once all get the same stored
    (id, key), and the table holds one key."""
    barrier = threading.Barrier(8)
    results: list[tuple[uuid.UUID, bytes]] = []
    errors: list[BaseException] = []

    def create() -> None:
        barrier.wait()
        try:
            results.append(keys.create_key(uuid.uuid4(), "lookup-ann", _new_key()))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == 8
    assert set(results) == {keys.key_for("lookup-ann")}
    assert keys.count_keys() == 1


def test_destroyed_key_is_found_neither_by_id_nor_by_lookup(keys: KeyTable) -> None:
    """After destroy_key the key is gone (find_key, key_for None; one fewer key); other
    keys stay."""
    ann_id, _ = keys.create_key(uuid.uuid4(), "lookup-ann", _new_key())
    bob = keys.create_key(uuid.uuid4(), "lookup-bob", _new_key())
    assert keys.destroy_key(ann_id) is True
    assert keys.find_key(ann_id) is None
    assert keys.key_for("lookup-ann") is None
    assert keys.count_keys() == 1
    assert keys.key_for("lookup-bob") == bob


def test_destroying_a_missing_key_returns_false(keys: KeyTable) -> None:
    """Destroying a key twice, or one never created, returns False and deletes nothing."""
    key_id, _ = keys.create_key(uuid.uuid4(), "lookup-ann", _new_key())
    keys.create_key(uuid.uuid4(), "lookup-bob", _new_key())
    assert keys.destroy_key(key_id) is True
    assert keys.destroy_key(key_id) is False
    assert keys.destroy_key(uuid.uuid4()) is False
    assert keys.count_keys() == 1


def test_lookup_gets_a_new_key_after_its_key_is_destroyed(keys: KeyTable) -> None:
    """Once a lookup's key is destroyed, creating one for it stores the new key."""
    old_id, _ = keys.create_key(uuid.uuid4(), "lookup-ann", _new_key())
    keys.destroy_key(old_id)
    new_id, new_key = uuid.uuid4(), _new_key()
    assert keys.create_key(new_id, "lookup-ann", new_key) == (new_id, new_key)
    assert keys.key_for("lookup-ann") == (new_id, new_key)


def test_recorder_without_key_table_is_refused() -> None:
    """`key_table` on an application whose recorder keeps no keys raises SupportflowError."""
    app = IndexedApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        with pytest.raises(SupportflowError, match="keeps no key table"):
            _ = app.key_table
    finally:
        app.close()


# -- several processes ------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import secrets, sys, uuid
    from supportflow._timers import open_application

    app = open_application(sys.argv[1])
    try:
        table = app.key_table
        print("ready", flush=True)
        sys.stdin.readline()
        key_id, key = table.create_key(uuid.uuid4(), sys.argv[2], secrets.token_bytes(32))
        print(key_id.hex, key.hex(), flush=True)
    finally:
        app.close()
    """
)


def test_concurrent_creates_for_one_lookup_agree_across_processes(
    shared_store: str, tmp_path: Path
) -> None:
    """Four processes, released together, creating a key for the same lookup all get the
    same stored (id, key), and the store holds one key."""
    with _open(shared_store) as app:  # the store's tables exist before the children start
        script = tmp_path / "create_key.py"
        script.write_text(CHILD)
        children = [
            subprocess.Popen(
                [sys.executable, str(script), shared_store, "lookup-ann"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        try:
            for child in children:
                assert child.stdout is not None
                assert child.stdout.readline().strip() == "ready"
            for child in children:  # release them all at once
                assert child.stdin is not None
                child.stdin.write("\n")
                child.stdin.flush()
            outputs = [child.communicate(timeout=60) for child in children]
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait(10)
        assert [child.returncode for child in children] == [0] * 4, [err for _, err in outputs]
        stored = app.key_table.key_for("lookup-ann")
        assert stored is not None
        assert {out.strip() for out, _ in outputs} == {f"{stored[0].hex} {stored[1].hex()}"}
        assert app.key_table.count_keys() == 1


# -- schema ------------------------------------------------------------------------------------


def test_old_sqlite_file_gets_the_key_table_when_opened(tmp_path: Path) -> None:
    """An SQLite file from before the key table existed gets it when opened."""
    url = _sqlite_url(tmp_path)
    with _open(url) as app:
        app.key_table.create_key(uuid.uuid4(), "lookup-ann", _new_key())
        table = _keys_table(app)
    with sqlite3.connect(tmp_path / "tickets.db") as conn:
        conn.execute(f"DROP TABLE {table}")
    conn.close()
    with _open(url) as app:
        assert app.key_table.count_keys() == 0
        key_id, key = uuid.uuid4(), _new_key()
        assert app.key_table.create_key(key_id, "lookup-ann", key) == (key_id, key)


def test_postgres_schema_is_not_ready_without_the_key_table(
    pg_url: str, pg_server: PgServer
) -> None:
    """A PostgreSQL schema missing the key table is not ready (the desk refuses to open
    it until the migration has run)."""
    with _open(pg_url) as app:
        recorder: Any = app.recorder
        assert recorder.schema_ready() is True
        with pg_server.connect() as conn:
            conn.execute(f'DROP TABLE "{_schema(pg_url)}".{_keys_table(app)}')
        assert recorder.schema_ready() is False


# -- the destroyed key leaves the store's files -----------------------------------------------


def _sqlite_file_bytes(db: Path) -> bytes:
    """The database file and its WAL and rollback journal, as they are on disk."""
    parts = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-journal")]
    return b"".join(part.read_bytes() for part in parts if part.exists())


def _create_many(keys: KeyTable, n: int) -> list[tuple[uuid.UUID, bytes]]:
    return [keys.create_key(uuid.uuid4(), f"lookup-{i}", _new_key()) for i in range(n)]


def test_destroyed_key_bytes_leave_the_sqlite_files(tmp_path: Path) -> None:
    """The key bytes are in the SQLite database or its WAL after create_key, and in none
    of its files after destroy_key (while the store is still open); other keys stay."""
    db = tmp_path / "tickets.db"
    with _open(_sqlite_url(tmp_path)) as app:
        created = _create_many(app.key_table, 60)
        victims, survivors = created[10:20] + created[-1:], created[:10] + created[20:-1]
        on_disk = _sqlite_file_bytes(db)
        assert all(key in on_disk for _, key in created)
        for key_id, _ in victims:
            assert app.key_table.destroy_key(key_id)
        on_disk = _sqlite_file_bytes(db)
        assert [key for _, key in victims if key in on_disk] == []
        assert all(key in on_disk for _, key in survivors)


def _heap_file(server: PgServer, url: str, table: str) -> Path:
    """The key table's heap file, after a CHECKPOINT wrote its dirty pages."""
    with server.connect() as conn:
        conn.execute("CHECKPOINT")
        data_dir = conn.execute("SHOW data_directory").fetchone()
        relative = conn.execute(
            "SELECT pg_relation_filepath(%s)", (f'"{_schema(url)}".{table}',)
        ).fetchone()
    assert data_dir is not None
    assert relative is not None
    return Path(str(data_dir[0]), str(relative[0]))


def test_destroyed_key_bytes_leave_the_postgres_heap_file(pg_url: str, pg_server: PgServer) -> None:
    """The key bytes are in the key table's heap file after create_key, and neither in the
    table's file nor in the file it had before after destroy_key; other keys stay."""
    with _open(pg_url) as app:
        created = _create_many(app.key_table, 60)
        victims, survivors = created[10:20] + created[-1:], created[:10] + created[20:-1]
        before = _heap_file(pg_server, pg_url, _keys_table(app))
        assert all(key in before.read_bytes() for _, key in created)
        for key_id, _ in victims:
            assert app.key_table.destroy_key(key_id)
        after = _heap_file(pg_server, pg_url, _keys_table(app))
        on_disk = after.read_bytes() + (before.read_bytes() if before.exists() else b"")
        assert [key for _, key in victims if key in on_disk] == []
        assert all(key in on_disk for _, key in survivors)


def test_postgres_destroy_by_a_user_who_cannot_vacuum_is_an_error(
    pg_url: str, pg_server: PgServer
) -> None:
    """When the server skips the VACUUM (the store's user does not own the key table),
    destroy_key raises instead of reporting a clean destroy; the row itself is deleted."""
    role, password = f"r_{uuid.uuid4().hex[:12]}", secrets.token_hex(8)
    schema = _schema(pg_url)
    with pg_server.connect() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(f"GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
    user_url = (
        f"postgresql://{role}:{password}@{pg_server.host}:{pg_server.port}/"
        f"{pg_server.dbname}?schema={schema}"
    )
    try:
        with _open(pg_url) as owner, _open(user_url) as user:
            key_id, _ = owner.key_table.create_key(uuid.uuid4(), "lookup-ann", _new_key())
            with pytest.raises(OperationalError, match="VACUUM of the key table"):
                user.key_table.destroy_key(key_id)
            assert owner.key_table.find_key(key_id) is None
    finally:
        with pg_server.connect() as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
