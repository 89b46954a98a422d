"""The process's ticks (one per window, shared by every session) and the offline provider on
them. What a turn appends on the ticks: test_tick_speech.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from server.interviewer.coalesce import ticker_for
from server.interviewer.offline_provider import OfflineProvider, tokenize
from server.interviewer.provider import (
    TextDelta,
    TurnIntent,
    TurnRequest,
)


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

    # Subscribers (each speaking session's TickSpeech) are all called on the same tick.
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def note(name: str) -> Callable[[], None]:
        return lambda: seen[name].append(ticker.ticks)

    handles = [ticker.subscribe(note(name)) for name in seen]
    for _ in range(3):
        await ticker.next_tick()
    for handle in handles:
        ticker.unsubscribe(handle)
    await ticker.next_tick()
    assert seen["a"] == seen["b"] and len(seen["a"]) == 3


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
