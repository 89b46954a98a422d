"""One interviewer turn spoken on the process's ticks: no task wakes per session per tick.

:class:`TickSpeech` subscribes the turn to the process's :class:`~server.interviewer.
coalesce.WindowTicker`. On each tick, in the one pass that serves every speaking session of
the process, the turn takes the text that came due (the offline script's
:meth:`~server.interviewer.coalesce.TickedSource.take_due`, or what the model's stream
gathered since the last tick) and hands it to ``SessionLog.append_soon`` as one
``interviewer.delta``. Every session's delta of that tick therefore goes to Redis in one
pipeline, is encoded once and written to this worker's sockets when Redis answers (in the
pipeline's completion, not in a task per session), and is queued for Postgres in the same
pass. The engine's task sleeps for the whole turn and wakes once at its end; a model's
stream still needs its reader (the pump task), which wakes per network read, not per tick.

Contract of :meth:`TickSpeech.run` (the coalescer's, :class:`~server.interviewer.coalesce.
Coalescer`): the concatenation of :attr:`TickSpeech.delivered` is exactly the text appended,
in order, which is the text the source produced up to where it ended, failed or was
stopped, minus what was still gathering when ``stop`` was set (never delivered, so not part
of the turn). One delta per session is in flight at a time: while Redis has not answered,
text keeps gathering and the next tick takes all of it. ``run`` returns once the source
ended and everything taken was appended, or once ``stop`` is set and the delta in flight (if
any) stands. It raises the source's error after the text before it was appended (not when
stopped), and the log's error (``LeaseLost``, Redis gone) at once. Bounds: the pump waits
when ``max_buffered`` characters are gathering (back-pressure on the model's stream).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from protocol.messages import InterviewerDelta, SessionEvent
from server.interviewer.coalesce import TickedSource, ticker_for
from server.interviewer.provider import StreamItem, TextDelta, TurnFinished

__all__ = ["SoonLog", "TickSpeech"]


class SoonLog(Protocol):
    """What the speech needs of the session's log (``server.sessions.log.SessionLog``)."""

    def append_soon(
        self, event: SessionEvent, done: Callable[[object | None, BaseException | None], None]
    ) -> bool: ...


class TickSpeech:
    def __init__(
        self,
        source: AsyncIterator[StreamItem],
        *,
        log: SoonLog,
        turn_id: str,
        stop: asyncio.Event,
        window_s: float,
        max_buffered: int = 64 * 1024,
    ) -> None:
        self.source = source
        self.log = log
        self.turn_id = turn_id
        self.stop = stop
        self.window_s = window_s
        self.max_buffered = max_buffered
        self.delivered: list[str] = []
        self.finished: TurnFinished | None = None
        self._ticked = source if isinstance(source, TickedSource) else None
        self._parts: list[str] = []  # gathered, not yet taken
        self._size = 0
        self._pump_ended = self._ticked is not None
        self._source_error: BaseException | None = None
        self._log_error: BaseException | None = None
        self._in_flight: str | None = None
        self._done: asyncio.Future[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        ticker = ticker_for(loop, self.window_s)
        handle = ticker.subscribe(self._on_tick)
        pump = None if self._ticked is not None else loop.create_task(self._pump(), name="llm-pump")
        watch = loop.create_task(self._watch_stop(), name="llm-stop")
        try:
            self._on_tick()  # the script's first words are due at once
            await self._done
        finally:
            ticker.unsubscribe(handle)
            tasks = [t for t in (pump, watch) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            aclose = getattr(self.source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        if self._log_error is not None:
            raise self._log_error
        if self._source_error is not None and not self.stop.is_set():
            raise self._source_error

    # -- on the tick -----------------------------------------------------------------------

    def _on_tick(self) -> None:
        if self._done is None or self._done.done() or self._in_flight is not None:
            return
        if self.stop.is_set():
            self._finish()
            return
        if self._ticked is not None:
            due = self._ticked.take_due()
            if due:
                self._parts.append(due)
                self._size += len(due)
        if self._parts:
            text = "".join(self._parts)
            delta = InterviewerDelta(turn_id=self.turn_id, text=text, seq=0, ts=0)
            self._in_flight = text
            if not self.log.append_soon(delta, self._appended):
                self._in_flight = None
                return  # another append holds the log: this text waits for the next tick
            if self._done.done():
                return  # the log failed at once (_appended ran)
            self._parts.clear()
            self._size = 0
            self._drained.set()
            return
        self._finish_if_ended()

    def _appended(self, logged: object | None, error: BaseException | None) -> None:
        text, self._in_flight = self._in_flight, None
        if error is not None:
            self._log_error = error
            self._finish()
            return
        if text is not None:
            self.delivered.append(text)
        if self.stop.is_set():
            self._finish()
        elif not self._parts:
            self._finish_if_ended()

    def _finish_if_ended(self) -> None:
        if self._ticked is not None:
            if self._ticked.finished is not None:
                self.finished = self._ticked.finished
                self._finish()
        elif self._pump_ended:
            self._finish()

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # -- beside the tick -------------------------------------------------------------------

    async def _pump(self) -> None:
        try:
            async for item in self.source:
                if isinstance(item, TextDelta):
                    while self._size >= self.max_buffered:
                        self._drained.clear()
                        await self._drained.wait()
                    self._parts.append(item.text)
                    self._size += len(item.text)
                elif isinstance(item, TurnFinished):
                    self.finished = item
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # raised by run() after the text before it
            self._source_error = exc
        finally:
            self._pump_ended = True
            if self._in_flight is None and not self._parts:
                self._finish()  # nothing left to append: the turn ends now, not next tick

    async def _watch_stop(self) -> None:
        await self.stop.wait()
        if self._in_flight is None:
            self._finish()
