"""How the app is put under uvicorn, in one place for ``mentara serve`` and the tests."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from server.config import Settings
from server.http_transport import ServerConfig

WS_PROTOCOL = "server.ws_transport:MentaraWebSocketProtocol"
HTTP_PROTOCOL = "server.http_transport:MentaraHttpProtocol"


def uvicorn_config(settings: Settings, app: Any, **overrides: Any) -> uvicorn.Config:
    """uvicorn settings: our HTTP transport (request-head deadline and size limit) and
    WebSocket transport, frame limit, heartbeat and grace period."""
    options: dict[str, Any] = {
        "ws": WS_PROTOCOL,
        "ws_max_size": settings.max_frame_bytes,
        "ws_ping_interval": settings.heartbeat_s,
        "ws_ping_timeout": None,
        "ws_per_message_deflate": False,
        "lifespan": "on",
        "loop": "uvloop",
        "http": HTTP_PROTOCOL,
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
        "log_level": settings.log_level,
        "access_log": False,
        "proxy_headers": True,
        "server_header": False,
    }
    options.update(overrides)
    return ServerConfig(
        app,
        header_timeout_s=settings.header_timeout_s,
        max_header_bytes=settings.max_header_bytes,
        **options,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free one); workers share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
