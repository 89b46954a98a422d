"""Postgres: the connection pool, the migrations, and which errors mean "not reachable now".

Migrations are plain SQL files in ``server/migrations/`` named ``NNNN_name.sql``, applied in
order, each in its own transaction, and recorded in ``schema_migrations``. :func:`migrate`
holds a session-level advisory lock while it runs, so workers that start together apply each
file exactly once; the others wait, then find nothing left to do.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger("mentara.db")

#: Errors that mean "Postgres is not reachable right now" (a restart, a link cut mid-query):
#: the write-behind retries the same batch; a client frame that meets one is answered with a
#: retryable error and its socket stays (``server.client_socket``).
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    # A connection left mid-operation by a server that went away; the pool replaces it.
    asyncpg.InternalClientError,
)

#: Key of the advisory lock that serialises migrations across processes ("mentara" in ASCII).
MIGRATION_LOCK_KEY = 0x6D656E74617261
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The packaged migrations in version order; raises ValueError on a misnamed or duplicate file."""
    found: dict[int, Migration] = {}
    for entry in resources.files("server.migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise ValueError(f"migration file {entry.name!r} must be named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations with version {version}")
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations under the advisory lock; return the names applied here."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in load_migrations():
            if m.version in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    m.version,
                    m.name,
                )
            log.info("applied migration %s", m.name)
            applied_now.append(m.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied_now


async def create_pool(database_url: str, *, max_size: int) -> asyncpg.Pool:
    """A pool on ``database_url`` (unix-socket URLs included), with migrations applied."""
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=max_size, reset=_no_session_state
    )
    assert pool is not None
    return pool


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """The pool's reset of a released connection: nothing beyond asyncpg's own.

    asyncpg's default reset sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
    ALL`` on every release: one more round trip per write batch. This server's pool
    connections hold no session state (no ``SET``, ``LISTEN``, session advisory lock or
    cursor outside a transaction; the migration lock is taken on a connection of its own).
    With a custom reset, asyncpg still rolls back a transaction left open by a cancelled
    caller before calling it, so that is all a release does.
    """
    return None


async def migrate_url(database_url: str) -> list[str]:
    """Connect, apply pending migrations, disconnect (``mentara migrate``)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
