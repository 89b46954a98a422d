"""One Redis pub/sub connection per worker, shared by every session channel on it.

Contract:
- :meth:`PubSubHub.subscribe` is reference-counted and returns once Redis has confirmed the
  subscription, so a history read made after it cannot miss an event published in between;
  :meth:`unsubscribe` drops the subscription when the last user leaves (a worker receives a
  session's events only while it has a socket on that session: route, don't broadcast).
- Messages are handed to ``on_message(channel, data)`` in the order Redis sent them.
- When the connection drops (Redis restarting), the hub reconnects with backoff, subscribes to
  every channel again and then calls ``on_reconnect()``, which fills whatever was published
  while it was away (pub/sub is at-most-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import redis.exceptions as redis_errors

from server.retry import Backoff, Retrying

log = logging.getLogger("mentara.pubsub")

_CONFIRM_TIMEOUT_S = 5.0


class PubSubHub:
    def __init__(
        self,
        redis: aioredis.Redis,
        on_message: Callable[[str, bytes], None],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        self.redis = redis
        self.on_message = on_message
        self.on_reconnect = on_reconnect
        self.refs: dict[str, int] = {}
        self.reconnects = 0
        self._pubsub: aioredis.client.PubSub | None = None
        self._confirmed: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._refill: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub()
        self._task = asyncio.create_task(self._run(), name="pubsub")

    async def subscribe(self, channel: str) -> None:
        """Take a reference on ``channel``; return once Redis confirmed the subscription (or
        every reference was dropped meanwhile). On failure (a timeout, a cancellation) the
        reference is given back, so counts never leak."""
        count = self.refs.get(channel, 0)
        self.refs[channel] = count + 1
        try:
            if count:
                confirmed = self._confirmed.get(channel)
                if confirmed is not None:
                    await asyncio.wait_for(confirmed.wait(), _CONFIRM_TIMEOUT_S)
                return
            confirmed = self._confirmed[channel] = asyncio.Event()
            pubsub = self._pubsub
            if pubsub is not None and self._connected.is_set():
                # On failure the reader reconnects and subscribes to every channel in ``refs``.
                with contextlib.suppress(redis_errors.ConnectionError, OSError):
                    await pubsub.subscribe(channel)
            await asyncio.wait_for(confirmed.wait(), _CONFIRM_TIMEOUT_S)
        except BaseException:
            if self.refs.get(channel):
                await self.unsubscribe(channel)
            raise

    async def unsubscribe(self, channel: str) -> None:
        count = self.refs.get(channel, 0) - 1
        if count > 0:
            self.refs[channel] = count
            return
        self.refs.pop(channel, None)
        confirmed = self._confirmed.pop(channel, None)
        if confirmed is not None:
            # A subscribe still waiting for its confirmation: nobody needs the channel any
            # more, so it need not wait (it would for ever: the confirmation is not awaited).
            confirmed.set()
        pubsub = self._pubsub
        if pubsub is not None and self._connected.is_set():
            with contextlib.suppress(redis_errors.ConnectionError, OSError):
                await pubsub.unsubscribe(channel)

    async def _run(self) -> None:
        retrying = Retrying(Backoff(base_s=0.05, max_s=2.0))
        first = True
        while not self._closing:
            try:
                pubsub = self._pubsub
                assert pubsub is not None
                if self.refs:
                    await pubsub.subscribe(*self.refs)
                else:
                    await pubsub.ping()
                self._connected.set()
                # Channels asked for while connecting were not sent by ``subscribe`` (not
                # connected yet) and may have missed the list just sent: send them now.
                late = [name for name in self.refs if name.encode() not in pubsub.channels]
                if late:
                    await pubsub.subscribe(*late)
                if not first:
                    self.reconnects += 1
                    log.warning("pub/sub reconnected; filling gaps")
                    self._refill = asyncio.create_task(self._after_reconnect())
                first = False
                retrying.reset()
                while not self._closing:
                    message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
                    if message is not None:
                        self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
                self._connected.clear()
                log.warning("pub/sub connection lost (%s); reconnecting", type(exc).__name__)
                await self._reset()
                await asyncio.sleep(retrying.next_delay() or 2.0)  # never gives up
            except Exception:
                log.exception("pub/sub reader failed; reconnecting")
                self._connected.clear()
                await self._reset()
                await asyncio.sleep(retrying.next_delay() or 2.0)

    async def _after_reconnect(self) -> None:
        try:
            await self.on_reconnect()
        except Exception:
            log.exception("gap fill after reconnect failed")

    async def _reset(self) -> None:
        old, self._pubsub = self._pubsub, self.redis.pubsub()
        if old is not None:
            try:
                await old.aclose()  # type: ignore[no-untyped-call]
            except Exception:
                log.debug("closing a broken pub/sub connection failed", exc_info=True)

    def _dispatch(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind == "message":
            data = message.get("data")
            if isinstance(data, bytes):
                try:
                    self.on_message(name, data)
                except Exception:
                    log.exception("pub/sub message handler failed")
        elif kind == "subscribe":
            confirmed = self._confirmed.get(name)
            if confirmed is not None:
                confirmed.set()

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            except Exception:
                log.debug("closing pub/sub failed", exc_info=True)
