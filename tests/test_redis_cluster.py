"""Two `mentara serve` workers on a real Redis Cluster (3 masters, 3 replicas), issue 13.

Sessions start on worker A (their owner), a second socket of each follows from worker B
(sharded pub/sub across workers), and once every session is streaming the cluster is
disturbed: a slot moved to another master, a replica promoted by ``CLUSTER FAILOVER``, a
master SIGKILLed (with the last appends it acknowledged never replicated). The interviews go
on: a candidate message each, the phone moves to worker B and resumes there (input forwarded
to the owner over a sharded worker channel), the session ends. Then every socket's events
are checked (seqs from 1 without gap or duplicate, both sockets of a session the same events),
and Postgres holds every event with the content the sockets got: no seq was ever given to
two events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.crc import key_slot

from protocol.client import InterviewClient, ServerErrorReply, open_client
from protocol.messages import (
    CandidateMessage,
    ClientFrame,
    InterviewerDelta,
    InterviewerTurnEnd,
    Resumed,
    SessionEnd,
    SessionEnded,
    SessionResume,
    SessionStart,
    SessionStarted,
    wire_type,
)
from server.dev_tokens import mint_dev_token
from server.hub.keys import session_keys
from server.hub.redis_client import connect as connect_redis
from server.sessions.logged_event import LoggedEvent
from tests.interview_support import assert_gap_free
from tests.redis_cluster import RedisClusterHandle, running_cluster
from tests.support import TEST_SECRET, Services, serve_env, serving, wait_ready
from tests.test_cluster import Stream, metric, pump

pytestmark = [pytest.mark.redis_cluster, pytest.mark.timeout(300)]

SESSIONS = 6
METRICS: list[str] = []  # each worker's /metrics at the end of the last run


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RedisClusterHandle]:
    with running_cluster(tmp_path / "cluster") as handle:
        yield handle


@dataclass
class Interview:
    session_id: str
    phone: Stream
    laptop: Stream
    prefix: str = ""


async def request(client: InterviewClient, frame: ClientFrame) -> None:
    """``frame`` until acked: an owner mid-failover answers a retryable error."""
    for _ in range(60):
        try:
            await client.request(frame, timeout=20)
            return
        except ServerErrorReply as exc:
            if not exc.error.retryable:
                raise
        await asyncio.sleep(0.5)
    raise AssertionError(f"{frame} never acked")


async def interview(
    port_a: int, port_b: int, started: Callable[[str], None], *, go: asyncio.Event
) -> Interview:
    token = mint_dev_token(TEST_SECRET, f"u-{uuid.uuid4().hex[:8]}")
    url_a = f"ws://127.0.0.1:{port_a}/v1/interview"
    url_b = f"ws://127.0.0.1:{port_b}/v1/interview"
    phone_stream, laptop_stream = Stream(), Stream()
    phone = await InterviewClient.connect(url_a, token=token)
    try:
        await phone.request(SessionStart(id="start", track="coding"), timeout=30)
        await pump(phone, phone_stream, InterviewerDelta)
        first = phone_stream.events[0]
        assert isinstance(first, SessionStarted)
        session_id = first.session_id
        async with open_client(url_b, token=token) as laptop:
            await laptop.send(SessionResume(session_id=session_id, last_seq=0))
            assert isinstance(await laptop.recv(), Resumed)
            await pump(laptop, laptop_stream, InterviewerDelta)
            started(session_id)
            await go.wait()  # the cluster is being disturbed: the turn streams on
            await pump(phone, phone_stream, InterviewerTurnEnd, timeout=90)
            await request(phone, CandidateMessage(id="c1", text="I would use a hash map."))
            await pump(phone, phone_stream, InterviewerTurnEnd, timeout=90)
            await phone.close()
            async with open_client(url_b, token=token) as phone_again:
                await phone_again.send(
                    SessionResume(session_id=session_id, last_seq=phone_stream.last_seq)
                )
                assert isinstance(await phone_again.recv(), Resumed)
                await request(phone_again, SessionEnd(id="end"))
                await pump(phone_again, phone_stream, SessionEnded, timeout=90)
            await pump(laptop, laptop_stream, SessionEnded, timeout=90)
    finally:
        await phone.close()
    return Interview(session_id, phone_stream, laptop_stream)


async def run_interviews(
    services: Services,
    tmp_path: Path,
    cluster: RedisClusterHandle,
    disturb: Callable[[list[str]], Awaitable[None]],
    *,
    lease_ms: int = 3000,
) -> list[Interview]:
    """``SESSIONS`` interviews on two workers; ``disturb(session_ids)`` once all stream."""
    prefix = f"rc{uuid.uuid4().hex[:8]}:"
    env = serve_env(services, tmp_path, prefix, MENTARA_LEASE_MS=str(lease_ms),
                    MENTARA_OFFLINE_TOKENS_PER_S="25")  # fmt: skip
    env["REDIS_URL"] = cluster.url
    with serving(env=env) as (_a, port_a), serving(env=env) as (_b, port_b):
        for port in (port_a, port_b):
            assert (await wait_ready(port)).status_code == 200
        ids: list[str] = []
        all_streaming = asyncio.Event()
        go = asyncio.Event()

        def started(session_id: str) -> None:
            ids.append(session_id)
            if len(ids) == SESSIONS:
                all_streaming.set()

        async def disturb_when_streaming() -> None:
            await all_streaming.wait()
            go.set()
            await disturb(ids)

        runs = [interview(port_a, port_b, started, go=go) for _ in range(SESSIONS)]
        *interviews, _ = await asyncio.gather(*runs, disturb_when_streaming())
        async with httpx.AsyncClient() as http:
            for port in (port_a, port_b):
                METRICS.append((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
    done = [i for i in interviews if isinstance(i, Interview)]
    for run in done:
        run.prefix = prefix
    return done


async def check(
    services: Services, interviews: list[Interview], cluster: RedisClusterHandle
) -> None:
    """Every socket gap-free from 1, both sockets alike; Postgres and the Redis history
    streams hold, at each seq, the event the sockets got (no seq named two events: a reused
    seq would be dropped by the sockets as a duplicate, yet differ in Redis)."""
    assert len(interviews) == SESSIONS
    redis = connect_redis(cluster.url)
    conn = await asyncpg.connect(services.database_url)
    try:
        for run in interviews:
            assert_gap_free(run.phone.events)
            assert_gap_free(run.laptop.events)
            assert run.phone.events == run.laptop.events
            rows = await conn.fetch(
                "SELECT seq, type, ts FROM session_events WHERE session_id = $1 ORDER BY seq",
                run.session_id,
            )
            stored = {r["seq"]: (r["type"], r["ts"]) for r in rows}
            assert sorted(stored) == list(range(1, len(stored) + 1))
            for event in run.phone.events:
                assert stored[event.seq] == (wire_type(event), event.ts), event.seq
            delivered = {e.seq: e for e in run.phone.events}
            key = session_keys(run.prefix, run.session_id).stream
            in_redis = [
                LoggedEvent.from_json(_entry(fields)).event
                for _, fields in await redis.xrange(key) or []
            ]
            assert in_redis, key
            for event in in_redis:
                if event.seq in delivered:
                    assert event == delivered[event.seq], event.seq
    finally:
        await conn.close()
        await redis.aclose()


def _entry(fields: dict[bytes | str, bytes | str] | None) -> bytes:
    assert fields is not None
    event = fields[b"e"]
    assert isinstance(event, bytes)
    return event


def slot_of(session_id: str) -> int:
    return key_slot(f"s:{session_id}".encode())


async def test_fan_out_and_resume_across_workers_while_a_slot_moves(
    services: Services, tmp_path: Path, cluster: RedisClusterHandle
) -> None:
    moved: list[int] = []

    async def move(session_ids: list[str]) -> None:
        slot = slot_of(session_ids[0])
        source = cluster.node_of_slot(slot)
        target = next(m for m in cluster.masters() if m is not source)
        # Slowly: half a second marked, a key every 0.1 s (TRYAGAIN for the append, whose keys
        # are split meanwhile), half a second with every key moved (ASK), then handed over
        # (MOVED).
        moved.append(
            await asyncio.to_thread(
                cluster.migrate_slot, slot, target, pause_s=0.5, key_pause_s=0.1, settle_s=0.5
            )
        )
        assert cluster.node_of_slot(slot) is target

    METRICS.clear()
    await check(services, await run_interviews(services, tmp_path, cluster, move), cluster)
    assert moved and moved[0] >= 3  # the session's keys (lease, fence, seq, log, ...) moved
    # The owner's appends met the migration and were redirected, not failed.
    redirected = {
        kind: sum(metric(text, "mentara_append_redirects_total", kind=kind) for text in METRICS)
        for kind in ("ask", "moved", "tryagain")
    }
    # MOVED is seen only when no ASK or TRYAGAIN made the pipeline re-read the slot map
    # before the handover (a CI run saw ask 10, tryagain 35, moved 0): either is the point.
    assert redirected["ask"] + redirected["tryagain"] >= 1, redirected


async def test_a_replica_promoted_by_cluster_failover_mid_stream(
    services: Services, tmp_path: Path, cluster: RedisClusterHandle
) -> None:
    async def failover(session_ids: list[str]) -> None:
        master = cluster.node_of_slot(slot_of(session_ids[0]))
        replica = cluster.replicas_of(master)[0]
        await asyncio.to_thread(cluster.failover, replica)
        assert cluster.node_of_slot(slot_of(session_ids[0])) is replica

    await check(services, await run_interviews(services, tmp_path, cluster, failover), cluster)


async def test_a_master_killed_mid_stream_with_unreplicated_appends(
    services: Services, tmp_path: Path, cluster: RedisClusterHandle
) -> None:
    """The replica is stopped (SIGSTOP) and its link cut, so the master's next appends
    reach no replica; then the master is SIGKILLed and the replica, resumed, is promoted
    without them: its seq counters are behind what the owner assigned and delivered. (Without
    the append's floor, this test fails: seqs given twice, XADD refused.)"""
    lost: dict[str, list[int]] = {}
    killed_slots: list[int] = []

    async def kill(session_ids: list[str]) -> None:
        slot = slot_of(session_ids[0])
        master = cluster.node_of_slot(slot)
        replica = cluster.replicas_of(master)[0]
        cluster.freeze(replica)
        try:
            master.command("CLIENT", "KILL", "TYPE", "replica")
            before = {
                sid: int(str(master.command("GET", f"{prefix_of(master, sid)}seq") or 0))
                for sid in session_ids
                if cluster.node_of_slot(slot_of(sid)) is master
            }
            await asyncio.sleep(2.0)  # appends go on, on the master only
            after = {
                sid: int(str(master.command("GET", f"{prefix_of(master, sid)}seq") or 0))
                for sid in before
            }
            cluster.kill(master)
        finally:
            cluster.thaw(replica)
        for sid in before:
            lost[sid] = list(range(before[sid] + 1, after[sid] + 1))
        killed_slots.extend(slot_of(sid) for sid in before)
        await asyncio.to_thread(cluster.wait_master, replica, timeout_s=60)

    # Leases long enough to outlive the failover: the owner keeps its lease (and token) and
    # appends on the promoted replica at once, against its older counter.
    interviews = await run_interviews(services, tmp_path, cluster, kill, lease_ms=15_000)
    await check(services, interviews, cluster)
    # The loss was real: seqs the owner assigned on the killed master, that the replica never
    # got (yet the sockets and Postgres have each of them once, with one content).
    assert any(lost.values()), lost


def prefix_of(node: object, session_id: str) -> str:
    """The key prefix of a session's keys on ``node`` (found by scanning: tests give every
    server a random prefix)."""
    from tests.redis_cluster import ClusterNode

    assert isinstance(node, ClusterNode)
    pattern = f"*{{s:{session_id}}}:seq"
    keys = node.command("KEYS", pattern)
    assert isinstance(keys, list) and keys, pattern
    return str(keys[0])[: -len("seq")]


async def test_a_master_that_stops_answering_is_failed_over_mid_stream(
    services: Services, tmp_path: Path, cluster: RedisClusterHandle
) -> None:
    """SIGSTOP: the master's sockets stay open but nothing answers (a partition as seen from
    the workers). Appends to it time out and are retried; the subscriber's link to it answers
    no PING and is dropped; once the replica is promoted both go there. The old master,
    resumed, rejoins as a replica."""

    async def freeze(session_ids: list[str]) -> None:
        master = cluster.node_of_slot(slot_of(session_ids[0]))
        replica = cluster.replicas_of(master)[0]
        cluster.freeze(master)
        try:
            await asyncio.to_thread(cluster.wait_master, replica, timeout_s=60)
        finally:
            cluster.thaw(master)

    interviews = await run_interviews(services, tmp_path, cluster, freeze, lease_ms=15_000)
    await check(services, interviews, cluster)
