"""Faults survived (issue 4): Redis restarted, Postgres restarted, a graceful shutdown.

Redis and Postgres get instances of their own here (started from the embedded binaries), so
restarting them disturbs nothing else; the Redis one keeps nothing on disk, so a restart
loses every key, as a cache-configured production Redis would.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.client import ConnectionClosedByServer, InterviewClient, open_client
from protocol.errors import CloseCode
from protocol.messages import (
    Ack,
    CandidateMessage,
    CandidateSaid,
    InterviewerTurnEnd,
    Resumed,
    ServerFrame,
    SessionEnd,
    SessionEnded,
    SessionEvent,
    SessionResume,
    SessionStart,
    SessionStarted,
)
from server.config import Settings
from server.dev_tokens import mint_dev_token
from server.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.interview_support import (
    assert_gap_free,
    assert_stored_from,
    read_until,
    stored_turns,
)
from tests.support import TEST_SECRET, Services, running_server, serve_env, serving, wait_ready


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    redis = EmbeddedRedis(tmp_path / "redis", persistent=False)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    postgres = EmbeddedPostgres(tmp_path / "pg")
    url = postgres.start()
    try:
        yield postgres, url
    finally:
        postgres.stop()


def events_of(frames: list[ServerFrame]) -> list[SessionEvent]:
    return [f for f in frames if isinstance(f, SessionEvent)]


async def collect(
    client: InterviewClient, frames: list[ServerFrame], stop: type, timeout: float = 30.0
) -> None:
    frames += await read_until(client, lambda f: isinstance(f, stop), timeout=timeout)


async def test_redis_restart_mid_session_loses_nothing(
    settings: Settings, own_redis: EmbeddedRedis
) -> None:
    fast = settings.with_(
        redis_url=own_redis.url, offline_tokens_per_s=300.0, coalesce_ms=5.0, lease_ms=1500
    )
    async with running_server(fast) as owner, running_server(fast) as other:
        token = owner.token(f"r-{uuid.uuid4().hex[:6]}")
        async with (
            open_client(owner.ws_url(), token=token) as phone,
            open_client(other.ws_url(), token=token) as laptop,
        ):
            phone_frames: list[ServerFrame] = [
                await phone.request(SessionStart(id="s", track="coding"))
            ]
            await collect(phone, phone_frames, InterviewerTurnEnd)
            await collect(phone, phone_frames, InterviewerTurnEnd)
            session_id = next(
                e for e in events_of(phone_frames) if isinstance(e, SessionStarted)
            ).session_id
            await laptop.send(SessionResume(session_id=session_id, last_seq=0))
            laptop_frames: list[ServerFrame] = []
            await collect(laptop, laptop_frames, Resumed)
            first = await phone.request(CandidateMessage(id="before", text="Before the restart."))
            await collect(phone, phone_frames, InterviewerTurnEnd)

            own_redis.stop()  # everything in Redis is gone: leases, history, counters
            await phone.send(CandidateMessage(id="during", text="While Redis is down."))
            await asyncio.sleep(0.5)
            own_redis.start()

            frames = await read_until(
                phone, lambda f: isinstance(f, Ack) and f.ref == "during", timeout=30
            )
            phone_frames += frames
            # The ack waits for Postgres; the reply turn does not, and may end before it.
            if not any(isinstance(f, InterviewerTurnEnd) for f in frames):
                await collect(phone, phone_frames, InterviewerTurnEnd)
            end = await phone.request(SessionEnd(id="end"))
            await collect(phone, phone_frames, SessionEnded)
            await collect(laptop, laptop_frames, SessionEnded, timeout=30)

    phone_events, laptop_events = events_of(phone_frames), events_of(laptop_frames)
    assert_gap_free(phone_events)
    assert_gap_free(laptop_events)
    assert phone_events == laptop_events, (phone_events[-4:], laptop_events[-4:])
    said = [e.text for e in phone_events if isinstance(e, CandidateSaid)]
    assert said == ["Before the restart.", "While Redis is down."]
    assert first.seq is not None
    assert end.seq == phone_events[-1].seq
    await assert_stored_from(fast.database_url or "", session_id, phone_events)


async def test_postgres_restart_acks_wait_and_nothing_acked_is_lost(
    settings: Settings, own_postgres: tuple[EmbeddedPostgres, str]
) -> None:
    postgres, url = own_postgres
    fast = settings.with_(database_url=url, offline_tokens_per_s=300.0, coalesce_ms=5.0)
    async with (
        running_server(fast) as server,
        open_client(server.ws_url(), token=server.token("pg")) as c,
    ):
        frames: list[ServerFrame] = [await c.request(SessionStart(id="s", track="coding"))]
        await collect(c, frames, InterviewerTurnEnd)
        await collect(c, frames, InterviewerTurnEnd)
        session_id = next(e for e in events_of(frames) if isinstance(e, SessionStarted)).session_id

        postgres.stop()
        await c.send(CandidateMessage(id="while-down", text="Is anyone there?"))
        early = await read_until(c, lambda f: isinstance(f, InterviewerTurnEnd), timeout=30)
        frames += early
        assert not [f for f in early if isinstance(f, Ack)], "acked before Postgres had it"
        postgres.start()
        frames += await read_until(
            c, lambda f: isinstance(f, Ack) and f.ref == "while-down", timeout=30
        )
        await c.request(SessionEnd(id="end"))
        await collect(c, frames, SessionEnded)
    evts = events_of(frames)
    assert_gap_free(evts)
    stored = await stored_turns(url, session_id)
    assert "Is anyone there?" in [t["text"] for t in stored if t["role"] == "candidate"]
    await assert_stored_from(url, session_id, evts)


async def test_graceful_shutdown_sends_1001_and_hands_the_session_over(
    services: Services, tmp_path: Path
) -> None:
    # A 60 s lease: a take-over within the test can only come from the hand-over.
    env = serve_env(services, tmp_path, f"gs{uuid.uuid4().hex[:8]}:", MENTARA_LEASE_MS="60000")
    token = mint_dev_token(TEST_SECRET, f"g-{uuid.uuid4().hex[:6]}")
    with serving(env=env) as (proc_a, port_a), serving(env=env) as (_proc_b, port_b):
        await wait_ready(port_a)
        await wait_ready(port_b)
        frames: list[ServerFrame] = []
        phone = await InterviewClient.connect(f"ws://127.0.0.1:{port_a}/v1/interview", token=token)
        await phone.send(SessionStart(id="s", track="coding"))
        frames += await read_until(phone, lambda f: type(f).__name__ == "InterviewerDelta")
        session_id = next(e for e in events_of(frames) if isinstance(e, SessionStarted)).session_id

        proc_a.send_signal(signal.SIGTERM)  # a deploy
        with pytest.raises(ConnectionClosedByServer) as closed:
            while True:
                frames.append(await phone.recv(timeout=15))
        assert closed.value.code == CloseCode.GOING_AWAY
        await phone.close()
        proc_a.wait(timeout=30)

        async with open_client(f"ws://127.0.0.1:{port_b}/v1/interview", token=token) as again:
            last = events_of(frames)[-1].seq
            await again.send(SessionResume(session_id=session_id, last_seq=last))
            assert isinstance(await again.recv(), Resumed)
            # The lease was handed over, so B continues at once (the lease period is 60 s).
            ack = await again.request(CandidateMessage(id="after", text="Still there?"), timeout=15)
            assert ack.seq is not None
            frames += await read_until(
                again,
                lambda f: isinstance(f, InterviewerTurnEnd) and f.stop_reason == "end_turn",
                timeout=30,
            )
            await again.request(SessionEnd(id="end"))
            frames += await read_until(again, lambda f: isinstance(f, SessionEnded), timeout=30)
    evts = events_of(frames)
    assert_gap_free(evts)
    cut = next(e for e in evts if isinstance(e, InterviewerTurnEnd))
    assert cut.stop_reason == "error"  # the turn the deploy cut, stored as delivered
