"""A socket's outbound queue, bounded in bytes.

Overflow policy (ARCHITECTURE.md invariant 5): :meth:`SendQueue.put` never waits. When the
frames waiting for this socket would exceed ``max_bytes``, it raises :class:`SendQueueFull`,
and the owner closes the socket with 4003 (slow consumer: reconnect and resume). A slow socket
therefore costs the session nothing but the bytes already queued for it.

Memory: most sockets are idle and most frames are written without queueing (see
``ClientSocket.send_encoded``), so the queue allocates nothing until used: its deque and the
futures its waiters sleep on are created on demand (an idle socket pays a few pointers).
"""

from __future__ import annotations

import asyncio
from collections import deque

Payload = str | bytes


class SendQueueFull(Exception):
    """The socket fell too far behind; close it with 4003."""


def _wake(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


class SendQueue:
    __slots__ = ("_frames", "_getter", "_room_waiters", "closed", "max_bytes", "nbytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.closed = False
        self._frames: deque[Payload] | None = None
        self._getter: asyncio.Future[None] | None = None  # the reader waiting for a frame
        self._room_waiters: list[asyncio.Future[None]] | None = None

    def put(self, payload: Payload) -> None:
        """Queue a frame; raise SendQueueFull rather than grow past ``max_bytes``."""
        if self.closed:
            return
        size = len(payload)
        frames = self._frames
        if frames is None:
            frames = self._frames = deque()
        if self.nbytes + size > self.max_bytes and frames:
            raise SendQueueFull(f"{self.nbytes + size} bytes queued, limit {self.max_bytes}")
        frames.append(payload)
        self.nbytes += size
        _wake(self._getter)

    async def get(self) -> Payload | None:
        """The next frame, waiting for one; None once the queue is closed and drained."""
        while not self._frames:
            if self.closed:
                return None
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        payload = self._frames.popleft()
        self.nbytes -= len(payload)
        self._made_room()
        if not self._frames:
            self._frames = None  # most sockets queue rarely: keep no empty deque
        return payload

    async def get_batch(self, limit: int = 64) -> list[Payload]:
        """Every frame waiting (up to ``limit``), waiting for at least one; [] once the queue
        is closed and drained."""
        first = await self.get()
        if first is None:
            return []
        batch = [first]
        frames = self._frames
        while frames and len(batch) < limit:
            payload = frames.popleft()
            self.nbytes -= len(payload)
            batch.append(payload)
        self._made_room()
        if not frames:
            self._frames = None
        return batch

    def _made_room(self) -> None:
        if self._room_waiters and self.nbytes <= self.max_bytes // 2:
            waiters, self._room_waiters = self._room_waiters, None
            for waiter in waiters:
                _wake(waiter)

    async def wait_for_room(self, size: int) -> None:
        """Wait until ``size`` more bytes fit (for paced senders such as a replay, which must
        not trip the overflow policy meant for live events)."""
        while self._frames and self.nbytes + size > self.max_bytes // 2 and not self.closed:
            waiter = asyncio.get_running_loop().create_future()
            if self._room_waiters is None:
                self._room_waiters = []
            self._room_waiters.append(waiter)
            await waiter

    def close(self) -> None:
        """No more frames will be queued; ``get`` drains what is there, then returns None."""
        self.closed = True
        _wake(self._getter)
        waiters, self._room_waiters = self._room_waiters or [], None
        for waiter in waiters:
            _wake(waiter)

    def __len__(self) -> int:
        return len(self._frames) if self._frames else 0
