"""The sockets of PROTOCOL.md §1, §2 and §6 against a real server on 127.0.0.1:0.

Every case runs over both subprotocols: the codes must be the same in JSON and MessagePack.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import websockets
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from protocol.client import ConnectionClosedByServer, InterviewClient, open_client
from protocol.codec import JSON, JSON_SUBPROTOCOL, MSGPACK, MSGPACK_SUBPROTOCOL
from protocol.errors import CloseCode, ErrorCode
from protocol.messages import (
    Ack,
    Auth,
    CandidateMessage,
    Error,
    Ping,
    Pong,
    SessionStart,
    Watch,
    Welcome,
)
from server.config import Settings
from tests.support import RunningServer, running_server

SUBPROTOCOLS = [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL]
pytestmark = pytest.mark.parametrize("subprotocol", SUBPROTOCOLS)


async def expect_close(client: InterviewClient, code: int, *, timeout: float = 5.0) -> list[object]:
    """Read frames until the server closes; assert the close code; return the frames seen."""
    seen: list[object] = []
    with pytest.raises(ConnectionClosedByServer) as closed:
        while True:
            seen.append(await client.recv(timeout=timeout))
    assert closed.value.code == code, (closed.value.code, closed.value.reason, seen)
    return seen


def errors_in(frames: list[object]) -> list[ErrorCode]:
    return [ErrorCode(f.code) for f in frames if isinstance(f, Error)]


#: Starts a server with some settings changed (``await custom_server(heartbeat_s=0.2)``).
ServerFactory = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def custom_server(settings: Settings) -> AsyncIterator[ServerFactory]:
    """A factory for servers with settings changed for one test; they stop after it, the
    last started first."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**changes: object) -> RunningServer:
            return await stack.enter_async_context(running_server(settings.with_(**changes)))

        yield start


def welcome_of(client: InterviewClient) -> Welcome:
    assert client.welcome is not None, "connected without a welcome"
    return client.welcome


async def test_header_token_gets_welcome(server: RunningServer, subprotocol: str) -> None:
    async with open_client(
        server.ws_url(), token=server.token("alice"), subprotocol=subprotocol
    ) as c:
        welcome = welcome_of(c)
        assert welcome.user_id == "alice"
        assert welcome.protocol == 1
        assert welcome.max_frame_bytes == server.settings.max_frame_bytes
        assert welcome.heartbeat_s == server.settings.heartbeat_s
        assert c.connection.subprotocol == subprotocol
        await c.send(Ping(id="p1"))
        pong = await c.recv(timeout=5)
        assert isinstance(pong, Pong)


async def test_auth_frame_gets_welcome_and_ack(server: RunningServer, subprotocol: str) -> None:
    async with open_client(
        server.ws_url(), token=server.token("bob"), auth="frame", subprotocol=subprotocol
    ) as c:
        assert welcome_of(c).user_id == "bob"


async def test_no_known_subprotocol_means_json(server: RunningServer, subprotocol: str) -> None:
    headers = {"Authorization": f"Bearer {server.token()}"}
    async with connect(
        server.ws_url(), additional_headers=headers, subprotocols=[Subprotocol("other.v9")]
    ) as ws:
        first = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(first, str)
        assert JSON.decode_server(first).__class__.__name__ == "Welcome"
        assert ws.subprotocol is None


async def test_first_listed_supported_subprotocol_wins(
    server: RunningServer, subprotocol: str
) -> None:
    other = MSGPACK_SUBPROTOCOL if subprotocol == JSON_SUBPROTOCOL else JSON_SUBPROTOCOL
    headers = {"Authorization": f"Bearer {server.token()}"}
    async with connect(
        server.ws_url(),
        additional_headers=headers,
        subprotocols=[Subprotocol(p) for p in ("x.unknown", subprotocol, other)],
    ) as ws:
        assert ws.subprotocol == subprotocol
        first = await asyncio.wait_for(ws.recv(), 5)
        codec = JSON if subprotocol == JSON_SUBPROTOCOL else MSGPACK
        assert isinstance(first, str if codec is JSON else bytes)
        assert codec.decode_server(first).__class__.__name__ == "Welcome"


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ."],
    ids=["garbage", "alg-none"],
)
async def test_bad_header_token_is_closed_4001(
    server: RunningServer, subprotocol: str, token: str
) -> None:
    async with open_client(
        server.ws_url(), token=token, expect_welcome=False, subprotocol=subprotocol
    ) as c:
        frames = await expect_close(c, CloseCode.UNAUTHENTICATED)
        assert errors_in(frames) == [ErrorCode.UNAUTHORIZED]


