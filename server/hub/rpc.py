"""Forwarding client input to the worker that owns the session, through Redis.

A socket may reach any worker (no sticky load balancing). Input for a session this worker
does not own is published on the owner's worker channel; the owner applies it exactly as if
it came from its own socket and publishes the reply (the ``seq`` to ack, or the error) on the
sender's channel. If no reply comes within ``timeout_s`` the caller learns the owner is
unreachable and may take the session over once the lease is gone.

Wire format (MessagePack maps): request ``{k: "req", rid, to, sid, uid, f}`` where ``f`` is
the client frame's JSON; reply ``{k: "rep", rid, seq, err}`` with ``err`` =
``[code, message, retryable, field]`` or nil.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

import msgpack
import redis.asyncio as aioredis

from protocol.codec import JSON
from protocol.errors import ErrorCode, FrameError
from protocol.messages import ClientFrame
from server.errors import MentaraError

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
    def __init__(self, redis: aioredis.Redis, my_channel: str, *, timeout_s: float = 10.0) -> None:
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
        request = {
            "k": "req",
            "rid": rid,
            "to": self.my_channel,
            "sid": session_id,
            "uid": user_id,
            "f": JSON.encode(frame),
        }
        try:
            receivers = await self.redis.publish(owner_channel, msgpack.packb(request))
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
            message = msgpack.unpackb(data, raw=False)
        except Exception:
            log.warning("undecodable message on the worker channel")
            return
        if not isinstance(message, dict):
            return
        if message.get("k") == "rep":
            future = self._waiting.get(message.get("rid", -1))
            if future is None or future.done():
                return
            err = message.get("err")
            if err:
                future.set_exception(RemoteError(err[0], err[1], bool(err[2]), err[3]))
            else:
                future.set_result(message.get("seq"))
        elif message.get("k") == "req":
            task = asyncio.create_task(self._serve(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, message: dict[str, object]) -> None:
        reply: dict[str, object] = {"k": "rep", "rid": message.get("rid"), "seq": None, "err": None}
        try:
            assert self.handler is not None
            frame = JSON.decode_client(message["f"])  # type: ignore[arg-type]
            reply["seq"] = await self.handler(str(message["sid"]), str(message["uid"]), frame)
        except MentaraError as exc:
            reply["err"] = [exc.code.value, exc.message, exc.retryable, exc.field]
        except FrameError as exc:
            reply["err"] = [exc.code.value, exc.message, False, exc.field]
        except Exception:
            log.exception("forwarded input failed")
            reply["err"] = [ErrorCode.INTERNAL.value, "internal error", True, None]
        try:
            await self.redis.publish(str(message["to"]), msgpack.packb(reply))
        except Exception:
            log.warning("could not reply to a forwarded input", exc_info=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
