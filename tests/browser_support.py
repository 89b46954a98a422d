"""A real headless Chromium for browser tests, and a loopback proxy that can cut connections.

Chromium is the system's (Debian's ``chromium`` package; ``.ci/run`` installs it when it is
missing), driven by Playwright's Python package over the DevTools protocol. Playwright never
downloads a browser here: it is pointed at the system binary with ``executable_path``.

A missing browser fails the test with a message saying how to install one; only
``MENTARA_SKIP_BROWSER_TESTS=1`` turns that into a skip, so CI cannot pass by silently not
running the browser test. ``MENTARA_CHROMIUM`` names another Chromium or Chrome binary.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import pytest

from tests.tcp_relay import Reader, TcpRelay, Writer

SKIP_ENV = "MENTARA_SKIP_BROWSER_TESTS"
BINARY_ENV = "MENTARA_CHROMIUM"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Chromium's background services try to reach the internet at start-up; on a closed network
# those connections fail by the dozen and slow every start, so they are switched off.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # tests run as root in CI, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def _unavailable(reason: str) -> NoReturn:
    message = (
        f"browser test needs {reason}. Install Debian's Chromium (apt-get install chromium; "
        f".ci/run does this when it runs as root) or set {BINARY_ENV}=/path/to/chromium; "
        f"set {SKIP_ENV}=1 to skip the browser tests instead."
    )
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def chromium_path() -> str:
    """The Chromium binary to drive; fails (or skips, when opted out) if there is none."""
    named = os.environ.get(BINARY_ENV)
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            _unavailable(f"{BINARY_ENV}={named} to be an executable file")
        return named
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    _unavailable("a Chromium binary (none of " + ", ".join(_CANDIDATES) + " is on PATH)")


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless system Chromium under Playwright; yields the ``Browser``."""
    executable = chromium_path()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright package (pip install -r requirements-dev.lock)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, timeout=20_000
        )
        try:
            yield browser
        finally:
            await browser.close()


class CuttableProxy(TcpRelay):
    """A TCP proxy on 127.0.0.1:0 in front of ``target_port``. ``cut()`` drops every open
    connection at once (no close handshake, as a network drop would), while it goes on
    accepting new ones. ``request_lines`` keeps the first line of every HTTP request seen."""

    def __init__(self, target_port: int) -> None:
        super().__init__()
        self.target_port = target_port
        self.request_lines: list[str] = []
        self._websocket_clients: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        super().cut()
        self._websocket_clients.clear()

    async def close_websockets(self, code: int, reason: str = "") -> None:
        """Send each browser whose connection was upgraded to a WebSocket a close frame with
        ``code``, as a server closes (an unmasked frame: server to client), then cut every
        connection. Call it while no frame is streaming (it could split one)."""
        payload = code.to_bytes(2, "big") + reason.encode()[:120]
        frame = bytes([0x88, len(payload)]) + payload
        for writer in list(self._websocket_clients):
            writer.write(frame)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()  # a clean TCP close after the close frame: a reset would read as 1006
        await asyncio.sleep(0.2)
        self.cut()

    async def open_upstream(self) -> tuple[Reader, Writer]:
        return await asyncio.open_connection("127.0.0.1", self.target_port)

    async def forward(self, data: bytes, writer: Writer, client: Writer | None) -> None:
        if client is not None:
            # Requests start a chunk on a fresh or idle connection; enough to see every
            # request line the browser sends (WebSocket frames are masked).
            first = data.split(b"\r\n", 1)[0]
            if first[:4] in (b"GET ", b"POST", b"PUT ", b"DELE", b"HEAD", b"OPTI"):
                self.request_lines.append(first.decode("latin-1"))
                if b"\r\nupgrade: websocket" in data.lower():
                    self._websocket_clients.add(client)
        await super().forward(data, writer, client)

    def connection_closed(self, client: asyncio.StreamWriter) -> None:
        self._websocket_clients.discard(client)
