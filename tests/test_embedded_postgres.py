"""The embedded Postgres wants its password from everyone, and other local users cannot even
reach its socket: real servers from pgserver's binaries, real connections, a real second
user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from server.embedded_postgres import EmbeddedPostgres


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    server = EmbeddedPostgres(tmp_path / "data")
    url = server.start()
    try:
        yield server, url
    finally:
        server.stop()


def with_password(url: str, password: str | None) -> str:
    parts = urlsplit(url)
    user = "postgres" if password is None else f"postgres:{password}"
    return urlunsplit(parts._replace(netloc=f"{user}@"))


async def assert_refused(url: str) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        conn = await asyncpg.connect(url, timeout=10)
        await conn.close()


async def test_every_connection_needs_the_password_kept_in_the_data_folder(
    postgres: tuple[EmbeddedPostgres, str],
) -> None:
    server, url = postgres
    conn = await asyncpg.connect(url, timeout=10)
    try:
        assert await conn.fetchval("SELECT current_database()") == "mentara"
        assert await conn.fetchval("SHOW password_encryption") == "scram-sha-256"
        assert await conn.fetchval("SHOW listen_addresses") == ""  # no TCP at all
        rules = await conn.fetch("SELECT type, auth_method FROM pg_hba_file_rules")
        assert {r["auth_method"] for r in rules} == {"scram-sha-256"}
        assert {r["type"] for r in rules} == {"local", "host"}
    finally:
        await conn.close()
    await assert_refused(with_password(url, None))
    await assert_refused(with_password(url, "not-the-password"))
    password = server.password_file.read_text().strip()
    assert urlsplit(url).password == password
    assert server.password_file.stat().st_mode & 0o777 == 0o600
    assert server.socket_dir.stat().st_mode & 0o777 == 0o700
    # Stopped and started again: the same password still opens it.
    server.stop()
    assert server.start() == url
    conn = await asyncpg.connect(url, timeout=10)
    await conn.close()


@pytest.fixture
def other_user() -> Iterator[str]:
    """A fresh unprivileged local user (the test runs as root)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root and useradd to create a second user")
    name = f"mtprobe{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)  # fmt: skip
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def test_another_local_user_cannot_reach_the_socket_or_the_password(
    postgres: tuple[EmbeddedPostgres, str], other_user: str
) -> None:
    server, _ = postgres
    socket_file = server.socket_dir / ".s.PGSQL.5432"
    assert socket_file.is_socket()
    # The system's interpreter: the project's may sit in a folder this user cannot read.
    python = "/usr/bin/python3"
    probe = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    s.connect(sys.argv[1])\n"
        "except PermissionError:\n"
        "    print('refused')\n"
        "else:\n"
        "    print('CONNECTED')\n"
        "try:\n"
        "    open(sys.argv[2]).read()\n"
        "except PermissionError:\n"
        "    print('unreadable')\n"
        "else:\n"
        "    print('READ')\n"
    )
    done = subprocess.run(
        [python, "-I", "-c", probe, str(socket_file), str(server.password_file)],
        user=other_user, capture_output=True, text=True, timeout=30, cwd="/",
    )  # fmt: skip
    assert done.stdout.split() == ["refused", "unreadable"], done.stdout + done.stderr
    owner = pwd.getpwuid(server.socket_dir.stat().st_uid).pw_name
    assert owner != other_user


async def test_a_folder_of_an_earlier_version_is_migrated_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    import pgserver

    data_dir = tmp_path / "old"
    data_dir.mkdir()
    # What earlier versions did: pgserver's defaults, trust for every local user, and a
    # server left running (its owner was killed).
    old = pgserver.get_server(data_dir / "postgres", cleanup_mode=None)  # type: ignore[attr-defined]
    old.psql("CREATE DATABASE mentara")
    old_url = old.get_uri("mentara")
    conn = await asyncpg.connect(old_url, timeout=10)  # no password: trusted
    await conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
    await conn.close()

    server = EmbeddedPostgres(data_dir)
    url = server.start()
    try:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            assert await conn.fetchval("SELECT n FROM kept") == 42
        finally:
            await conn.close()
        await assert_refused(with_password(url, None))
        assert "trust" not in (server.pgdata / "pg_hba.conf").read_text().split()
        assert not (server.pgdata / ".s.PGSQL.5432").exists(), "the old socket is still there"
    finally:
        server.stop()
