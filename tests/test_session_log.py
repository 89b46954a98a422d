"""SessionLog.append against real Redis: side records name the seq the event really got.

Appends of one session are serialised and each waits for Redis, so a second append started
while the first is in flight gets a later seq than ``last_seq + 1`` said when it started.
Records that name the event's own seq (the input it applies, its transcript turn) must be
built from the assigned seq, never predicted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis

from protocol.messages import CandidateSaid, ScoreDelta
from server.hub.batcher import ScriptBatcher
from server.hub.keys import session_keys
from server.hub.lease import Lease, Leases
from server.sessions.channel import SessionChannel
from server.sessions.event_writer import Records
from server.sessions.history import History
from server.sessions.log import SessionLog


class RecordingWriter:
    """Stands in for the Postgres write-behind: keeps what it was given, commits at once."""

    def __init__(self) -> None:
        self.submitted: list[Records] = []

    async def submit(self, records: Records, *, urgent: bool = True) -> asyncio.Future[None]:
        self.submitted.append(records)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def _new_log(
    redis: aioredis.Redis,
    leases: Leases,
    prefix: str,
    writer: RecordingWriter,
    *,
    tick_s: float | None = None,
) -> SessionLog:
    """A fresh session's log under a lease of ``leases``, on real Redis."""
    session_id = uuid.uuid4().hex
    lease = await leases.acquire(session_id, 0)
    assert lease is not None
    keys = session_keys(prefix, session_id)
    history = History(redis, None, prefix)  # type: ignore[arg-type]  # no Postgres read here
    channel = SessionChannel(session_id, history, _no_snapshot)

    async def no_reacquire(floor: int) -> Lease | None:
        raise AssertionError("the lease was not lost")

    return SessionLog(
        session_id,
        last_seq=lease.seq,
        lease=lease,
        keys=[keys.lease, keys.seq, keys.stream, keys.inputs],
        channel_name=keys.channel,
        append_script=leases.append_script,
        reacquire=no_reacquire,
        writer=writer,  # type: ignore[arg-type]
        channel=channel,
        stream_maxlen=100,
        ttl_ms=60_000,
        tick_s=tick_s,
    )


async def test_records_name_the_assigned_seq_when_appends_queue(
    redis: aioredis.Redis, new_leases: Callable[..., Leases]
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}:"
    leases = new_leases(prefix, "w1", lease_ms=10_000)
    writer = RecordingWriter()
    log = await _new_log(redis, leases, prefix, writer)
    session_id = log.session_id
    keys = session_keys(prefix, session_id)
    predicted: dict[str, int] = {}

    async def say(input_id: str, text: str) -> int:
        predicted[input_id] = log.last_seq + 1  # what a caller would guess before its turn
        logged = await log.append(
            CandidateSaid(turn_id=input_id, text=text, seq=0, ts=0), input_id=input_id
        )
        return logged.seq

    seqs = await asyncio.gather(say("a", "first"), say("b", "second"), say("c", "third"))

    assert list(seqs) == [1, 2, 3]  # a list at run time, a tuple to the type checker
    assert predicted == {"a": 1, "b": 1, "c": 1}, "the appends did not queue: nothing tested"
    by_input = {r.inputs[0][1]: r for r in writer.submitted}
    for input_id, seq in zip("abc", seqs, strict=True):
        records = by_input[input_id]
        assert records.inputs == ((session_id, input_id, seq),)
        assert records.turns[0].start_seq == seq
        assert records.events[0].seq == seq
    stored = await redis.hgetall(keys.inputs)
    assert stored == {b"a": b"1", b"b": b"2", b"c": b"3"}


async def _no_snapshot(session_id: str) -> None:
    return None


async def test_a_score_delta_rides_another_sessions_pipeline_and_a_candidate_input_goes_at_once(
    redis: aioredis.Redis, new_leases: Callable[..., Leases]
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}:"
    leases = new_leases(prefix, "w1", lease_ms=10_000)
    writer = RecordingWriter()
    scored = await _new_log(redis, leases, prefix, writer, tick_s=5.0)
    speaking = await _new_log(redis, leases, prefix, writer, tick_s=5.0)
    batcher = leases.append_script
    assert isinstance(batcher, ScriptBatcher)
    score = ScoreDelta(
        dimension="communication", delta=1.0, score=6.0, reason="clear", evidence=[], seq=0, ts=0
    )
    pipelines = batcher.pipelines
    waiting = asyncio.ensure_future(scored.append(score))
    await asyncio.sleep(0.2)
    assert not waiting.done(), "a score delta went alone, at once"
    assert batcher.pipelines == pipelines
    said = await speaking.append(CandidateSaid(turn_id="t1", text="hi", seq=0, ts=0))
    assert said.seq == 1
    assert (await waiting).seq == 1
    assert batcher.pipelines == pipelines + 1  # one round trip for both
    stream = await redis.xrange(session_keys(prefix, scored.session_id).stream)
    assert stream is not None and len(stream) == 1
