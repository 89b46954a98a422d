"""FairRunQueue: the worker's run places, round-robin by user, newcomers first."""

from __future__ import annotations

import asyncio

import pytest

from server.sessions.run_queue import FairRunQueue


async def _queue_up(queue: FairRunQueue, order: list[str], user: str, tag: str) -> None:
    await queue.acquire(user)
    order.append(tag)


async def test_a_backlog_delays_another_user_by_one_run_at_most() -> None:
    queue = FairRunQueue(1)
    order: list[str] = []
    await queue.acquire("hostile")  # running
    tasks = [asyncio.create_task(_queue_up(queue, order, "hostile", f"h{i}")) for i in range(5)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(_queue_up(queue, order, "candidate", "c")))
    tasks.append(asyncio.create_task(_queue_up(queue, order, "other", "o")))
    await asyncio.sleep(0)
    assert queue.waiting == 7
    for _ in range(7):
        queue.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    # Served least recently first: the two newcomers, then the backlog in its order.
    assert order == ["c", "o", "h0", "h1", "h2", "h3", "h4"]


async def test_round_robin_between_backlogged_users() -> None:
    queue = FairRunQueue(1)
    order: list[str] = []
    await queue.acquire("x")
    tasks = [
        asyncio.create_task(_queue_up(queue, order, user, f"{user}{i}"))
        for i in range(3)
        for user in ("a", "b")
    ]
    await asyncio.sleep(0)
    for _ in range(6):
        queue.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]


async def test_cancelled_waiters_withdraw_and_granted_places_are_handed_on() -> None:
    queue = FairRunQueue(1)
    await queue.acquire("a")
    gone = asyncio.create_task(queue.acquire("b"))
    stays = asyncio.create_task(queue.acquire("c"))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert queue.waiting == 1
    queue.release()
    await stays
    assert queue.running == 1
    # Granted and cancelled in the same tick: the place goes to the next waiter.
    late = asyncio.create_task(queue.acquire("d"))
    after = asyncio.create_task(queue.acquire("e"))
    await asyncio.sleep(0)
    queue.release()
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    await after
    assert queue.running == 1 and queue.waiting == 0
    queue.release()
    assert queue.running == 0


async def test_the_memory_of_who_was_served_is_bounded() -> None:
    queue = FairRunQueue(2, memory=10)
    for i in range(100):
        async with queue.slot(f"user-{i}"):
            pass
    assert len(queue._served) <= 10
    assert queue.running == 0
