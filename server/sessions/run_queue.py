"""The worker's code-run slots, shared fairly between users.

:class:`FairRunQueue` hands out ``slots`` places; a run waits for one in its user's FIFO.
When a place frees, it goes to the waiting user served least recently (a user never
served, or not for longest, first; users never served in the order they started waiting).
That is round-robin by user, with newcomers at the head of the round: however many runs one
user keeps queued, another user's run waits at most for one place to free, i.e. one run
(when every place is held by a run of a different user, the earliest of them to finish).

Bounds: a user has at most as many waiting runs as the callers allow (``CodeRunService``
admits one per session); the memory of who was served when keeps at most ``memory`` users
that have nothing waiting (the least recently served forgotten first: forgetting one only
moves that user where it already nearly was, to the head).

Cancelling a waiting ``acquire`` withdraws it; a place granted to a caller that was
cancelled meanwhile is handed on. Use :meth:`slot` (an async context manager) so the place
is always given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import OrderedDict, deque
from collections.abc import AsyncIterator


class FairRunQueue:
    def __init__(self, slots: int, *, memory: int = 4096) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self.memory = memory
        self._free = slots
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}  # users in arrival order
        self._served: OrderedDict[str, int] = OrderedDict()  # user -> grant number, oldest first
        self._grants = itertools.count()

    @property
    def waiting(self) -> int:
        """Runs waiting for a place."""
        return sum(len(q) for q in self._waiting.values())

    @property
    def running(self) -> int:
        """Places held now."""
        return self.slots - self._free

    @contextlib.asynccontextmanager
    async def slot(self, user_id: str) -> AsyncIterator[None]:
        """Hold one place for ``user_id`` for the duration of the block."""
        await self.acquire(user_id)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, user_id: str) -> None:
        """Wait for a place (see the module docstring for the order). Safe to cancel."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
            self._mark_served(user_id)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(user_id, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted as we were cancelled: hand the place on
            else:
                self._withdraw(user_id, future)
            raise

    def release(self) -> None:
        """Give a place back; the next waiting run (if any) gets it at once."""
        self._free += 1
        while self._free > 0 and self._waiting:
            user_id = self._next_user()
            queue = self._waiting[user_id]
            future = queue.popleft()
            if not queue:
                del self._waiting[user_id]
            if future.done():
                continue  # cancelled while waiting
            self._free -= 1
            self._mark_served(user_id)
            future.set_result(None)

    def _next_user(self) -> str:
        """The waiting user served least recently; never-served users first, in arrival order."""
        best: str | None = None
        best_grant = -1
        for user_id in self._waiting:
            grant = self._served.get(user_id)
            if grant is None:
                return user_id
            if best is None or grant < best_grant:
                best, best_grant = user_id, grant
        assert best is not None
        return best

    def _mark_served(self, user_id: str) -> None:
        self._served[user_id] = next(self._grants)
        self._served.move_to_end(user_id)
        if len(self._served) > self.memory:
            for old in list(self._served):
                if len(self._served) <= self.memory:
                    break
                if old not in self._waiting:
                    del self._served[old]

    def _withdraw(self, user_id: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(user_id)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(future)
        if not queue:
            del self._waiting[user_id]
