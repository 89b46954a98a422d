"""One client WebSocket, from upgrade to close, as an explicit state machine.

    CONNECTING --accept--> AUTHENTICATING --welcome--> OPEN --close()--> CLOSING --> CLOSED

- The subprotocol picks the codec (PROTOCOL.md §1). Authentication is the bearer token of
  the upgrade request or, failing that, an ``auth`` frame as the first frame within
  ``auth_timeout_s``; otherwise ``error{unauthorized}`` and close 4001.
- Once OPEN, two tasks run: the reader (decode, rate-limit, dispatch) and the writer (drain
  the bounded :class:`SendQueue`). The first to finish cancels the other; cleanup is in
  ``finally``.
- A bad frame gets an ``error`` naming what was wrong and the socket stays usable. Frames
  beyond the rate limit get ``rate_limited``; ``rate_limit_strikes`` of them in a row close
  the socket with 1008. Frames over ``max_frame_bytes`` never reach here: the transport
  closes with 1009.
- The token's ``exp`` arms a timer; a socket that has not refreshed with ``auth`` by then is
  closed with 4001. A refresh must be for the same user.
- Session frames go to the :class:`SessionGateway`; an unexpected exception there is
  logged, answered with ``internal`` (no detail), and the socket closed with 1011.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import logging
import time
from collections.abc import Coroutine, Mapping
from types import MappingProxyType
from typing import Any, Protocol

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from protocol.codec import Codec, negotiate
from protocol.errors import CloseCode, ErrorCode, FrameError
from protocol.messages import (
    Ack,
    Auth,
    ClientFrame,
    Error,
    Ping,
    Pong,
    Watch,
    Welcome,
)
from server import __version__, metrics
from server.auth import Principal, TokenVerifier, token_from_authorization_header
from server.config import Settings
from server.errors import Forbidden, MentaraError, RateLimited, ServiceUnavailable, Unauthorized
from server.hub.redis_client import TRANSIENT_ERRORS
from server.ratelimit import TokenBucket
from server.send_queue import Payload, SendQueue, SendQueueFull
from server.ws_transport import MentaraWebSocketProtocol, close_now, transport_of

log = logging.getLogger("mentara.socket")
_NO_CLAIMS: Mapping[str, object] = MappingProxyType({})
_socket_ids = itertools.count(1)
#: Frames a socket may have answered beside its reader at once (``handle_beside``).
_BESIDE_MAX = 4


class SocketState(enum.Enum):
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Endpoint(enum.Enum):
    INTERVIEW = "interview"
    ADMIN = "admin"


#: Frame types an admin socket may send (it is read-only).
_ADMIN_ALLOWED = (Auth, Ping, Watch)


class SessionGateway(Protocol):
    """Where a socket's session frames go (the session layer implements it)."""

    async def handle(self, sock: ClientSocket, frame: ClientFrame) -> None: ...

    async def detach(self, sock: ClientSocket) -> None: ...


