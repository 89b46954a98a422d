"""Token coalescing: fewer events, the same text, nothing delivered after a stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from server.interviewer.coalesce import Coalescer, ticker_for
from server.interviewer.offline_provider import OfflineProvider, tokenize
from server.interviewer.provider import (
    StreamItem,
    TextDelta,
    TurnFinished,
    TurnIntent,
    TurnRequest,
)


async def stream(
    tokens: list[str], *, every_s: float, fail_after: int | None = None
) -> AsyncIterator[StreamItem]:
    for i, token in enumerate(tokens):
        if fail_after is not None and i == fail_after:
            raise RuntimeError("stream cut")
        await asyncio.sleep(every_s)
        yield TextDelta(token)
    yield TurnFinished("end_turn", output_tokens=len(tokens))


async def test_many_tokens_become_few_deltas_with_the_same_text() -> None:
    tokens = [f"t{i} " for i in range(200)]
    coalescer = Coalescer(stream(tokens, every_s=0.001), window_s=0.03, stop=asyncio.Event())
    out = [text async for text in coalescer.deltas()]
    assert "".join(out) == "".join(tokens)
    assert len(out) < len(tokens) / 4
    assert coalescer.finished is not None
    assert coalescer.finished.output_tokens == 200


async def test_a_stop_delivers_nothing_more() -> None:
    stop = asyncio.Event()
    tokens = [f"w{i} " for i in range(500)]
    coalescer = Coalescer(stream(tokens, every_s=0.002), window_s=0.02, stop=stop)
    out: list[str] = []
    async for text in coalescer.deltas():
        out.append(text)
        if len(out) == 3:
            stop.set()
    delivered = "".join(out)
    assert len(out) == 3
    assert "".join(tokens).startswith(delivered)
    assert coalescer.finished is None


async def test_an_error_comes_after_the_text_before_it() -> None:
    tokens = [f"x{i} " for i in range(20)]
    coalescer = Coalescer(
        stream(tokens, every_s=0.001, fail_after=10), window_s=0.01, stop=asyncio.Event()
    )
    out: list[str] = []
    with pytest.raises(RuntimeError, match="stream cut"):
        async for text in coalescer.deltas():
            out.append(text)
    assert "".join(out) == "".join(tokens[:10])


async def test_one_ticker_ends_every_sessions_window_at_once() -> None:
    """Windows are the process's: two coalescers' windows end on the same tick, on a
    boundary of the window (so their appends share one Redis pipeline)."""
    loop = asyncio.get_running_loop()
    window = 0.05
    ticker = ticker_for(loop, window)
    assert ticker_for(loop, window) is ticker
    ends: list[tuple[int, float]] = []
    await ticker.next_tick()  # start just after a boundary, so both waits fall in one window
    first = ticker.next_tick()
    await asyncio.sleep(0.013)
    second = ticker.next_tick()
    for future in (first, second):
        future.add_done_callback(lambda _: ends.append((ticker.ticks, loop.time())))
    ticks = ticker.ticks
    await asyncio.gather(first, second)
    assert ticker.ticks == ticks + 1
    assert ends[0][0] == ends[1][0] == ticks + 1
    phase = ends[0][1] % window
    assert min(phase, window - phase) < 0.01

    async def tokens(n: int) -> AsyncIterator[StreamItem]:
        for _ in range(n):
            await asyncio.sleep(0.004)
            yield TextDelta("x")

    seen: dict[str, list[int]] = {"a": [], "b": []}

    async def read(name: str) -> None:
        coalescer = Coalescer(tokens(30), window_s=window, stop=asyncio.Event())
        async for _ in coalescer.deltas():
            seen[name].append(ticker.ticks)

    await asyncio.gather(read("a"), read("b"))
    # Every window but the last (which ends with the stream) closes on the shared tick.
    assert seen["a"][:-1] == seen["b"][:-1]
    assert len(seen["a"]) >= 2


def test_ticks_come_once_per_window() -> None:
    """A wait begun by a tick's own callbacks is for the next boundary, even when the loop's
    timer fired a little early (uvloop's, the server's loop, rounds to milliseconds): windows
    never shrink to nothing."""
    import uvloop

    async def run() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        window = 0.02
        ticker = ticker_for(loop, window)
        await ticker.next_tick()
        start, ticks = loop.time(), ticker.ticks
        for _ in range(20):
            await ticker.next_tick()
        return ticker.ticks - ticks, loop.time() - start

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        ticks, elapsed = runner.run(run())
    assert ticks == 20
    # A boundary served twice would make it ~half; the slack is for a first tick that ran
    # late on a loaded machine (its start is read then), not for a shrunken window.
    assert elapsed >= 18 * 0.02


def scripted_turn(script: str) -> TurnRequest:
    """A turn request for the offline provider (it reads only the script and max_tokens)."""
    return TurnRequest(
        session_id="s",
        intent=TurnIntent.INTRO,
        system="",
        question_context="",
        messages=(),
        max_tokens=1000,
        script=script,
    )


async def test_the_ticked_offline_provider_speaks_the_same_words_at_the_same_rate() -> None:
    """On the process's ticks the offline provider yields the tokens due by then in one
    piece: the same text as token by token, at the configured rate on average."""
    script = " ".join(f"word{i}" for i in range(60)) + "."
    request = scripted_turn(script)
    loop = asyncio.get_running_loop()
    pieces: list[tuple[float, str]] = []
    started = loop.time()
    async for item in OfflineProvider(tokens_per_s=200, tick_s=0.02).stream_turn(request):
        if isinstance(item, TextDelta):
            pieces.append((loop.time() - started, item.text))
    assert "".join(text for _, text in pieces) == script
    tokens = len(tokenize(script))
    elapsed = pieces[-1][0]
    assert (tokens - 1) / 200 - 0.025 <= elapsed <= (tokens - 1) / 200 + 0.25
    assert len(pieces) < tokens  # several tokens per tick


async def test_the_coalescer_takes_a_ticked_turn_on_its_ticks_and_stops_cleanly() -> None:
    """The offline provider's ticked turn is read without a pump: the deltas carry the
    whole script, several tokens each; a stop ends the turn with exactly what was yielded."""
    script = " ".join(f"word{i}" for i in range(80)) + "."
    request = scripted_turn(script)
    provider = OfflineProvider(tokens_per_s=400, tick_s=0.02)
    coalescer = Coalescer(provider.stream_turn(request), window_s=0.02, stop=asyncio.Event())
    deltas = [text async for text in coalescer.deltas()]
    assert "".join(deltas) == script
    assert 2 <= len(deltas) < len(tokenize(script))
    assert coalescer.finished is not None and coalescer.finished.stop_reason == "end_turn"

    stop = asyncio.Event()
    coalescer = Coalescer(provider.stream_turn(request), window_s=0.02, stop=stop)
    delivered: list[str] = []
    async for text in coalescer.deltas():
        delivered.append(text)
        if len(delivered) == 3:
            stop.set()
    assert len(delivered) == 3
    assert script.startswith("".join(delivered))
    assert coalescer.finished is None
