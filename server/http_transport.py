"""The HTTP/1.1 transport under the ASGI app: uvicorn's httptools protocol with a deadline
and a size limit on every request head.

uvicorn arms no timer until a first response is done, and its keep-alive timer stops at the
first byte of the next request, so a peer that starts a request and never finishes its
headers (or sends them a byte at a time) holds the connection for ever; httptools puts no
bound on the size of the headers either. :class:`MentaraHttpProtocol` adds:

- a deadline: a request's head (request line and headers) must be complete within
  ``header_timeout_s`` of its first byte (of the connection, for the first request); if not,
  the connection is closed (after ``408`` when part of a request arrived). Bytes arriving do
  not extend it. While an earlier request's response is still being sent, the deadline waits.
- a size limit: a head larger than ``max_header_bytes`` is answered ``431`` and closed.

A WebSocket upgrade is handed to :mod:`server.ws_transport` once its head is complete, so
both limits hold there too. :class:`ServerConfig` carries the two values (a ``uvicorn.Config``
that pickles with them into ``mentara serve``'s worker processes).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_MAX_HEADER_BYTES = 32 * 1024


class ServerConfig(uvicorn.Config):
    """``uvicorn.Config`` plus the request-head limits of :class:`MentaraHttpProtocol`."""

    def __init__(
        self,
        app: Any,
        *,
        header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        **options: Any,
    ) -> None:
        super().__init__(app, **options)
        self.header_timeout_s = header_timeout_s
        self.max_header_bytes = max_header_bytes


def _response(status: bytes, message: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: "
        + str(len(message)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + message
    )


#: How long a refused connection is still read (and its bytes dropped) after the answer.
LINGER_S = 2.0


def close_after_answer(
    transport: asyncio.Transport, answer: bytes, loop: asyncio.AbstractEventLoop
) -> None:
    """Write ``answer``, end our side, and close once the peer has had ``LINGER_S`` to read
    it. Closing at once while the peer's bytes are still arriving would reset the connection
    (RST) and lose the answer; the caller drops what arrives meanwhile."""
    transport.write(answer)
    if transport.can_write_eof():
        transport.write_eof()
    loop.call_later(LINGER_S, transport.close)


_TIMEOUT = _response(b"408 Request Timeout", b"Request headers not received in time.")
_TOO_LARGE = _response(b"431 Request Header Fields Too Large", b"Request headers too large.")


class MentaraHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head deadline and size limit (see the
    module docstring)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout_s = float(getattr(config, "header_timeout_s", DEFAULT_HEADER_TIMEOUT_S))
        self.max_header_bytes = int(getattr(config, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES))
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # bytes of the current request head received so far
        self._refused = False  # answered 408/431: what still arrives is dropped
        # True from a request's first byte (or the connection) until its head is complete.
        self._in_head = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            if self._head_timer is None:
                self._arm_head_timer()  # a kept-alive connection's next request begins
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_header_bytes:
            self._refuse(_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True  # (its bytes are counted from the end of the previous response)
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._in_head = True  # what comes next is the next request's head
        self._head_bytes = 0

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a response is still going out: wait for it first
            return
        if self._head_bytes:
            self._refuse(_TIMEOUT)
        else:
            self.transport.close()

    def _refuse(self, response: bytes) -> None:
        self._cancel_head_timer()
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        close_after_answer(self.transport, response, self.loop)
