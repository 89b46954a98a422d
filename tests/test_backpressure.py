"""A slow socket never slows the session or the other sockets: bounded queue, then 4003,
then a resume without loss (ARCHITECTURE.md invariant 5)."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from protocol.client import ConnectionClosedByServer, InterviewClient, open_client
from protocol.codec import JSON, JSON_SUBPROTOCOL
from protocol.errors import CloseCode
from protocol.messages import (
    CodeSnapshot,
    CodeUpdate,
    Resumed,
    SessionEvent,
    SessionResume,
    SessionStart,
    SessionStarted,
    Welcome,
)
from server.config import Settings
from tests.interview_support import assert_gap_free
from tests.support import running_server


async def small_buffer_client(url: str, token: str) -> InterviewClient:
    """A client whose kernel receive buffer is tiny, so the server feels it stall at once
    (loopback otherwise autotunes receive buffers to tens of megabytes)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.connect(("127.0.0.1", int(url.split(":")[2].split("/")[0])))
    sock.setblocking(False)
    connection = await connect(
        url,
        sock=sock,
        additional_headers={"Authorization": f"Bearer {token}"},
        subprotocols=[Subprotocol(JSON_SUBPROTOCOL)],
        max_size=None,
    )
    client = InterviewClient(connection, JSON)
    assert isinstance(await client.recv(), Welcome)
    return client


async def test_a_stalled_socket_is_closed_4003_and_resumes_without_loss(settings: Settings) -> None:
    configured = settings.with_(
        send_queue_bytes=64 * 1024, rate_limit_per_s=1000.0, rate_limit_burst=1000
    )
    async with running_server(configured) as server:
        token = server.token("bea")
        async with (
            open_client(server.ws_url(), token=token) as phone,
            open_client(server.ws_url(), token=token) as stalled,
        ):
            await phone.request(SessionStart(id="s", track="coding"))
            started = await phone.recv()
            assert isinstance(started, SessionStarted)
            await stalled.send(SessionResume(session_id=started.session_id, last_seq=0))
            seen: list[SessionEvent] = []
            resumed = await stalled.recv()
            assert isinstance(resumed, Resumed)
            # ``stalled`` now stops reading. The phone sends ~6 MB of code snapshots; each is
            # fanned out to both sockets.
            sources = [f"# version {i}\n" + ("x = 1\n" * 30_000) for i in range(40)]
            for i, source in enumerate(sources):
                ack = await phone.request(CodeUpdate(id=f"c{i}", language="python", source=source))
                assert ack.seq is not None
            # The phone got every snapshot while the other socket was stuck.
            versions: list[int] = []
            while len(versions) < len(sources):
                frame = await phone.recv()
                if isinstance(frame, CodeSnapshot):
                    versions.append(frame.version)
            assert versions == list(range(1, len(sources) + 1))
            # The stalled socket was closed with 4003 once its queue passed the bound.
            with pytest.raises(ConnectionClosedByServer) as closed:
                while True:
                    frame = await stalled.recv(timeout=10)
                    if isinstance(frame, SessionEvent):
                        seen.append(frame)
            assert closed.value.code == CloseCode.SLOW_CONSUMER
            assert (REGISTRY.get_sample_value("mentara_slow_consumer_closes_total") or 0) >= 1
        # It resumes from what it had and loses nothing.
        async with open_client(server.ws_url(), token=token) as again:
            last = seen[-1].seq if seen else 0
            await again.send(SessionResume(session_id=started.session_id, last_seq=last))
            resumed = await again.recv()
            assert isinstance(resumed, Resumed)
            seen += [await again.recv() for _ in range(resumed.replayed)]  # type: ignore[misc]
        assert_gap_free(seen)
        assert sum(isinstance(e, CodeSnapshot) for e in seen) == len(sources)
