"""Run an ASGI app factory under uvicorn on 127.0.0.1, with N worker processes sharing one
listening socket, the way ``mentara serve`` does (uvloop, httptools, uvicorn's default
WebSocket implementation). Prints ``peer: serving http://127.0.0.1:PORT`` once bound;
stops on SIGINT or SIGTERM."""

from __future__ import annotations

import socket
import sys

__all__ = ["bind", "raise_fd_limit", "serve"]


def raise_fd_limit() -> int:
    """Raise this process's open-file limit as far as allowed; return the soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (max(hard, 65536), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            continue
    return soft


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def serve(app: str, port: int, workers: int) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    raise_fd_limit()
    sock = bind(port)
    config = uvicorn.Config(
        app,
        factory=True,
        workers=workers,
        loop="uvloop",
        http="httptools",
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
    )
    print(f"peer: serving http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    sys.stdout.flush()
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])
