"""Token coalescing: many small model deltas become fewer ``interviewer.delta`` events.

:func:`coalesce_deltas` reads a provider stream through a bounded queue filled by a pump
task, and yields the text gathered during each ``window_s`` (Ably rolls up at 40 ms; a person
reads no faster). The concatenation of what it yields is exactly the text the provider
produced up to the point where the stream ended, failed or was stopped, minus whatever was
still gathering when ``stop`` was set (that text was never delivered, so it is not part of
the turn).

The terminal item of the provider stream (``TurnFinished``) is stored in
:attr:`Coalescer.finished`; a provider exception is re-raised after the text gathered before
it has been yielded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from server.interviewer.provider import StreamItem, TextDelta, TurnFinished

_END = object()


class Coalescer:
    def __init__(
        self,
        source: AsyncIterator[StreamItem],
        *,
        window_s: float,
        stop: asyncio.Event,
        queue_size: int = 1024,
    ) -> None:
        self.source = source
        self.window_s = window_s
        self.stop = stop
        self.finished: TurnFinished | None = None
        self.error: BaseException | None = None
        self._queue: asyncio.Queue[object] = asyncio.Queue(queue_size)

    async def _pump(self) -> None:
        try:
            async for item in self.source:
                await self._queue.put(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, after the text before it
            self.error = exc
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_END)

    async def _next(self, timeout: float | None) -> object:
        """The next queued item, or None on timeout or stop."""
        getter = asyncio.ensure_future(self._queue.get())
        stopper = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait(
                {getter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            getter.cancel()
            raise
        finally:
            stopper.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()  # taken from the queue: never dropped
        getter.cancel()
        return None

    async def deltas(self) -> AsyncIterator[str]:
        pump = asyncio.create_task(self._pump(), name="llm-pump")
        loop = asyncio.get_running_loop()
        try:
            ended = False
            while not ended and not self.stop.is_set():
                item = await self._next(None)
                if item is None:
                    break  # stopped
                parts: list[str] = []
                deadline = loop.time() + self.window_s
                while True:
                    if item is _END:
                        ended = True
                        break
                    if isinstance(item, TextDelta):
                        parts.append(item.text)
                    elif isinstance(item, TurnFinished):
                        self.finished = item
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    item = await self._next(remaining)
                    if item is None:
                        break
                if self.stop.is_set():
                    break  # the gathered text was never delivered: drop it
                if parts:
                    yield "".join(parts)
            if self.error is not None and not self.stop.is_set():
                raise self.error
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            aclose = getattr(self.source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
