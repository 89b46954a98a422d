"""The reference async client of protocol v1, for tests, the load harness and tools.

The one module of ``protocol`` that does I/O (``websockets``' asyncio client). Import it as
``protocol.client``; ``import protocol`` does not load it.

    async with open_client(url, token=jwt) as client:
        ack = await client.request(SessionStart(id=new_id(), track="coding"))
        async for event in client.events():
            ...

A client is meant for one task: ``recv``, ``request`` and ``events`` must not run
concurrently (``send`` may). Cancelling any of them is safe: no frame is lost, frames read
while waiting for a reply stay buffered for ``recv``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Literal, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from protocol.codec import CODECS, JSON, JSON_SUBPROTOCOL, Codec
from protocol.errors import CloseCode, ErrorCode, FrameError, ProtocolError
from protocol.messages import (
    Ack,
    Auth,
    ClientFrame,
    Error,
    ServerFrame,
    SessionEvent,
    Welcome,
    wire_type,
)

__all__ = [
    "AuthMode",
    "ConnectionClosedByServer",
    "InterviewClient",
    "ReceiveBufferFull",
    "ServerErrorReply",
    "new_id",
    "open_client",
]

AuthMode = Literal["header", "frame", "none"]
"""``header``: ``Authorization: Bearer`` on the upgrade; ``frame``: an ``auth`` frame first;
``none``: send no credentials (for tests of unauthenticated sockets)."""

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_SIZE = 8 * 2**20
DEFAULT_BUFFER_LIMIT = 10_000
_ABNORMAL_CLOSURE = 1006


def new_id() -> str:
    """A fresh frame ``id``: a UUID4 as 32 lowercase hex digits."""
    return uuid.uuid4().hex


class ServerErrorReply(ProtocolError):
    """The server answered a request with ``error``; ``error`` is that frame."""

    def __init__(self, error: Error) -> None:
        super().__init__(f"{error.code.value}: {error.message}")
        self.error = error


class ConnectionClosedByServer(ProtocolError):
    """The socket is closed. ``code`` is the close code received (1006 when the connection
    dropped without one), ``reason`` the close reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class ReceiveBufferFull(ProtocolError):
    """``request`` read more unrelated frames than the buffer holds before its reply came.

    Overflow policy: the frame that did not fit is dropped, so the client no longer sees
    every frame; treat it as broken and close it.
    """


