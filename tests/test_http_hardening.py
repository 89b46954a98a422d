"""HTTP hardening (issue #10), from outside with raw sockets against a real server: a request
whose headers are not complete in time is closed; a request head over the size limit, and
every 4xx answer on the WebSocket upgrade path, closes the connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from protocol.client import open_client
from protocol.messages import Ping
from server.config import Settings
from tests.support import RunningServer, running_server

pytestmark = pytest.mark.timeout(60)

HEADER_TIMEOUT_S = 1.0
UPGRADE = (
    b"GET /v1/interview HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    hardened = settings.with_(header_timeout_s=HEADER_TIMEOUT_S, max_header_bytes=16 * 1024)
    async with running_server(hardened) as running:
        yield running


class Peer:
    """One raw TCP connection: what it received, and when the server closed it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.received = b""
        self.opened = time.perf_counter()

    @classmethod
    async def connect(cls, server: RunningServer) -> Peer:
        return cls(*await asyncio.open_connection("127.0.0.1", server.port))

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def closed_within(self, seconds: float) -> float | None:
        """Seconds since connecting at which the server closed, None if it has not."""
        try:
            async with asyncio.timeout(seconds):
                while chunk := await self.reader.read(65536):
                    self.received += chunk
        except TimeoutError:
            return None
        except ConnectionResetError:
            pass
        return time.perf_counter() - self.opened

    async def read_response(self) -> bytes:
        while b"\r\n\r\n" not in self.received:
            chunk = await asyncio.wait_for(self.reader.read(65536), 5)
            assert chunk, self.received
            self.received += chunk
        head, _, _ = self.received.partition(b"\r\n\r\n")
        return head

    def close(self) -> None:
        self.writer.close()


async def test_headers_that_never_end_are_closed(server: RunningServer) -> None:
    peer = await Peer.connect(server)
    peer.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    at = await peer.closed_within(HEADER_TIMEOUT_S + 4)
    peer.close()
    assert at is not None, "the connection is still open"
    assert at >= HEADER_TIMEOUT_S * 0.9
    assert peer.received.startswith(b"HTTP/1.1 408"), peer.received[:200]


async def test_headers_dribbled_byte_by_byte_are_closed_too(server: RunningServer) -> None:
    peer = await Peer.connect(server)

    async def dribble() -> None:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200:
            peer.send(bytes([byte]))
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(dribble())
    at = await peer.closed_within(HEADER_TIMEOUT_S + 4)
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    peer.close()
    assert at is not None, "still open: each byte restarted the clock"


async def test_a_kept_alive_connection_gets_the_same_deadline_per_request(
    server: RunningServer,
) -> None:
    peer = await Peer.connect(server)
    peer.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await peer.read_response()).startswith(b"HTTP/1.1 200")
    peer.received = b""
    peer.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    at = await peer.closed_within(HEADER_TIMEOUT_S + 4)
    peer.close()
    assert at is not None


async def test_a_request_head_over_the_limit_gets_431_and_is_closed(server: RunningServer) -> None:
    peer = await Peer.connect(server)
    peer.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 100 + b"\r\n" * 1)
    peer.send((b"X-Pad: " + b"a" * 100 + b"\r\n") * 200)  # 21 KB of headers, over 16 KiB
    at = await peer.closed_within(3)
    peer.close()
    assert peer.received.startswith(b"HTTP/1.1 431"), peer.received[:200]
    assert at is not None


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        # A header line longer than the WebSocket handshake parser takes.
        (UPGRADE + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
        # More header lines than it takes.
        (UPGRADE + b"X-N: 1\r\n" * 200 + b"\r\n", b"431"),
        # Not a valid handshake.
        (UPGRADE.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"short") + b"\r\n", b"400"),
        # A path with no WebSocket route.
        (UPGRADE.replace(b"/v1/interview", b"/nowhere") + b"\r\n", b"403"),
    ],
    ids=["header-line-too-long", "too-many-headers", "bad-key", "no-route"],
)
async def test_every_4xx_on_the_upgrade_path_closes_the_connection(
    server: RunningServer, request_head: bytes, status: bytes
) -> None:
    peer = await Peer.connect(server)
    peer.send(request_head)
    at = await peer.closed_within(3)
    peer.close()
    assert peer.received.startswith(b"HTTP/1.1 " + status), peer.received[:200]
    assert at is not None, "answered but left open"


async def test_well_behaved_clients_are_untouched(server: RunningServer) -> None:
    """A WebSocket lives on past the header deadline; a keep-alive connection that sends
    its next request in time is served."""
    async with open_client(server.ws_url(), token=server.token("patient")) as client:
        await asyncio.sleep(HEADER_TIMEOUT_S * 1.5)
        await client.request(Ping(id="still-here"))
    peer = await Peer.connect(server)
    for _ in range(3):
        peer.received = b""
        peer.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await peer.read_response()).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(HEADER_TIMEOUT_S / 2)
    peer.close()
