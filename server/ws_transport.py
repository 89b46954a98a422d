"""The WebSocket transport under the ASGI app: uvicorn's sans-I/O protocol, with one shared
heartbeat timer per process and 1001 on shutdown.

uvicorn's own keepalive arms two timers per socket (ping, then pong deadline). At tens of
thousands of mostly idle sockets that is tens of thousands of timer handles churning in the
event loop's heap. :class:`Heartbeat` instead keeps one timer per process: every
``interval`` seconds it walks the registered sockets, drops those that left two pings in a row
unanswered, and pings the rest. A socket costs one set entry and one counter.

Frames over ``ws_max_size`` are refused by the websockets protocol itself with close 1009
before the application sees them (PROTOCOL.md §6). Every 4xx answer to an upgrade request
closes the connection: uvicorn does so for the answers it writes (a handshake websockets
refuses, the app's ``websocket.close`` before accept as 403, an HTTP response from the app);
an upgrade request websockets cannot even parse (431, 414) is answered and closed here.

Select this class with ``uvicorn.Config(ws=MentaraWebSocketProtocol)`` (or the import string
``"server.ws_transport:MentaraWebSocketProtocol"``); ``ws_ping_interval`` sets the heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from protocol.errors import CloseCode
from server.http_transport import close_after_answer

log = logging.getLogger("mentara.transport")

#: Pings a socket may leave unanswered before it is dropped as dead.
MISSED_PINGS_ALLOWED = 2


class Heartbeat:
    """One timer that pings every registered socket of this process each ``interval`` seconds.

    Contract: a socket that has not answered the last two pings when the timer fires is
    failed with close 1011 (``keepalive ping timeout``); its transport is closed, so the ASGI
    app receives ``websocket.disconnect``. Registration and removal are O(1).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop = loop
        self.interval = interval
        self.sockets: set[MentaraWebSocketProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.pings_sent = 0
        self.dropped = 0

    def register(self, sock: MentaraWebSocketProtocol) -> None:
        self.sockets.add(sock)
        if self._timer is None:
            self._timer = self.loop.call_later(self.interval, self._tick)

    def unregister(self, sock: MentaraWebSocketProtocol) -> None:
        self.sockets.discard(sock)
        if not self.sockets and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        for sock in list(self.sockets):
            try:
                if sock.unanswered_pings >= MISSED_PINGS_ALLOWED:
                    self.dropped += 1
                    self.sockets.discard(sock)
                    sock.drop_dead_peer()
                else:
                    sock.send_heartbeat_ping()
                    self.pings_sent += 1
            except Exception:  # one broken transport must not stop the others' heartbeat
                log.exception("heartbeat failed for one socket")
                self.sockets.discard(sock)
        if self.sockets:
            self._timer = self.loop.call_later(self.interval, self._tick)


_heartbeats: dict[tuple[int, float], Heartbeat] = {}


def heartbeat_for(loop: asyncio.AbstractEventLoop, interval: float) -> Heartbeat:
    """The process's heartbeat for this loop and interval (one per server in practice)."""
    key = (id(loop), interval)
    beat = _heartbeats.get(key)
    if beat is None or beat.loop is not loop:
        beat = _heartbeats[key] = Heartbeat(loop, interval)
    return beat


_PING_PAYLOAD = b"mentara"
_FIN_TEXT = 0x81  # FIN + opcode 1
_FIN_BINARY = 0x82  # FIN + opcode 2
_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")


def _frame_header(first: int, length: int) -> bytes:
    """The header of an unmasked frame: first byte, then the payload length (RFC 6455 §5.2)."""
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return _LEN16.pack(first, 126, length)
    return _LEN64.pack(first, 127, length)


TRANSPORT_SCOPE_KEY = "mentara.transport"


class ReceiveQueue:
    """The ASGI receive queue of one socket: what uvicorn's ``asyncio.Queue`` does for it
    (``put_nowait``, ``get``, ``empty``; unbounded, one reader) in a list and at most one
    future. ``asyncio.Queue`` holds three deques of 64-slot blocks: about 2.3 KiB of every
    idle socket."""

    __slots__ = ("_getter", "_items")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._getter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class WritableFlag:
    """``asyncio.Event`` for the transport's flow control (``set``, ``clear``, ``is_set``,
    ``wait``), with its waiters' list made only when someone waits: an Event's deque is
    about 0.4 KiB of every idle socket."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool) -> None:
        self._value = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True


class MentaraWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with the shared heartbeat, a 1001 shutdown, and
    a lighter receive queue and writable flag (:class:`ReceiveQueue`, :class:`WritableFlag`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = ReceiveQueue()  # type: ignore[assignment]
        self.writable = WritableFlag(True)  # type: ignore[assignment]
        self.unanswered_pings = 0
        self._heartbeat: Heartbeat | None = None

    def data_received(self, data: bytes) -> None:
        if self.close_sent and not self.handshake_initiated:
            return  # refused before the handshake: what still arrives is dropped
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None:
            self._refuse_unparsed_request()

    def _refuse_unparsed_request(self) -> None:
        """websockets could not parse the upgrade request (a header line too long, too many
        headers: 431; a request line too long: 414; not HTTP: nothing). It queued its answer,
        but uvicorn only writes answers to requests it parsed: write it, and close (every
        4xx on the upgrade path ends the connection)."""
        if self.close_sent or self.transport.is_closing():
            return
        self.close_sent = True
        close_after_answer(self.transport, b"".join(self.conn.data_to_send()), self.loop)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # Lets the app reach its transport (``close_now``): ASGI middleware wraps ``send``.
        self.scope[TRANSPORT_SCOPE_KEY] = self  # type: ignore[literal-required]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The upgrade request and response (their headers) are not needed once the
            # handshake is done: about 3 KiB per idle socket. The headers are emptied, not
            # just dropped: websockets' suspended parser still refers to the request.
            for message_headers in (self.request.headers, self.response.headers):
                message_headers.clear()
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]

    # Keepalive: replace the per-socket timers with the shared heartbeat.
    def start_keepalive(self) -> None:
        if self.ping_interval is not None and self.ping_interval > 0:
            self._heartbeat = heartbeat_for(self.loop, float(self.ping_interval))
            self._heartbeat.register(self)

    def stop_keepalive(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.unregister(self)
            self._heartbeat = None

    def handle_pong(self, event: Frame) -> None:
        self.unanswered_pings = 0

    def send_heartbeat_ping(self) -> None:
        if self.close_sent or self.transport.is_closing():
            return
        self.unanswered_pings += 1
        self.conn.send_ping(_PING_PAYLOAD)
        self.transport.write(b"".join(self.conn.data_to_send()))

    def drop_dead_peer(self) -> None:
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.fail(CloseCode.INTERNAL, "keepalive ping timeout")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()

    async def write_frames(self, frames: list[bytes], *, text: bool) -> bool:
        """Write data frames straight to the transport, all in one ``write`` (one syscall for
        every frame that was waiting), after waiting for the transport to drain. The payloads
        are already encoded (text frames as UTF-8), so nothing is re-encoded. Returns False
        once the socket is closing (nothing more can be sent)."""
        await self.writable.wait()
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return False
        self._write_data(frames, text)
        return True

    def try_write(self, frame: bytes, *, text: bool) -> bool:
        """Write one data frame now if the transport takes it without waiting (it is not
        paused by flow control and not closing); False, writing nothing, otherwise. The
        caller keeps frame order: it only calls this when nothing of its own is queued."""
        if (
            not self.writable.is_set()
            or self.close_sent
            or self.disconnected
            or self.transport.is_closing()
        ):
            return False
        self._write_data((frame,), text)
        return True

    def _write_data(self, frames: list[bytes] | tuple[bytes, ...], text: bool) -> None:
        """Frame and write unfragmented data frames. Server frames are unmasked and no
        extension is negotiated (permessage-deflate is off), so the header is built here
        (RFC 6455 §5.2) instead of through websockets' general frame serializer, which costs
        more than the rest of a small frame's write; with an extension, websockets frames."""
        if self.conn.extensions:
            send = self.conn.send_text if text else self.conn.send_binary
            for frame in frames:
                send(frame)
            self.transport.write(b"".join(self.conn.data_to_send()))
            return
        first = _FIN_TEXT if text else _FIN_BINARY
        if len(frames) == 1:
            self.transport.write(_frame_header(first, len(frames[0])) + frames[0])
            return
        parts: list[bytes] = []
        for frame in frames:
            parts.append(_frame_header(first, len(frame)))
            parts.append(frame)
        self.transport.write(b"".join(parts))

    def close_now(self, code: int, reason: str, *, abort_after_s: float = 10.0) -> None:
        """Close without waiting for the peer to read what is queued (a slow consumer).

        The close frame goes after the bytes already written; if the peer has not read its
        way to it within ``abort_after_s``, the connection is dropped.
        """
        if self.close_sent or self.transport.is_closing():
            return
        self.stop_keepalive()
        self.conn.send_close(code, reason)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code})
        # As uvicorn does after a close: wait for the peer's close reply (``handle_close``
        # then closes the transport), and drop the connection if it never comes.
        self.close_timer = self.loop.call_later(abort_after_s, self.transport.abort)

    def shutdown(self) -> None:
        """Server shutdown: the client is told 1001 (going away: reconnect and resume)."""
        self.stop_keepalive()
        if self.handshake_complete and not self.close_sent and not self.transport.is_closing():
            self.queue.put_nowait({"type": "websocket.disconnect", "code": CloseCode.GOING_AWAY})
            self.conn.send_close(CloseCode.GOING_AWAY, "server shutting down")
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.transport.close()
            return
        super().shutdown()


def transport_of(scope: Any) -> MentaraWebSocketProtocol | None:
    """The transport under an ASGI WebSocket scope, when it is ours (else None)."""
    protocol = scope.get(TRANSPORT_SCOPE_KEY)
    return protocol if isinstance(protocol, MentaraWebSocketProtocol) else None


def close_now(scope: Any, code: int, reason: str) -> bool:
    """Close the socket of an ASGI ``scope`` at once, if it runs on this transport.

    ASGI has no way to close a socket whose peer stopped reading (every send waits for the
    transport to drain); this reaches the transport directly. Returns False when the socket
    is not ours (another server), in which case the caller falls back to a normal close.
    """
    protocol = scope.get(TRANSPORT_SCOPE_KEY)
    if isinstance(protocol, MentaraWebSocketProtocol):
        protocol.close_now(code, reason)
        return True
    return False
