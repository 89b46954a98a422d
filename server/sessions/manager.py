"""The session layer's front door: it routes every session frame of every socket.

It implements the socket's ``SessionGateway``: ``session.start`` creates a session owned by the
caller; ``session.resume`` (the owner's devices) and ``watch`` (admins, read-only) attach a
socket with a replay; input frames go to the session the socket is attached to. Sessions live
on this worker while active; one that is not in memory (after a restart) is recovered from
Postgres on first use.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from protocol.messages import (
    CandidateMessage,
    ClientFrame,
    CodeRun,
    CodeUpdate,
    InterviewerInterrupt,
    Limits,
    PhaseChanged,
    Rubric,
    SessionEnd,
    SessionResume,
    SessionStart,
    SessionStarted,
    Watch,
)
from server.client_socket import ClientSocket, Endpoint
from server.errors import Forbidden, MentaraError, NotFound
from server.interviewer.engine import EngineConfig, InterviewerEngine, phase_deadline
from server.interviewer.provider import LLMProvider
from server.sessions.catalog import Catalog
from server.sessions.code_runs import CodeRunService
from server.sessions.event_writer import EventWriter
from server.sessions.live import LiveSession, SessionEndedError
from server.sessions.log import SessionLog, now_ms
from server.sessions.recovery import recover_state
from server.sessions.store import SessionRow, SessionStore

log = logging.getLogger("mentara.sessions")


class NotAttached(MentaraError):
    code = NotFound.code

    def __init__(self) -> None:
        super().__init__("start or resume a session first")


@dataclass(frozen=True)
class SessionConfig:
    engine: EngineConfig
    history_limit: int = 2000


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
    ) -> None:
        self.store = store
        self.writer = writer
        self.provider = provider
        self.catalog = catalog
        self.runner = runner
        self.config = config
        self.live: dict[str, LiveSession] = {}
        self.attached: dict[ClientSocket, LiveSession] = {}
        self._loading: dict[str, asyncio.Future[LiveSession]] = {}

    # -- SessionGateway --------------------------------------------------------------------

    async def handle(self, sock: ClientSocket, frame: ClientFrame) -> None:
        match frame:
            case SessionStart():
                await self._start(sock, frame)
            case SessionResume(session_id=session_id, last_seq=last_seq):
                session = await self._owned(sock, session_id)
                await self._attach(sock, session, last_seq)
            case Watch(session_id=session_id):
                if sock.endpoint is not Endpoint.ADMIN:
                    raise Forbidden("watch is for the admin socket")
                last_seq = frame.last_seq if isinstance(frame.last_seq, int) else 0
                session = await self._get(session_id)
                await self._attach(sock, session, last_seq, read_only=True)
            case CandidateMessage(id=ref, text=text):
                seq = await self._session_of(sock).candidate_message(ref, text)
                sock.ack(ref, seq)
            case CodeUpdate(id=ref, language=language, source=source):
                seq = await self._session_of(sock).code_update(ref, language, source)
                sock.ack(ref, seq)
            case CodeRun(id=ref):
                session = self._session_of(sock)
                seq = await session.apply_once(ref, lambda: self.runner.run(session))
                sock.ack(ref, seq)
            case InterviewerInterrupt(id=ref):
                session = self._session_of(sock)
                ref_id = ref if isinstance(ref, str) else None

                async def interrupt() -> None:
                    session.interrupt()

                await session.apply_once(ref_id, _no_event(interrupt))
                sock.ack(ref_id)
            case SessionEnd(id=ref):
                session = self._session_of(sock)
                seq = await session.apply_once(
                    ref, _no_event(lambda: session.end("candidate_ended"))
                )
                sock.ack(ref, seq if seq is not None else session.log.last_seq)
            case _:
                raise MentaraError(f"{type(frame).__name__} is not handled here")

    async def detach(self, sock: ClientSocket) -> None:
        session = self.attached.pop(sock, None)
        if session is not None:
            session.detach(sock)

    # -- lifecycle -------------------------------------------------------------------------

    async def _start(self, sock: ClientSocket, frame: SessionStart) -> None:
        if sock.endpoint is Endpoint.ADMIN:
            raise Forbidden("the admin socket is read-only")
        question = self.catalog.pick(
            frame.track, frame.question_id if isinstance(frame.question_id, str) else None
        )
        language = frame.language if isinstance(frame.language, str) else None
        if language is None and frame.track == "coding":
            language = "python"
        started = now_ms()
        duration_s = self.config.engine.duration_s
        row, created = await self.store.create_session(
            session_id=uuid.uuid4().hex,
            user_id=sock.user_id,
            track=frame.track,
            language=language,
            question_id=question.id,
            start_input_id=frame.id,
            deadline_ts=started + duration_s * 1000,
        )
        if not created:
            session = await self._get(row.id)
            await self._attach(sock, session, 0)
            sock.ack(frame.id, 1)
            return
        session = self._new_live(row, last_seq=0, started_at_ms=started)
        self.live[row.id] = session
        self._move(sock, session)
        await session.attach(sock, 0, announce=False)
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

    def _new_live(
        self, row: SessionRow, *, last_seq: int, started_at_ms: int, **state: object
    ) -> LiveSession:
        question = self.catalog.get(row.question_id)
        session_log = SessionLog(
            row.id,
            last_seq=last_seq,
            writer=self.writer,
            store=self.store,
            history_limit=self.config.history_limit,
        )
        holder: list[LiveSession] = []
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
            row, log=session_log, store=self.store, engine=engine, question=question.source
        )
        holder.append(session)
        return session

    async def _get(self, session_id: str) -> LiveSession:
        session = self.live.get(session_id)
        if session is not None:
            return session
        loading = self._loading.get(session_id)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[LiveSession] = asyncio.get_running_loop().create_future()
        self._loading[session_id] = future
        try:
            session = await self._load(session_id)
            self.live[session_id] = session
            future.set_result(session)
            return session
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            future.exception()
            raise
        finally:
            self._loading.pop(session_id, None)

    async def _load(self, session_id: str) -> LiveSession:
        row = await self.store.get_session(session_id)
        if row is None:
            raise NotFound("no such session")
        state = await recover_state(self.store, row)
        session = self._new_live(
            row,
            last_seq=state.last_seq,
            started_at_ms=row.created_at_ms,
            transcript=state.transcript,
            phase=state.phase,
            turns_spoken=state.turns_spoken,
        )
        session.candidate_turns = state.candidate_turns
        session.code = state.code
        if state.code is not None:
            session.engine.code_updated(state.code.language, state.code.source)
        if row.status == "ended":
            session.ended = True
            return session
        if state.open_turn is not None:
            await state.close_open_turn(session.log)
        session.engine.start(introduce=False)
        if row.deadline_ts is not None and row.deadline_ts <= now_ms():
            session.spawn(session.end("time_up"))
        else:
            session.arm_deadline()
        return session

    async def _owned(self, sock: ClientSocket, session_id: str) -> LiveSession:
        session = await self._get(session_id)
        if session.row.user_id != sock.user_id:
            raise NotFound("no such session")  # never confirm that another user's session exists
        return session

    async def _attach(
        self, sock: ClientSocket, session: LiveSession, last_seq: int, *, read_only: bool = False
    ) -> None:
        self._move(sock, session)
        await session.attach(sock, last_seq, read_only=read_only)

    def _move(self, sock: ClientSocket, session: LiveSession) -> None:
        previous = self.attached.get(sock)
        if previous is not None and previous is not session:
            previous.detach(sock)
        self.attached[sock] = session

    def _session_of(self, sock: ClientSocket) -> LiveSession:
        session = self.attached.get(sock)
        if session is None:
            raise NotAttached()
        if session.ended:
            raise SessionEndedError("this session has ended")
        return session

    async def close(self) -> None:
        """Stop every live session on this worker (shutdown); sessions stay active in Postgres."""
        await asyncio.gather(*(s.close() for s in self.live.values()), return_exceptions=True)
        self.live.clear()


def _no_event(action: object):  # type: ignore[no-untyped-def]
    """Adapt an action that appends no event of its own to ``apply_once``."""

    async def apply() -> None:
        result = action()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            await result
        return None

    return apply
