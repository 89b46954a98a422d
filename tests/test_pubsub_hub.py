"""The worker's shared pub/sub connection (server/hub/pubsub.py), on a real Redis.

A session's channel is subscribed while the worker has sockets on it and unsubscribed when
the last one leaves; a socket attaching and another leaving can overlap, so a subscribe may
still wait for Redis's confirmation when the last reference is dropped. It must then return
at once (it used to wait out its 5 s timeout, holding up whatever awaited it: once, the lease
keeper, so that every lease of the worker expired), and no reference may leak.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from server.hub import pubsub as pubsub_module
from server.hub.pubsub import PubSubHub


async def _nothing_to_refill() -> None:
    return None


def _new_channel() -> str:
    return f"t:{uuid.uuid4().hex}"


@pytest.fixture
async def hub(redis: aioredis.Redis) -> AsyncIterator[tuple[PubSubHub, list[tuple[str, bytes]]]]:
    """A started hub, connected (one channel subscribed and confirmed), and what it received."""
    received: list[tuple[str, bytes]] = []
    hub = PubSubHub(
        redis, lambda channel, data: received.append((channel, data)), _nothing_to_refill
    )
    await hub.start()
    try:
        await hub.subscribe(_new_channel())
        yield hub, received
    finally:
        await hub.close()


async def test_a_subscribe_overtaken_by_the_last_unsubscribe_returns_at_once(
    hub: tuple[PubSubHub, list[tuple[str, bytes]]], redis: aioredis.Redis
) -> None:
    ps, received = hub
    channel = _new_channel()
    loop = asyncio.get_running_loop()
    started = loop.time()
    pending = asyncio.create_task(ps.subscribe(channel))
    await asyncio.sleep(0)  # the SUBSCRIBE is on its way, its confirmation not read yet
    assert ps.refs.get(channel) == 1
    await ps.unsubscribe(channel)
    await asyncio.wait_for(pending, 1.0)
    assert loop.time() - started < 1.0
    assert channel not in ps.refs

    # The channel works normally afterwards: subscribed, confirmed, delivered.
    await asyncio.wait_for(ps.subscribe(channel), 2.0)
    await redis.publish(channel, b"hello")
    for _ in range(100):
        if (channel, b"hello") in received:
            break
        await asyncio.sleep(0.02)
    assert (channel, b"hello") in received
    await ps.unsubscribe(channel)
    assert channel not in ps.refs


async def test_a_subscribe_that_times_out_gives_its_reference_back(
    hub: tuple[PubSubHub, list[tuple[str, bytes]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ps, _ = hub
    channel = _new_channel()
    monkeypatch.setattr(pubsub_module, "_CONFIRM_TIMEOUT_S", 0.0)  # no confirmation in time
    with pytest.raises(TimeoutError):
        await ps.subscribe(channel)
    assert channel not in ps.refs
    monkeypatch.setattr(pubsub_module, "_CONFIRM_TIMEOUT_S", 5.0)
    await asyncio.wait_for(ps.subscribe(channel), 2.0)  # not stuck behind the lost one
    assert ps.refs[channel] == 1


async def test_a_channel_asked_for_while_the_hub_connects_is_subscribed(
    redis: aioredis.Redis,
) -> None:
    """``subscribe`` does not send while the hub is (re)connecting, and the reader sends the
    channels it knew when it began: one asked for in between used to wait for ever."""
    hub = PubSubHub(redis, lambda channel, data: None, _nothing_to_refill)
    await hub.start()
    try:
        await asyncio.sleep(0)  # the reader has begun connecting (nothing to subscribe yet)
        assert not hub._connected.is_set()
        await asyncio.wait_for(hub.subscribe(_new_channel()), 2.0)
    finally:
        await hub.close()
