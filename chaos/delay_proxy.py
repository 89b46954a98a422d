"""A TCP proxy on one link that adds latency and loss on command: the ``slow_link`` fault.

This machine's kernel has no ``netem`` qdisc, so latency and loss cannot be put on a link
with ``tc``. The proxy stands in for it on the one link it serves (a server host to Redis):
every chunk read from either side is written to the other ``delay_ms`` later, in order; a
lost segment is modelled as TCP sees it from above, a retransmission: with probability
``loss`` a chunk waits one more retransmission timeout (``RTO_MS``), and everything behind it
with it (head-of-line blocking). It reads its settings from a JSON control file
(``{"delay_ms": 200, "loss": 0.05}``; absent or empty: pass through), checked every 100 ms.

It serves any number of routes at once (one per Redis node: a cluster client connects to
every node), all slowed alike. Run inside the host whose link it slows::

    python -m chaos.delay_proxy CONTROL_FILE LISTEN_HOST:PORT=TARGET_HOST:PORT ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

RTO_MS = 200.0
_CHUNK = 65536


@dataclass
class LinkState:
    delay_ms: float = 0.0
    loss: float = 0.0

    def refresh(self, control: Path) -> None:
        try:
            data = json.loads(control.read_text() or "{}")
        except (OSError, ValueError):
            data = {}
        self.delay_ms = float(data.get("delay_ms", 0.0))
        self.loss = float(data.get("loss", 0.0))


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: LinkState
) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=1024)

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while chunk := await reader.read(_CHUNK):
            extra = RTO_MS if link.loss and random.random() < link.loss else 0.0
            await queue.put((loop.time() + (link.delay_ms + extra) / 1000, chunk))
        await queue.put((0.0, b""))
        await sender
    finally:
        sender.cancel()
        with contextlib.suppress(Exception):
            writer.close()


Route = tuple[tuple[str, int], tuple[str, int]]
"""(listen host and port, target host and port)"""


async def serve(routes: list[Route], control: Path) -> None:
    link = LinkState()

    def handler(target: tuple[str, int]) -> Callable[..., Awaitable[None]]:
        async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            try:
                server_r, server_w = await asyncio.open_connection(*target)
            except OSError:
                client_w.close()
                return
            await asyncio.gather(
                _pump(client_r, server_w, link), _pump(server_r, client_w, link),
                return_exceptions=True,
            )  # fmt: skip

        return handle

    servers = [await asyncio.start_server(handler(target), *listen) for listen, target in routes]
    try:
        while True:
            link.refresh(control)
            await asyncio.sleep(0.1)
    finally:
        for server in servers:
            server.close()


def parse_route(text: str) -> Route:
    """``LISTEN_HOST:PORT=TARGET_HOST:PORT``."""
    listen, _, target = text.partition("=")
    (lh, _, lp), (th, _, tp) = listen.rpartition(":"), target.rpartition(":")
    return (lh, int(lp)), (th, int(tp))


def main(argv: list[str]) -> int:
    control, *routes = argv
    asyncio.run(serve([parse_route(r) for r in routes], Path(control)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
