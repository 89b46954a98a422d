"""The offline interviewer: speaks the question's script at a model's pace, with no API key.

It streams ``request.script`` (the engine picks the scripted text for each turn) in
token-sized pieces at ``tokens_per_s`` (default 40, about what a person hears from a fast
model), so the product, its tests and the load harness behave as they do with Claude.

With ``tick_s`` (the server passes its coalescing window), the provider wakes on the
process's coalescing ticks (:class:`~server.interviewer.coalesce.WindowTicker`) and yields
the tokens due by then in one piece, as a model's stream delivers a few tokens per chunk:
the same words at the same average rate, and one timer for every session of the process
instead of one per token per session (which the coalescer would merge anyway).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Literal

from server.interviewer.coalesce import ticker_for
from server.interviewer.provider import StreamItem, TextDelta, TurnFinished, TurnRequest

# A "token": a word with its leading space, or a run of punctuation; about 4 characters.
_TOKEN = re.compile(r"\s*\S{1,6}|\s+")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into token-sized pieces whose concatenation is exactly ``text``."""
    return _TOKEN.findall(text)


class OfflineProvider:
    name = "offline"

    def __init__(self, *, tokens_per_s: float = 40.0, tick_s: float | None = None) -> None:
        self.tokens_per_s = tokens_per_s
        self.tick_s = tick_s

    def stream_turn(self, request: TurnRequest) -> AsyncIterator[StreamItem]:
        tokens = tokenize(request.script or "Let's continue.")[: request.max_tokens]
        stop: Literal["end_turn", "max_tokens"] = (
            "max_tokens" if len(tokenize(request.script)) > request.max_tokens else "end_turn"
        )
        finished = TurnFinished(stop, input_tokens=0, output_tokens=len(tokens))
        interval = 1.0 / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        if self.tick_s and interval > 0:
            return TickedTurn(tokens, interval, self.tick_s, finished)
        return _token_by_token(tokens, interval, finished)

    async def aclose(self) -> None:
        return None


async def _token_by_token(
    tokens: list[str], interval: float, finished: TurnFinished
) -> AsyncIterator[StreamItem]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i, token in enumerate(tokens):
        # Pace against the start time, so timer slack does not accumulate.
        delay = started + i * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield TextDelta(token)
    yield finished


class TickedTurn:
    """A scripted turn on the process's ticks: the tokens due at any moment (one every
    ``interval`` seconds from the start) can be taken at once with :meth:`take_due`.

    The coalescer takes them on its own ticks (a :class:`~server.interviewer.coalesce.
    TickedSource`: no pump task, no wake-up of its own per tick); any other reader iterates
    it, and gets the due tokens in one piece per tick, then the ``TurnFinished``.
    """

    def __init__(
        self, tokens: list[str], interval: float, tick_s: float, finished: TurnFinished
    ) -> None:
        self._tokens = tokens
        self._interval = interval
        self._tick_s = tick_s
        self._finished = finished
        self._sent = 0
        self._started: float | None = None
        self._reported = False

    @property
    def finished(self) -> TurnFinished | None:
        """The turn's end, once every token was taken."""
        return self._finished if self._sent >= len(self._tokens) else None

    def take_due(self) -> str:
        """The tokens due by now that were not taken yet ("" when none); the clock starts at
        the first call."""
        loop = asyncio.get_running_loop()
        if self._started is None:
            self._started = loop.time()
        due = min(len(self._tokens), int((loop.time() - self._started) / self._interval) + 1)
        if due <= self._sent:
            return ""
        text = "".join(self._tokens[self._sent : due])
        self._sent = due
        return text

    def __aiter__(self) -> TickedTurn:
        return self

    async def __anext__(self) -> StreamItem:
        while True:
            if self.finished is not None:
                if self._reported:
                    raise StopAsyncIteration
                self._reported = True
                return self._finished
            text = self.take_due()
            if text:
                return TextDelta(text)
            await ticker_for(asyncio.get_running_loop(), self._tick_s).next_tick()

    async def aclose(self) -> None:
        return None
