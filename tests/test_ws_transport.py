"""The transport's own frame writing (the fast path under ``ClientSocket``)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from server.ws_transport import _FIN_BINARY, _FIN_TEXT, ReceiveQueue, WritableFlag, _frame_header


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("text", [True, False])
def test_direct_frame_header_parses_as_websockets_frame(length: int, text: bool) -> None:
    """The transport's own frame header (the fast path of server writes) is what websockets'
    client-side parser reads: same opcode, FIN, payload, at every length encoding."""
    payload = (
        (b"x" * length) if text else bytes(range(256)) * (length // 256) + b"y" * (length % 256)
    )
    reader = StreamReader()
    reader.feed_data(_frame_header(_FIN_TEXT if text else _FIN_BINARY, length) + payload)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
        raise AssertionError("parser wants more data")
    except StopIteration as done:
        frame = done.value
    assert frame.fin
    assert frame.opcode is (Opcode.TEXT if text else Opcode.BINARY)
    assert frame.data == payload


async def test_the_receive_queue_hands_items_over_in_order_and_wakes_its_reader() -> None:
    queue = ReceiveQueue()
    assert queue.empty() and queue.qsize() == 0
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()
    queue.put_nowait({"type": "websocket.connect"})
    queue.put_nowait({"type": "websocket.receive", "text": "a"})
    assert await reader == {"type": "websocket.connect"}
    assert queue.qsize() == 1
    assert await queue.get() == {"type": "websocket.receive", "text": "a"}
    cancelled = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await cancelled
    queue.put_nowait({"type": "websocket.disconnect"})  # a cancelled reader took nothing
    assert await queue.get() == {"type": "websocket.disconnect"}


async def test_the_writable_flag_releases_every_waiter_when_set() -> None:
    flag = WritableFlag(True)
    assert flag.is_set() and await flag.wait()
    flag.clear()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    gone = waiters.pop()
    gone.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await gone
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True]
    assert flag.is_set()
