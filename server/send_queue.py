"""A socket's outbound queue, bounded in bytes.

Overflow policy (ARCHITECTURE.md invariant 5): :meth:`SendQueue.put` never waits. When the
frames waiting for this socket would exceed ``max_bytes``, it raises :class:`SendQueueFull`,
and the owner closes the socket with 4003 (slow consumer: reconnect and resume). A slow socket
therefore costs the session nothing but the bytes already queued for it.
"""

from __future__ import annotations

import asyncio
from collections import deque

Payload = str | bytes


class SendQueueFull(Exception):
    """The socket fell too far behind; close it with 4003."""


class SendQueue:
    __slots__ = ("_frames", "_ready", "_room", "closed", "max_bytes", "nbytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.closed = False
        self._frames: deque[Payload] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def put(self, payload: Payload) -> None:
        """Queue a frame; raise SendQueueFull rather than grow past ``max_bytes``."""
        if self.closed:
            return
        size = len(payload)
        if self.nbytes + size > self.max_bytes and self._frames:
            raise SendQueueFull(f"{self.nbytes + size} bytes queued, limit {self.max_bytes}")
        self._frames.append(payload)
        self.nbytes += size
        self._ready.set()

    async def get(self) -> Payload | None:
        """The next frame, waiting for one; None once the queue is closed and drained."""
        while not self._frames:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        payload = self._frames.popleft()
        self.nbytes -= len(payload)
        if self.nbytes <= self.max_bytes // 2:
            self._room.set()
        return payload

    async def get_batch(self, limit: int = 64) -> list[Payload]:
        """Every frame waiting (up to ``limit``), waiting for at least one; [] once the queue
        is closed and drained."""
        first = await self.get()
        if first is None:
            return []
        batch = [first]
        while self._frames and len(batch) < limit:
            payload = self._frames.popleft()
            self.nbytes -= len(payload)
            batch.append(payload)
        if self.nbytes <= self.max_bytes // 2:
            self._room.set()
        return batch

    async def wait_for_room(self, size: int) -> None:
        """Wait until ``size`` more bytes fit (for paced senders such as a replay, which must
        not trip the overflow policy meant for live events)."""
        while self._frames and self.nbytes + size > self.max_bytes // 2 and not self.closed:
            self._room.clear()
            await self._room.wait()

    def close(self) -> None:
        """No more frames will be queued; ``get`` drains what is there, then returns None."""
        self.closed = True
        self._ready.set()
        self._room.set()

    def __len__(self) -> int:
        return len(self._frames)
