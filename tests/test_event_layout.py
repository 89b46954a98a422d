"""The stored-event layout in one place (server/sessions/logged_event.py), checked against
the append script on a real Redis: what the script stores and publishes is what
``with_stamp`` builds (seq and ts first), ``peek_seq`` reads its seq, and it decodes to the
event with its seq and ts."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable

import msgspec
import pytest
import redis.asyncio as aioredis

from protocol.codec import JSON
from protocol.messages import CandidateSaid, InterviewerDelta, ScoreDelta, SessionEvent
from server.hub.keys import session_keys
from server.hub.lease import Leases
from server.sessions.logged_event import LoggedEvent, peek_seq, with_stamp, without_stamp

EVENTS: list[SessionEvent] = [
    CandidateSaid(turn_id="t1", text='a "quoted" \\ text, with {braces}', seq=0, ts=0),
    InterviewerDelta(turn_id="t2", text="é 😀", seq=0, ts=0),
    ScoreDelta(
        dimension="communication", delta=0.5, score=2.5, reason="r", evidence=[3], seq=0, ts=0
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
async def test_the_append_script_stores_what_with_stamp_builds(
    event: SessionEvent, redis: aioredis.Redis, new_leases: Callable[..., Leases]
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}:"
    session_id = uuid.uuid4().hex
    leases = new_leases(prefix, "w1", lease_ms=10_000)
    lease = await leases.acquire(session_id, 41)  # the counter starts at the floor
    assert lease is not None
    keys = session_keys(prefix, session_id)
    raw = JSON.encode(event)
    assert raw.startswith(b'{"type":') and b',"seq":0,"ts":0,' in raw  # after the tag
    body = without_stamp(raw)
    assert b'"seq"' not in body
    async with contextlib.aclosing(redis.pubsub()) as pubsub:
        await pubsub.subscribe(keys.channel)
        seq = await leases.append_script(
            keys=[keys.lease, keys.seq, keys.stream, keys.inputs],
            args=[lease.token, 1_700_000_000_123, body, 100, 60_000, keys.channel, "", lease.seq],
        )
        assert int(seq) == 42
        entries = await redis.xrange(keys.stream)
        assert entries and entries[0][1] is not None
        stored = entries[0][1][b"e"]
        assert isinstance(stored, bytes)
        assert stored == with_stamp(42, 1_700_000_000_123, body)
        assert peek_seq(stored) == 42
        published = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                published = message["data"]
                break
        assert published == stored
    back = LoggedEvent.from_json(stored).event
    assert back == msgspec.structs.replace(event, seq=42, ts=1_700_000_000_123)


def test_peek_seq_reads_only_a_stamped_event() -> None:
    assert peek_seq(b'{"seq":7,"ts":1,"type":"x"}') == 7
    assert peek_seq(b'{"type":"error","code":"internal"}') is None
    assert peek_seq(b'{"seq":x,"ts":1}') is None
