"""This worker's session channels: which socket is on which session, and pub/sub for them.

:class:`LocalChannels` keeps one :class:`~server.sessions.channel.SessionChannel` per session
this worker has sockets on (or owns), and the one session each socket is attached to. It
owns the subscription bookkeeping, so nothing else touches a channel's ``joining`` or
``subscribed``:

- a session's pub/sub channel is subscribed exactly while this worker has sockets on it
  (attached or being attached) and does not own it (the owner delivers its own events
  directly, so it never receives, and pays to parse, its own publishes);
- a channel without sockets goes, unless its session is owned here (its log still delivers
  to it);
- events published by other workers' owners reach the channel gap-checked by seq (decoded
  only when new), control frames (``error`` broadcasts) go to every socket.

Which sessions are owned here is read from the ``owned`` mapping the ownership side keeps
(:class:`server.sessions.ownership.Ownership`); this module never changes it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from protocol.codec import JSON
from protocol.messages import Error, Snapshot
from server import metrics
from server.client_socket import ClientSocket
from server.hub.keys import session_id_of_channel, session_keys
from server.hub.pubsub import PubSubHub
from server.hub.redis_client import RedisClient, publish
from server.hub.sharded_pubsub import ShardedPubSubHub
from server.sessions.channel import SessionChannel
from server.sessions.history import History
from server.sessions.logged_event import LoggedEvent, peek_seq

__all__ = ["LocalChannels"]

log = logging.getLogger("mentara.sessions")


class LocalChannels:
    """The session channels of one worker and its sockets' attachments (see the module
    docstring). ``owned`` is the live view of the sessions this worker owns."""

    def __init__(
        self,
        *,
        redis: RedisClient,
        prefix: str,
        hub: PubSubHub | ShardedPubSubHub,
        history: History,
        snapshot: Callable[[str], Awaitable[Snapshot | None]],
        owned: Mapping[str, object],
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.hub = hub
        self.history = history
        self._snapshot = snapshot
        self._owned = owned
        self.channels: dict[str, SessionChannel] = {}
        self.attached: dict[ClientSocket, str] = {}

    def get(self, session_id: str) -> SessionChannel | None:
        return self.channels.get(session_id)

    def channel(self, session_id: str) -> SessionChannel:
        """The session's channel here, made when there is none."""
        channel = self.channels.get(session_id)
        if channel is None:
            channel = self.channels[session_id] = SessionChannel(
                session_id, self.history, self._snapshot
            )
        return channel

    def attached_to(self, sock: ClientSocket) -> str | None:
        return self.attached.get(sock)

    async def attach(
        self, sock: ClientSocket, session_id: str, last_seq: int, *, read_only: bool = False
    ) -> None:
        """Move ``sock`` onto the session: subscribed first, then replay from ``last_seq``
        and live. On failure the socket is on no session and nothing of it is left."""
        await self.move(sock, session_id)
        channel = self.channel(session_id)
        channel.joining += 1  # the channel stays, subscribed, until the socket is in it
        try:
            await self.sync(session_id)
            await channel.attach(sock, last_seq, read_only=read_only)
        except BaseException:
            channel.joining -= 1
            self.attached.pop(sock, None)
            await self.leave(sock, session_id)
            raise
        channel.joining -= 1

    async def attach_owner(self, sock: ClientSocket, session_id: str) -> SessionChannel:
        """Move ``sock`` onto a session this worker just created and owns (no subscription,
        nothing to replay): its first event is still to come."""
        channel = self.channel(session_id)
        await self.move(sock, session_id)
        await channel.attach(sock, 0, announce=False)
        return channel

    async def move(self, sock: ClientSocket, session_id: str) -> None:
        previous = self.attached.get(sock)
        self.attached[sock] = session_id
        if previous is not None and previous != session_id:
            await self.leave(sock, previous)

    async def detach(self, sock: ClientSocket) -> None:
        """The socket is gone: off its session."""
        session_id = self.attached.pop(sock, None)
        if session_id is not None:
            await self.leave(sock, session_id)

    async def leave(self, sock: ClientSocket, session_id: str) -> None:
        channel = self.channels.get(session_id)
        if channel is None:
            return
        channel.detach(sock)
        await self.sync(session_id)
        await self.close_if_unused(session_id, channel)

    async def close_if_unused(self, session_id: str, channel: SessionChannel | None = None) -> None:
        """Close the session's channel if no socket is on it or joining it and the session
        is not owned here."""
        channel = channel or self.channels.get(session_id)
        if (
            channel is not None
            and not channel.attachments
            and not channel.joining
            and session_id not in self._owned
            and self.channels.get(session_id) is channel
        ):
            self.channels.pop(session_id, None)
            await channel.close()

    async def sync(self, session_id: str) -> None:
        """Subscribe or unsubscribe the session's pub/sub channel as the rule above says
        (called whenever sockets or ownership change)."""
        channel = self.channels.get(session_id)
        if channel is None:
            return
        needed = bool(channel.attachments or channel.joining) and session_id not in self._owned
        name = session_keys(self.prefix, session_id).channel
        if needed and not channel.subscribed:
            channel.subscribed = True
            try:
                await self.hub.subscribe(name)
            except BaseException:
                channel.subscribed = False
                raise
        elif not needed and channel.subscribed:
            channel.subscribed = False
            await self.hub.unsubscribe(name)

    async def drop(self, session_id: str) -> None:
        """Forget the session's channel, whose sockets the caller detached, and stop its
        subscription; the caller closes the channel."""
        await self.sync(session_id)
        self.channels.pop(session_id, None)

    def forget_unattached(self, session_id: str) -> SessionChannel | None:
        """The session's channel, or None after forgetting it when it has no socket."""
        channel = self.channels.get(session_id)
        if channel is not None and not channel.attachments:
            self.channels.pop(session_id, None)
            return None
        return channel

    def sessions_with_sockets(self) -> list[str]:
        return [sid for sid, channel in self.channels.items() if channel.attachments]

    # -- pub/sub ---------------------------------------------------------------------------

    def on_message(self, channel_name: str, data: bytes) -> None:
        """A message on a session's pub/sub channel: an event (gap-checked by seq, decoded
        only when new) or a control frame for every socket."""
        session_id = session_id_of_channel(self.prefix, channel_name)
        channel = self.channels.get(session_id) if session_id else None
        if channel is None:
            return
        seq = peek_seq(data)
        if seq is None:
            self._deliver_control(channel, data)
            return
        if seq <= channel.head:
            return  # already delivered (our own append, or a duplicate): no need to decode
        try:
            logged = LoggedEvent.from_json(data)
        except Exception:
            log.warning("undecodable event on %s", channel_name)
            return
        metrics.observe_delivery_lag(logged.event.ts)
        channel.offer(logged)

    def _deliver_control(self, channel: SessionChannel, data: bytes) -> None:
        try:
            frame = JSON.decode_server(data)
        except Exception:
            return
        for sock in channel.sockets():
            sock.send(frame)

    async def broadcast(self, session_id: str, frame: Error) -> None:
        """A control frame for every socket of the session: ours directly, other workers'
        through the session's channel (the owner is not subscribed to it)."""
        channel = self.channels.get(session_id)
        if channel is not None:
            for sock in channel.sockets():
                sock.send(frame)
        await publish(self.redis, session_keys(self.prefix, session_id).channel, JSON.encode(frame))

    async def check_gaps(self) -> None:
        """After a pub/sub reconnect: fill what every channel with sockets may have missed."""
        for session_id, channel in list(self.channels.items()):
            if channel.attachments:
                await channel.check_gap(await self.history.current_seq(session_id))

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
