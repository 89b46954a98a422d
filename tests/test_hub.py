"""The hub's invariants, each on real Redis (ARCHITECTURE.md invariants 1, 2 and 6, and the
gap fill behind 3): fencing, gap-free seqs across owners, encode once per encoding."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from prometheus_client import REGISTRY

from protocol.client import InterviewClient, open_client
from protocol.codec import JSON, JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, Codec
from protocol.messages import (
    InterviewerDelta,
    Resumed,
    SessionEvent,
    SessionResume,
    SessionStart,
    SessionStarted,
)
from server.hub.keys import session_keys
from server.hub.lease import RELEASED, Leases
from server.sessions.channel import Attachment, SessionChannel
from server.sessions.history import History
from server.sessions.log import LoggedEvent
from server.sessions.store import SessionStore
from tests.interview_support import read_until, turn_ended
from tests.support import RunningServer, Services, running_server


def body(text: str) -> bytes:
    raw = JSON.encode(InterviewerDelta(turn_id="i1", text=text, seq=0, ts=0))
    return raw.replace(b'"seq":0,"ts":0,', b"", 1)


async def stream(redis: aioredis.Redis, key: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """XRANGE of a whole stream, as this suite's clients (no decode_responses) read it."""
    entries: list[tuple[bytes, dict[bytes, bytes]]] = []
    for entry_id, fields in await redis.xrange(key) or []:
        assert isinstance(entry_id, bytes) and fields is not None
        decoded: dict[bytes, bytes] = {}
        for name, value in fields.items():
            assert isinstance(name, bytes) and isinstance(value, bytes)
            decoded[name] = value
        entries.append((entry_id, decoded))
    return entries


async def append(leases: Leases, session_id: str, token: str, text: str) -> int:
    """Append as an owner that knows the counter (the owner's last seq is the floor)."""
    keys = session_keys(leases.prefix, session_id)
    last = int(await leases.redis.get(keys.seq) or 0)
    seq = await leases.append_script(
        keys=[keys.lease, keys.seq, keys.stream, keys.inputs],
        args=[token, 1, body(text), 100, 60_000, keys.channel, "", last],
    )
    return int(seq)


async def test_one_owner_at_a_time_and_a_stale_owner_cannot_append(
    redis: aioredis.Redis, new_leases: Callable[..., Leases]
) -> None:
    prefix = f"hub{uuid.uuid4().hex[:6]}:"
    a = new_leases(prefix, "worker-a", lease_ms=300)
    b = new_leases(prefix, "worker-b", lease_ms=300)
    lease_a = await a.acquire("s1", 0)
    assert lease_a is not None
    assert await b.acquire("s1", 0) is None  # one owner
    assert await b.holder("s1") == "worker-a"
    assert [await append(a, "s1", lease_a.token, t) for t in ("x", "y")] == [1, 2]

    await asyncio.sleep(0.4)  # A stops renewing (a GC pause, a partition): its lease expires
    lease_b = await b.acquire("s1", 0)
    assert lease_b is not None
    assert lease_b.seq == 2
    with pytest.raises(redis_errors.ResponseError, match="FENCED"):
        await append(a, "s1", lease_a.token, "stale")  # the stale owner is refused
    assert await append(b, "s1", lease_b.token, "z") == 3  # and seq goes on without a gap
    entries = await stream(redis, session_keys(prefix, "s1").stream)
    assert [int(i.split(b"-")[0]) for i, _ in entries] == [1, 2, 3]

    # A hand-over: B releases, anyone may take it at once; the fence grows every time.
    await b.release(lease_b)
    assert await a.holder("s1") == RELEASED
    again = await a.acquire("s1", 0)
    assert again is not None
    assert int(again.token.rsplit(":", 1)[1]) > int(lease_b.token.rsplit(":", 1)[1])


async def test_the_seq_counter_is_never_rewound(
    redis: aioredis.Redis, new_leases: Callable[..., Leases]
) -> None:
    """After Redis lost the counter, a new lease raises it to the floor (what Postgres has)."""
    prefix = f"hub{uuid.uuid4().hex[:6]}:"
    leases = new_leases(prefix, "w", lease_ms=5000)
    lease = await leases.acquire("s2", 41)
    assert lease is not None
    assert lease.seq == 41
    assert await append(leases, "s2", lease.token, "next") == 42


