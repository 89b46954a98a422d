from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from server.config import Settings
from server.embedded import start_embedded
from server.hub.lease import Leases
from tests import ci_passes
from tests.leak_guard import collect_garbage_after  # noqa: F401 (an autouse fixture)
from tests.support import (
    RunningServer,
    Services,
    create_database,
    drop_database,
    make_settings,
    running_server,
    services_mode,
    with_database,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keeps the tests this pass runs (``tests/ci_passes.py`` decides from each test's markers
    and fixtures): a test that meets the suite's Postgres or Redis runs in both of CI's passes,
    every other test in one. The others are deselected (reported as deselected, never as
    skipped or passed) and counted in one line after collection; a test that no pass would
    run is a collection error."""
    mode = services_mode()
    if mode not in ci_passes.PASSES:
        raise pytest.UsageError(f"MENTARA_TEST_SERVICES must be embedded or local, not {mode!r}")
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    reasons: list[str] = []
    nowhere: list[str] = []
    for item in items:
        markers = {mark.name for mark in item.iter_markers()}
        passes, why = ci_passes.passes_for(markers, getattr(item, "fixturenames", ()))
        if not passes:
            nowhere.append(f"{item.nodeid}: {why}")
        elif mode in passes:
            kept.append(item)
        else:
            deselected.append(item)
            reasons.append(why)
    if nowhere:
        raise pytest.UsageError("tests that no CI pass runs:\n" + "\n".join(nowhere))
    config.stash[_DESELECTED_WHY] = reasons
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


_DESELECTED_WHY = pytest.StashKey[list[str]]()


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> str:
    """The pass's one line: the tests it runs, and those it leaves to the other pass and why."""
    reasons: list[str] = config.stash.get(_DESELECTED_WHY, [])
    return ci_passes.summary(services_mode(), len(items), reasons)


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    mode = services_mode()
    stack = None
    if mode == "local":
        admin_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    elif mode == "embedded":
        data_dir = tmp_path_factory.mktemp("embedded")
        stack = start_embedded(Settings(data_dir=data_dir))
        admin_url, redis_url = stack.database_url, stack.redis_url
    else:
        raise pytest.UsageError(f"MENTARA_TEST_SERVICES must be embedded or local, not {mode!r}")
    name = f"mentara_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(create_database(admin_url, name))
    try:
        yield Services(with_database(admin_url, name), redis_url, mode)
    finally:
        try:
            asyncio.run(drop_database(admin_url, name))
        finally:
            if stack is not None:
                stack.stop()  # even when the drop failed: never leave servers behind


@pytest.fixture
def settings(services: Services, tmp_path: Path) -> Settings:
    return make_settings(services, tmp_path)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(settings) as running:
        yield running


@pytest.fixture
async def redis(services: Services) -> AsyncIterator[aioredis.Redis]:
    """A client of the suite's Redis (tests use their own key prefixes)."""
    client = aioredis.from_url(services.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def new_leases(redis: aioredis.Redis) -> AsyncIterator[Callable[..., Leases]]:
    """Makes ``Leases`` on the suite's Redis (``new_leases(prefix, worker, lease_ms=...)``)
    and closes them after the test (their append pipeline keeps a connection)."""
    made: list[Leases] = []

    def make(prefix: str, worker: str, *, lease_ms: int, ttl_ms: int = 60_000) -> Leases:
        leases = Leases(redis, prefix, worker, lease_ms=lease_ms, ttl_ms=ttl_ms)
        made.append(leases)
        return leases

    try:
        yield make
    finally:
        for leases in made:
            await leases.aclose()
