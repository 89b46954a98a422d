"""One client WebSocket, from upgrade to close, as an explicit state machine.

    CONNECTING --accept--> AUTHENTICATING --welcome--> OPEN --close()--> CLOSING --> CLOSED

- The subprotocol picks the codec (PROTOCOL.md §1). Authentication is the bearer token of
  the upgrade request or, failing that, an ``auth`` frame as the first frame within
  ``auth_timeout_s``; otherwise ``error{unauthorized}`` and close 4001.
- Once OPEN, two tasks run: the reader (decode, rate-limit, dispatch) and the writer (drain
  the bounded :class:`SendQueue`). The first to finish cancels the other; cleanup is in
  ``finally``. Sending, the writer and closing are :class:`server.socket_sender.SocketSender`'s,
  the base of :class:`ClientSocket`.
- A bad frame gets an ``error`` naming what was wrong and the socket stays usable. Frames
  beyond the rate limit get ``rate_limited``; ``rate_limit_strikes`` of them in a row close
  the socket with 1008. Frames over ``max_frame_bytes`` never reach here: the transport
  closes with 1009.
- The token's ``exp`` arms a timer; a socket that has not refreshed with ``auth`` by then is
  closed with 4001. A refresh must be for the same user.
- Session frames go to the :class:`SessionGateway`; Redis or Postgres not answering there
  is answered with ``internal`` and ``retryable: true`` (the socket stays: send the frame
  again, same ``id``); any other unexpected exception is logged, answered with ``internal``
  (no detail), and the socket closed with 1011.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from collections.abc import Coroutine, Mapping
from types import MappingProxyType
from typing import Any, Protocol

import redis.exceptions as redis_errors
from starlette.websockets import WebSocket, WebSocketDisconnect

from protocol.codec import negotiate
from protocol.errors import CloseCode, ErrorCode, FrameError
from protocol.messages import (
    Auth,
    ClientFrame,
    Ping,
    Pong,
    Watch,
    Welcome,
)
from server import __version__, metrics
from server.auth import Principal, TokenVerifier, token_from_authorization_header
from server.config import Settings
from server.db import TRANSIENT_DB_ERRORS
from server.errors import Forbidden, MentaraError, RateLimited, ServiceUnavailable, Unauthorized
from server.hub.redis_client import TRANSIENT_ERRORS
from server.ratelimit import TokenBucket
from server.socket_sender import SocketSender, SocketState

log = logging.getLogger("mentara.socket")
_NO_CLAIMS: Mapping[str, object] = MappingProxyType({})
#: A service not answering now (Redis, Postgres): the frame gets a retryable error.
_OUTAGE_ERRORS = (*TRANSIENT_ERRORS, *TRANSIENT_DB_ERRORS)
#: Frames a socket may have answered beside its reader at once (``handle_beside``).
_BESIDE_MAX = 4


class Endpoint(enum.Enum):
    INTERVIEW = "interview"
    ADMIN = "admin"


#: Frame types an admin socket may send (it is read-only).
_ADMIN_ALLOWED = (Auth, Ping, Watch)


class SessionGateway(Protocol):
    """Where a socket's session frames go (the session layer implements it)."""

    async def handle(self, sock: ClientSocket, frame: ClientFrame) -> None: ...

    async def detach(self, sock: ClientSocket) -> None: ...


class ClientSocket(SocketSender):
    """Serves one accepted WebSocket until it closes. See the module docstring; what it sends
    and how it closes is :class:`SocketSender`'s."""

    def __init__(
        self,
        ws: WebSocket,
        endpoint: Endpoint,
        settings: Settings,
        verifier: TokenVerifier,
        gateway: SessionGateway,
    ) -> None:
        super().__init__(ws, settings.send_queue_bytes)
        self.endpoint = endpoint
        self.settings = settings
        self.verifier = verifier
        self.gateway = gateway
        self.principal: Principal | None = None
        self.bucket = TokenBucket(settings.rate_limit_per_s, settings.rate_limit_burst)
        self.strikes = 0
        self._expiry: asyncio.TimerHandle | None = None
        self._beside: set[asyncio.Task[None]] = set()  # frames answered beside the reader

    @property
    def user_id(self) -> str:
        assert self.principal is not None
        return self.principal.user_id

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
        if isinstance(exc, _OUTAGE_ERRORS):
            # Redis restarting, a cluster failing over, Postgres restarting or its link cut
            # mid-query: a pause, not a bug. The socket stays; the client may send the frame
            # again (inputs are idempotent by id).
            service = _unavailable_service(exc)
            log.warning("frame handler: %s unavailable (%r)", service, exc)
            self.send_exception(ServiceUnavailable(f"{service} is unavailable; retry"), ref)
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


def _unavailable_service(exc: BaseException) -> str:
    """Which service an outage error came from, as the client is told."""
    if isinstance(exc, redis_errors.RedisError):
        return "redis"
    if isinstance(exc, OSError | TimeoutError):  # a socket: either one
        return "redis or the database"
    return "the database"


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