async def test_expired_and_wrongly_signed_tokens_are_closed_4001(
    server: RunningServer, subprotocol: str
) -> None:
    from server.dev_tokens import mint_dev_token

    expired = server.token(ttl_s=-60)
    forged = mint_dev_token("another-secret-" + "y" * 32, "mallory")
    for token in (expired, forged):
        async with open_client(server.ws_url(), auth="none", subprotocol=subprotocol) as c:
            await c.send(Auth(token=token, id="a1"))
            frames = await expect_close(c, CloseCode.UNAUTHENTICATED)
            assert [(f.code, f.ref) for f in frames if isinstance(f, Error)] == [
                ("unauthorized", "a1")
            ]


async def test_silent_socket_is_closed_4001(custom_server: ServerFactory, subprotocol: str) -> None:
    server = await custom_server(auth_timeout_s=0.3)
    async with open_client(server.ws_url(), auth="none", subprotocol=subprotocol) as c:
        frames = await expect_close(c, CloseCode.UNAUTHENTICATED)
        assert errors_in(frames) == [ErrorCode.UNAUTHORIZED]


async def test_first_frame_must_be_auth(server: RunningServer, subprotocol: str) -> None:
    async with open_client(server.ws_url(), auth="none", subprotocol=subprotocol) as c:
        await c.send(Ping(id="early"))
        frames = await expect_close(c, CloseCode.UNAUTHENTICATED)
        assert errors_in(frames) == [ErrorCode.UNAUTHORIZED]


async def test_oversize_frame_is_closed_1009(
    custom_server: ServerFactory, subprotocol: str
) -> None:
    server = await custom_server(max_frame_bytes=4096)
    async with open_client(server.ws_url(), token=server.token(), subprotocol=subprotocol) as c:
        await c.send(CandidateMessage(id="big", text="x" * 5000))
        await expect_close(c, CloseCode.TOO_LARGE)


async def test_oversize_frame_before_auth_is_closed_1009(
    server: RunningServer, subprotocol: str
) -> None:
    async with open_client(server.ws_url(), auth="none", subprotocol=subprotocol) as c:
        await c.send_raw(b"\x00" * (server.settings.max_frame_bytes + 1))
        await expect_close(c, CloseCode.TOO_LARGE)


async def test_malformed_frames_get_errors_and_the_socket_stays(
    server: RunningServer, subprotocol: str
) -> None:
    codec = JSON if subprotocol == JSON_SUBPROTOCOL else MSGPACK
    cases: list[tuple[bytes | str, ErrorCode, str | None, str | None]] = [
        (b"\xff\xfe garbage", ErrorCode.BAD_FRAME, None, None),
        (codec.encode_raw([1, 2, 3]), ErrorCode.BAD_FRAME, None, None),
        (codec.encode_raw({"type": 7}), ErrorCode.BAD_FRAME, None, None),
        (
            codec.encode_raw({"type": "no.such.type", "id": "u1"}),
            ErrorCode.UNKNOWN_TYPE,
            "u1",
            None,
        ),
        (
            codec.encode_raw({"type": "candidate.message", "id": "m1", "text": 5}),
            ErrorCode.INVALID_FIELD,
            "m1",
            "text",
        ),
        (
            codec.encode_raw({"type": "candidate.message", "id": "m2"}),
            ErrorCode.INVALID_FIELD,
            "m2",
            "text",
        ),
        (
            codec.encode_raw({"type": "session.start", "id": "s1", "track": "poetry"}),
            ErrorCode.INVALID_FIELD,
            "s1",
            "track",
        ),
        (
            codec.encode_raw({"type": "session.resume", "session_id": "x", "last_seq": -1}),
            ErrorCode.INVALID_FIELD,
            None,
            "last_seq",
        ),
    ]
    async with open_client(server.ws_url(), token=server.token(), subprotocol=subprotocol) as c:
        for raw, code, ref, field in cases:
            if codec is JSON and isinstance(raw, bytes):
                with contextlib.suppress(UnicodeDecodeError):
                    raw = raw.decode()
            await c.send_raw(raw)
            reply = await c.recv(timeout=5)
            assert isinstance(reply, Error), (raw, reply)
            assert (reply.code, reply.retryable) == (code, False), (raw, reply)
            assert (None if reply.ref is msgspec_unset() else reply.ref) == ref, (raw, reply)
            if field is not None:
                assert reply.field == field
                assert field in reply.message
        ack = await c.request(Ping(id="still-here"))
        assert isinstance(ack, (Ack, Pong))


def msgspec_unset() -> object:
    import msgspec

    return msgspec.UNSET


async def test_rate_limit_then_1008_for_persistent_abuse(
    custom_server: ServerFactory, subprotocol: str
) -> None:
    server = await custom_server(rate_limit_per_s=1.0, rate_limit_burst=5, rate_limit_strikes=10)
    async with open_client(server.ws_url(), token=server.token(), subprotocol=subprotocol) as c:
        for i in range(40):
            try:
                await c.send(Ping(id=f"p{i}"))
            except ConnectionClosedByServer:
                break
        frames = await expect_close(c, CloseCode.POLICY)
        codes = errors_in(frames)
        assert sum(isinstance(f, Pong) for f in frames) == 5  # the burst was served
        assert codes.count(ErrorCode.RATE_LIMITED) == 10
        retryable = [f.retryable for f in frames if isinstance(f, Error)]
        assert retryable[:9] == [True] * 9


