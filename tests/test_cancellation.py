"""A task cancelled while it talks to Redis stops (server/hub/cancel_safe.py).

Python 3.11's ``asyncio.wait_for`` returns the result, and drops the cancellation, when the
cancel lands in the step between its inner call finishing and its caller resuming. redis-py
sends every command through it (its default ``socket_timeout`` is 5 s), so about a third of
the cancellations that met a Redis call were lost: the cancelled task ran on. A CI run saw it
as a server whose shutdown never ended (its lease keeper, cancelled mid-renewal, went back to
sleep and ``close()`` waited for it forever); a turn cut short could run on the same way.
"""

from __future__ import annotations

import asyncio
import random

from server.hub.redis_client import connect
from tests.support import Services

ROUNDS = 300


async def test_a_task_cancelled_while_it_calls_redis_always_stops(services: Services) -> None:
    client = connect(services.redis_url)
    rng = random.Random(7)
    ran_on = 0
    try:

        async def keep_calling() -> None:
            while True:
                await client.get("mentara-test:cancellation")

        for _ in range(ROUNDS):
            task = asyncio.create_task(keep_calling())
            for _ in range(rng.randint(1, 12)):  # land the cancel at every point of a call
                await asyncio.sleep(0)
            task.cancel()
            done, _ = await asyncio.wait(
                {task}, timeout=0.2
            )  # a loopback GET takes well under 1 ms
            if not done:
                ran_on += 1
                while not task.done():
                    task.cancel()
                    await asyncio.wait({task}, timeout=0.1)
            assert task.cancelled()
    finally:
        await client.aclose()
    assert ran_on == 0, f"{ran_on} of {ROUNDS} cancelled tasks ran on"


async def test_wait_for_still_times_out_and_still_cancels_its_inner_call() -> None:
    inner_cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            inner_cancelled.set()
            raise

    try:
        await asyncio.wait_for(slow(), 0.05)
    except TimeoutError:
        pass
    else:
        raise AssertionError("no timeout")
    assert inner_cancelled.is_set()
    assert await asyncio.wait_for(asyncio.sleep(0, "done"), 1) == "done"
