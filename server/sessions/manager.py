"""The session layer's front door on one worker: it routes every session frame of every socket.

Any worker serves any socket of any session (no sticky load balancing):
- ``session.start`` creates the session and takes its lease: this worker becomes its owner,
  the one place its interviewer engine runs and its events are appended;
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
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as redis_errors

from protocol.codec import JSON
from protocol.messages import (
    CandidateMessage,
    ClientFrame,
    CodeRun,
    CodeUpdate,
    Error,
    InterviewerInterrupt,
    Limits,
    PhaseChanged,
    Rubric,
    SessionEnd,
    SessionEnded,
    SessionResume,
    SessionStart,
    SessionStarted,
    Snapshot,
    Watch,
)
from server import metrics
from server.client_socket import ClientSocket, Endpoint
from server.errors import Forbidden, MentaraError, NotFound, ServiceUnavailable
from server.hub.history import History
from server.hub.keys import session_id_of_channel, session_keys, worker_channel
from server.hub.lease import RELEASED, Lease, Leases
from server.hub.pubsub import PubSubHub
from server.hub.rpc import InputRouter, OwnerUnreachable
from server.interviewer.engine import EngineConfig, InterviewerEngine, phase_deadline
from server.interviewer.provider import LLMProvider
from server.sessions.catalog import Catalog
from server.sessions.channel import SessionChannel
from server.sessions.code_runs import CodeRunService
from server.sessions.erasure import SessionEraser
from server.sessions.event_writer import EventWriter
from server.sessions.live import LiveSession, SessionEndedError
from server.sessions.log import LeaseLost, LoggedEvent, SessionLog, now_ms
from server.sessions.recovery import RecoveredState, backfill_records, recover_state
from server.sessions.scoring import LiveScoring
from server.sessions.snapshots import build_snapshot
from server.sessions.store import SessionRow, SessionStore
from server.sessions.user_limits import UserLimits

log = logging.getLogger("mentara.sessions")


class NotAttached(MentaraError):
    code = NotFound.code

    def __init__(self) -> None:
        super().__init__("start or resume a session first")


@dataclass(frozen=True)
class SessionConfig:
    engine: EngineConfig
    lease_ms: int = 5000
    stream_maxlen: int = 10_000
    history_ttl_ms: int = 6 * 3600 * 1000


class SessionManager:
    def __init__(
        self,
        *,
        store: SessionStore,
        writer: EventWriter,
        provider: LLMProvider,
        catalog: Catalog,
        runner: CodeRunService,
        config: SessionConfig,
        redis: aioredis.Redis,
        prefix: str,
        judge: Any | None = None,
        summary_writer: Any | None = None,
        limits: UserLimits | None = None,
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
        # Raises Unauthorized when the socket's token predates its user's erasure.
        self.token_revoked = token_revoked
        self.worker_id = uuid.uuid4().hex[:12]
        self.leases = Leases(
            redis, prefix, self.worker_id, lease_ms=config.lease_ms, ttl_ms=config.history_ttl_ms
        )
        self.history = History(redis, store, prefix)
        self.hub = PubSubHub(redis, self._on_pubsub, self._on_reconnect)
        self.router = InputRouter(redis, worker_channel(prefix, self.worker_id))
        self.router.handler = self._apply_forwarded
        self.eraser = SessionEraser(self)  # DELETE /v1/me: ends and closes erased sessions
        self.channels: dict[str, SessionChannel] = {}
        self.owned: dict[str, LiveSession] = {}
        self.attached: dict[ClientSocket, str] = {}
        self._takeovers: dict[str, asyncio.Future[LiveSession | None]] = {}
        self._orphaned: dict[str, float] = {}  # session -> when we first saw it without a lease
        self._keeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.hub.start()
        await self.hub.subscribe(worker_channel(self.prefix, self.worker_id))
        await self.hub.subscribe(self.eraser.channel)
        self._keeper = asyncio.create_task(self._keep(), name="lease-keeper")

    async def close(self) -> None:
        """Shutdown: stop every engine (a turn in progress ends with ``error``), hand the
        sessions over by releasing their leases, stop listening."""
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        sessions = list(self.owned.values())
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        for session in sessions:
            if session.lease is not None:
                try:
                    await self.leases.release(session.lease)
                except Exception:
                    log.warning("could not release the lease of %s", session.id)
        self.owned.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.leases.aclose()
        await self.eraser.close()
        await self.router.close()
        for channel in self.channels.values():
            await channel.close()
        await self.hub.close()

    # -- SessionGateway --------------------------------------------------------------------

    async def handle(self, sock: ClientSocket, frame: ClientFrame) -> None:
        match frame:
            case SessionStart():
                await self._start(sock, frame)
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
                attached_to = self.attached.get(sock)
                if attached_to is None:
                    raise NotAttached()
                ref = frame.id if isinstance(frame.id, str) else None
                seq = await self._input(attached_to, sock.user_id, frame)
                sock.ack(ref, seq)
            case _:
                raise MentaraError(f"{type(frame).__name__} is not handled here")

    async def _run_code(self, sock: ClientSocket, frame: CodeRun) -> None:
        attached_to = self.attached.get(sock)
        if attached_to is None:
            raise NotAttached()
        sock.ack(_ref(frame), await self._input(attached_to, sock.user_id, frame))

    async def detach(self, sock: ClientSocket) -> None:
        session_id = self.attached.pop(sock, None)
        if session_id is not None:
            await self._leave(sock, session_id)

    # -- start, attach ---------------------------------------------------------------------

    async def _start(self, sock: ClientSocket, frame: SessionStart) -> None:
        if sock.endpoint is Endpoint.ADMIN:
            raise Forbidden("the admin socket is read-only")
        question = self.catalog.pick(
            frame.track, frame.question_id if isinstance(frame.question_id, str) else None
        )
        language = frame.language if isinstance(frame.language, str) else None
        if language is None and frame.track == "coding":
            language = "python"
        if self.token_revoked is not None:
            await self.token_revoked(sock)
        started = now_ms()
        duration_s = self.config.engine.duration_s
        session_id = uuid.uuid4().hex
        deadline_ts = started + duration_s * 1000
        if self.limits is not None:
            try:
                await self.limits.admit_start(sock.user_id, session_id, deadline_ts)
            except MentaraError:
                # A repeated start re-attaches to its session, at the limit too.
                existing = await self.store.started_session(sock.user_id, frame.id)
                if existing is None:
                    raise
                await self._attach(sock, existing, 0)
                sock.ack(frame.id, 1)
                return
        try:
            row, created = await self.store.create_session(
                session_id=session_id,
                user_id=sock.user_id,
                track=frame.track,
                language=language,
                question_id=question.id,
                start_input_id=frame.id,
                deadline_ts=deadline_ts,
            )
        except BaseException:
            self._spawn(self._not_live(sock.user_id, session_id))
            raise
        if not created:
            self._spawn(self._not_live(sock.user_id, session_id))
            await self._attach(sock, row, 0)
            sock.ack(frame.id, 1)
            return
        lease = await self.leases.acquire(row.id, 0)
        if lease is None:
            raise ServiceUnavailable("could not take the new session's lease; retry")
        channel = self._channel(row.id)
        channel.set_head(0)
        session = self._new_live(row, lease, started_at_ms=started)
        self.owned[row.id] = session
        await self._move(sock, row.id)
        await channel.attach(sock, 0, announce=False)  # the owner needs no subscription
        rubric = self.catalog.rubric(frame.track)
        first = await session.log.append(
            SessionStarted(
                session_id=row.id,
                track=frame.track,
                language=language or "",
                question=question.public,
                rubric=Rubric(dimensions=list(rubric.dimensions), scale=list(rubric.scale)),
                limits=Limits(duration_s=duration_s),
                seq=0,
                ts=0,
            )
        )
        await session.log.append(
            PhaseChanged(
                name="intro", deadline_ts=phase_deadline(started, duration_s, "intro"), seq=0, ts=0
            )
        )
        if first.durable is not None:
            await first.durable
        sock.ack(frame.id, first.seq)
        session.arm_deadline()
        session.engine.start(introduce=True)

    async def _not_live(self, user_id: str, session_id: str) -> None:
        """The session no longer counts against its user's live sessions."""
        if self.limits is not None:
            await self.limits.session_over(user_id, session_id)

    async def _row(self, session_id: str) -> SessionRow:
        row = await self.store.get_session(session_id)
        if row is None:
            raise NotFound("no such session")
        return row

    async def _attach(
        self, sock: ClientSocket, row: SessionRow, last_seq: int, *, read_only: bool = False
    ) -> None:
        await self._move(sock, row.id)
        channel = self._channel(row.id)
        channel.joining += 1  # the channel stays, subscribed, until the socket is in it
        try:
            await self._sync_subscription(row.id)
            await channel.attach(sock, last_seq, read_only=read_only)
        except BaseException:
            channel.joining -= 1
            self.attached.pop(sock, None)
            await self._leave(sock, row.id)
            raise
        channel.joining -= 1
        if row.status != "ended" and row.id not in self.owned:
            self._spawn(self._ensure_owner(row.id))

    async def _move(self, sock: ClientSocket, session_id: str) -> None:
        previous = self.attached.get(sock)
        self.attached[sock] = session_id
        if previous is not None and previous != session_id:
            await self._leave(sock, previous)

    async def _leave(self, sock: ClientSocket, session_id: str) -> None:
        channel = self.channels.get(session_id)
        if channel is None:
            return
        channel.detach(sock)
        await self._sync_subscription(session_id)
        if (
            not channel.attachments
            and not channel.joining
            and session_id not in self.owned
            and self.channels.get(session_id) is channel
        ):
            self.channels.pop(session_id, None)
            await channel.close()

    # The eraser's view of this worker (server.sessions.erasure.ErasureHost).

    def owned_session(self, session_id: str) -> LiveSession | None:
        return self.owned.get(session_id)

    def take_owned(self, session_id: str) -> LiveSession | None:
        return self.owned.pop(session_id, None)

    def forget_owned(self, session: LiveSession) -> None:
        if self.owned.get(session.id) is session:
            del self.owned[session.id]

    async def release_lease(self, lease: Lease) -> None:
        await self.leases.release(lease)

    def local_channel(self, session_id: str) -> SessionChannel | None:
        return self.channels.get(session_id)

    async def drop_local_channel(self, session_id: str) -> None:
        await self._sync_subscription(session_id)  # no sockets left: unsubscribes
        self.channels.pop(session_id, None)

    async def _sync_subscription(self, session_id: str) -> None:
        """Subscribe to the session's pub/sub channel exactly while this worker has sockets on
        it (attached or being attached) and does not own it: the owner delivers its own
        events directly, so it never receives (and pays to parse) its own publishes."""
        channel = self.channels.get(session_id)
        if channel is None:
            return
        needed = bool(channel.attachments or channel.joining) and session_id not in self.owned
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

    def _channel(self, session_id: str) -> SessionChannel:
        channel = self.channels.get(session_id)
        if channel is None:
            channel = self.channels[session_id] = SessionChannel(
                session_id, self.history, self._snapshot
            )
        return channel

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
                    await self._drop_owned(session_id)
                    continue
            holder = await self.leases.holder(session_id)
            if holder is None or holder in (RELEASED, self.worker_id):
                if (
                    not self._may_take_over(session_id, holder)
                    or await self._take_over(session_id) is None
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
        if session.row.user_id != user_id:
            raise NotFound("no such session")
        if session.ended and not isinstance(frame, SessionEnd):
            raise SessionEndedError("this session has ended")
        match frame:
            case CandidateMessage(id=ref, text=text):
                return await session.candidate_message(ref, text)
            case CodeUpdate(id=ref, language=language, source=source):
                return await session.code_update(ref, language, source)
            case CodeRun(id=ref):
                return await session.apply_once(ref, lambda: self.runner.run(session))
            case InterviewerInterrupt(id=ref):
                await session.apply_once(
                    ref if isinstance(ref, str) else None, _no_event(session.interrupt)
                )
                return None
            case SessionEnd(id=ref):
                # Acked once session.ended (and so everything before it) is in Postgres.
                seq = await session.apply_once(ref, lambda: session.end("candidate_ended"))
                return seq if seq is not None else session.log.last_seq
        raise MentaraError(f"{type(frame).__name__} is not an input")

    # -- ownership -------------------------------------------------------------------------

    def _new_live(
        self,
        row: SessionRow,
        lease: Lease,
        *,
        started_at_ms: int,
        catch_up: list[LoggedEvent] | None = None,
        **state: object,
    ) -> LiveSession:
        question = self.catalog.get(row.question_id)
        keys = session_keys(self.prefix, row.id)
        holder: list[LiveSession] = []

        async def reacquire(floor: int) -> str | None:
            """Redis lost our lease: take it again, unless another worker has it now."""
            taken = await self.leases.acquire(row.id, floor)
            if taken is None:
                current = holder[0].lease  # the keeper may have re-taken it meanwhile
                value = await self.redis.get(keys.lease)
                if current is not None and value is not None and _text(value) == current.token:
                    return current.token
                return None
            holder[0].lease = taken
            return taken.token

        session_log = SessionLog(
            row.id,
            last_seq=lease.seq,
            token=lease.token,
            keys=[keys.lease, keys.seq, keys.stream, keys.inputs],
            channel_name=keys.channel,
            append_script=self.leases.append_script,
            reacquire=reacquire,
            writer=self.writer,
            channel=self._channel(row.id),
            stream_maxlen=self.config.stream_maxlen,
            ttl_ms=self.config.history_ttl_ms,
        )
        engine = InterviewerEngine(
            session_id=row.id,
            log=session_log,
            provider=self.provider,
            script=question.script,
            context=self.catalog.context(question, row.track),
            config=self.config.engine,
            started_at_ms=started_at_ms,
            notify=lambda code, message, retryable: holder[0].notify(code, message, retryable),
            **state,  # type: ignore[arg-type]
        )
        session = LiveSession(
            row,
            log=session_log,
            store=self.store,
            engine=engine,
            question=question.source,
            broadcast=lambda error: self._spawn(self._broadcast(row.id, error)),
        )
        session.lease = lease
        holder.append(session)
        scoring = LiveScoring(
            session_id=row.id,
            user_id=row.user_id,
            question=question.source,
            log=session_log,
            store=self.store,
            runner=self.runner.for_user(row.user_id),
            judge=self.judge,
            summary_writer=self.summary_writer,
        )
        scoring.catch_up(catch_up or [])
        session_log.observers.append(scoring.observe)
        if self.limits is not None:
            user_id = row.user_id

            def on_ended(logged: LoggedEvent) -> None:
                if isinstance(logged.event, SessionEnded):
                    self._spawn(self._not_live(user_id, row.id))

            session_log.observers.append(on_ended)
        scoring.start()
        session.scoring = scoring
        return session

    async def _ensure_owner(self, session_id: str) -> None:
        if session_id in self.owned:
            return
        holder = await self.leases.holder(session_id)
        if self._may_take_over(session_id, holder):
            await self._take_over(session_id)

    def _may_take_over(self, session_id: str, holder: str | None) -> bool:
        """A released session may be taken at once. A session with no lease at all may only
        be taken once it has stayed so for a whole lease period: after a Redis restart its
        owner may still be alive and about to take it back with its own, later, seq."""
        if holder == RELEASED:
            return True
        if holder is not None:
            self._orphaned.pop(session_id, None)
            return False
        now = asyncio.get_running_loop().time()
        first_seen = self._orphaned.setdefault(session_id, now)
        return now - first_seen >= self.config.lease_ms / 1000

    async def _take_over(self, session_id: str) -> LiveSession | None:
        """Become the owner if nobody is; None when another worker holds the lease."""
        pending = self._takeovers.get(session_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[LiveSession | None] = asyncio.get_running_loop().create_future()
        self._takeovers[session_id] = future
        try:
            session = await self._load_as_owner(session_id)
            future.set_result(session)
            return session
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            future.exception()
            raise
        finally:
            self._takeovers.pop(session_id, None)

    async def _load_as_owner(self, session_id: str) -> LiveSession | None:
        existing = self.owned.get(session_id)
        if existing is not None:
            return existing
        row = await self._row(session_id)
        if row.status == "ended":
            raise SessionEndedError("this session has ended")
        taken = await self._take_and_rebuild(row)
        if taken is None:
            return None
        session, state = taken
        if state.code is not None:
            session.engine.code_updated(state.code.language, state.code.source)
        self.owned[session_id] = session
        self._orphaned.pop(session_id, None)
        metrics.LEASE_TAKEOVERS.inc()
        await self._sync_subscription(session_id)
        log.info(
            "took over session %s at seq %d",
            session_id,
            session.log.last_seq,
            extra={"session_id": session_id},
        )
        if state.open_turn is not None:
            await state.close_open_turn(session.log)
        session.engine.start(introduce=False)
        if row.deadline_ts is not None and row.deadline_ts <= now_ms():
            session.spawn(session.end("time_up"))
        else:
            session.arm_deadline()
        return session

    async def _take_and_rebuild(self, row: SessionRow) -> tuple[LiveSession, RecoveredState] | None:
        """Take the session's lease and rebuild it as this worker's own (not yet in
        ``owned``); None when another worker holds the lease.

        What the previous owner logged in Redis but Postgres lacks is backfilled, with the
        input ids its appends recorded in Redis (they reach Postgres only with the
        write-behind: a dead owner's last inputs may be known only there); the session's
        state is replayed from history, and its channel goes live after the lease's seq."""
        session_id = row.id
        floor = await self.store.last_seq(session_id)
        lease = await self.leases.acquire(session_id, floor)
        if lease is None:
            return None
        events = [e for e in await self.history.read(session_id, 0) or [] if e.seq <= lease.seq]
        raw_inputs = await self.redis.hgetall(session_keys(self.prefix, session_id).inputs)
        redis_inputs = {
            _text(input_id): int(seq)
            for input_id, seq in raw_inputs.items()
            if int(seq) <= lease.seq
        }
        if any(e.seq > floor for e in events):
            await self.writer.submit(
                backfill_records(session_id, events, after=floor, inputs=redis_inputs)
            )
        state = recover_state(session_id, events)
        channel = self._channel(session_id)
        if not channel.attachments:
            channel.set_head(lease.seq)
        session = self._new_live(
            row,
            lease,
            started_at_ms=row.created_at_ms,
            catch_up=events,
            transcript=state.transcript,
            phase=state.phase,
            turns_spoken=state.turns_spoken,
        )
        session.candidate_turns = state.candidate_turns
        session.code = state.code
        applied = await self.store.applied_inputs(session_id)
        for input_id, seq in sorted(redis_inputs.items(), key=lambda item: item[1]):
            applied.setdefault(input_id, seq)
        session.remember_inputs(applied)
        return session, state

    async def recover_report(self, session_id: str) -> bool:
        """Write the report of an ended session left without one (its owner died or shut down
        while writing it, or gave up): take the session's lease, rebuild its scoring from the
        stored events, run the end of the session again (hidden tests, final deltas, report,
        push rows, ``report.ready``). The keeper releases the lease once it is done.

        Returns False, doing nothing, when another worker holds the lease (an owner still at
        it) or the session is not an ended one; True once the attempt is over (see
        ``LiveSession.report_done``; whether it stored a report, Postgres says)."""
        if session_id in self.owned:
            return False
        row = await self._row(session_id)
        if row.status != "ended":
            return False
        taken = await self._take_and_rebuild(row)
        if taken is None:
            return False
        session, _ = taken
        session.ended = True  # inputs are refused; the engine is never started
        self.owned[session_id] = session
        await self._sync_subscription(session_id)
        log.warning("writing the report of %s, left without one", session_id)
        metrics.REPORTS_RECOVERED.inc()
        await session.write_report()
        return True

    async def _drop_owned(self, session_id: str) -> None:
        """This worker lost the lease: stop the engine (its appends would be refused)."""
        session = self.owned.pop(session_id, None)
        if session is not None:
            session.log.lost = True
            await session.close()
            channel = self.channels.get(session_id)
            if channel is not None and not channel.attachments:
                self.channels.pop(session_id, None)
            elif channel is not None:
                # Our sockets stay: from now on the new owner's events come by pub/sub.
                await self._sync_subscription(session_id)
                await channel.check_gap(await self.history.current_seq(session_id))

    async def _keep(self) -> None:
        interval = self.config.lease_ms / 1000 / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._keep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("lease keeping failed", exc_info=True)

    async def _keep_once(self) -> None:
        """Renew every lease first, in one round trip; nothing else may delay it (a lease
        not renewed for ``lease_ms`` is lost). The rest (a lease not renewed, sessions done,
        sockets whose session has no owner here) runs in tasks of its own."""
        owned = [(s, s.lease) for s in self.owned.values() if s.lease is not None]
        renewed = await self.leases.renew([lease for _, lease in owned if lease is not None])
        for (session, lease_used), ok in zip(owned, renewed, strict=True):
            if ok or session.lease is not lease_used or session.id not in self.owned:
                continue  # renewed, or re-taken by an append meanwhile
            self._spawn(self._retake_or_drop(session))
        for session_id, session in list(self.owned.items()):
            if session.ended and session.report_done.is_set():
                self.owned.pop(session_id, None)
                self._spawn(self._hand_back(session))
        for session_id, channel in list(self.channels.items()):
            if channel.attachments and session_id not in self.owned:
                self._spawn(self._ensure_owner_quietly(session_id))

    async def _hand_back(self, session: LiveSession) -> None:
        """An ended session whose report is done: release its lease; sockets still on it
        here now hear any later event (a recovered report) through pub/sub; without
        sockets, its channel goes too."""
        if session.lease is not None:
            await self.leases.release(session.lease)
        await self._sync_subscription(session.id)
        channel = self.channels.get(session.id)
        if (
            channel is not None
            and not channel.attachments
            and not channel.joining
            and session.id not in self.owned
        ):
            # Its sockets left while we owned it (``_leave`` keeps an owned session's
            # channel): nothing of the session stays on this worker.
            self.channels.pop(session.id, None)
            await channel.close()

    async def _retake_or_drop(self, session: LiveSession) -> None:
        """Our lease was not renewed: take it again if Redis lost it (a restart without
        persistence), with the seq counter raised to what we last appended; else another
        worker owns the session now and this one stops."""
        value = await self.redis.get(session_keys(self.prefix, session.id).lease)
        if value is None:
            taken = await self.leases.acquire(session.id, session.log.last_seq)
            if taken is not None:
                log.warning("re-took the lease of %s after Redis lost it", session.id)
                session.lease = taken
                session.log.token = taken.token
                return
            # Taken meanwhile: by another worker, or by one of our own appends (which
            # re-takes it too, and records the new lease on the session).
            value = await self.redis.get(session_keys(self.prefix, session.id).lease)
        if value is not None and session.lease is not None and _text(value) == session.lease.token:
            return
        log.warning("lost the lease of %s", session.id)
        await self._drop_owned(session.id)

    async def _ensure_owner_quietly(self, session_id: str) -> None:
        try:
            await self._ensure_owner(session_id)
        except SessionEndedError:
            pass
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            log.warning("cannot check the owner of %s: %r", session_id, exc)

    # -- pub/sub ---------------------------------------------------------------------------

    def _on_pubsub(self, channel_name: str, data: bytes) -> None:
        if channel_name == self.router.my_channel:
            self.router.on_message(data)
            return
        if channel_name == self.eraser.channel:
            self.eraser.on_message(data)
            return
        session_id = session_id_of_channel(self.prefix, channel_name)
        channel = self.channels.get(session_id) if session_id else None
        if channel is None:
            return
        seq = _peek_seq(data)
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

    async def _broadcast(self, session_id: str, frame: Error) -> None:
        """A control frame for every socket of the session: ours directly, other workers'
        through the session's channel (the owner is not subscribed to it)."""
        channel = self.channels.get(session_id)
        if channel is not None:
            for sock in channel.sockets():
                sock.send(frame)
        await self.redis.publish(session_keys(self.prefix, session_id).channel, JSON.encode(frame))

    async def _on_reconnect(self) -> None:
        for session_id, channel in list(self.channels.items()):
            if channel.attachments:
                await channel.check_gap(await self.history.current_seq(session_id))

    def _spawn(self, coro: Awaitable[object]) -> None:
        async def supervised() -> None:
            try:
                await coro
            except Exception:
                log.exception("session task failed")

        task = asyncio.create_task(supervised())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _peek_seq(data: bytes) -> int | None:
    """The seq of a published event (``{"seq":N,...``) without decoding it; None otherwise."""
    if not data.startswith(b'{"seq":'):
        return None
    end = data.find(b",", 7)
    try:
        return int(data[7:end])
    except ValueError:
        return None


def _no_event(action: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    """Adapt an action that appends no event of its own to ``apply_once``."""

    async def apply() -> None:
        result = action()
        if asyncio.iscoroutine(result):
            await result

    return apply


def _ref(frame: CodeRun) -> str | None:
    return frame.id if isinstance(frame.id, str) else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
