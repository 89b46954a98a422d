"""Interviewer turns spoken on the process's ticks (server/interviewer/tick_speech.py), with
real SessionLogs on real Redis.

Many sessions speaking at once: each tick's deltas of every session go to Redis in one
pipeline, the engine-side task sleeps for the whole turn, and each session's stream is its
script, in order, gap-free. Then the edges: a stop drops only what was still gathering, a
model error comes after the text before it, a busy log makes the text wait for the next tick.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from protocol.messages import CandidateSaid, InterviewerDelta
from server.hub.keys import session_keys
from server.hub.lease import Lease, Leases
from server.interviewer.offline_provider import TickedTurn, tokenize
from server.interviewer.provider import LLMUnavailable, StreamItem, TextDelta, TurnFinished
from server.interviewer.tick_speech import TickSpeech
from server.sessions.channel import SessionChannel
from server.sessions.history import History
from server.sessions.log import LoggedEvent, SessionLog
from tests.test_session_log import RecordingWriter

WINDOW_S = 0.02
SCRIPT = "Walk me through the worst case of your approach, and what it costs in memory. " * 2


class _Writer(RecordingWriter):
    def submit_nowait(self, records: object, *, urgent: bool = True) -> asyncio.Future[None] | None:
        self.submitted.append(records)  # type: ignore[arg-type]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def _no_snapshot(session_id: str) -> None:
    return None


async def _log(redis: aioredis.Redis, leases: Leases, prefix: str) -> tuple[SessionLog, list[str]]:
    session_id = uuid.uuid4().hex
    lease = await leases.acquire(session_id, 0)
    assert lease is not None
    keys = session_keys(prefix, session_id)
    channel = SessionChannel(session_id, History(redis, None, prefix), _no_snapshot)  # type: ignore[arg-type]

    async def no_reacquire(floor: int) -> Lease | None:
        raise AssertionError("the lease was not lost")

    log = SessionLog(
        session_id,
        last_seq=0,
        lease=lease,
        keys=[keys.lease, keys.seq, keys.stream, keys.inputs],
        channel_name=keys.channel,
        append_script=leases.append_script,
        reacquire=no_reacquire,
        writer=_Writer(),  # type: ignore[arg-type]
        channel=channel,
        stream_maxlen=1000,
        ttl_ms=60_000,
    )
    seen: list[str] = []

    def observe(logged: LoggedEvent) -> None:
        assert logged.seq == len(seen) + 1, "out of order or with a gap"
        event = logged.event
        seen.append(event.text if isinstance(event, InterviewerDelta) else f"<{logged.type}>")

    log.observers.append(observe)
    return log, seen


def _ticked(text: str, tokens_per_s: float) -> TickedTurn:
    tokens = tokenize(text)
    return TickedTurn(tokens, 1 / tokens_per_s, WINDOW_S, TurnFinished("end_turn", 0, len(tokens)))


@pytest.fixture
async def leases(redis: aioredis.Redis, new_leases: Callable[..., Leases]) -> tuple[Leases, str]:
    prefix = f"t-{uuid.uuid4().hex[:8]}:"
    return new_leases(prefix, "w1", lease_ms=10_000), prefix


async def test_every_sessions_delta_of_a_tick_goes_in_one_pipeline(
    redis: aioredis.Redis, leases: tuple[Leases, str]
) -> None:
    made, prefix = leases
    logs = [await _log(redis, made, prefix) for _ in range(30)]
    batcher = made.append_script
    before = (batcher.pipelines, batcher.calls)
    speeches = [
        TickSpeech(
            _ticked(SCRIPT, 300.0),
            log=log,
            turn_id="i1",
            stop=asyncio.Event(),
            window_s=WINDOW_S,
        )
        for log, _ in logs
    ]
    tasks_before = asyncio.all_tasks()
    runs = [asyncio.create_task(s.run()) for s in speeches]
    for _ in range(3):
        await asyncio.sleep(WINDOW_S)
        # Each turn has its run() task and its stop watcher; the process one append
        # pipeline: nothing per session per tick.
        others = asyncio.all_tasks() - tasks_before - set(runs)
        assert {t.get_name() for t in others} <= {"llm-stop", "append-pipeline"}
        assert len(others) <= len(speeches) + 1
    await asyncio.gather(*runs)

    pipelines = batcher.pipelines - before[0]
    appends = batcher.calls - before[1]
    for speech, (_, seen) in zip(speeches, logs, strict=True):
        assert "".join(speech.delivered) == SCRIPT
        assert seen == speech.delivered  # the stream, in seq order
        assert speech.finished is not None and speech.finished.stop_reason == "end_turn"
    assert appends == sum(len(s.delivered) for s in speeches)
    assert appends >= 30 * 4, "too few ticks to tell"
    # One round trip per tick for all thirty sessions (the first words of each go at once).
    assert pipelines <= appends / 10, (pipelines, appends)


async def test_a_stop_drops_only_what_was_still_gathering(
    redis: aioredis.Redis, leases: tuple[Leases, str]
) -> None:
    made, prefix = leases
    log, seen = await _log(redis, made, prefix)
    stop = asyncio.Event()
    speech = TickSpeech(
        _ticked(SCRIPT * 4, 200.0), log=log, turn_id="i1", stop=stop, window_s=WINDOW_S
    )
    run = asyncio.create_task(speech.run())
    await asyncio.sleep(WINDOW_S * 4)
    stop.set()
    await asyncio.wait_for(run, 2)
    assert speech.delivered and seen == speech.delivered
    assert (SCRIPT * 4).startswith("".join(speech.delivered))
    assert len("".join(speech.delivered)) < len(SCRIPT * 4)


async def _model(text: str, fail: bool) -> AsyncIterator[StreamItem]:
    for word in text.split(" "):
        await asyncio.sleep(0.002)
        yield TextDelta(word + " ")
    if fail:
        raise LLMUnavailable("cut", delivered=True, retryable=True)
    yield TurnFinished("end_turn", 10, 20)


async def test_a_model_stream_ends_the_turn_with_its_text_then_its_error(
    redis: aioredis.Redis, leases: tuple[Leases, str]
) -> None:
    made, prefix = leases
    words = "one two three four five six seven eight nine ten"
    log, seen = await _log(redis, made, prefix)
    speech = TickSpeech(
        _model(words, fail=False), log=log, turn_id="i1", stop=asyncio.Event(), window_s=WINDOW_S
    )
    await speech.run()
    assert "".join(speech.delivered) == words + " " and seen == speech.delivered
    assert speech.finished == TurnFinished("end_turn", 10, 20)

    log, seen = await _log(redis, made, prefix)
    speech = TickSpeech(
        _model(words, fail=True), log=log, turn_id="i1", stop=asyncio.Event(), window_s=WINDOW_S
    )
    with pytest.raises(LLMUnavailable):
        await speech.run()
    assert "".join(speech.delivered) == words + " "  # every word before the error


async def test_text_waits_while_another_append_holds_the_log(
    redis: aioredis.Redis, leases: tuple[Leases, str]
) -> None:
    made, prefix = leases
    log, seen = await _log(redis, made, prefix)
    speech = TickSpeech(
        _ticked(SCRIPT, 400.0), log=log, turn_id="i1", stop=asyncio.Event(), window_s=WINDOW_S
    )
    run = asyncio.create_task(speech.run())
    await asyncio.sleep(WINDOW_S * 2)
    said = await asyncio.gather(
        *(log.append(CandidateSaid(turn_id=f"c{i}", text="hm", seq=0, ts=0)) for i in range(5))
    )
    await run
    assert "".join(speech.delivered) == SCRIPT
    assert [e.seq for e in said] == sorted(e.seq for e in said)
    assert [t for t in seen if not t.startswith("<")] == speech.delivered  # order kept
    assert seen.count("<candidate.message>") == 5


class _FullWriter(_Writer):
    def submit_nowait(self, records: object, *, urgent: bool = True) -> None:
        return None  # no room now: append_soon must wait for room in a task, in order


async def test_append_soon_finishes_in_order_when_the_writer_is_full_or_redis_refuses(
    redis: aioredis.Redis, leases: tuple[Leases, str]
) -> None:
    made, prefix = leases
    log, seen = await _log(redis, made, prefix)
    log.writer = _FullWriter()  # type: ignore[assignment]
    results: list[tuple[int | None, str | None]] = []

    def done(logged: LoggedEvent | None, error: BaseException | None) -> None:
        results.append((logged.seq if logged else None, type(error).__name__ if error else None))

    assert log.append_soon(InterviewerDelta(turn_id="i1", text="a", seq=0, ts=0), done)
    assert not log.append_soon(InterviewerDelta(turn_id="i1", text="b", seq=0, ts=0), done)
    after = asyncio.create_task(log.append(CandidateSaid(turn_id="c", text="x", seq=0, ts=0)))
    assert (await after).seq == 2  # waited for the first, which waited for the writer
    assert results == [(1, None)] and seen == ["a", "<candidate.message>"]

    # Redis refuses the first attempt (the fence moved: another token): the retry path
    # re-takes nothing here, it reports the lost lease, and the log is free again.
    async def gone(floor: int) -> Lease | None:
        return None

    log.reacquire = gone
    await redis.set(session_keys(prefix, log.session_id).lease, "other:99")
    assert log.append_soon(InterviewerDelta(turn_id="i1", text="c", seq=0, ts=0), done)
    for _ in range(100):
        if len(results) == 2:
            break
        await asyncio.sleep(0.01)
    assert results[1] == (None, "LeaseLost") and log.lost


async def test_many_model_tokens_become_few_deltas_with_the_same_text(
    redis: aioredis.Redis, leases: tuple[Leases, str]
) -> None:
    made, prefix = leases
    log, seen = await _log(redis, made, prefix)
    tokens = [f"t{i} " for i in range(200)]

    async def model() -> AsyncIterator[StreamItem]:
        for token in tokens:
            await asyncio.sleep(0.001)
            yield TextDelta(token)
        yield TurnFinished("end_turn", 0, len(tokens))

    speech = TickSpeech(model(), log=log, turn_id="i1", stop=asyncio.Event(), window_s=0.03)
    await speech.run()
    assert "".join(speech.delivered) == "".join(tokens) and seen == speech.delivered
    assert len(speech.delivered) < len(tokens) / 4
    assert speech.finished is not None and speech.finished.output_tokens == 200
