"""The Postgres and Redis a benchmark run uses, and the OS processes that serve them.

:func:`open_services` picks this machine's servers when they answer on 127.0.0.1 (or the
``DATABASE_URL`` / ``REDIS_URL`` of the environment), else starts the embedded ones
(``server.embedded``), and creates a fresh database for the run; :meth:`Services.close`
drops it and stops what was started.

:func:`redis_pids` and :func:`postgres_pids` find the server processes whose CPU the
benchmark charges to the system under test: Redis's own ``process_id`` (``INFO server``),
and for Postgres the postmaster, its background processes (WAL writer, checkpointer, ...)
and the backends connected to the run's database (``pg_stat_activity``), never the
backends of other databases that share the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
import redis

from server.config import Settings
from server.embedded import EmbeddedStack, start_embedded

__all__ = [
    "LOCAL_DATABASE_URL",
    "LOCAL_REDIS_URL",
    "ServiceMode",
    "Services",
    "open_services",
    "postgres_pids",
    "redis_pids",
]

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
ServiceMode = Literal["auto", "local", "embedded"]
_AUX_BACKENDS = frozenset(
    {
        "walwriter",
        "checkpointer",
        "background writer",
        "autovacuum launcher",
        "logical replication launcher",
    }
)


@dataclass
class Services:
    """A run's Postgres and Redis. ``database_url`` names the run's own fresh database."""

    admin_url: str
    database_url: str
    redis_url: str
    mode: str
    """``local`` or ``embedded``."""
    stack: EmbeddedStack | None = None

    @property
    def database(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")

    def describe(self) -> str:
        where = "this machine's" if self.mode == "local" else "embedded"
        return f"{where} Postgres (database {self.database}) and Redis"

    def close(self) -> None:
        """Drop the run's database and stop the embedded servers, if any (idempotent)."""
        with contextlib.suppress(Exception):
            asyncio.run(_drop_database(self.admin_url, self.database))
        if self.stack is not None:
            self.stack.stop()
            self.stack = None


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return False
    try:
        socket.create_connection((parts.hostname, parts.port or default_port), timeout=2).close()
    except OSError:
        return False
    return True


def open_services(mode: ServiceMode, data_dir: Path) -> Services:
    """Pick the servers (see the module docstring) and create the run's fresh database.

    ``local`` raises RuntimeError when a server does not answer on 127.0.0.1; ``auto`` falls
    back to the embedded ones."""
    admin_url = os.environ.get("DATABASE_URL") or LOCAL_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or LOCAL_REDIS_URL
    local = _answers(admin_url, 5432) and _answers(redis_url, 6379)
    if mode == "local" and not local:
        raise RuntimeError("Postgres or Redis does not answer on 127.0.0.1")
    stack = None
    if mode == "embedded" or not local:
        stack = start_embedded(Settings(data_dir=data_dir))
        admin_url, redis_url = stack.database_url, stack.redis_url
    name = f"mentara_bench_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_create_database(admin_url, name))
    except BaseException:
        if stack is not None:
            stack.stop()
        raise
    database_url = urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
    return Services(admin_url, database_url, redis_url, "embedded" if stack else "local", stack)


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def redis_pids(redis_url: str) -> list[int]:
    """The Redis server's process id, as Redis itself reports it (``[]`` if unreachable)."""
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        try:
            info = client.info("server")
        finally:
            client.close()
    except redis.RedisError:
        return []
    pid = int(info.get("process_id", 0))
    return [pid] if pid else []


async def _postgres_pids(admin_url: str, database: str) -> list[int]:
    conn = await asyncpg.connect(admin_url)
    try:
        rows = await conn.fetch(
            "SELECT pid, backend_type, datname FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
        )
        own = await conn.fetchval("SELECT pg_backend_pid()")
    finally:
        await conn.close()
    pids = [
        int(r["pid"])
        for r in rows
        if r["datname"] == database or r["backend_type"] in _AUX_BACKENDS
    ]
    with contextlib.suppress(psutil.Error):
        pids.insert(0, psutil.Process(int(own)).ppid())  # the postmaster
    return pids


def postgres_pids(services: Services) -> list[int]:
    """The postmaster, its background processes and the run database's backends."""
    try:
        return asyncio.run(_postgres_pids(services.admin_url, services.database))
    except (OSError, asyncpg.PostgresError):
        return []
