"""The append path's hand-written Redis pipeline (server/hub/batcher.py), on a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
import redis.exceptions as redis_errors

from server.hub.batcher import ScriptBatcher, pack_command
from tests.support import Services

# KEYS: a counter. ARGV: a value to echo, and "fail" to raise an error reply.
ECHO = """
if ARGV[2] == 'fail' then return redis.error_reply('FENCED') end
local n = redis.call('INCR', KEYS[1])
return {n, ARGV[1]}
"""


def test_commands_are_packed_as_resp_arrays_of_bulk_strings() -> None:
    assert pack_command((b"EVALSHA", "ab", 1, "k", 2.5, "é")) == (
        b"*6\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$3\r\n2.5\r\n$2\r\n\xc3\xa9\r\n"
    )
    with pytest.raises(TypeError):
        pack_command((b"GET", object()))


@pytest.fixture
async def batcher(redis: aioredis.Redis) -> AsyncIterator[ScriptBatcher]:
    batcher = ScriptBatcher(redis, ECHO)
    try:
        yield batcher
    finally:
        await batcher.aclose()


async def test_calls_of_one_turn_share_a_pipeline_and_keep_their_own_results(
    batcher: ScriptBatcher,
) -> None:
    key = f"t:{uuid.uuid4().hex}"
    big = "x" * 100_000 + "é"
    calls = [
        batcher(keys=[key], args=[big if i == 3 else f"v{i}", "fail" if i == 5 else "ok"])
        for i in range(10)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert batcher.pipelines == 1 and batcher.calls == 10
    assert isinstance(results[5], redis_errors.ResponseError) and "FENCED" in str(results[5])
    ok = [r for i, r in enumerate(results) if i != 5]
    assert [r[0] for r in ok] == list(range(1, 10))  # type: ignore[index]  # in call order
    assert ok[3][1] == big.encode()  # type: ignore[index]
    assert [r[1] for i, r in enumerate(ok) if i != 3] == [  # type: ignore[index]
        f"v{i}".encode() for i in range(10) if i not in (3, 5)
    ]


async def test_a_flushed_script_is_loaded_again(
    redis: aioredis.Redis, batcher: ScriptBatcher
) -> None:
    key = f"t:{uuid.uuid4().hex}"
    assert (await batcher(keys=[key], args=["a", "ok"]))[0] == 1
    await redis.script_flush()
    results = await asyncio.gather(*(batcher(keys=[key], args=["b", "ok"]) for _ in range(3)))
    assert sorted(r[0] for r in results) == [2, 3, 4]


async def test_a_killed_connection_fails_its_calls_and_the_next_ones_succeed(
    batcher: ScriptBatcher, services: Services
) -> None:
    key = f"t:{uuid.uuid4().hex}"
    await batcher(keys=[key], args=["a", "ok"])
    conn = batcher._connection()  # the batcher's own connection, idle between pipelines
    await conn.send_command("CLIENT", "ID")
    client_id = await conn.read_response()
    admin = aioredis.from_url(services.redis_url)
    try:
        assert await admin.client_kill_filter(_id=str(client_id)) == 1
    finally:
        await admin.aclose()
    outcomes: list[object] = []
    for _ in range(3):
        try:
            outcomes.append(await batcher(keys=[key], args=["b", "ok"]))
        except (redis_errors.ConnectionError, OSError) as exc:
            outcomes.append(exc)
    # A call on the killed connection fails with a connection error (its caller retries),
    # unless the write already finds it dead; every pipeline after runs on a fresh
    # connection with its replies in step.
    failures = [o for o in outcomes if not isinstance(o, list)]
    successes = [o for o in outcomes if isinstance(o, list)]
    assert len(failures) <= 1
    assert all(isinstance(f, redis_errors.ConnectionError) for f in failures)
    assert successes == [[n, b"b"] for n in range(2, 2 + len(successes))]


async def test_a_call_that_can_wait_rides_the_next_pipeline_or_leaves_alone_in_time(
    redis: aioredis.Redis, batcher: ScriptBatcher
) -> None:
    key = f"t:{uuid.uuid4().hex}"
    await batcher(keys=[key], args=["warm", "ok"])  # the script loaded, the connection made
    before = batcher.pipelines

    # It waits: nothing is sent while no other call comes and its time has not passed.
    waiting = batcher.submit(keys=[key], args=["score", "ok"], within_s=5.0)
    await asyncio.sleep(0.2)
    assert not waiting.done() and await redis.get(key) == b"1"
    # Another call's pipeline takes it along, first, as it was queued first.
    now = await batcher(keys=[key], args=["delta", "ok"])
    assert (await waiting)[0] == 2 and now[0] == 3
    assert batcher.pipelines == before + 1

    # Alone, it leaves once its time is up (not before).
    loop = asyncio.get_running_loop()
    started = loop.time()
    alone = batcher.submit(keys=[key], args=["end", "ok"], within_s=0.1)
    await asyncio.sleep(0.05)
    assert not alone.done()
    assert (await alone)[0] == 4
    assert loop.time() - started >= 0.09
    assert batcher.pipelines == before + 2


async def test_a_cancelled_call_is_never_sent(
    redis: aioredis.Redis, batcher: ScriptBatcher
) -> None:
    key = f"t:{uuid.uuid4().hex}"
    waiting = batcher.submit(keys=[key], args=["score", "ok"], within_s=5.0)
    waiting.cancel()
    assert (await batcher(keys=[key], args=["next", "ok"]))[0] == 1  # the cancelled one: no INCR
    assert await redis.get(key) == b"1"