class InterviewClient:
    """One WebSocket to the interview server (or the admin watch endpoint).

    ``welcome`` is the server's ``welcome`` frame once authenticated by ``connect``, else
    ``None``. ``codec`` is the encoding the server selected.
    """

    def __init__(
        self,
        connection: ClientConnection,
        codec: Codec,
        *,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    ) -> None:
        self.connection = connection
        self.codec = codec
        self.welcome: Welcome | None = None
        self._buffer: deque[ServerFrame] = deque()
        self._buffer_limit = buffer_limit

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        token: str | None = None,
        auth: AuthMode = "header",
        subprotocol: str | None = JSON_SUBPROTOCOL,
        max_size: int | None = DEFAULT_MAX_SIZE,
        open_timeout: float = DEFAULT_TIMEOUT,
        welcome_timeout: float = DEFAULT_TIMEOUT,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
        expect_welcome: bool = True,
    ) -> Self:
        """Open a socket, offering ``subprotocol`` (``None``: offer none, i.e. JSON).

        With a ``token``, authenticates (``auth="header"`` or ``"frame"``) and waits for
        ``welcome``; raises ``ServerErrorReply`` if the server answers ``error``,
        ``ConnectionClosedByServer`` if it closes, ``TimeoutError`` after
        ``welcome_timeout``. Without a token nothing is sent or awaited; with
        ``expect_welcome=False`` the token is sent but the reply is left for ``recv`` (to see
        how the server refuses a bad token). The socket is
        closed again whenever ``connect`` raises.
        """
        if auth == "none" and token is not None:
            raise ValueError('auth="none" sends no token; pass token=None')
        headers = {"Authorization": f"Bearer {token}"} if token and auth == "header" else None
        connection = await connect(
            url,
            subprotocols=[Subprotocol(subprotocol)] if subprotocol else None,
            additional_headers=headers,
            max_size=max_size,
            open_timeout=open_timeout,
            proxy=None,  # tests and the harness talk to loopback; ignore *_PROXY variables
        )
        client = cls(connection, JSON, buffer_limit=buffer_limit)
        try:
            selected = connection.subprotocol
            if selected is not None:
                if selected not in CODECS:
                    raise ProtocolError(f"server selected an unknown subprotocol {selected!r}")
                client.codec = CODECS[selected]
            if token is not None:
                if auth == "frame":
                    await client.send(Auth(token=token))
                if expect_welcome:
                    async with asyncio.timeout(welcome_timeout):
                        client.welcome = await client._expect_welcome()
        except BaseException:
            await client.close()
            raise
        return client

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def close_code(self) -> int | None:
        """The close code received once the socket is closed, else ``None``."""
        return self.connection.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason received once the socket is closed, else ``None``."""
        return self.connection.close_reason

    async def send(self, frame: ClientFrame) -> None:
        """Encode and send one frame. Raises ``ConnectionClosedByServer`` when closed."""
        await self._send(self.codec.encode(frame), text=self.codec.is_text)

    async def send_raw(self, data: bytes | str, *, text: bool | None = None) -> None:
        """Send a payload as is, for hostile-input tests: ``str`` as a text frame and
        ``bytes`` as a binary frame unless ``text`` says otherwise."""
        await self._send(data, text=text)

    async def recv(self, timeout: float | None = DEFAULT_TIMEOUT) -> ServerFrame:
        """The next server frame: buffered ones first, in order, then from the socket.

        Raises ``TimeoutError``, ``ConnectionClosedByServer``, or ``FrameError`` if the
        server sent a frame this client cannot decode (or of the wrong frame kind).
        """
        if self._buffer:
            return self._buffer.popleft()
        async with asyncio.timeout(timeout):
            return await self._read()

    async def request(
        self,
        frame: ClientFrame,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Ack:
        """Send ``frame`` (which must have an ``id``) and wait for the reply with that ``ref``.

        Returns the ``ack``; raises ``ServerErrorReply`` for an ``error`` reply. Every other
        frame read meanwhile is kept, in order, for ``recv``; more than ``buffer_limit`` of
        them raises ``ReceiveBufferFull``. Also raises ``TimeoutError`` and
        ``ConnectionClosedByServer``.
        """
        ref = frame.id
        if not isinstance(ref, str):
            raise ValueError(f"request() needs a frame with an id, got {wire_type(frame)}")
        await self.send(frame)
        async with asyncio.timeout(timeout):
            while True:
                reply = await self._read()
                match reply:
                    case Ack(ref=reply_ref) if reply_ref == ref:
                        return reply
                    case Error(ref=reply_ref) if reply_ref == ref:
                        raise ServerErrorReply(reply)
                if len(self._buffer) >= self._buffer_limit:
                    raise ReceiveBufferFull(f"more than {self._buffer_limit} frames buffered")
                self._buffer.append(reply)

    async def events(
        self,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> AsyncIterator[SessionEvent]:
        """Yield session events as they arrive, skipping control frames (use ``recv`` to see
        those). Ends when the socket closes (see ``close_code``); raises ``TimeoutError``
        when no frame arrives within ``timeout``."""
        while True:
            try:
                frame = await self.recv(timeout)
            except ConnectionClosedByServer:
                return
            if isinstance(frame, SessionEvent):
                yield frame

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the socket (a no-op when it is already closed)."""
        await self.connection.close(code, reason)

    async def _expect_welcome(self) -> Welcome:
        match await self.recv(timeout=None):
            case Welcome() as welcome:
                return welcome
            case Error() as error:
                raise ServerErrorReply(error)
            case other:
                raise ProtocolError(f"expected welcome, got {wire_type(other)}")

    async def _read(self) -> ServerFrame:
        try:
            data = await self.connection.recv()
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        if isinstance(data, str) != self.codec.is_text:
            kind = "text" if self.codec.is_text else "binary"
            raise FrameError(ErrorCode.BAD_FRAME, f"expected a {kind} frame from the server")
        return self.codec.decode_server(data)

    async def _send(self, data: bytes | str, *, text: bool | None) -> None:
        try:
            await self.connection.send(data, text=text)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    @staticmethod
    def _closed(exc: ConnectionClosed) -> ConnectionClosedByServer:
        if exc.rcvd is None:
            return ConnectionClosedByServer(_ABNORMAL_CLOSURE, "")
        return ConnectionClosedByServer(exc.rcvd.code, exc.rcvd.reason)


@asynccontextmanager
async def open_client(
    url: str,
    *,
    token: str | None = None,
    auth: AuthMode = "header",
    subprotocol: str | None = JSON_SUBPROTOCOL,
    max_size: int | None = DEFAULT_MAX_SIZE,
    open_timeout: float = DEFAULT_TIMEOUT,
    welcome_timeout: float = DEFAULT_TIMEOUT,
    buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    expect_welcome: bool = True,
) -> AsyncIterator[InterviewClient]:
    """``InterviewClient.connect`` as an async context manager that always closes the socket."""
    client = await InterviewClient.connect(
        url,
        token=token,
        auth=auth,
        subprotocol=subprotocol,
        max_size=max_size,
        open_timeout=open_timeout,
        welcome_timeout=welcome_timeout,
        buffer_limit=buffer_limit,
        expect_welcome=expect_welcome,
    )
    try:
        yield client
    finally:
        await client.close()
