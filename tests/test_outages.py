"""A Redis or Postgres outage met by a client frame (issue 14): the frame is answered with a
retryable error, the socket stays open, and the frame sent again with the same ``id`` once the
service is back succeeds, applied once.

The faults come from outside the server: a ``redis-server`` of the test's own, killed and
started again empty, and a proxy on the server's link to Postgres that goes silent and then
drops every connection (tests/outage_support.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import asyncpg
import pytest

from protocol.client import open_client
from protocol.messages import (
    Ack,
    CandidateMessage,
    CandidateSaid,
    Error,
    Ping,
    Resumed,
    ServerFrame,
    SessionEnd,
    SessionEnded,
    SessionResume,
    SessionStart,
)
from server.config import Settings
from tests.interview_support import (
    assert_gap_free,
    assert_stored_from,
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


def replied(ref: str) -> Callable[[ServerFrame], bool]:
    """True at the ``ack`` or ``error`` answering the frame ``ref``."""
    return lambda f: isinstance(f, Ack | Error) and f.ref == ref


async def test_a_postgres_outage_met_by_frames_is_retryable_and_the_resent_frames_work(
    settings: Settings,
) -> None:
    assert settings.database_url is not None
    async with LinkProxy(settings.database_url) as pg:
        fast = settings.with_(database_url=pg.url, offline_tokens_per_s=300.0, coalesce_ms=5.0)
        async with running_server(fast) as server:
            user = f"pg-{uuid.uuid4().hex[:6]}"
            token = server.token(user)
            async with (
                open_client(server.ws_url(), token=token) as phone,
                open_client(server.ws_url(), token=token) as laptop,
                open_client(server.ws_url(), token=token) as tablet,
            ):
                frames: list[ServerFrame] = [
                    await phone.request(SessionStart(id="s1", track="coding"))
                ]
                frames += await read_until(phone, turn_ended(2), timeout=30)
                session_id = started_id(frames)

                # Postgres goes silent while two frames need it, then every connection drops.
                pg.hold()
                await laptop.send(SessionResume(id="r1", session_id=session_id, last_seq=0))
                await tablet.send(SessionStart(id="s2", track="coding"))
                await asyncio.sleep(0.5)
                pg.cut()
                for client, ref in ((laptop, "r1"), (tablet, "s2")):
                    reply = (await read_until(client, replied(ref), timeout=30))[-1]
                    assert isinstance(reply, Error), reply
                    assert reply.retryable, reply
                    # The socket stays open and usable.
                    assert isinstance(await client.request(Ping(id=f"p-{ref}")), Ack)
                pg.release()

                # The same frames again, with the same ids: they work, once.
                await laptop.send(SessionResume(id="r1", session_id=session_id, last_seq=0))
                resumed = await read_until(laptop, replied("r1"), timeout=30)
                assert any(isinstance(f, Resumed) for f in resumed)
                assert isinstance(resumed[-1], Ack)
                assert_gap_free(events(resumed))
                again = await tablet.request(SessionStart(id="s2", track="coding"), timeout=30)
                assert again.seq == 1
                # Both sessions end; every socket reads to the end (a client that leaves
                # frames unread cannot read the close handshake either).
                await phone.request(SessionEnd(id="end"))
                await tablet.request(SessionEnd(id="end2"))
                for client in (phone, laptop, tablet):
                    await read_until(client, lambda f: isinstance(f, SessionEnded), timeout=30)
        conn = await asyncpg.connect(settings.database_url)
        try:
            count = await conn.fetchval(
                "SELECT count(*) FROM sessions WHERE user_id = $1 AND start_input_id = 's2'",
                user,
            )
        finally:
            await conn.close()
        assert count == 1


async def test_a_redis_outage_met_by_an_input_is_retryable_and_the_resent_input_applies_once(
    settings: Settings, own_redis: RedisProcess
) -> None:
    fast = settings.with_(
        redis_url=own_redis.url,
        offline_tokens_per_s=300.0,
        coalesce_ms=5.0,
        lease_ms=1500,
        input_answer_s=2.0,
    )
    text = "Said while Redis was down."
    async with (
        running_server(fast) as server,
        open_client(server.ws_url(), token=server.token(f"r-{uuid.uuid4().hex[:6]}")) as phone,
    ):
        frames: list[ServerFrame] = [await phone.request(SessionStart(id="s", track="coding"))]
        frames += await read_until(phone, turn_ended(2), timeout=30)
        session_id = started_id(frames)

        own_redis.kill()  # leases, history and counters go with it
        await phone.send(CandidateMessage(id="m1", text=text))
        reply = await read_until(phone, replied("m1"), timeout=10)
        frames += reply[:-1]
        assert isinstance(reply[-1], Error), reply[-1]
        assert reply[-1].retryable, reply[-1]
        assert isinstance(await phone.request(Ping(id="p1")), Ack)  # the socket stays
        own_redis.start()  # back, empty

        ack = await phone.request(CandidateMessage(id="m1", text=text), timeout=30)
        await phone.send(SessionEnd(id="end"))
        frames += await read_until(phone, lambda f: isinstance(f, SessionEnded), timeout=30)
    evts = events(frames)
    assert_gap_free(evts)
    said = [e for e in evts if isinstance(e, CandidateSaid)]
    assert [(e.turn_id, e.text) for e in said] == [("c1", text)]
    assert ack.seq == said[0].seq
    assert fast.database_url is not None
    stored = [
        t for t in await stored_turns(fast.database_url, session_id) if t["role"] == "candidate"
    ]
    assert [t["text"] for t in stored] == [text]


async def test_a_start_cut_off_between_its_row_and_its_first_event_begins_when_sent_again(
    settings: Settings, own_redis: RedisProcess
) -> None:
    """Redis dies after ``session.start`` created the session's row and before its first
    append: the start is answered with a retryable error, and the row stays (the quota counted
    it). Sent again with its ``id`` once Redis is back (empty), the start is acked with seq 1,
    and seq 1 is the session's ``session.started``: the interview begins, gap-free."""
    assert settings.database_url is not None
    fast = settings.with_(
        redis_url=own_redis.url, offline_tokens_per_s=300.0, coalesce_ms=5.0, lease_ms=1500
    )
    user = f"s-{uuid.uuid4().hex[:6]}"
    locker = await asyncpg.connect(settings.database_url)
    try:
        async with (
            running_server(fast) as server,
            open_client(server.ws_url(), token=server.token(user)) as phone,
        ):
            # The row's INSERT waits on a lock the test holds, while Redis dies; then it
            # commits, and the start meets Redis gone.
            locker_tx = locker.transaction()
            await locker_tx.start()
            await locker.execute("LOCK TABLE sessions IN SHARE MODE")
            await phone.send(SessionStart(id="s1", track="coding"))
            await _wait_for_lock_waiter(locker, "sessions")
            own_redis.kill()
            await locker_tx.rollback()
            reply = (await read_until(phone, replied("s1"), timeout=30))[-1]
            assert isinstance(reply, Error), reply
            assert reply.retryable, reply
            assert (
                await locker.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1", user) == 1
            ), "the start did not get past its row"
            own_redis.start()  # back, empty

            frames: list[ServerFrame] = []
            ack = await request_until_accepted(phone, SessionStart(id="s1", track="coding"))
            assert ack.seq == 1
            frames += await read_until(phone, turn_ended(2), timeout=30)
            session_id = started_id(frames)
            await phone.send(SessionEnd(id="end"))
            frames += await read_until(phone, lambda f: isinstance(f, SessionEnded), timeout=30)
        evts = events(frames)
        assert_gap_free(evts)
        assert evts[0].seq == 1
        rows = await locker.fetch(
            "SELECT id FROM sessions WHERE user_id = $1 AND start_input_id = 's1'", user
        )
        assert [r["id"] for r in rows] == [session_id]
        await assert_stored_from(settings.database_url, session_id, evts)
    finally:
        await locker.close()


async def _wait_for_lock_waiter(conn: asyncpg.Connection, table: str) -> None:
    """Until some backend waits for a lock on ``table``."""
    query = "SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted"
    async with asyncio.timeout(15):
        while True:
            if await conn.fetchval(query, table):
                return
            await asyncio.sleep(0.02)
