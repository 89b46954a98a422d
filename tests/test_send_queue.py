"""The per-socket outbound queue (server/send_queue.py)."""

from __future__ import annotations

import asyncio

import pytest

from server.send_queue import SendQueue, SendQueueFull


async def test_frames_in_order_batches_and_the_overflow_policy() -> None:
    queue = SendQueue(max_bytes=10)
    queue.put(b"aaaa")
    queue.put(b"bbbb")
    with pytest.raises(SendQueueFull):
        queue.put(b"cccc")  # would pass 10 bytes
    assert len(queue) == 2 and queue.nbytes == 8
    assert await queue.get_batch() == [b"aaaa", b"bbbb"]
    assert len(queue) == 0 and queue.nbytes == 0
    queue.put(b"x" * 50)  # one frame alone may exceed the bound: it is never refused
    assert await queue.get() == b"x" * 50


async def test_an_idle_queue_holds_no_deque_and_wakes_its_reader() -> None:
    queue = SendQueue(max_bytes=100)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert queue._frames is None  # nothing allocated while idle
    queue.put(b"hello")
    assert await getter == b"hello"
    assert queue._frames is None  # emptied: dropped again


async def test_a_paced_sender_waits_for_room_and_close_releases_everyone() -> None:
    queue = SendQueue(max_bytes=10)
    queue.put(b"123456789")
    paced = asyncio.create_task(queue.wait_for_room(4))
    await asyncio.sleep(0.01)
    assert not paced.done()
    assert await queue.get() == b"123456789"  # drained below half: room
    await asyncio.wait_for(paced, 1)

    queue.put(b"123456789")
    paced = asyncio.create_task(queue.wait_for_room(4))
    reader_done = asyncio.create_task(queue.get_batch())
    await asyncio.sleep(0.01)
    queue.close()
    await asyncio.wait_for(paced, 1)
    assert await reader_done == [b"123456789"]
    assert await queue.get() is None  # closed and drained
    queue.put(b"late")  # ignored once closed
    assert len(queue) == 0