class ClientSocket:
    """Serves one accepted WebSocket until it closes. See the module docstring."""

    def __init__(
        self,
        ws: WebSocket,
        endpoint: Endpoint,
        settings: Settings,
        verifier: TokenVerifier,
        gateway: SessionGateway,
    ) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self.settings = settings
        self.verifier = verifier
        self.gateway = gateway
        self.id = next(_socket_ids)
        self.state = SocketState.CONNECTING
        self.codec: Codec
        self.principal: Principal | None = None
        self.queue = SendQueue(settings.send_queue_bytes)
        self.bucket = TokenBucket(settings.rate_limit_per_s, settings.rate_limit_burst)
        self.strikes = 0
        self.close_code: int | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[None] | None = None
        # While OPEN on our transport, a frame sent when nothing is queued is written at once
        # (no writer wake-up per event); ``_writing`` is set while the writer holds frames
        # taken from the queue, so a direct write cannot overtake them.
        self._direct: MentaraWebSocketProtocol | None = None
        self._writing = False
        self._beside: set[asyncio.Task[None]] = set()  # frames answered beside the reader

    @property
    def user_id(self) -> str:
        assert self.principal is not None
        return self.principal.user_id

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

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the socket until it closes. Safe to cancel: cleanup runs in ``finally``."""
        codec, subprotocol = negotiate(self.ws.scope.get("subprotocols") or ())
        self.codec = codec
        await self.ws.accept(subprotocol=subprotocol)
        endpoint = self.endpoint.value
        metrics.SOCKETS_ACCEPTED.labels(endpoint).inc()
        metrics.SOCKETS_OPEN.labels(endpoint).inc()
        try:
            self.state = SocketState.AUTHENTICATING
            if await self._authenticate():
                self.state = SocketState.OPEN
                await self._serve_open()
            else:
                await self._flush_and_close()
        except WebSocketDisconnect:
            pass
        finally:
            metrics.SOCKETS_OPEN.labels(endpoint).dec()
            if self._expiry is not None:
                self._expiry.cancel()
            for task in list(self._beside):
                task.cancel()
            await asyncio.gather(*self._beside, return_exceptions=True)
            if self.principal is not None:
                try:
                    await self.gateway.detach(self)
                except Exception:
                    log.exception("detach failed", extra={"socket_id": self.id})
            self.state = SocketState.CLOSED
            if self.close_code is not None:
                metrics.SOCKET_CLOSES.labels(str(self.close_code)).inc()

    async def _authenticate(self) -> bool:
        header = self.ws.headers.get("authorization")
        token = token_from_authorization_header(header)
        ref: str | None = None
        try:
            if token is None and header:
                raise Unauthorized("malformed Authorization header; use 'Bearer <token>'")
            if token is None:
                token, ref = await self._await_auth_frame()
                if token is None:
                    return False
            principal = await self.verifier.verify(token)
            if self.endpoint is Endpoint.ADMIN and not principal.is_admin:
                self.send_error(ErrorCode.FORBIDDEN, "admin rights required", ref=ref)
                self.close(CloseCode.POLICY, "admin rights required")
                return False
        except MentaraError as exc:
            metrics.AUTH_FAILURES.labels(self.endpoint.value).inc()
            self.send_error(exc.code, exc.message, ref=ref, retryable=exc.retryable)
            self.close(CloseCode.UNAUTHENTICATED, exc.message)
            return False
        self._set_principal(principal)
        self.send(
            Welcome(
                protocol=1,
                server=__version__,
                heartbeat_s=self.settings.heartbeat_s,
                max_frame_bytes=self.settings.max_frame_bytes,
                user_id=principal.user_id,
            )
        )
        self.ack(ref)
        return True

    async def _await_auth_frame(self) -> tuple[str | None, str | None]:
        """The token of the first frame, which must be ``auth``; (None, ref) after answering why not."""
        try:
            message = await asyncio.wait_for(self.ws.receive(), self.settings.auth_timeout_s)
        except TimeoutError:
            self.send_error(ErrorCode.UNAUTHORIZED, "authenticate within the time allowed")
            self.close(CloseCode.UNAUTHENTICATED, "authentication timeout")
            return None, None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        try:
            frame = self.codec.decode_client(_frame_data(message))
        except FrameError as exc:
            self.send_error(exc.code, exc.message, ref=exc.ref, field=exc.field)
            self.close(CloseCode.UNAUTHENTICATED, "the first frame must be auth")
            return None, exc.ref
        ref = _frame_id(frame)
        if not isinstance(frame, Auth):
            self.send_error(ErrorCode.UNAUTHORIZED, "the first frame must be auth", ref=ref)
            self.close(CloseCode.UNAUTHENTICATED, "the first frame must be auth")
            return None, ref
        return frame.token, ref

    def _set_principal(self, principal: Principal) -> None:
        # A socket keeps who it is, not the token's claims (memory per idle socket, and
        # personal data), nor the upgrade request's headers (read once, to authenticate).
        self.principal = dataclasses.replace(principal, claims=_NO_CLAIMS)
        headers = self.ws.scope.get("headers")
        if isinstance(headers, list):
            headers.clear()
        self.ws.__dict__.pop("_headers", None)
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if principal.expires_at is not None:
            delay = principal.expires_at + self.settings.jwt_leeway_s - time.time()
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(max(0.0, delay), self._token_expired)

    def _token_expired(self) -> None:
        self._expiry = None
        self.send_error(ErrorCode.UNAUTHORIZED, "token expired; reconnect with a fresh token")
        self.close(CloseCode.UNAUTHENTICATED, "token expired")

    async def _serve_open(self) -> None:
        """Read in this task and write in a task of its own until either ends; then stop the
        other. (Reading here rather than in a third task: an idle socket's task, coroutine
        and context are about 1 KiB held for hours.)"""
        me = asyncio.current_task()
        assert me is not None
        writer = asyncio.create_task(self._write_loop(), name=f"socket-{self.id}-writer")
        self._writer = writer
        stopped_by_writer = False
        reading = True

        def writer_ended(_: object) -> None:
            nonlocal stopped_by_writer
            if reading:  # (a callback already scheduled may run after reading ended)
                stopped_by_writer = True
                me.cancel()

        writer.add_done_callback(writer_ended)
        read_error: BaseException | None = None
        try:
            await self._read_loop()
        except asyncio.CancelledError:
            # Our own cancel (the writer ended) is taken back; any other propagates.
            if not stopped_by_writer or me.uncancel() > 0:
                raise
        except WebSocketDisconnect:
            pass
        except Exception as exc:
            read_error = exc
        finally:
            reading = False
            writer.remove_done_callback(writer_ended)
            writer.cancel()
            (result,) = await asyncio.gather(writer, return_exceptions=True)
        for error in (read_error, result):
            if isinstance(error, BaseException) and not isinstance(
                error, asyncio.CancelledError | WebSocketDisconnect
            ):
                raise error

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

    async def _read_loop(self) -> None:
        receive = self.ws.receive
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if self.state is not SocketState.OPEN:
                continue  # closing: drain the peer's frames without acting on them
            if not self.bucket.allow():
                self._rate_limited()
                continue
            self.strikes = 0
            started = time.perf_counter()
            await self._handle(_frame_data(message))
            metrics.FRAME_HANDLE_SECONDS.observe(time.perf_counter() - started)

    def _rate_limited(self) -> None:
        self.strikes += 1
        if self.strikes >= self.settings.rate_limit_strikes:
            self.send_error(ErrorCode.RATE_LIMITED, "persistent flooding; closing")
            self.close(CloseCode.POLICY, "rate limit exceeded persistently")
        else:
            self.send_error(ErrorCode.RATE_LIMITED, "too many frames; slow down", retryable=True)

    async def _handle(self, data: bytes | str) -> None:
        try:
            frame = self.codec.decode_client(data)
        except FrameError as exc:
            self.send_error(exc.code, exc.message, ref=exc.ref, field=exc.field)
            return
        metrics.FRAMES_IN.labels(type(frame).__struct_config__.tag or "?").inc()
        ref = _frame_id(frame)
        try:
            match frame:
                case Ping():
                    self.send(Pong() if ref is None else Pong(id=ref))
                    self.ack(ref)
                case Auth(token=token):
                    await self._refresh(token, ref)
                case _ if self.endpoint is Endpoint.ADMIN and not isinstance(frame, _ADMIN_ALLOWED):
                    raise Forbidden("the admin socket is read-only")
                case _:
                    await self.gateway.handle(self, frame)
        except Exception as exc:
            self._answer_failure(exc, ref)

    def _answer_failure(self, exc: Exception, ref: str | None) -> None:
        if isinstance(exc, MentaraError):
            self.send_exception(exc, ref)
            return
        if isinstance(exc, TRANSIENT_ERRORS):
            # Redis restarting or a cluster failing over: a pause, not a bug. The socket
            # stays; the client may send the frame again (inputs are idempotent by id).
            log.warning("frame handler: redis unavailable (%r)", exc)
            self.send_exception(ServiceUnavailable("redis is unavailable; retry"), ref)
            return
        log.error("frame handler failed", exc_info=exc, extra={"socket_id": self.id})
        self.send_error(ErrorCode.INTERNAL, "internal error", ref=ref, retryable=True)
        self.close(CloseCode.INTERNAL, "internal error")

    def handle_beside(self, work: Coroutine[Any, Any, None], ref: str | None) -> None:
        """Finish a slow frame's handling (``code.run``) beside the reader, which goes on
        reading: ``work`` answers it when done; its failure is answered as the reader
        answers one. At most ``_BESIDE_MAX`` such frames in flight per socket; beyond, the
        frame is refused with ``rate_limited``. Cancelled when the socket ends (what
        ``work`` awaits must survive that: inputs are applied in the session's tasks)."""
        if len(self._beside) >= _BESIDE_MAX or self.state is not SocketState.OPEN:
            work.close()
            raise RateLimited("too many slow frames in flight; wait for their answers")

        async def answer() -> None:
            try:
                await work
            except Exception as exc:
                self._answer_failure(exc, ref)

        task = asyncio.create_task(answer(), name=f"socket-{self.id}-beside")
        self._beside.add(task)
        task.add_done_callback(self._beside.discard)

    async def _refresh(self, token: str, ref: str | None) -> None:
        principal = await self.verifier.verify(token)
        if self.principal is not None and principal.user_id != self.principal.user_id:
            raise Unauthorized("a refreshed token must be for the same user")
        if self.endpoint is Endpoint.ADMIN and not principal.is_admin:
            raise Unauthorized("the refreshed token has no admin rights")
        self._set_principal(principal)
        self.ack(ref)


def _frame_data(message: object) -> bytes | str:
    assert isinstance(message, dict)
    text = message.get("text")
    if text is not None:
        return str(text)
    data = message.get("bytes")
    return data if isinstance(data, bytes) else b""


def _frame_id(frame: ClientFrame) -> str | None:
    value = getattr(frame, "id", None)
    return value if isinstance(value, str) else None


def _send_message(payload: Payload, text: bool) -> dict[str, object]:
    if text:
        return {
            "type": "websocket.send",
            "text": payload.decode() if isinstance(payload, bytes) else payload,
        }
    return {"type": "websocket.send", "bytes": payload}
