"""The session layer's front door on one worker: it routes every session frame of every socket.

Any worker serves any socket of any session (no sticky load balancing):
- ``session.start`` creates the session and takes its lease: this worker becomes its owner,
  the one place its interviewer engine runs and its events are appended
  (:mod:`server.sessions.starts`);
- ``session.resume`` (the owner's devices) and ``watch`` (admins, read-only) attach the socket
  to the session's local channel (subscribed on Redis while it has sockets here), replay, then
  go live;
- input (``candidate.message``, ``code.update``, ``code.run``, ``interviewer.interrupt``,
  ``session.end``) is applied here if this worker owns the session, forwarded to the owner
  through Redis otherwise, and taken over when no worker holds the lease any more;
- a keeper renews this worker's leases and takes over sessions whose owner died while this
  worker still has sockets on them (the cut turn is ended with ``stop_reason: error``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis.asyncio.cluster import RedisCluster

from protocol.messages import (
    CandidateMessage,
    ClientFrame,
    CodeRun,
    CodeUpdate,
    InterviewerInterrupt,
    SessionEnd,
    SessionResume,
    SessionStart,
    Snapshot,
    Watch,
)
from server.client_socket import ClientSocket, Endpoint
from server.errors import Forbidden, MentaraError, NotFound, ServiceUnavailable
from server.hub.keys import worker_channel
from server.hub.lease import RELEASED, Leases
from server.hub.pubsub import PubSubHub
from server.hub.redis_client import RedisClient
from server.hub.rpc import InputRouter, OwnerUnreachable
from server.hub.sharded_pubsub import ShardedPubSubHub
from server.interviewer.provider import LLMProvider
from server.sessions.assembly import SessionAssembly, SessionConfig
from server.sessions.catalog import Catalog
from server.sessions.channel import SessionChannel
from server.sessions.code_runs import CodeRunService
from server.sessions.erasure import SessionEraser
from server.sessions.event_writer import EventWriter
from server.sessions.history import History
from server.sessions.live import LiveSession
from server.sessions.local_channels import LocalChannels
from server.sessions.log import LeaseLost
from server.sessions.ownership import Ownership
from server.sessions.snapshots import build_snapshot
from server.sessions.starts import SessionStarts
from server.sessions.store import SessionRow, SessionStore
from server.sessions.user_limits import UserLimits

if TYPE_CHECKING:
    from server.quota import Quota

__all__ = ["NotAttached", "SessionConfig", "SessionManager"]

log = logging.getLogger("mentara.sessions")


class NotAttached(MentaraError):
    code = NotFound.code

    def __init__(self) -> None:
        super().__init__("start or resume a session first")


class SessionManager:
    """The session layer's front door on one worker (see the module docstring).

    It routes frames and nothing else: which sockets are on which session is
    :class:`LocalChannels`' (with the pub/sub subscriptions), which sessions this worker owns,
    their leases and take-overs are :class:`Ownership`'s, building a live session is
    :class:`SessionAssembly`'s, and ``session.start`` is :class:`SessionStarts`'. Guarantees: an input is applied once, by the session's owner
    (forwarded to it, or taken over when it is gone), and acked with its seq once durable; a
    socket is on at most one session; another user's session is never confirmed to exist.
    """

    def __init__(
        self,
        *,
        store: SessionStore,
        writer: EventWriter,
        provider: LLMProvider,
        catalog: Catalog,
        runner: CodeRunService,
        config: SessionConfig,
        redis: RedisClient,
        prefix: str,
        judge: Any | None = None,
        summary_writer: Any | None = None,
        limits: UserLimits | None = None,
        quota: Quota | None = None,
        token_revoked: Callable[[ClientSocket], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.writer = writer
        self.provider = provider
        self.catalog = catalog
        self.runner = runner
        self.config = config
        self.redis = redis
        self.prefix = prefix
        self.judge = judge  # the Claude judge when configured; None: the offline heuristics
        self.summary_writer = summary_writer
        self.limits = limits  # per-user live sessions and starts, across workers
        self.worker_id = uuid.uuid4().hex[:12]
        self.leases = Leases(
            redis,
            prefix,
            self.worker_id,
            lease_ms=config.lease_ms,
            ttl_ms=config.history_ttl_ms,
            unfenced=config.unfenced_append,
        )
        self.history = History(redis, store, prefix)
        self.hub: PubSubHub | ShardedPubSubHub
        if isinstance(redis, RedisCluster):  # sharded pub/sub, one connection per master
            self.hub = ShardedPubSubHub(redis, self._on_pubsub, self._on_reconnect)
        else:
            self.hub = PubSubHub(redis, self._on_pubsub, self._on_reconnect)
        self.router = InputRouter(redis, worker_channel(prefix, self.worker_id))
        self.router.handler = self._apply_forwarded
        self.owned: dict[str, LiveSession] = {}
        self.local = LocalChannels(
            redis=redis,
            prefix=prefix,
            hub=self.hub,
            history=self.history,
            snapshot=self._snapshot,
            owned=self.owned,
        )
        self.assembly = SessionAssembly(
            config=config,
            redis=redis,
            prefix=prefix,
            store=store,
            writer=writer,
            leases=self.leases,
            channels=self.local,
            catalog=catalog,
            provider=provider,
            runner=runner,
            judge=judge,
            summary_writer=summary_writer,
            limits=limits,
            spawn=self._spawn,
        )
        self.ownership = Ownership(
            redis=redis,
            prefix=prefix,
            leases=self.leases,
            store=store,
            writer=writer,
            history=self.history,
            channels=self.local,
            assembly=self.assembly,
            owned=self.owned,
            lease_ms=config.lease_ms,
            spawn=self._spawn,
        )
        # DELETE /v1/me: ends and closes erased sessions on this worker.
        self.eraser = SessionEraser(redis, prefix, self.worker_id, self.ownership, self.local)
        self.starts = SessionStarts(
            store=store,
            catalog=catalog,
            config=config,
            ownership=self.ownership,
            local=self.local,
            attach=self._attach,
            spawn=self._spawn,
            limits=limits,
            quota=quota,  # interviews per plan and period (None: no quota)
            token_revoked=token_revoked,
        )
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def channels(self) -> dict[str, SessionChannel]:
        """This worker's session channels (read-only use: :class:`LocalChannels` owns them)."""
        return self.local.channels

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.hub.start()
        await self.hub.subscribe(worker_channel(self.prefix, self.worker_id))
        await self.hub.subscribe(self.eraser.channel)
        self.ownership.start()

    async def close(self) -> None:
        """Shutdown: stop every engine (a turn in progress ends with ``error``), hand the
        sessions over by releasing their leases, stop listening."""
        await self.ownership.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.leases.aclose()
        await self.eraser.close()
        await self.router.close()
        await self.local.close()
        await self.hub.close()

    async def recover_report(self, session_id: str) -> bool:
        """See :meth:`Ownership.recover_report`."""
        return await self.ownership.recover_report(session_id)

    # -- SessionGateway --------------------------------------------------------------------

    async def handle(self, sock: ClientSocket, frame: ClientFrame) -> None:
        match frame:
            case SessionStart():
                await self.starts.start(sock, frame)
            case SessionResume(session_id=session_id, last_seq=last_seq):
                row = await self._row(session_id)
                if row.user_id != sock.user_id:
                    raise NotFound("no such session")  # never confirm another user's session
                await self._attach(sock, row, last_seq)
                sock.ack(frame.id if isinstance(frame.id, str) else None)
            case Watch(session_id=session_id):
                if sock.endpoint is not Endpoint.ADMIN:
                    raise Forbidden("watch is for the admin socket")
                row = await self._row(session_id)
                last_seq = frame.last_seq if isinstance(frame.last_seq, int) else 0
                await self._attach(sock, row, last_seq, read_only=True)
                sock.ack(frame.id if isinstance(frame.id, str) else None)
            case CodeRun():
                # A run takes seconds: answered beside the socket's reader, which goes on
                # reading (and rate-limiting) the frames behind it; a second run of the
                # session meanwhile is refused by the run service, never queued.
                sock.handle_beside(self._run_code(sock, frame), _ref(frame))
            case CandidateMessage() | CodeUpdate() | InterviewerInterrupt() | SessionEnd():
                attached_to = self.local.attached_to(sock)
                if attached_to is None:
                    raise NotAttached()
                ref = frame.id if isinstance(frame.id, str) else None
                seq = await self._input(attached_to, sock.user_id, frame)
                sock.ack(ref, seq)
            case _:
                raise MentaraError(f"{type(frame).__name__} is not handled here")

    async def _run_code(self, sock: ClientSocket, frame: CodeRun) -> None:
        attached_to = self.local.attached_to(sock)
        if attached_to is None:
            raise NotAttached()
        sock.ack(_ref(frame), await self._input(attached_to, sock.user_id, frame))

    async def detach(self, sock: ClientSocket) -> None:
        await self.local.detach(sock)

    # -- attach ----------------------------------------------------------------------------
    async def _row(self, session_id: str) -> SessionRow:
        row = await self.store.get_session(session_id)
        if row is None:
            raise NotFound("no such session")
        return row

    async def _attach(
        self, sock: ClientSocket, row: SessionRow, last_seq: int, *, read_only: bool = False
    ) -> None:
        await self.local.attach(sock, row.id, last_seq, read_only=read_only)
        if row.status != "ended" and row.id not in self.owned:
            self._spawn(self.ownership.ensure_owner(row.id))

    async def _snapshot(self, session_id: str) -> Snapshot | None:
        return await build_snapshot(self.store, self.catalog, session_id)

    # -- input -----------------------------------------------------------------------------

    async def _input(self, session_id: str, user_id: str, frame: ClientFrame) -> int | None:
        """Apply here if owned, else forward to the owner; take over once its lease is gone.

        Waits at most about two lease periods for a dead owner's lease to expire."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2 * self.config.lease_ms / 1000
        while loop.time() < deadline:
            session = self.owned.get(session_id)
            if session is not None:
                try:
                    return await self._apply(session, user_id, frame)
                except LeaseLost:
                    await self.ownership.drop(session_id)
                    continue
            holder = await self.leases.holder(session_id)
            if holder is None or holder in (RELEASED, self.worker_id):
                if (
                    not self.ownership.may_take_over(session_id, holder)
                    or await self.ownership.take_over(session_id) is None
                ):
                    await asyncio.sleep(0.1)  # not yet: the owner may come back, or it is ours
                continue
            try:
                return await self.router.forward(
                    worker_channel(self.prefix, holder), session_id, user_id, frame
                )
            except OwnerUnreachable:
                await asyncio.sleep(self.config.lease_ms / 1000 / 3)
        raise ServiceUnavailable("the session's owner is unavailable; retry")

    async def _apply_forwarded(
        self, session_id: str, user_id: str, frame: ClientFrame
    ) -> int | None:
        session = self.owned.get(session_id)
        if session is None:
            raise ServiceUnavailable("this worker no longer owns the session; retry")
        return await self._apply(session, user_id, frame)

    async def _apply(self, session: LiveSession, user_id: str, frame: ClientFrame) -> int | None:
        return await session.apply_input(user_id, frame, lambda: self.runner.run(session))

    # -- pub/sub ---------------------------------------------------------------------------

    def _on_pubsub(self, channel_name: str, data: bytes) -> None:
        if channel_name == self.router.my_channel:
            self.router.on_message(data)
        elif channel_name == self.eraser.channel:
            self.eraser.on_message(data)
        else:
            self.local.on_message(channel_name, data)

    async def _on_reconnect(self) -> None:
        await self.local.check_gaps()

    def _spawn(self, coro: Awaitable[object]) -> None:
        async def supervised() -> None:
            try:
                await coro
            except Exception:
                log.exception("session task failed")

        task = asyncio.create_task(supervised())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _ref(frame: CodeRun) -> str | None:
    return frame.id if isinstance(frame.id, str) else None
