"""Write-behind to Postgres: session events and their side records, in batches.

Contract:
- :meth:`EventWriter.submit` queues records and returns a future that resolves once they are
  committed. Client input is acked only after its future resolves; interviewer deltas do not
  wait (write-behind).
- Records are written in submission order, in batches of at most ``max_batch`` records.
  A batch waits at most ``max_delay_s`` once it holds a record submitted as urgent (the
  default: someone may be waiting to ack it), else at most ``lazy_delay_s`` (deltas nobody
  waits for: bigger batches, fewer commits).
- A failed flush (Postgres restarting, say) is retried with capped exponential backoff until
  it succeeds or the writer is closed; nothing submitted is dropped, and the futures wait.
- A batch Postgres refuses (a data error: a value it cannot store) is split in halves, and
  those again, until each refused submission is alone: only its future fails (with the
  error); every other submission of the batch is stored, in order, and resolves. A batch
  is written atomically (one statement or one transaction), so a refused one left nothing.
- The queue is bounded (``max_pending`` records): ``submit`` waits for room, so a Postgres
  outage slows the sessions down instead of growing memory without bound.
- :meth:`close` flushes what is queued (within ``timeout``) and stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from server import metrics
from server.db import TRANSIENT_DB_ERRORS
from server.retry import Backoff, Retrying
from server.sessions.rows import EndingRow, EventRow, InputRow, SnapshotRow, TurnRow
from server.sessions.store import SessionStore, WriteBatch

log = logging.getLogger("mentara.writer")
T = TypeVar("T")


@dataclass
class Records:
    """The rows one logical change adds (see WriteBatch for their shapes)."""

    events: tuple[EventRow, ...] = ()
    inputs: tuple[InputRow, ...] = ()
    turns: tuple[TurnRow, ...] = ()
    snapshots: tuple[SnapshotRow, ...] = ()
    endings: tuple[EndingRow, ...] = ()

    def size(self) -> int:
        return (
            len(self.events)
            + len(self.inputs)
            + len(self.turns)
            + len(self.snapshots)
            + len(self.endings)
        )


class EventWriter:
    def __init__(
        self,
        store: SessionStore,
        *,
        max_batch: int = 500,
        max_delay_s: float = 0.01,
        lazy_delay_s: float = 0.05,
        max_pending: int = 50_000,
        retry_max_s: float = 2.0,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.lazy_delay_s = lazy_delay_s
        self.max_pending = max_pending
        self.retry_max_s = retry_max_s
        self._queue: deque[tuple[Records, asyncio.Future[None], bool]] = deque()
        self._pending = 0
        self._wakeup = asyncio.Event()
        self._urgent = False  # an urgent record is queued
        self._gather: asyncio.Future[None] | None = None  # the batch's wait, while it gathers
        self._gather_deadline = 0.0
        self._room = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.flushes = 0
        self.failures = 0
        self.refused = 0  # submissions Postgres refused (each alone, after splitting)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def submit(self, records: Records, *, urgent: bool = True) -> asyncio.Future[None]:
        """Queue ``records``; the returned future resolves once they are committed. Not
        ``urgent``: nobody waits for the commit soon, so the batch may gather longer."""
        size = max(1, records.size())
        if self._pending + size > self.max_pending:
            async with self._room:
                await self._room.wait_for(lambda: self._pending + size <= self.max_pending)
        return self._queue_records(records, size, urgent)

    def submit_nowait(
        self, records: Records, *, urgent: bool = True
    ) -> asyncio.Future[None] | None:
        """:meth:`submit` when there is room now; None (nothing queued) when there is not."""
        size = max(1, records.size())
        if self._pending + size > self.max_pending:
            return None
        return self._queue_records(records, size, urgent)

    def _queue_records(self, records: Records, size: int, urgent: bool) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((records, future, urgent))
        self._pending += size
        if urgent and not self._urgent:
            self._urgent = True
            self._hurry()
        self._wakeup.set()
        return future

    def _hurry(self) -> None:
        """An urgent record arrived while the batch gathers: end the wait by ``max_delay_s``."""
        gather = self._gather
        if gather is None or gather.done():
            return
        loop = asyncio.get_running_loop()
        if self._gather_deadline > loop.time() + self.max_delay_s:
            loop.call_later(self.max_delay_s, _resolve, gather)

    async def _gather_batch(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.max_delay_s if self._urgent else self.lazy_delay_s
        self._gather = gather = loop.create_future()
        self._gather_deadline = loop.time() + delay
        timer = loop.call_later(delay, _resolve, gather)
        try:
            await gather
        finally:
            timer.cancel()
            self._gather = None

    async def _run(self) -> None:
        while not (self._closing and not self._queue):
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(self._queue) < self.max_batch and not self._closing:
                await self._gather_batch()
            taken: list[Records] = []
            futures: list[asyncio.Future[None]] = []
            count = 0
            while self._queue and count < self.max_batch:
                records, future, _ = self._queue.popleft()
                taken.append(records)
                futures.append(future)
                count += max(1, records.size())
            self._urgent = any(urgent for _, _, urgent in self._queue)
            errors = await self._write_records(taken)
            self._pending -= count
            for future, error in zip(futures, errors, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
            async with self._room:
                self._room.notify_all()

    async def _write_records(self, taken: list[Records]) -> list[Exception | None]:
        """Write ``taken`` as one batch; the error of each submission (None: stored).

        A batch Postgres refuses is split in halves, recursively, so one record it cannot
        store costs about 2*log2(batch) extra writes, and fails alone: the other sessions'
        records in the batch are stored, in their order."""
        error = await self._write_until_done(_merge(taken))
        if error is None:
            return [None] * len(taken)
        if len(taken) == 1:
            # It will be refused again: fail its future (its input is not acked) rather
            # than stall every session behind it.
            self.refused += 1
            log.error("event write refused by Postgres: %r", error, exc_info=error)
            return [error]
        log.warning("event batch of %d refused (%r); splitting it", len(taken), error)
        middle = len(taken) // 2
        return [
            *await self._write_records(taken[:middle]),
            *await self._write_records(taken[middle:]),
        ]

    async def _write_until_done(self, batch: WriteBatch) -> Exception | None:
        """Write the batch, retrying while Postgres is unreachable; a data error is returned."""
        retrying = Retrying(Backoff(base_s=0.05, max_s=self.retry_max_s))
        while True:
            try:
                await self.store.write_batch(batch)
                self.flushes += 1
                metrics.PG_WRITE_BATCHES.inc()
                metrics.PG_WRITE_ROWS.inc(len(batch))
                return None
            except TRANSIENT_DB_ERRORS as exc:
                self.failures += 1
                delay = retrying.next_delay() or self.retry_max_s  # never gives up: no deadline
                log.warning("event write failed (%s); retrying in %.2fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
            except Exception as exc:  # a data error: asyncpg's, or a value it cannot encode
                return exc

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued, then stop; after ``timeout`` stop anyway (logged)."""
        if self._task is None:
            return
        self._closing = True
        self._wakeup.set()
        if self._gather is not None:
            _resolve(self._gather)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.error("event writer closed with %d records unwritten", self._pending)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _merge(taken: list[Records]) -> WriteBatch:
    batch = WriteBatch()
    for records in taken:
        batch.events.extend(records.events)
        batch.inputs.extend(records.inputs)
        batch.turns.extend(records.turns)
        batch.snapshots.extend(records.snapshots)
        batch.endings.extend(records.endings)
    return batch


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def retry_while_unreachable(
    call: Callable[[], Awaitable[T]], *, timeout_s: float = 30.0
) -> T:
    """``call()``, retried with backoff while Postgres is unreachable (a restart), for up to
    ``timeout_s``; then the last error is raised."""
    retrying = Retrying(Backoff(base_s=0.05, max_s=1.0), give_up_after_s=timeout_s)
    while True:
        try:
            return await call()
        except TRANSIENT_DB_ERRORS:
            delay = retrying.next_delay()
            if delay is None:
                raise
            await asyncio.sleep(delay)
