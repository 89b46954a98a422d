"""Forwarding client input to the worker that owns the session, through Redis.

A socket may reach any worker (no sticky load balancing). Input for a session this worker
does not own is published on the owner's worker channel; the owner applies it exactly as if
it came from its own socket and publishes the reply (the ``seq`` to ack, or the error) on the
sender's channel. If no reply comes within ``timeout_s`` the caller learns the owner is
unreachable and may take the session over once the lease is gone.

Wire format: :class:`~server.hub.worker_messages.InputRequest` and
:class:`~server.hub.worker_messages.InputReply` (MessagePack).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

from protocol.codec import JSON
from protocol.errors import ErrorCode, FrameError
from protocol.messages import ClientFrame
from server.errors import MentaraError
from server.hub.redis_client import RedisClient, publish
from server.hub.worker_messages import (
    InputReply,
    InputRequest,
    RemoteFailure,
    decode_input_message,
    encode_input_message,
)

log = logging.getLogger("mentara.rpc")

InputHandler = Callable[[str, str, ClientFrame], Awaitable[int | None]]


class OwnerUnreachable(Exception):
    """The owner did not answer in time (it may be dead; its lease will tell)."""


class RemoteError(MentaraError):
    """An error the owner answered with, re-raised on the worker that has the socket."""

    def __init__(self, code: str, message: str, retryable: bool, field: str | None) -> None:
        super().__init__(message, field=field)
        self.code = ErrorCode(code)
        self.retryable = retryable


class InputRouter:
    def __init__(self, redis: RedisClient, my_channel: str, *, timeout_s: float = 10.0) -> None:
        self.redis = redis
        self.my_channel = my_channel
        self.timeout_s = timeout_s
        self.handler: InputHandler | None = None
        self._waiting: dict[int, asyncio.Future[int | None]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self.forwarded = 0

    async def forward(
        self, owner_channel: str, session_id: str, user_id: str, frame: ClientFrame
    ) -> int | None:
        """Have the owner apply ``frame``; return the seq to ack; raise its error."""
        rid = next(self._ids)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        request = InputRequest(
            rid=rid, to=self.my_channel, sid=session_id, uid=user_id, f=JSON.encode(frame)
        )
        try:
            receivers = await publish(self.redis, owner_channel, encode_input_message(request))
            if not receivers:
                raise OwnerUnreachable(owner_channel)
            self.forwarded += 1
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            raise OwnerUnreachable(owner_channel) from None
        finally:
            self._waiting.pop(rid, None)

    def on_message(self, data: bytes) -> None:
        try:
            message = decode_input_message(data)
        except ValueError:
            log.warning("undecodable message on the worker channel")
            return
        if isinstance(message, InputReply):
            future = self._waiting.get(message.rid)
            if future is None or future.done():
                return
            if message.err:
                code, text, retryable, field = message.err
                try:
                    future.set_exception(RemoteError(code, text, retryable, field))
                except ValueError:  # a code this release does not know
                    future.set_exception(RemoteError("internal", text, retryable, field))
            else:
                future.set_result(message.seq)
        else:
            task = asyncio.create_task(self._serve(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, message: InputRequest) -> None:
        seq: int | None = None
        err: RemoteFailure | None = None
        try:
            assert self.handler is not None
            frame = JSON.decode_client(message.f)
            seq = await self.handler(message.sid, message.uid, frame)
        except MentaraError as exc:
            err = (exc.code.value, exc.message, exc.retryable, exc.field)
        except FrameError as exc:
            err = (exc.code.value, exc.message, False, exc.field)
        except Exception:
            log.exception("forwarded input failed")
            err = (ErrorCode.INTERNAL.value, "internal error", True, None)
        reply = InputReply(rid=message.rid, seq=seq, err=err)
        try:
            await publish(self.redis, message.to, encode_input_message(reply))
        except Exception:
            log.warning("could not reply to a forwarded input", exc_info=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