async def test_rate_limited_socket_recovers_when_it_slows_down(
    custom_server: ServerFactory, subprotocol: str
) -> None:
    server = await custom_server(rate_limit_per_s=20.0, rate_limit_burst=3, rate_limit_strikes=50)
    async with open_client(server.ws_url(), token=server.token(), subprotocol=subprotocol) as c:
        for i in range(5):
            await c.send(Ping(id=f"burst{i}"))
        replies = [await c.recv(timeout=5) for _ in range(8)]  # 3 x (pong, ack), 2 errors
        assert sum(isinstance(r, Error) and r.code == "rate_limited" for r in replies) == 2
        await asyncio.sleep(0.3)
        assert isinstance(await c.request(Ping(id="calm")), (Ack, Pong))


async def test_token_expiry_closes_4001_unless_refreshed(
    server: RunningServer, subprotocol: str
) -> None:
    # leeway is 5 s by default: a token "expiring" 4.5 s ago is still good for ~0.5 s.
    async with open_client(
        server.ws_url(), token=server.token(ttl_s=-4), subprotocol=subprotocol
    ) as c:
        frames = await expect_close(c, CloseCode.UNAUTHENTICATED, timeout=5)
        assert errors_in(frames) == [ErrorCode.UNAUTHORIZED]
    async with open_client(
        server.ws_url(), token=server.token(ttl_s=-4), subprotocol=subprotocol
    ) as c:
        ack = await c.request(Auth(token=server.token(ttl_s=3600), id="refresh"))
        assert isinstance(ack, Ack) and ack.ref == "refresh"
        await asyncio.sleep(1.5)
        assert isinstance(await c.request(Ping(id="alive")), (Ack, Pong))


async def test_refresh_for_another_user_is_refused(server: RunningServer, subprotocol: str) -> None:
    async with open_client(
        server.ws_url(), token=server.token("alice"), subprotocol=subprotocol
    ) as c:
        await c.send(Auth(token=server.token("eve"), id="swap"))
        frames = await expect_close(c, CloseCode.UNAUTHENTICATED)
        assert [(f.code, f.ref) for f in frames if isinstance(f, Error)] == [
            ("unauthorized", "swap")
        ]


async def test_admin_socket_needs_admin_rights(server: RunningServer, subprotocol: str) -> None:
    url = server.ws_url("/v1/admin/watch")
    async with open_client(
        url, token=server.token("alice"), expect_welcome=False, subprotocol=subprotocol
    ) as c:
        frames = await expect_close(c, CloseCode.POLICY)
        assert errors_in(frames) == [ErrorCode.FORBIDDEN]
    async with open_client(
        url, token=server.token("root", admin=True), subprotocol=subprotocol
    ) as c:
        assert welcome_of(c).user_id == "root"
        await c.send(SessionStart(id="s1", track="coding"))
        reply = await c.recv(timeout=5)
        assert isinstance(reply, Error) and reply.code == "forbidden" and reply.ref == "s1"
        assert isinstance(await c.request(Ping(id="ok")), (Ack, Pong))
        await c.send(Watch(session_id="nope"))  # reaches the session layer, not refused here
        reply = await c.recv(timeout=5)
        assert not (isinstance(reply, Error) and reply.code == "forbidden")


async def test_dead_peer_is_dropped_by_the_heartbeat(
    custom_server: ServerFactory, subprotocol: str
) -> None:
    server = await custom_server(heartbeat_s=0.2)
    headers = {"Authorization": f"Bearer {server.token()}"}
    async with connect(
        server.ws_url(), additional_headers=headers, subprotocols=[Subprotocol(subprotocol)]
    ) as ws:
        await asyncio.wait_for(ws.recv(), 5)  # welcome
        # Stop reading: our pongs stop, as a vanished phone's would.
        ws.transport.pause_reading()
        await asyncio.sleep(1.2)
        ws.transport.resume_reading()
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.INTERNAL
        assert "keepalive" in closed.value.rcvd.reason


async def test_live_peer_survives_many_heartbeats(
    custom_server: ServerFactory, subprotocol: str
) -> None:
    server = await custom_server(heartbeat_s=0.1)
    async with open_client(server.ws_url(), token=server.token(), subprotocol=subprotocol) as c:
        await asyncio.sleep(1.0)  # ~10 pings, each answered by the client library
        assert isinstance(await c.request(Ping(id="after")), (Ack, Pong))


async def test_shutdown_sends_1001(settings: Settings, subprotocol: str) -> None:
    async with running_server(settings) as server:
        c = await InterviewClient.connect(
            server.ws_url(), token=server.token(), subprotocol=subprotocol
        )
        server.server.should_exit = True
        await expect_close(c, CloseCode.GOING_AWAY)
        await c.close()
