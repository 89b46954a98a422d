"""Token coalescing: the process's ticks, on which a model's small deltas become fewer
``interviewer.delta`` events (Ably rolls up at 40 ms; a person reads no faster).

Windows are the process's, not the session's: a :class:`WindowTicker` ends every window of
every session at once, on the boundaries of ``window_s`` (so text waits at most ``window_s``,
about half of it on average), and one timer serves every speaking session instead of one per
session per window. What a turn does on each tick is
:class:`~server.interviewer.tick_speech.TickSpeech`'s: every session's due text appended in
one pass, one Redis pipeline and one Postgres batch for all of them. A source that can say
at any moment what text is due (:class:`TickedSource`, the offline script) is read on the
ticks directly, with no reader task.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from server.interviewer.provider import TurnFinished

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
