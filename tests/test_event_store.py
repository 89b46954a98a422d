"""The partitioned event store (migration 0008, docs/event-store.md): rows stored before the
migration are all there after it, unchanged; the hot queries still read one index range."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from server.account_data import EXPORT_EVENTS_SQL
from server.admin_sessions import _PAGE_SQL as ADMIN_PAGE_SQL
from server.db import load_migrations, migrate
from server.sessions.store import EVENTS_AFTER_OF_TYPES_SQL, EVENTS_AFTER_SQL
from tests.support import Services, create_database, drop_database, with_database

pytestmark = pytest.mark.timeout(120)

PARTITIONED = ("session_events", "client_inputs")
PARTITIONS = 16
PARTITIONING_VERSION = 8
#: Plan nodes that read a table through an index (a bitmap heap scan's child is the index
#: scan); a "Seq Scan" of a partition is what the test refuses.
BY_INDEX = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


@pytest.fixture
async def empty_db(services: Services) -> AsyncIterator[asyncpg.Connection]:
    name = f"mentara_evs_{uuid.uuid4().hex[:12]}"
    await create_database(services.database_url, name)
    conn = await asyncpg.connect(with_database(services.database_url, name))
    try:
        yield conn
    finally:
        await conn.close()
        await drop_database(services.database_url, name)


async def _migrate_before(conn: asyncpg.Connection, version: int) -> None:
    """Apply the migrations older than ``version`` the way :func:`migrate` does, and record
    them, so that :func:`migrate` then applies ``version`` and what follows it."""
    await conn.execute(
        """CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
                                           applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    for m in load_migrations():
        if m.version >= version:
            break
        async with conn.transaction():
            await conn.execute(m.sql)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", m.version, m.name)


async def _fill(conn: asyncpg.Connection, sessions: int, events: int) -> None:
    """``sessions`` sessions of ``events`` events each (bodies with text Postgres must keep
    as is), and an input per second event."""
    await conn.execute(
        """INSERT INTO sessions (id, user_id, track, question_id, status, created_at)
           SELECT 's' || i, 'u' || (i % 7), 'coding', 'q1',
                  CASE WHEN i % 3 = 0 THEN 'ended' ELSE 'active' END,
                  now() - make_interval(secs => i)
             FROM generate_series(1, $1) AS i""",
        sessions,
    )
    await conn.execute(
        """INSERT INTO session_events (session_id, seq, type, ts, body)
           SELECT 's' || i, n, CASE WHEN n % 50 = 0 THEN 'phase' ELSE 'interviewer.delta' END,
                  1700000000000 + n,
                  jsonb_build_object('seq', n, 'type', 'interviewer.delta',
                                     'text', 'délta ✓ ' || i || '/' || n, 'name', 'coding')
             FROM generate_series(1, $1) AS i, generate_series(1, $2) AS n""",
        sessions,
        events,
    )
    await conn.execute(
        """INSERT INTO client_inputs (session_id, input_id, seq)
           SELECT 's' || i, 'in-' || n, n FROM generate_series(1, $1) AS i,
                  generate_series(2, $2, 2) AS n""",
        sessions,
        events,
    )


_EVENTS = "SELECT session_id, seq, type, ts, body::text FROM session_events ORDER BY 1, 2"
_INPUTS = "SELECT session_id, input_id, seq, created_at FROM client_inputs ORDER BY 1, 2"


