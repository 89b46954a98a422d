"""A take-over holds its lease for the whole rebuild (issue 14).

A take-over takes the session's lease, then rebuilds the session (history, inputs, state)
before it owns it. A rebuild slowed by a slow link to Postgres must not outlive the lease:
another worker would find the session without an owner and take it too. Here the new
owner's link to Postgres delays every chunk by longer than the lease, and the lease is
watched in Redis throughout: once taken, it stays the new owner's token.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from protocol.client import open_client
from protocol.messages import ServerFrame, SessionResume, SessionStart
from server.config import Settings
from server.hub.keys import session_keys
from tests.interview_support import read_until, started_id, turn_ended
from tests.outage_support import LinkProxy
from tests.support import RunningServer, running_server

pytestmark = pytest.mark.outage


async def watch_lease(
    redis: aioredis.Redis, key: str, seen: list[tuple[float, str | None]]
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        raw = await redis.get(key)
        seen.append((loop.time(), raw.decode() if isinstance(raw, bytes) else raw))
        await asyncio.sleep(0.02)


def owns(server: RunningServer, session_id: str) -> bool:
    return session_id in server.app.state.resources.sessions.owned


async def test_a_slow_rebuild_keeps_its_lease_throughout(settings: Settings) -> None:
    assert settings.database_url is not None and settings.redis_url is not None
    base = settings.with_(lease_ms=1000, offline_tokens_per_s=300.0, coalesce_ms=5.0)
    redis = aioredis.from_url(settings.redis_url)
    seen: list[tuple[float, str | None]] = []
    watcher: asyncio.Task[None] | None = None
    try:
        async with (
            LinkProxy(settings.database_url) as slow_pg,
            running_server(base.with_(database_url=slow_pg.url)) as heir,
        ):
            token = heir.token(f"slow-{uuid.uuid4().hex[:6]}")
            async with open_client(heir.ws_url(), token=token) as laptop:
                async with running_server(base) as first:
                    async with open_client(first.ws_url(), token=token) as phone:
                        frames: list[ServerFrame] = [
                            await phone.request(SessionStart(id="s", track="coding"))
                        ]
                        frames += await read_until(phone, turn_ended(2), timeout=30)
                    session_id = started_id(frames)
                    # Acked after the whole replay, which the client keeps in its buffer.
                    await laptop.request(SessionResume(id="r", session_id=session_id, last_seq=0))
                    key = session_keys(base.redis_prefix, session_id).lease
                    watcher = asyncio.create_task(watch_lease(redis, key, seen))
                    # A round trip to the heir's Postgres now takes longer than a lease; its
                    # rebuild needs several.
                    slow_pg.delay_s = 0.7
                    heir_id = heir.app.state.resources.sessions.worker_id
                # The first owner shut down: its lease is released and the heir, which has
                # a socket on the session, takes it over.
                async with asyncio.timeout(60):
                    while not owns(heir, session_id):  # noqa: ASYNC110 - polling another server
                        await asyncio.sleep(0.05)
                await asyncio.sleep(1.5)  # a lease and a half after the rebuild
                watcher.cancel()
                slow_pg.delay_s = 0.0
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await redis.aclose()
    heirs = [i for i, (_, value) in enumerate(seen) if value and value.startswith(heir_id)]
    assert heirs, seen[-5:]
    taken_at, first_token = seen[heirs[0]]
    after = seen[heirs[0] :]
    lapses = [(round(t - taken_at, 2), value) for t, value in after if value != first_token]
    assert not lapses, f"the heir's lease {first_token} lapsed or changed hands: {lapses[:10]}"
    assert after[-1][0] - taken_at > 2.5  # the rebuild was slower than the lease
