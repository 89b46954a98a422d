"""Sharded pub/sub on a Redis Cluster: one subscriber connection per master node.

The same contract as :class:`server.hub.pubsub.PubSubHub` (reference-counted
:meth:`~ShardedPubSubHub.subscribe` that returns once Redis confirmed it, messages handed to
``on_message`` in the order each node sent them, ``on_reconnect()`` called to fill gaps after
any subscription was lost for a while), with ``SSUBSCRIBE``: a channel is subscribed on the
master that serves its slot, and gets only the messages ``SPUBLISH``\\ed there.

Why not redis-py's ``ClusterPubSub``: it polls its per-node connections one after the other
(a message on one node waits out the poll timeout of another), and it re-homes a channel only
when the cluster client itself sees a ``MOVED``. Here each node's connection has its own
reader task, and a channel is moved to its slot's new master as soon as the old one says so:

- a slot migrated away or a master demoted by a failover: the node sends ``sunsubscribe``
  for the channels it no longer serves;
- a master killed: its connection breaks;
- a ``SSUBSCRIBE`` sent on a stale slot map: the node answers ``MOVED``.
In each case the slot map is read again (with backoff while the cluster fails over), the
channels are subscribed on their slots' masters, and ``on_reconnect()`` fills what was
published meanwhile (pub/sub is at-most-once; the history stream has every event).

Each ``SSUBSCRIBE`` carries one channel, so never channels of two slots (Redis refuses
that with ``CROSSSLOT``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.exceptions as redis_errors
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from server.hub.redis_client import TRANSIENT_ERRORS
from server.retry import Backoff, Retrying

log = logging.getLogger("mentara.pubsub")

_CONFIRM_TIMEOUT_S = 5.0
_AUDIT_EVERY_S = 1.0  # the supervisor's round when nothing wakes it
_PING_AFTER_S = 5.0  # a link silent this long is pinged ...
_DEAD_AFTER_S = 5.0  # ... and declared dead if the PING is not answered this long after


class _NodeLink:
    """One subscriber connection to one master, with its reader task."""

    def __init__(self, hub: ShardedPubSubHub, node: ClusterNode) -> None:
        self.hub = hub
        self.name = node.name
        self.conn: Any = node.connection_class(**node.connection_kwargs)
        self.conn.socket_timeout = None  # a subscriber waits for messages as long as it takes
        # What this link sent and awaits a reply for, in order: ("s" | "u", channel).
        self.sent: collections.deque[tuple[str, str]] = collections.deque()
        self.channels: set[str] = set()
        self.task: asyncio.Task[None] | None = None
        self.dead = False
        self.last_read = asyncio.get_running_loop().time()
        self.ping_sent: float | None = None

    async def start(self) -> None:
        await self.conn.connect()
        self.task = asyncio.create_task(self._read(), name=f"sharded-pubsub {self.name}")

    async def ssubscribe(self, channel: str) -> None:
        self.channels.add(channel)
        self.sent.append(("s", channel))
        await self.conn.send_command("SSUBSCRIBE", channel, check_health=False)

    async def sunsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
        self.sent.append(("u", channel))
        await self.conn.send_command("SUNSUBSCRIBE", channel, check_health=False)

    async def ping(self) -> None:
        self.ping_sent = asyncio.get_running_loop().time()
        self.sent.append(("p", ""))
        await self.conn.send_command("PING", check_health=False)

    def kill(self, why: str) -> None:
        """Declare the link dead (a node that stopped answering): its channels are lost."""
        if self.task is not None:
            self.task.cancel()
        self._die(why)

    def _die(self, why: str) -> None:
        if self.dead:
            return
        self.dead = True
        log.warning("sharded pub/sub link to %s lost (%s)", self.name, why)
        for channel in list(self.channels):
            self.hub._lost(channel, self, why)
        self.channels.clear()

    async def _read(self) -> None:
        try:
            while True:
                try:
                    # The cluster client's connections speak RESP3: pub/sub messages are pushes.
                    reply = await self.conn.read_response(
                        disconnect_on_error=True, push_request=True
                    )
                    self.last_read = asyncio.get_running_loop().time()
                except redis_errors.ResponseError as exc:
                    self.last_read = asyncio.get_running_loop().time()
                    # An error answers the oldest command sent: a SSUBSCRIBE on a slot this
                    # node does not serve (MOVED) must be sent to the slot's master.
                    kind, channel = self.sent.popleft() if self.sent else ("", "")
                    if kind == "s":
                        self.channels.discard(channel)
                        self.hub._lost(channel, self, str(exc))
                    continue
                self._handle(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._die(repr(exc))
            with contextlib.suppress(Exception):
                await self.conn.disconnect(nowait=True)

    def _handle(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 3:
            # PONG (RESP3 answers PING plainly, RESP2 as ["pong", ""]).
            if self.sent and self.sent[0][0] == "p":
                self.sent.popleft()
                self.ping_sent = None
            return
        kind, name = _text(reply[0]), _text(reply[1])
        if kind == "smessage":
            data = reply[2]
            if isinstance(data, bytes):
                try:
                    self.hub.on_message(name, data)
                except Exception:
                    log.exception("pub/sub message handler failed")
        elif kind == "ssubscribe":
            if self.sent and self.sent[0] == ("s", name):
                self.sent.popleft()
            self.hub._confirm(name, self)
        elif kind == "sunsubscribe":
            if self.sent and self.sent[0] == ("u", name):
                self.sent.popleft()  # the answer to ours
            elif name in self.channels:
                # The node's own: the slot moved away (migration, failover).
                self.channels.discard(name)
                self.hub._lost(name, self, "slot moved")

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.conn.disconnect(nowait=True)


class ShardedPubSubHub:
    def __init__(
        self,
        cluster: RedisCluster,
        on_message: Callable[[str, bytes], None],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        self.cluster = cluster
        self.on_message = on_message
        self.on_reconnect = on_reconnect
        self.refs: dict[str, int] = {}
        self.reconnects = 0
        self._confirmed: dict[str, asyncio.Event] = {}
        self._links: dict[str, _NodeLink] = {}
        self._placed: dict[str, _NodeLink] = {}
        self._unplaced: set[str] = set()
        self._wake = asyncio.Event()
        self._stale = False
        self._lost_any = False
        self._task: asyncio.Task[None] | None = None
        self._refill: asyncio.Task[None] | None = None
        self._closing = False
        self._placing = asyncio.Lock()  # one placement at a time: links are made once

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="sharded-pubsub")

    async def subscribe(self, channel: str) -> None:
        """See :meth:`server.hub.pubsub.PubSubHub.subscribe`."""
        count = self.refs.get(channel, 0)
        self.refs[channel] = count + 1
        try:
            if count:
                confirmed = self._confirmed.get(channel)
                if confirmed is not None:
                    await asyncio.wait_for(confirmed.wait(), _CONFIRM_TIMEOUT_S)
                return
            confirmed = self._confirmed[channel] = asyncio.Event()
            self._unplaced.add(channel)
            try:
                await self._place(channel)
            except TRANSIENT_ERRORS:  # a node down or a slot moving: the supervisor retries
                self._stale = True
                self._wake.set()
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
        self._unplaced.discard(channel)
        confirmed = self._confirmed.pop(channel, None)
        if confirmed is not None:
            confirmed.set()
        link = self._placed.pop(channel, None)
        if link is not None and not link.dead:
            with contextlib.suppress(*TRANSIENT_ERRORS):
                await link.sunsubscribe(channel)

    async def _place(self, channel: str) -> None:
        """Subscribe ``channel`` on its slot's master (as the slot map says now)."""
        async with self._placing:
            await self._place_now(channel)

    async def _place_now(self, channel: str) -> None:
        if channel not in self._unplaced:
            return
        await self.cluster.initialize()
        node = self.cluster.nodes_manager.get_node_from_slot(key_slot(channel.encode()))
        link = self._links.get(node.name)
        if link is None or link.dead:
            link = _NodeLink(self, node)
            self._links[node.name] = link
            try:
                await link.start()
            except BaseException:
                self._links.pop(node.name, None)
                await link.close()
                raise
        if channel not in self._unplaced:  # unsubscribed while connecting
            return
        self._unplaced.discard(channel)
        self._placed[channel] = link
        try:
            await link.ssubscribe(channel)
        except BaseException:
            self._lost(channel, link, "send failed")
            raise

    def _confirm(self, channel: str, link: _NodeLink) -> None:
        if self._placed.get(channel) is link:
            confirmed = self._confirmed.get(channel)
            if confirmed is not None:
                confirmed.set()

    def _lost(self, channel: str, link: _NodeLink, why: str) -> None:
        """``channel`` is no longer subscribed on ``link``: place it again (supervisor)."""
        if self._placed.get(channel) is not link:
            return
        del self._placed[channel]
        if channel in self.refs:
            log.info("shard channel %s to re-place (%s)", channel, why)
            self._unplaced.add(channel)
            self._stale = True
            confirmed = self._confirmed.get(channel)
            if confirmed is not None and confirmed.is_set():
                self._lost_any = True  # it was live: what was published meanwhile is missed
            self._wake.set()

    async def _supervise(self) -> None:
        retrying = Retrying(Backoff(base_s=0.05, max_s=1.0))
        while not self._closing:
            try:
                await asyncio.wait_for(self._wake.wait(), _AUDIT_EVERY_S)
            except TimeoutError:
                self._audit()
            self._wake.clear()
            try:
                await self._ping_quiet_links()
                if self._stale:
                    self._stale = False
                    await self.cluster.nodes_manager.initialize()
                for channel in list(self._unplaced):
                    await self._place(channel)
                async with self._placing:
                    for name, link in list(self._links.items()):
                        if link.dead or not link.channels:
                            self._links.pop(name, None)
                            await link.close()
                retrying.reset()
                if self._lost_any and not self._unplaced:
                    self._lost_any = False
                    self.reconnects += 1
                    log.warning("shard channels re-placed; filling gaps")
                    self._refill = asyncio.create_task(self._after_reconnect())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                level = logging.WARNING if isinstance(exc, TRANSIENT_ERRORS) else logging.ERROR
                log.log(level, "placing shard channels failed (%r); retrying", exc)
                self._stale = True
                await asyncio.sleep(retrying.next_delay() or 1.0)
                self._wake.set()

    def _audit(self) -> None:
        """Channels whose slot the cluster client's map (refreshed by any ``MOVED`` or failed
        node it met) now gives to another master are placed again; so are those of a link
        that stopped answering (a master cut off by a partition: its socket stays open)."""
        manager = self.cluster.nodes_manager
        for channel, link in list(self._placed.items()):
            try:
                node = manager.get_node_from_slot(key_slot(channel.encode()))
            except Exception:
                continue
            if node.name != link.name:
                link.channels.discard(channel)
                self._lost(channel, link, "slot map changed")
        now = asyncio.get_running_loop().time()
        for link in list(self._links.values()):
            if link.ping_sent is not None and now - link.ping_sent > _DEAD_AFTER_S:
                link.kill("no answer to PING")

    async def _ping_quiet_links(self) -> None:
        now = asyncio.get_running_loop().time()
        for link in list(self._links.values()):
            if (
                not link.dead
                and link.channels
                and link.ping_sent is None
                and now - link.last_read > _PING_AFTER_S
            ):
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    await link.ping()

    async def _after_reconnect(self) -> None:
        try:
            await self.on_reconnect()
        except Exception:
            log.exception("gap fill after re-placing shard channels failed")

    async def close(self) -> None:
        self._closing = True
        for task in (self._task, self._refill):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        links, self._links = list(self._links.values()), {}
        for link in links:
            await link.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
