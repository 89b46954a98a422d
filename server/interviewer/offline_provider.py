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

    async def stream_turn(self, request: TurnRequest) -> AsyncIterator[StreamItem]:
        tokens = tokenize(request.script or "Let's continue.")[: request.max_tokens]
        interval = 1.0 / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self.tick_s and interval > 0:
            ticker = ticker_for(loop, self.tick_s)
            sent = 0
            while sent < len(tokens):
                due = min(len(tokens), int((loop.time() - started) / interval) + 1)
                if due > sent:
                    yield TextDelta("".join(tokens[sent:due]))
                    sent = due
                if sent < len(tokens):
                    await ticker.next_tick()
        else:
            for i, token in enumerate(tokens):
                # Pace against the start time, so timer slack does not accumulate.
                delay = started + i * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                yield TextDelta(token)
        stop: Literal["end_turn", "max_tokens"] = (
            "max_tokens" if len(tokenize(request.script)) > request.max_tokens else "end_turn"
        )
        yield TurnFinished(stop, input_tokens=0, output_tokens=len(tokens))

    async def aclose(self) -> None:
        return None
