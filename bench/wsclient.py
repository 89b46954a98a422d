"""A lean WebSocket client: websockets' Sans-I/O ``ClientProtocol`` on an asyncio Protocol.

The benchmark plays thousands of sockets per client process on a 2-core machine that also
runs the servers, so its client must cost as little as possible: no task per socket, no
queue per message. :class:`WsConnection` parses frames as bytes arrive and hands every text
or binary message to :meth:`WsConnection.on_message`; websockets' protocol answers pings and
close frames itself (its output is flushed after every read).

Contracts:

- :meth:`on_open` runs once the handshake succeeded; :attr:`opened` resolves then, or
  fails with the handshake error. :meth:`on_close` runs once, when the TCP connection is
  gone; :attr:`close_code` is the code the server sent (1006 when none), :attr:`closed` is
  set then.
- Hooks run inside ``data_received``: they must not block. An exception from a hook aborts
  the connection (counted by the caller through :attr:`fault`).
- :meth:`close` starts the closing handshake and aborts the transport if the server has not
  closed it within ``timeout``; it is safe to call any number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import cast

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidURI
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

__all__ = ["WsConnection", "connect"]

ABNORMAL = 1006
MAX_MESSAGE = 8 * 2**20


class WsConnection(asyncio.Protocol):
    """One client socket; subclass and override the ``on_*`` hooks."""

    def __init__(
        self,
        url: str,
        *,
        subprotocols: Iterable[str] = (),
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.url = url
        wanted = [Subprotocol(s) for s in subprotocols]
        self.protocol = ClientProtocol(
            parse_uri(url), subprotocols=wanted or None, max_size=MAX_MESSAGE
        )
        self.headers = tuple(headers)
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.fault: str | None = None
        self.by_client = False
        self._fragments: list[bytes] = []
        self._text = True
        self._abort_timer: asyncio.TimerHandle | None = None

    # -- hooks --------------------------------------------------------------------------

    def on_open(self) -> None:
        """The handshake succeeded."""

    def on_message(self, data: bytes, text: bool) -> None:
        """One whole message (a text message is given as its UTF-8 bytes)."""

    def on_close(self) -> None:
        """The connection is gone; :attr:`close_code` says how."""

    # -- sending ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.protocol.state is State.OPEN and not self.closed.is_set()

    def send_text(self, text: str | bytes) -> None:
        """Send one text message now (dropped silently if the socket is no longer open)."""
        if not self.is_open:
            return
        self.protocol.send_text(text.encode() if isinstance(text, str) else text)
        self._flush()

    def close(self, code: int = 1000, timeout: float = 2.0) -> None:
        """Start the closing handshake; abort after ``timeout`` s (see the contract)."""
        self.by_client = True
        if self.transport is None or self.closed.is_set():
            return
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code)
            self._flush()
        if self._abort_timer is None:
            self._abort_timer = asyncio.get_running_loop().call_later(timeout, self.abort)

    def abort(self) -> None:
        if self.transport is not None and not self.closed.is_set():
            self.transport.abort()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        request = self.protocol.connect()
        for name, value in self.headers:
            request.headers[name] = value
        self.protocol.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        events = self.protocol.events_received()
        self._flush()
        try:
            for event in events:
                if isinstance(event, Response):
                    self._handshake_done()
                    continue
                if not isinstance(event, Frame):
                    continue
                opcode = event.opcode
                if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                    if event.fin:
                        self.on_message(bytes(event.data), opcode is Opcode.TEXT)
                    else:
                        self._fragments = [bytes(event.data)]
                        self._text = opcode is Opcode.TEXT
                elif opcode is Opcode.CONT:
                    self._fragments.append(bytes(event.data))
                    if event.fin:
                        whole, self._fragments = b"".join(self._fragments), []
                        self.on_message(whole, self._text)
        except Exception as exc:
            self.fault = f"{type(exc).__name__}: {exc}"
            self.abort()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        rcvd = self.protocol.close_rcvd
        self.close_code = rcvd.code if rcvd is not None else ABNORMAL
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before the handshake ({exc})"))
        self.closed.set()
        with contextlib.suppress(Exception):
            self.on_close()

    # -- internals ----------------------------------------------------------------------

    def _handshake_done(self) -> None:
        error = self.protocol.handshake_exc
        if error is not None:
            if not self.opened.done():
                self.opened.set_exception(error)
            self.abort()
            return
        if not self.opened.done():
            self.opened.set_result(None)
        self.on_open()

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
        if self.protocol.close_expected() and self._abort_timer is None:
            self._abort_timer = asyncio.get_running_loop().call_later(2.0, self.abort)


async def connect(conn: WsConnection, timeout: float = 10.0) -> WsConnection:
    """Open ``conn``'s TCP connection and wait for its handshake (raises on failure, with
    the transport closed)."""
    uri = parse_uri(conn.url)
    if uri.secure:
        raise InvalidURI(conn.url, "the benchmark client speaks ws:// only")
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(lambda: conn, uri.host, uri.port)
            await conn.opened
    except BaseException:
        conn.abort()
        raise
    return conn
