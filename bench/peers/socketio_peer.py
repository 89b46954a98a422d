"""Peer 1: the stack most Python teams would pick, python-socketio with its Redis manager.

A minimal Socket.IO server under uvicorn, ``--workers N`` processes sharing one listening
socket, each with ``socketio.AsyncRedisManager`` so that an event emitted to a room on one
worker reaches the room's sockets on every worker (python-socketio publishes every emit to
one Redis channel that every worker decodes).

Protocol (WebSocket transport only): the client joins the default namespace, emits
``start {session}``: the socket joins room ``session`` and the session's speaker streams the
offline script to the room (``bench.peers.script``) as ``event`` messages; each
``message {text}`` is echoed as a ``candidate.message`` event and answered with a turn.

Run: ``python -m bench.peers.socketio_peer --port 0 --workers 2 --redis-url URL
--channel NAME``; it prints ``peer: serving http://127.0.0.1:PORT`` once bound.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["create_app", "main"]


def create_app() -> Any:
    """The ASGI app (a uvicorn factory: each worker builds its own from the environment)."""
    import socketio

    from bench.peers.script import PeerSession, load_turns

    redis_url = os.environ["BENCH_PEER_REDIS_URL"]
    channel = os.environ.get("BENCH_PEER_CHANNEL", "bench-socketio")
    tokens_per_s = float(os.environ.get("BENCH_PEER_TOKENS_PER_S", "40"))
    window_s = float(os.environ.get("BENCH_PEER_COALESCE_MS", "30")) / 1000.0
    turns = load_turns(os.environ.get("BENCH_PEER_QUESTION", "two-sum"))
    manager = socketio.AsyncRedisManager(redis_url, channel=channel)
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager,
        transports=["websocket"],
        logger=False,
        engineio_logger=False,
    )
    sessions: dict[str, PeerSession] = {}

    @sio.on("start")  # type: ignore[untyped-decorator]
    async def start(sid: str, data: dict[str, Any]) -> None:
        room = str(data["session"])
        await sio.enter_room(sid, room)

        async def emit(event: dict[str, Any]) -> None:
            await sio.emit("event", event, room=room)

        session = PeerSession(room, emit, turns, tokens_per_s=tokens_per_s, window_s=window_s)
        sessions[sid] = session
        await session.begin()

    @sio.on("message")  # type: ignore[untyped-decorator]
    async def message(sid: str, data: dict[str, Any]) -> None:
        session = sessions.get(sid)
        if session is not None:
            await session.heard(str(data.get("text", "")))

    @sio.on("disconnect")  # type: ignore[untyped-decorator]
    async def disconnect(sid: str, *reason: Any) -> None:
        session = sessions.pop(sid, None)
        if session is not None:
            await session.stop()

    return socketio.ASGIApp(sio)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers.socketio_peer")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--channel", default="bench-socketio")
    parser.add_argument("--tokens-per-s", type=float, default=40.0)
    parser.add_argument("--coalesce-ms", type=float, default=30.0)
    args = parser.parse_args(argv)
    os.environ.update(
        {
            "BENCH_PEER_REDIS_URL": args.redis_url,
            "BENCH_PEER_CHANNEL": args.channel,
            "BENCH_PEER_TOKENS_PER_S": str(args.tokens_per_s),
            "BENCH_PEER_COALESCE_MS": str(args.coalesce_ms),
        }
    )
    from bench.peers.serve import serve

    serve("bench.peers.socketio_peer:create_app", args.port, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
