"""Token coalescing: many small model deltas become fewer ``interviewer.delta`` events.

:meth:`Coalescer.deltas` reads a provider stream through a pump task and yields the text
gathered during each window (Ably rolls up at 40 ms; a person reads no faster). The
concatenation of what it yields is exactly the text the provider produced up to the point
where the stream ended, failed or was stopped, minus whatever was still gathering when
``stop`` was set (that text was never delivered, so it is not part of the turn).

Windows are the process's, not the session's: a :class:`WindowTicker` ends every window of
every session at once, on the boundaries of ``window_s`` (so text waits at most ``window_s``,
about half of it on average). All sessions' deltas of one window are then appended in the
same turn of the event loop: one Redis pipeline and one Postgres batch carry them together,
and one timer serves every speaking session instead of one timer per session per window.

Cost: the pump appends each token to a buffer; the consumer wakes once per window (not once
per token).

Bounds: the buffer holds at most one window of text, plus ``max_buffered`` characters; past
that the pump waits for the consumer (back-pressure on the model stream).

The terminal item of the provider stream (``TurnFinished``) is stored in
:attr:`Coalescer.finished`; a provider exception is re-raised after the text gathered before
it has been yielded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

from server.interviewer.provider import StreamItem, TextDelta, TurnFinished

log = logging.getLogger(__name__)


class WindowTicker:
    """One timer that ends the coalescing windows of every session of the process.

    Contract: a future from :meth:`next_tick` resolves at the next multiple of ``window_s``
    of the loop's clock (within the loop's timer resolution); a callback given to
    :meth:`subscribe` is called on every tick until :meth:`unsubscribe` (synchronously, all of
    them in one pass, before the futures resolve; one that raises is logged and dropped).
    The timer runs only while someone waits or subscribes.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, window_s: float) -> None:
        self.loop = loop
        self.window_s = window_s
        self._waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._index = 0  # the boundary the timer is set for, in windows since the clock's 0
        self._last_index = 0  # the boundary last served
        self._subscribers: dict[int, Callable[[], None]] = {}
        self.ticks = 0

    def subscribe(self, callback: Callable[[], None]) -> int:
        """Call ``callback`` on every tick from the next on; returns the handle to
        :meth:`unsubscribe` with."""
        handle = next(_handles)
        self._subscribers[handle] = callback
        self._arm()
        return handle

    def unsubscribe(self, handle: int) -> None:
        self._subscribers.pop(handle, None)

    def next_tick(self) -> asyncio.Future[None]:
        future = self.loop.create_future()
        self._waiters.append(future)
        self._arm()
        return future

    def _arm(self) -> None:
        if self._timer is None:
            # Boundaries are counted in whole windows (no float drift between them). The
            # loop's timers may fire up to a millisecond early: a wait begun by the tick
            # itself is for the next boundary, not the one just served.
            index = max(int(self.loop.time() // self.window_s) + 1, self._last_index + 1)
            self._index = index
            self._timer = self.loop.call_at(index * self.window_s, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._last_index = self._index
        self.ticks += 1
        for handle, callback in list(self._subscribers.items()):
            try:
                callback()
            except Exception:
                log.exception("a tick subscriber failed; it is dropped")
                self._subscribers.pop(handle, None)
        if self._subscribers:
            self._arm()
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)


_tickers: dict[tuple[int, float], WindowTicker] = {}
_handles = itertools.count(1)


def ticker_for(loop: asyncio.AbstractEventLoop, window_s: float) -> WindowTicker:
    """The process's ticker for this loop and window (one per server in practice)."""
    key = (id(loop), window_s)
    ticker = _tickers.get(key)
    if ticker is None or ticker.loop is not loop:
        ticker = _tickers[key] = WindowTicker(loop, window_s)
    return ticker


@runtime_checkable
class TickedSource(Protocol):
    """A stream that can tell at any moment what text is due (the offline provider's script,
    :class:`~server.interviewer.offline_provider.TickedTurn`): the coalescer takes it on its
    ticks directly, with no pump task and no wake-up per token."""

    @property
    def finished(self) -> TurnFinished | None: ...

    def take_due(self) -> str: ...


class Coalescer:
    def __init__(
        self,
        source: AsyncIterator[StreamItem],
        *,
        window_s: float,
        stop: asyncio.Event,
        max_buffered: int = 64 * 1024,
    ) -> None:
        self.source = source
        self.window_s = window_s
        self.stop = stop
        self.max_buffered = max_buffered
        self.finished: TurnFinished | None = None
        self.error: BaseException | None = None
        self._parts: list[str] = []
        self._size = 0
        self._ended = False
        # The consumer sleeps on one future: woken by text arriving (only while it waits for
        # the first text of a window), by the stream ending, by ``stop``, or by its timer.
        self._waiter: asyncio.Future[None] | None = None
        self._wake_on_text = False
        self._drained = asyncio.Event()  # set when the consumer took the buffer
        self._drained.set()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _sleep(self, *, until_tick: bool) -> None:
        """Sleep until woken (see ``_waiter``), or until the window's end (``until_tick``)."""
        loop = asyncio.get_running_loop()
        if until_tick:
            # The ticker's future is this sleep's own: a stop resolves it early, and a tick
            # cannot reach a later sleep.
            self._waiter = ticker_for(loop, self.window_s).next_tick()
        else:
            self._waiter = loop.create_future()
            self._wake_on_text = True
        try:
            await self._waiter
        finally:
            self._waiter = None
            self._wake_on_text = False

    async def _pump(self) -> None:
        try:
            async for item in self.source:
                if isinstance(item, TextDelta):
                    while self._size >= self.max_buffered:
                        self._drained.clear()
                        await self._drained.wait()
                    self._parts.append(item.text)
                    self._size += len(item.text)
                    if self._wake_on_text:
                        self._wake()
                elif isinstance(item, TurnFinished):
                    self.finished = item
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, after the text before it
            self.error = exc
        finally:
            self._ended = True
            self._wake()

    async def _watch_stop(self) -> None:
        await self.stop.wait()
        self._wake()

    def _take(self) -> str:
        text = "".join(self._parts)
        self._parts.clear()
        self._size = 0
        self._drained.set()
        return text

    async def _ticked_deltas(self, source: TickedSource) -> AsyncIterator[str]:
        """:meth:`deltas` for a :class:`TickedSource`: the due text is taken on each tick, so
        nothing gathers between ticks and a stop drops nothing already taken."""
        watch = asyncio.create_task(self._watch_stop(), name="llm-stop")
        try:
            while not self.stop.is_set():
                text = source.take_due()
                if text:
                    yield text
                    if self.stop.is_set():
                        break
                finished = source.finished
                if finished is not None:
                    self.finished = finished
                    break
                await self._sleep(until_tick=True)
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    async def deltas(self) -> AsyncIterator[str]:
        if isinstance(self.source, TickedSource):
            async for text in self._ticked_deltas(self.source):
                yield text
            return
        pump = asyncio.create_task(self._pump(), name="llm-pump")
        watch = asyncio.create_task(self._watch_stop(), name="llm-stop")
        try:
            while not self.stop.is_set():
                # Wait for the first text of a window, then let the window fill.
                if not self._parts and not self._ended:
                    await self._sleep(until_tick=False)
                    continue
                if not self._ended:
                    await self._sleep(until_tick=True)
                if self.stop.is_set():
                    break  # the gathered text was never delivered: drop it
                ended = self._ended
                text = self._take()
                if text:
                    yield text
                if ended and not self._parts:
                    break
            if self.error is not None and not self.stop.is_set():
                raise self.error
        finally:
            for task in (pump, watch):
                task.cancel()
            await asyncio.gather(pump, watch, return_exceptions=True)
            aclose = getattr(self.source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
