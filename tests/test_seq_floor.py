"""No seq is ever assigned twice, even when Redis loses its last writes (issue 13).

Replication is asynchronous: a master that fails over may take with it the last appends it
acknowledged, so the promoted replica's seq counter (and history stream) can be behind what
the owner already assigned, delivered and wrote behind to Postgres. The append script floors
the seq at the owner's last seq (``scripts.APPEND``). Here the loss is made by hand on one
Redis (the counter set back and the stream's tail deleted, exactly what a replica that missed
them holds); ``test_redis_cluster.py`` makes it by killing a real master.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis

from protocol.messages import CandidateSaid, InterviewerDelta
from server.hub.keys import session_keys
from server.hub.lease import Lease, Leases
from server.sessions.channel import SessionChannel
from server.sessions.history import History
from server.sessions.log import SessionLog
from tests.test_session_log import RecordingWriter


async def _no_snapshot(session_id: str) -> None:
    return None


async def _log(
    redis: aioredis.Redis, leases: Leases, prefix: str, session_id: str
) -> tuple[SessionLog, RecordingWriter]:
    lease = await leases.acquire(session_id, 0)
    assert lease is not None
    keys = session_keys(prefix, session_id)
    writer = RecordingWriter()
    history = History(redis, None, prefix)  # type: ignore[arg-type]  # no Postgres read here
    channel = SessionChannel(session_id, history, _no_snapshot)

    async def no_reacquire(floor: int) -> Lease | None:
        raise AssertionError("the lease was not lost")

    log = SessionLog(
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
    )
    return log, writer


async def _stream_events(redis: aioredis.Redis, key: str) -> dict[int, bytes]:
    events: dict[int, bytes] = {}
    for entry_id, fields in await redis.xrange(key) or []:
        assert isinstance(entry_id, bytes) and fields is not None
        event = fields[b"e"]
        assert isinstance(event, bytes)
        events[int(entry_id.split(b"-")[0])] = event
    return events


async def test_a_counter_that_went_back_does_not_give_a_seq_twice(
    redis: aioredis.Redis, new_leases: Callable[..., Leases]
) -> None:
    prefix = f"floor-{uuid.uuid4().hex[:8]}:"
    session_id = uuid.uuid4().hex
    leases = new_leases(prefix, "w1", lease_ms=10_000)
    log, writer = await _log(redis, leases, prefix, session_id)
    keys = session_keys(prefix, session_id)
    delivered = {}
    for i in range(5):
        logged = await log.append(InterviewerDelta(turn_id="t1", text=f"tok{i} ", seq=0, ts=0))
        delivered[logged.seq] = logged.event
    assert sorted(delivered) == [1, 2, 3, 4, 5]
    before = await _stream_events(redis, keys.stream)

    # The failover: the promoted replica had seen appends 1 and 2 only.
    await redis.set(keys.seq, 2)
    await redis.xdel(keys.stream, "3-0", "4-0", "5-0")

    logged = await log.append(CandidateSaid(turn_id="c1", text="after the failover", seq=0, ts=0))
    assert logged.seq == 6  # not 3: 3, 4 and 5 are in clients and Postgres already
    after = await _stream_events(redis, keys.stream)
    assert sorted(after) == [1, 2, 6]
    assert {seq: after[seq] for seq in (1, 2)} == {seq: before[seq] for seq in (1, 2)}
    assert b'"after the failover"' in after[6]
    assert int(await redis.get(keys.seq) or 0) == 6
    # Every seq the write-behind was given names one event only.
    seqs = [event.seq for records in writer.submitted for event in records.events]
    assert seqs == [1, 2, 3, 4, 5, 6]


async def test_an_append_resent_after_its_reply_was_lost_keeps_its_seq(
    redis: aioredis.Redis, new_leases: Callable[..., Leases]
) -> None:
    """The owner sent an append, Redis ran it, the reply was lost (a connection cut): the
    owner sends the same event again with the same floor. It gets the seq it already has,
    not a second one; a different event sent with that floor goes after it."""
    prefix = f"floor-{uuid.uuid4().hex[:8]}:"
    session_id = uuid.uuid4().hex
    leases = new_leases(prefix, "w1", lease_ms=10_000)
    lease = await leases.acquire(session_id, 0)
    assert lease is not None
    keys = session_keys(prefix, session_id)

    async def append(text: str, floor: int) -> int:
        body = b'{"type":"candidate.said","turn_id":"c","text":"%s"}' % text.encode()
        seq = await leases.append_script(
            keys=[keys.lease, keys.seq, keys.stream, keys.inputs],
            args=[lease.token, 1_000, body, 100, 60_000, keys.channel, "", floor],
        )
        return int(seq)

    assert await append("one", 0) == 1
    assert await append("two", 1) == 2
    assert await append("two", 1) == 2  # the same append again: its reply was lost
    assert await append("three", 1) == 3  # a stale floor never rewrites seq 2
    assert sorted(await _stream_events(redis, keys.stream)) == [1, 2, 3]


async def test_concurrent_appends_after_a_lost_counter_stay_gap_free_for_the_owner(
    redis: aioredis.Redis, new_leases: Callable[..., Leases]
) -> None:
    """Appends queued on one session while the counter is set back: each gets the next seq
    after the owner's, in order."""
    prefix = f"floor-{uuid.uuid4().hex[:8]}:"
    session_id = uuid.uuid4().hex
    leases = new_leases(prefix, "w1", lease_ms=10_000)
    log, _ = await _log(redis, leases, prefix, session_id)
    keys = session_keys(prefix, session_id)
    first = [
        (await log.append(InterviewerDelta(turn_id="t", text=str(i), seq=0, ts=0))).seq
        for i in range(3)
    ]
    await redis.delete(keys.seq)  # lost altogether
    rest = await asyncio.gather(
        *(log.append(InterviewerDelta(turn_id="t", text=str(i), seq=0, ts=0)) for i in range(5))
    )
    assert first + [logged.seq for logged in rest] == list(range(1, 9))
