"""The append path's lock: one append of a session at a time, in arrival order."""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["SerialLock"]


class SerialLock:
    """A FIFO async lock whose uncontended acquire is a flag flip.

    ``asyncio.Lock`` scans its waiters on every acquire once it has ever been contended; the
    append path takes this lock once per event. Contract: one holder at a time, waiters served
    in arrival order, ownership handed straight to the next waiter on release, and a waiter
    cancelled while the lock is handed to it passes it on.
    """

    __slots__ = ("_busy", "_waiters")

    def __init__(self) -> None:
        self._busy = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self._busy

    def try_acquire(self) -> bool:
        """Take the lock if it is free (True), without waiting; :meth:`release` gives it back."""
        if self._busy:
            return False
        self._busy = True
        return True

    def release(self) -> None:
        self._release()

    async def __aenter__(self) -> None:
        if not self._busy:
            self._busy = True
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # it was handed to us as we were cancelled: pass it on
            raise

    async def __aexit__(self, *_: object) -> None:
        self._release()

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._busy = False
