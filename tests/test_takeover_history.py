"""A take-over rebuilds only from a history that reaches its lease's seq (issue 14, bug 3 of
docs/reliability.md: "a candidate turn id used twice after Redis restarts").

The chaos runs saw a new owner count one candidate message fewer than there were, so its
next message reused a turn id. Reproduced here, deterministically, with the faults of those
runs:

1. owner A appends a candidate message and its reply, but its write-behind cannot commit
   (the test holds a lock Postgres makes it wait on), so Postgres stops before the message;
2. Redis restarts empty; A, alive, takes its lease back with the seq counter raised to its
   own last seq (as designed): the counter is past Postgres, and the history stream is empty;
3. A is cut off from Redis; worker B, which has a socket on the session, takes it over:
   Postgres's events end before the message, Redis has none, yet the lease says the
   session is further on. Rebuilt from what Postgres has, B would not know the message
   (nor anything after it) and would give its next candidate message the same turn id.

A take-over must not rebuild from a history short of its lease: it waits (the client gets a
retryable error) until the events are stored, here when A's write-behind commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable

import asyncpg
import pytest
import redis.asyncio as aioredis
import redis.exceptions as redis_errors

from protocol.client import open_client
from protocol.messages import (
    Ack,
    CandidateMessage,
    CandidateSaid,
    Error,
    InterviewerTurnEnd,
    ServerFrame,
    SessionResume,
    SessionStart,
)
from server.config import Settings
from server.hub.keys import session_keys
from tests.interview_support import (
    events,
    read_until,
    request_until_accepted,
    started_id,
    stored_turns,
    turn_ended,
)
from tests.outage_support import LinkProxy, RedisProcess, own_redis_fixture  # noqa: F401 (a fixture)
from tests.support import running_server

pytestmark = pytest.mark.outage


def reply_turn_after(text: str) -> Callable[[ServerFrame], bool]:
    """True at the first interviewer turn end after the candidate message ``text``."""
    said = False

    def stop(frame: ServerFrame) -> bool:
        nonlocal said
        if isinstance(frame, CandidateSaid) and frame.text == text:
            said = True
        return said and isinstance(frame, InterviewerTurnEnd)

    return stop


async def wait_for_holder(redis: aioredis.Redis, key: str, worker: str) -> None:
    async with asyncio.timeout(15):
        while True:
            with contextlib.suppress(redis_errors.ConnectionError):
                raw = await redis.get(key)
                if isinstance(raw, bytes) and raw.decode().startswith(worker + ":"):
                    return
            await asyncio.sleep(0.05)


async def test_a_take_over_never_rebuilds_from_a_history_short_of_its_lease(
    settings: Settings, own_redis: RedisProcess
) -> None:
    assert settings.database_url is not None
    base = settings.with_(redis_url=own_redis.url, offline_tokens_per_s=300.0, coalesce_ms=5.0)
    redis = aioredis.from_url(own_redis.url)
    laptop_frames: list[ServerFrame] = []
    try:
        async with (
            LinkProxy(own_redis.url) as a_link,
            # B waits three seconds for a vanished lease before taking a session over, so A,
            # alive, takes its own back first after the restart (as in the chaos runs).
            running_server(base.with_(redis_url=a_link.url, lease_ms=1000)) as a,
            running_server(base.with_(lease_ms=3000)) as b,
        ):
            token = a.token(f"h-{uuid.uuid4().hex[:6]}")
            a_id = a.app.state.resources.sessions.worker_id
            async with (
                open_client(a.ws_url(), token=token) as phone,
                open_client(b.ws_url(), token=token) as laptop,
            ):
                frames: list[ServerFrame] = [
                    await phone.request(SessionStart(id="s", track="coding"))
                ]
                frames += await read_until(phone, turn_ended(2), timeout=30)
                session_id = started_id(frames)
                lease_key = session_keys(base.redis_prefix, session_id).lease
                await laptop.send(SessionResume(id="r", session_id=session_id, last_seq=0))
                laptop_frames += await read_until(
                    laptop, lambda f: isinstance(f, Ack) and f.ref == "r"
                )

                # 1. A's write-behind of the message (and all after it) waits on a lock.
                lock = await asyncpg.connect(settings.database_url)
                held = lock.transaction()
                await held.start()
                await lock.execute("LOCK TABLE client_inputs IN EXCLUSIVE MODE")
                try:
                    await phone.send(CandidateMessage(id="m1", text="First."))
                    laptop_frames += await read_until(
                        laptop, reply_turn_after("First."), timeout=30
                    )
                    await asyncio.sleep(0.5)  # the turn's score deltas

                    # 2. Redis restarts empty; A takes its lease back.
                    own_redis.kill()
                    own_redis.start()
                    await wait_for_holder(redis, lease_key, a_id)

                    # 3. A is cut off from Redis; B has the only other socket.
                    a_link.hold()
                    await laptop.send(CandidateMessage(id="m2", text="Second."))
                    laptop_frames += await read_until(
                        laptop,
                        lambda f: (
                            (isinstance(f, Ack | Error) and f.ref == "m2")
                            or (isinstance(f, CandidateSaid) and f.text == "Second.")
                        ),
                        timeout=30,
                    )
                    answer = laptop_frames[-1]
                    if isinstance(answer, Error):
                        assert answer.retryable, answer
                finally:
                    await held.rollback()  # A's write-behind commits now
                    await lock.close()

                ack = await request_until_accepted(
                    laptop, CandidateMessage(id="m2", text="Second.")
                )
                assert isinstance(ack.seq, int)
                after_ack: int = ack.seq
                if not any(
                    isinstance(f, InterviewerTurnEnd) and f.seq > after_ack for f in laptop_frames
                ):
                    laptop_frames += await read_until(
                        laptop,
                        lambda f: isinstance(f, InterviewerTurnEnd) and f.seq > after_ack,
                        timeout=30,
                    )
                a_link.release()
    finally:
        await redis.aclose()
    said = [(e.turn_id, e.text) for e in events(laptop_frames) if isinstance(e, CandidateSaid)]
    assert said == [("c1", "First."), ("c2", "Second.")], said
    stored = await stored_turns(settings.database_url, session_id)
    candidate = [(t["turn_id"], t["text"]) for t in stored if t["role"] == "candidate"]
    assert candidate == [("c1", "First."), ("c2", "Second.")], candidate