async def test_a_former_owner_retakes_a_lost_lease_only_if_nobody_appended_since(
    redis: aioredis.Redis, new_leases: Callable[..., Leases]
) -> None:
    """Found by the chaos harness: A (cut off) lost its lease to B, B appended, then B's lease
    expired too (B frozen). A, back, saw its lease gone and took it again as if Redis had lost
    it, and went on from its stale state (a delta for a turn B had ended). A re-take is now
    refused once the counter, or the store, is past the re-taker's last seq."""
    prefix = f"hub{uuid.uuid4().hex[:6]}:"
    a = new_leases(prefix, "worker-a", lease_ms=300)
    b = new_leases(prefix, "worker-b", lease_ms=300)
    lease_a = await a.acquire("s3", 0)
    assert lease_a is not None
    assert await append(a, "s3", lease_a.token, "x") == 1
    await asyncio.sleep(0.4)
    lease_b = await b.acquire("s3", 0)
    assert lease_b is not None
    assert await append(b, "s3", lease_b.token, "turn ended by B") == 2
    await asyncio.sleep(0.4)  # B's lease expires in its turn

    assert await a.acquire("s3", 1, retake=True) is None  # A's state ends at seq 1: stale
    assert await b.acquire("s3", 2, retake=True) is not None  # B's does not

    # Redis lost its data (counter gone) after B's seq 2 reached Postgres: A's state is still
    # stale, and Postgres says so.
    keys = session_keys(prefix, "s3")
    await redis.delete(keys.lease, keys.seq, keys.fence)
    assert await a.retake("s3", 1, stored_seq=2) is None
    # Nobody appended past A's last seq anywhere: a plain data loss, A takes it back.
    again = await a.retake("s3", 2, stored_seq=2)
    assert again is not None and again.seq == 2


class FakeSocket:
    """Stands in for a ClientSocket: records the bytes delivered to it."""

    def __init__(self, codec: Codec = JSON) -> None:
        self.codec = codec
        self.received: list[bytes] = []

    def send_encoded(self, payload: bytes) -> None:
        self.received.append(payload)

    async def send_paced(self, payload: bytes) -> None:
        self.received.append(payload)

    def send(self, message: msgspec.Struct) -> None:
        self.received.append(self.codec.encode(message))

    def close(self, code: int, reason: str = "") -> None:
        raise AssertionError(f"closed {code} {reason}")


async def test_a_gap_on_the_live_channel_is_filled_from_history(
    redis: aioredis.Redis, new_leases: Callable[..., Leases], services: Services
) -> None:
    import asyncpg

    prefix = f"hub{uuid.uuid4().hex[:6]}:"
    leases = new_leases(prefix, "w", lease_ms=5000)
    lease = await leases.acquire("s3", 0)
    assert lease is not None
    for text in ("a", "b", "c", "d"):
        await append(leases, "s3", lease.token, text)
    entries = await stream(redis, session_keys(prefix, "s3").stream)
    published = [LoggedEvent.from_json(fields[b"e"]) for _, fields in entries]

    pool = await asyncpg.create_pool(services.database_url, min_size=1, max_size=2)
    try:
        channel = SessionChannel(
            "s3", History(redis, SessionStore(pool), prefix), snapshot=_no_snapshot
        )
        sock = FakeSocket()
        channel.attachments[sock] = Attachment(sock, next_seq=1, catching_up=False)  # type: ignore[index,arg-type]
        channel.set_head(0)
        channel.offer(published[0])
        channel.offer(published[3])  # 2 and 3 were lost by pub/sub
        await asyncio.sleep(0.2)
        channel.offer(published[2])  # a late duplicate
    finally:
        await pool.close()
    seqs = [JSON.decode_server(raw).seq for raw in sock.received]  # type: ignore[union-attr]
    assert seqs == [1, 2, 3, 4]
    assert (REGISTRY.get_sample_value("mentara_gap_fills_total") or 0) >= 1


async def _no_snapshot(session_id: str) -> Any:
    return None


async def test_each_event_is_encoded_once_per_encoding(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    encodes: list[tuple[str, int]] = []
    original = Codec.encode

    def counting(self: Codec, message: msgspec.Struct) -> bytes:
        if isinstance(message, SessionEvent):
            encodes.append((self.name, message.seq))
        return original(self, message)

    monkeypatch.setattr(Codec, "encode", counting)
    async with running_server(
        settings.with_(offline_tokens_per_s=400.0, coalesce_ms=5.0)
    ) as server:
        await _many_listeners(server)
    event_encodes = [(name, seq) for name, seq in encodes if seq > 0]
    # No event was encoded twice in the same encoding, however many sockets received it.
    assert len(event_encodes) == len(set(event_encodes))
    # JSON bytes come straight from the append (the Lua script stamps seq into them).
    assert not [e for e in event_encodes if e[0] == "json"]
    assert {name for name, _ in event_encodes} == {"msgpack"}


async def _many_listeners(server: RunningServer) -> None:
    token = server.token(f"enc-{uuid.uuid4().hex[:6]}")
    async with open_client(server.ws_url(), token=token) as owner:
        await owner.request(SessionStart(id="s", track="coding"))
        started = await owner.recv()
        assert isinstance(started, SessionStarted)
        listeners = [
            await InterviewClient.connect(server.ws_url(), token=token, subprotocol=sp)
            for sp in [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL] * 4
        ]
        try:
            for listener in listeners:
                await listener.send(SessionResume(session_id=started.session_id, last_seq=1))
                assert isinstance(await listener.recv(), Resumed)
            await read_until(owner, turn_ended(2))
            for listener in listeners:
                await read_until(listener, turn_ended(2))
        finally:
            for listener in listeners:
                await listener.close()
