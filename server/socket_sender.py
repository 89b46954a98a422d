"""The sending half of a client socket: the send path, the writer, and closing.

:class:`SocketSender` is the base of :class:`server.client_socket.ClientSocket`; it holds
the socket's :class:`SocketState` and everything that goes out:

- ``send``/``send_encoded`` never wait. While OPEN on our transport, a frame sent when nothing
  is queued and the writer holds no frames is written at once (no writer wake-up per event);
  otherwise it joins the bounded :class:`SendQueue`, so order is kept. A full queue closes the
  socket at once with 4003 (the close frame straight to the transport: invariant 5).
- ``close`` closes after the frames already queued; it is idempotent and never waits. Once
  CLOSING or CLOSED, further frames are dropped.
- The writer (``_write_loop``) drains the queue, every waiting frame in one write on our
  transport (one ASGI message per frame otherwise), then sends the close frame.

``send_encoded`` is on the per-event hot path: keep it free of extra calls.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging

import msgspec
from starlette.websockets import WebSocket

from protocol.codec import Codec
from protocol.errors import CloseCode, ErrorCode
from protocol.messages import Ack, Error
from server import metrics
from server.errors import MentaraError
from server.send_queue import Payload, SendQueue, SendQueueFull
from server.ws_transport import MentaraWebSocketProtocol, close_now, transport_of

log = logging.getLogger("mentara.socket")
_socket_ids = itertools.count(1)


class SocketState(enum.Enum):
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class SocketSender:
    """Sends a socket's frames and closes it. See the module docstring."""

    def __init__(self, ws: WebSocket, send_queue_bytes: int) -> None:
        self.ws = ws
        self.id = next(_socket_ids)
        self.state = SocketState.CONNECTING
        self.codec: Codec
        self.queue = SendQueue(send_queue_bytes)
        self.close_code: int | None = None
        self._writer: asyncio.Task[None] | None = None
        # While OPEN on our transport, a frame sent when nothing is queued is written at once
        # (no writer wake-up per event); ``_writing`` is set while the writer holds frames
        # taken from the queue, so a direct write cannot overtake them.
        self._direct: MentaraWebSocketProtocol | None = None
        self._writing = False

    # -- sending ---------------------------------------------------------------------------

    def send(self, message: msgspec.Struct) -> None:
        """Queue a frame for this socket; never waits. A full queue closes the socket (4003)."""
        self.send_encoded(self.codec.encode(message))

    def send_encoded(self, payload: bytes) -> None:
        """Queue bytes already encoded with this socket's codec (shared across sockets)."""
        if self.state in (SocketState.CLOSING, SocketState.CLOSED):
            return
        direct = self._direct
        if (
            direct is not None
            and not self._writing
            and not self.queue
            and direct.try_write(payload, text=self.codec.is_text)
        ):
            return  # written now: nothing was waiting, so order is kept
        try:
            self.queue.put(payload)
        except SendQueueFull:
            log.info("slow consumer", extra={"socket_id": self.id})
            metrics.SLOW_CONSUMER_CLOSES.inc()
            self._close_slow_consumer()

    async def send_paced(self, payload: bytes) -> None:
        """Queue ``payload`` once there is room (a replay: large, but not urgent)."""
        await self.queue.wait_for_room(len(payload))
        self.send_encoded(payload)

    def send_error(
        self,
        code: ErrorCode,
        message: str,
        *,
        ref: str | None = None,
        retryable: bool = False,
        field: str | None = None,
    ) -> None:
        metrics.FRAME_ERRORS.labels(code.value).inc()
        self.send(
            Error(
                code=code,
                message=message,
                ref=msgspec.UNSET if ref is None else ref,
                retryable=retryable,
                field=msgspec.UNSET if field is None else field,
            )
        )

    def send_exception(self, exc: MentaraError, ref: str | None = None) -> None:
        self.send_error(exc.code, exc.message, ref=ref, retryable=exc.retryable, field=exc.field)
        if exc.close is not None:
            self.close(exc.close, exc.message)

    def end(self, reason: MentaraError) -> None:
        """Close after what is queued, with the close code ``reason`` carries (the session
        layer says why a socket must go; this layer alone turns it into a close code)."""
        self.close(reason.close or CloseCode.INTERNAL, reason.message)

    def ack(self, ref: str | None, seq: int | None = None) -> None:
        if ref is not None:
            self.send(Ack(ref=ref, seq=msgspec.UNSET if seq is None else seq))

    def _close_slow_consumer(self) -> None:
        """4003 now: the writer is stuck behind a peer that does not read, so it is stopped
        and the close frame is written straight to the transport (invariant 5)."""
        self.state = SocketState.CLOSING
        self.close_code = CloseCode.SLOW_CONSUMER
        self.queue.close()
        if self._writer is not None:
            self._writer.cancel()
        if not close_now(self.ws.scope, CloseCode.SLOW_CONSUMER, "slow consumer: resume"):
            self._reason = "slow consumer: resume"
            self.state = SocketState.OPEN  # let close() queue a normal close instead
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: resume")

    def close(self, code: int, reason: str = "") -> None:
        """Close after the frames already queued; idempotent; never waits."""
        if self.state in (SocketState.CLOSING, SocketState.CLOSED):
            return
        self.state = SocketState.CLOSING
        self.close_code = code
        self._reason = reason[:120]
        self.queue.close()

    async def _write_loop(self) -> None:
        text = self.codec.is_text
        transport = transport_of(self.ws.scope)
        if transport is not None:
            # Our transport: every waiting frame in one write, no ASGI message per frame;
            # once OPEN, frames sent while nothing waits are written directly (send_encoded).
            if self.state is SocketState.OPEN:
                self._direct = transport
            try:
                while batch := await self.queue.get_batch():
                    self._writing = True
                    frames = [p.encode() if isinstance(p, str) else p for p in batch]
                    if not await transport.write_frames(frames, text=text):
                        return
                    self._writing = False
            finally:
                self._direct = None
                self._writing = False
        else:
            send = self.ws.send
            while (payload := await self.queue.get()) is not None:
                await send(_send_message(payload, text))
        if self.close_code is not None:
            await self.ws.close(self.close_code, self._reason)

    async def _flush_and_close(self) -> None:
        """Before OPEN: send what is queued (the error), then the close frame."""
        await self._write_loop()


def _send_message(payload: Payload, text: bool) -> dict[str, object]:
    if text:
        return {
            "type": "websocket.send",
            "text": payload.decode() if isinstance(payload, bytes) else payload,
        }
    return {"type": "websocket.send", "bytes": payload}
