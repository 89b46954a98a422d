"""What a peer server streams: the offline interviewer's script, paced and coalesced as
Mentara paces and coalesces it, as protocol v1's JSON events.

The peers exist to compare the cost of *delivering* the same stream, so they say the same
words at the same rate in events of the same shape and size:

- the turns are the question's offline script (``scoring`` question bank): the intro and
  the presentation at the start, one acknowledgement per candidate message;
- :func:`tokenize` is the offline provider's tokenizer (a test keeps them equal), paced at
  ``tokens_per_s``; :func:`coalesce_schedule` groups tokens as the server's coalescer does
  with the offline provider (the first token at once, then on every ``window_s`` tick the
  tokens due by then);
- :class:`PeerSession` numbers events (``seq`` from 1) and stamps ``ts`` (Unix ms) when
  each one is emitted, as ``SessionLog.append`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PeerSession",
    "TurnScript",
    "coalesce_schedule",
    "load_turns",
    "tokenize",
]

_TOKEN = re.compile(r"\s*\S{1,6}|\s+")

Emit = Callable[[dict[str, Any]], Awaitable[None]]


def tokenize(text: str) -> list[str]:
    """Token-sized pieces whose concatenation is ``text`` (the offline provider's rule)."""
    return _TOKEN.findall(text)


def coalesce_schedule(
    n_tokens: int, tokens_per_s: float, window_s: float
) -> list[tuple[float, int]]:
    """``(offset_s, tokens)`` per delta event for ``n_tokens`` tokens due every
    ``1 / tokens_per_s`` seconds from offset 0; offsets are when each event is emitted: the
    first token at once, then at every multiple of ``window_s`` the tokens due by then (the
    server's ticks are the process clock's, so its first one comes 0 to ``window_s`` after
    the start; here it is a whole window)."""
    interval = 1.0 / tokens_per_s
    schedule: list[tuple[float, int]] = [(0.0, 1)] if n_tokens else []
    sent, tick = min(1, n_tokens), 1
    while sent < n_tokens:
        at = tick * window_s
        due = min(n_tokens, int(at / interval + 1e-9) + 1)
        if due > sent:
            schedule.append((at, due - sent))
            sent = due
        tick += 1
    return schedule


@dataclass(frozen=True)
class TurnScript:
    intro: str
    present: str
    acknowledge: tuple[str, ...]


def load_turns(question_id: str = "two-sum") -> TurnScript:
    """The offline script of a question of the bundled bank."""
    from scoring.question_bank import DEFAULT_QUESTIONS_DIR, load_question_file

    question = load_question_file(DEFAULT_QUESTIONS_DIR / f"{question_id}.toml")
    script = question.script
    return TurnScript(script.intro, script.present, tuple(script.acknowledge))


class PeerSession:
    """One session of a peer server: its seq counter and its speaker task.

    :meth:`begin` emits ``session.started`` and queues the intro, a ``phase`` event and the
    presentation;
    :meth:`heard` emits ``candidate.message`` and queues an acknowledgement. Turns are spoken
    one at a time, in order, by one task; :meth:`stop` cancels it (safe to call twice).
    """

    def __init__(
        self,
        session_id: str,
        emit: Emit,
        turns: TurnScript,
        *,
        tokens_per_s: float,
        window_s: float,
    ) -> None:
        self.session_id = session_id
        self.emit = emit
        self.turns = turns
        self.tokens_per_s = tokens_per_s
        self.window_s = window_s
        self.seq = 0
        self.turn_count = 0
        self.acks = 0
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=64)
        self._speaker: asyncio.Task[None] | None = None

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        return {"type": kind, "seq": self.seq, "ts": int(time.time() * 1000), **fields}

    async def begin(self) -> None:
        await self.emit(self.event("session.started", session_id=self.session_id))
        self._queue.put_nowait(("turn", self.turns.intro))
        self._queue.put_nowait(("phase", "problem"))
        self._queue.put_nowait(("turn", self.turns.present))
        self._speaker = asyncio.create_task(self._speak(), name=f"peer-speaker-{self.session_id}")

    async def heard(self, text: str) -> None:
        await self.emit(self.event("candidate.message", text=text))
        said = self.turns.acknowledge[self.acks % len(self.turns.acknowledge)]
        self.acks += 1
        with contextlib.suppress(asyncio.QueueFull):  # a flooding client loses replies
            self._queue.put_nowait(("turn", said))

    async def stop(self) -> None:
        task, self._speaker = self._speaker, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _speak(self) -> None:
        while True:
            kind, value = await self._queue.get()
            if kind == "phase":
                await self.emit(self.event("phase", phase=value))
            else:
                await self._turn(value)

    async def _turn(self, text: str) -> None:
        self.turn_count += 1
        turn_id = f"i{self.turn_count}"
        await self.emit(self.event("interviewer.turn.start", turn_id=turn_id))
        tokens = tokenize(text)
        loop = asyncio.get_running_loop()
        started = loop.time()
        i = 0
        for offset, count in coalesce_schedule(len(tokens), self.tokens_per_s, self.window_s):
            delay = started + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = "".join(tokens[i : i + count])
            i += count
            await self.emit(self.event("interviewer.delta", turn_id=turn_id, text=chunk))
        await self.emit(self.event("interviewer.turn.end", turn_id=turn_id, stop_reason="end_turn"))
