"""The append path's lock (server/sessions/serial_lock.py)."""

from __future__ import annotations

import asyncio

from server.sessions.serial_lock import SerialLock


async def test_one_holder_at_a_time_in_arrival_order() -> None:
    lock = SerialLock()
    inside = 0
    order: list[int] = []

    async def worker(i: int) -> None:
        nonlocal inside
        async with lock:
            inside += 1
            assert inside == 1
            order.append(i)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(worker(i) for i in range(20)))
    assert order == list(range(20))
    assert not lock.locked()


async def test_a_cancelled_waiter_does_not_keep_the_lock() -> None:
    lock = SerialLock()
    await lock.__aenter__()
    waiting = [asyncio.create_task(lock.__aenter__()) for _ in range(3)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # cancelled while waiting
    await asyncio.sleep(0)
    await lock.__aexit__()  # handed to waiter 1
    waiting[1].cancel()  # cancelled just as it was handed the lock: passes it to waiter 2
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert results[2] is None
    assert lock.locked()  # held by waiter 2
    await lock.__aexit__()
    assert not lock.locked()
    async with lock:
        assert lock.locked()
