"""Migrations: applied in order, recorded, once, even when workers start together."""

from __future__ import annotations

import asyncio

import asyncpg

from server.db import load_migrations, migrate
from tests.support import Services, create_database, drop_database, with_database


def test_migration_files_are_ordered_and_named() -> None:
    migrations = load_migrations()
    assert migrations, "no migrations packaged"
    versions = [m.version for m in migrations]
    # Numbers are assigned per issue, so a later one may land before an earlier one: unique,
    # increasing, from 1 (migrate() applies whatever is not yet recorded, in order).
    assert versions == sorted(set(versions)) and versions[0] == 1


async def test_concurrent_migrators_apply_each_file_once(services: Services) -> None:
    name = "mentara_mig_" + str(id(services))[-8:]
    admin = services.database_url
    await create_database(admin, name)
    try:
        url = with_database(admin, name)
        conns = [await asyncpg.connect(url) for _ in range(4)]
        try:
            results = await asyncio.gather(*(migrate(c) for c in conns))
        finally:
            for c in conns:
                await c.close()
        applied = [names for names in results if names]
        assert len(applied) == 1, results  # one migrator did the work, the others found none
        assert applied[0] == [m.name for m in load_migrations()]
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
            assert [r["version"] for r in rows] == [m.version for m in load_migrations()]
            assert await migrate(conn) == []  # idempotent
        finally:
            await conn.close()
    finally:
        await drop_database(admin, name)