async def test_migration_keeps_every_row(empty_db: asyncpg.Connection) -> None:
    conn = empty_db
    await _migrate_before(conn, PARTITIONING_VERSION)
    await _fill(conn, sessions=40, events=60)
    await conn.execute(  # one row whose body is the JSON text a client sent, odd characters too
        """INSERT INTO session_events VALUES ('s1', 1000, 'candidate.message', 1,
                                             $1::jsonb)""",
        json.dumps({"text": 'quote " back\\slash \u2028 emoji \U0001f600', "n": [1, 2.5]}),
    )
    events_before = [tuple(r) for r in await conn.fetch(_EVENTS)]
    inputs_before = [tuple(r) for r in await conn.fetch(_INPUTS)]
    assert len(events_before) == 40 * 60 + 1 and len(inputs_before) == 40 * 30

    applied = await migrate(conn)

    assert applied[0] == "0008_partitioned_events.sql"
    assert [tuple(r) for r in await conn.fetch(_EVENTS)] == events_before
    assert [tuple(r) for r in await conn.fetch(_INPUTS)] == inputs_before
    for table in PARTITIONED:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = $1::regclass", table
            )
            == PARTITIONS
        )
        # The rows are spread: no partition holds them all.
        biggest = await conn.fetchval(
            f"""SELECT max(n) FROM (SELECT count(*) AS n FROM {table}
                                     GROUP BY tableoid) AS per_partition"""
        )
        assert 0 < biggest < await conn.fetchval(f"SELECT count(*) FROM {table}")
    # The copy's source is gone, and the cascade from sessions still reaches every partition.
    assert await conn.fetchval("SELECT to_regclass('session_events_unpartitioned')") is None
    await conn.execute("DELETE FROM sessions WHERE id = 's1'")
    assert await conn.fetchval("SELECT count(*) FROM session_events WHERE session_id = 's1'") == 0
    assert await conn.fetchval("SELECT count(*) FROM client_inputs WHERE session_id = 's1'") == 0
    # A session's writes land in its partition, and a repeated event is refused as before.
    await conn.execute("INSERT INTO session_events VALUES ('s2', 61, 't', 1, '{}')")
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute("INSERT INTO session_events VALUES ('s2', 61, 't', 1, '{}')")


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (node type, relation) a plan reads, its sub-plans included."""
    found = []
    if "Relation Name" in plan:
        found.append((plan["Node Type"], plan["Relation Name"]))
    for child in plan.get("Plans", []):
        found.extend(_scans(child))
    return found


async def _plan_scans(conn: asyncpg.Connection, sql: str, *args: object) -> list[tuple[str, str]]:
    raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    plan = json.loads(raw)[0]["Plan"]
    return [s for s in _scans(plan) if s[1].startswith(PARTITIONED)]


@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
async def test_hot_queries_read_an_index_of_one_partition(
    empty_db: asyncpg.Connection, plan_mode: str
) -> None:
    """A custom plan (the session id known) reads one partition; a generic plan (what a
    prepared statement runs after its fifth use) lists every partition, pruned at run time to
    one, and reads each by index. A sequential scan of a partition fails either way."""
    conn = empty_db
    await migrate(conn)
    await _fill(conn, sessions=300, events=200)
    await conn.execute("ANALYZE")
    await conn.execute(f"SET plan_cache_mode = {plan_mode}")

    queries: dict[str, tuple[str, tuple[object, ...]]] = {
        "replay": (EVENTS_AFTER_SQL, ("s17", 120, 100_000)),
        "replay of some types": (EVENTS_AFTER_OF_TYPES_SQL, ("s17", 0, 1000, ["phase"])),
        "export page": (EXPORT_EVENTS_SQL, ("s17", 0, 1000)),
        "input lookup": (
            "SELECT seq FROM client_inputs WHERE session_id = $1 AND input_id = $2",
            ("s17", "in-30"),
        ),
        "admin list": (ADMIN_PAGE_SQL, (None, None, None, None, None, 51)),
        "admin list of a user": (ADMIN_PAGE_SQL, ("active", "u3", "coding", None, None, 51)),
    }
    for name, (sql, args) in queries.items():
        scans = await _plan_scans(conn, sql, *args)
        assert scans, (name, "reads no partitioned table?")
        assert all(node in BY_INDEX for node, _ in scans), (name, scans)
        if plan_mode == "force_custom_plan" and not name.startswith("admin"):
            assert len({rel for _, rel in scans}) == 1, (name, scans)  # pruned at plan time
