"""Session assembly: one owned session's parts, wired together.

:meth:`SessionAssembly.live` builds a :class:`~server.sessions.live.LiveSession` from its
stored row and the lease this worker holds: the fenced :class:`~server.sessions.log.SessionLog`
(delivering to the session's local channel), the interviewer engine, live scoring observing
the log, and the per-user live-session count released at ``session.ended``. Nothing is
started here but scoring; the caller registers the session as owned and starts the engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from protocol.messages import Error, SessionEnded
from server.hub.keys import session_keys
from server.hub.lease import Lease, Leases
from server.hub.redis_client import RedisClient
from server.interviewer.engine import EngineConfig, InterviewerEngine
from server.interviewer.provider import LLMProvider
from server.sessions.catalog import Catalog
from server.sessions.code_runs import CodeRunService
from server.sessions.event_writer import EventWriter
from server.sessions.live import LiveSession
from server.sessions.local_channels import LocalChannels
from server.sessions.log import SessionLog
from server.sessions.logged_event import LoggedEvent
from server.sessions.scoring import LiveScoring
from server.sessions.store import SessionRow, SessionStore
from server.sessions.user_limits import UserLimits

__all__ = ["SessionAssembly", "SessionConfig"]


@dataclass(frozen=True)
class SessionConfig:
    engine: EngineConfig
    lease_ms: int = 5000
    #: A client input not applied and durable within this is answered with a retryable
    #: error (``LiveSession.apply_once``).
    input_answer_s: float = 5.0
    stream_maxlen: int = 10_000
    history_ttl_ms: int = 6 * 3600 * 1000
    append_audit: bool = False  # a log line per appended event (MENTARA_APPEND_AUDIT)
    unfenced_append: bool = False  # TEST ONLY (MENTARA_TEST_UNFENCED_APPEND)


@dataclass
class SessionAssembly:
    """Everything a live session is made of, shared by every session of the worker."""

    config: SessionConfig
    redis: RedisClient
    prefix: str
    store: SessionStore
    writer: EventWriter
    leases: Leases
    channels: LocalChannels
    catalog: Catalog
    provider: LLMProvider
    runner: CodeRunService
    judge: Any | None
    summary_writer: Any | None
    limits: UserLimits | None
    spawn: Callable[[Awaitable[object]], None]

    def live(
        self,
        row: SessionRow,
        lease: Lease,
        *,
        started_at_ms: int,
        catch_up: list[LoggedEvent] | None = None,
        **state: object,
    ) -> LiveSession:
        """The session, owned under ``lease``; ``catch_up`` are the events it already has
        (a take-over: scoring replays them), ``state`` the engine's recovered state."""
        question = self.catalog.get(row.question_id)
        keys = session_keys(self.prefix, row.id)
        holder: list[LiveSession] = []

        async def reacquire(floor: int) -> Lease | None:
            """Redis lost our lease: take it again, unless another worker has it now."""
            taken = await self.leases.retake(row.id, floor, await self.store.last_seq(row.id))
            if taken is None:
                current = session_log.lease  # the keeper may have re-taken it meanwhile
                value = await self.redis.get(keys.lease)
                if value is not None and _text(value) == current.token:
                    return current
                return None
            return taken

        session_log = SessionLog(
            row.id,
            last_seq=lease.seq,
            lease=lease,
            keys=[keys.lease, keys.seq, keys.stream, keys.inputs],
            channel_name=keys.channel,
            append_script=self.leases.append_script,
            reacquire=reacquire,
            writer=self.writer,
            channel=self.channels.channel(row.id),
            stream_maxlen=self.config.stream_maxlen,
            ttl_ms=self.config.history_ttl_ms,
            audit=self.config.append_audit,
            tick_s=self.config.engine.coalesce_window_s,
        )
        session_log.projector.warm(catch_up or [])  # a taken-over turn's start and deltas
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

        def broadcast(error: Error) -> None:
            self.spawn(self.channels.broadcast(row.id, error))

        session = LiveSession(
            row,
            log=session_log,
            store=self.store,
            engine=engine,
            question=question.source,
            broadcast=broadcast,
            answer_within_s=self.config.input_answer_s,
        )
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
        limits = self.limits
        if limits is not None:
            user_id = row.user_id

            def on_ended(logged: LoggedEvent) -> None:
                if isinstance(logged.event, SessionEnded):
                    self.spawn(limits.session_over(user_id, row.id))

            session_log.observers.append(on_ended)
        scoring.start()
        session.scoring = scoring
        return session


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
