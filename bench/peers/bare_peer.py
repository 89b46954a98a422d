"""Peer 2, the floor: a bare ``websockets`` server in one process, no Redis, no database.

Each socket is one session: ``session.start`` begins the offline script
(``bench.peers.script``), each ``candidate.message`` is echoed and answered with a turn, and
every event goes straight from the session's speaker to its socket (msgspec JSON, uvloop).
It is what delivering the same stream costs in Python with nothing else in the way.

Run: ``python -m bench.peers.bare_peer --port 0``; it prints
``peer: serving http://127.0.0.1:PORT`` once bound and stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import Any

import msgspec
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bench.peers.script import PeerSession, TurnScript, load_turns
from bench.peers.serve import bind, raise_fd_limit

__all__ = ["main"]


class _Frame(msgspec.Struct):
    type: str = ""
    text: str = ""


_decode = msgspec.json.Decoder(_Frame).decode
_encode = msgspec.json.Encoder().encode


def _handler(turns: TurnScript, tokens_per_s: float, window_s: float) -> Any:
    async def handle(ws: ServerConnection) -> None:
        session: PeerSession | None = None

        async def emit(event: dict[str, Any]) -> None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(_encode(event).decode())

        try:
            async for message in ws:
                try:
                    frame = _decode(message)
                except msgspec.DecodeError:
                    continue
                if frame.type == "session.start" and session is None:
                    session = PeerSession(
                        f"bare-{id(ws)}",
                        emit,
                        turns,
                        tokens_per_s=tokens_per_s,
                        window_s=window_s,
                    )
                    await session.begin()
                elif frame.type == "candidate.message" and session is not None:
                    await session.heard(frame.text)
        except ConnectionClosed:
            pass
        finally:
            if session is not None:
                await session.stop()

    return handle


async def _serve(port: int, tokens_per_s: float, window_s: float) -> None:
    sock = bind(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    handler = _handler(load_turns(), tokens_per_s, window_s)
    async with serve(handler, sock=sock, compression=None, ping_interval=20, max_queue=64):
        print(f"peer: serving http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.bare_peer")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens-per-s", type=float, default=40.0)
    parser.add_argument("--coalesce-ms", type=float, default=30.0)
    args = parser.parse_args(argv)
    raise_fd_limit()
    import uvloop

    uvloop.run(_serve(args.port, args.tokens_per_s, args.coalesce_ms / 1000.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
