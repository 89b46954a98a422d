"""A session live on this worker: its log, its interviewer engine, its code and its inputs.

Contract:
- Client input with an ``id`` is applied at most once per session (PROTOCOL.md §2): a repeat
  (same socket or another, before or after the first was stored) is acked again with the
  original ``seq``; the first is acked only once its event is durable in Postgres.
- An input (but ``code.run`` and ``session.end``, whose application is a run and a closing
  turn) whose application (Redis, then Postgres for the ack) takes longer than
  ``answer_within_s`` is answered with :class:`InputPending` (retryable) while it goes on
  being applied: the same input sent again (same ``id``) waits for that one application and
  is acked with its seq. An input is forgotten only when its application failed for good.
- Code snapshots are versioned from 1; a buffer identical (by sha256) to the latest version is
  not stored again and is acked with that version's event.
- The session ends at ``deadline_ts`` with ``time_up`` whether or not a socket is attached.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from protocol.errors import ErrorCode
from protocol.messages import (
    CandidateMessage,
    CandidateSaid,
    ClientFrame,
    CodeRun,
    CodeSnapshot,
    CodeUpdate,
    Error,
    InterviewerInterrupt,
    SessionEnd,
)
from server.errors import MentaraError, NotFound, ServiceUnavailable
from server.hub.lease import Lease
from server.interviewer.engine import InterviewerEngine
from server.sessions.event_writer import retry_while_unreachable
from server.sessions.log import LoggedEvent, SessionLog, now_ms
from server.sessions.scoring import LiveScoring
from server.sessions.store import SessionRow, SessionStore

log = logging.getLogger("mentara.session")

_INPUT_CACHE = 4096
#: The report (hidden tests, scores, Claude's summary) must be done within this.
REPORT_TIMEOUT_S = 120.0


class SessionEndedError(MentaraError):
    code = ErrorCode.SESSION_ENDED


class InputPending(ServiceUnavailable):
    """The input is not applied and stored yet (Redis or Postgres is not answering); it goes
    on being applied, once: send it again with the same ``id`` for its ack."""

    def __init__(self) -> None:
        super().__init__(
            "not applied yet (a service is not answering); send it again with the same id"
        )


@dataclass
class CodeVersion:
    version: int
    language: str
    sha256: str
    source: str
    seq: int


class LiveSession:
    def __init__(
        self,
        row: SessionRow,
        *,
        log: SessionLog,
        store: SessionStore,
        engine: InterviewerEngine,
        candidate_turns: int = 0,
        code: CodeVersion | None = None,
        question: Any = None,
        broadcast: Callable[[Error], None] = lambda error: None,
        answer_within_s: float = 5.0,
    ) -> None:
        self.row = row
        self.id = row.id
        self.log = log
        self.store = store
        self.engine = engine
        self.candidate_turns = candidate_turns
        self.code = code
        self.question = question  # the bank's question: tests and solution stay server-side
        self.broadcast = broadcast
        self.answer_within_s = answer_within_s
        self.scoring: LiveScoring | None = None
        self.report_done = asyncio.Event()
        self.ended = row.status == "ended"
        self._inputs: OrderedDict[str, asyncio.Future[int | None]] = OrderedDict()
        # True while ``_inputs`` holds every input the session ever accepted (a new session,
        # or one whose inputs were loaded at take-over): then a miss needs no Postgres query.
        self.inputs_complete = row.status == "active" and candidate_turns == 0 and code is None
        self._deadline: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        if code is not None:
            engine.code_updated(code.language, code.source)

    # -- idempotent input ------------------------------------------------------------------

    @property
    def lease(self) -> Lease:
        """This worker's lease on the session: the one handle its log keeps."""
        return self.log.lease

    @lease.setter
    def lease(self, lease: Lease) -> None:
        self.log.lease = lease

    async def apply_once(
        self,
        input_id: str | None,
        apply: Callable[[], Awaitable[LoggedEvent | None]],
        *,
        bounded: bool = True,
    ) -> int | None:
        """Apply an input at most once per ``input_id``; return the seq of its event (if any)
        once it is durable. ``input_id`` None: no idempotency, applied every time.

        ``bounded``: raise :class:`InputPending` after ``answer_within_s`` without an outcome
        (the application goes on; see the module docstring). Unbounded for ``code.run`` and
        ``session.end``, whose applications are a run and a closing turn."""
        if input_id is None:
            logged = await apply()
            return await _durable_seq(logged)
        known = self._inputs.get(input_id)
        if known is not None:
            return await self._outcome(known, bounded)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._inputs[input_id] = future
        if len(self._inputs) > _INPUT_CACHE:
            self._inputs.popitem(last=False)
            self.inputs_complete = False
        # The application runs in a task of its own: a caller that goes away (the socket
        # dropped while its input was being applied) must not cancel it half-way, or the
        # input's id would be forgotten although its event is in the log, and the client's
        # re-sent input (after a resume) would be applied twice.
        task = asyncio.create_task(self._apply_new(input_id, future, apply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await self._outcome(future, bounded)

    async def _outcome(self, future: asyncio.Future[int | None], bounded: bool) -> int | None:
        if not bounded or future.done():
            return await asyncio.shield(future)
        done, _ = await asyncio.wait((future,), timeout=self.answer_within_s)
        if not done:
            log.warning("input of %s not applied within %ss", self.id, self.answer_within_s)
            raise InputPending()
        return future.result()

    async def _apply_new(
        self,
        input_id: str,
        future: asyncio.Future[int | None],
        apply: Callable[[], Awaitable[LoggedEvent | None]],
    ) -> None:
        try:
            seen, seq = False, None
            if not self.inputs_complete:
                seen, seq = await retry_while_unreachable(
                    lambda: self.store.input_seq(self.id, input_id)
                )
            if not seen:
                seq = await _durable_seq(await apply())
        except BaseException as exc:
            if self._inputs.get(input_id) is future:
                del self._inputs[input_id]
            if not future.done():
                # Cancelled: the session stopped on this worker (dropped, shut down) before
                # the input's event stood; sent again, it reaches the session's next owner.
                stopped = ServiceUnavailable("the session moved; send it again with the same id")
                future.set_exception(exc if isinstance(exc, Exception) else stopped)
                future.exception()  # retrieved: no "never retrieved" warning
            if not isinstance(exc, Exception):
                raise
            return
        if not future.done():
            future.set_result(seq)

    def remember_inputs(self, applied: dict[str, int | None]) -> None:
        """Load the inputs Postgres says were applied (a take-over), so repeats are known."""
        loop = asyncio.get_running_loop()
        for input_id, seq in list(applied.items())[-_INPUT_CACHE:]:
            future: asyncio.Future[int | None] = loop.create_future()
            future.set_result(seq)
            self._inputs[input_id] = future
        self.inputs_complete = len(applied) <= _INPUT_CACHE

    def ensure_open(self) -> None:
        if self.ended or self.engine.state.value in ("ending", "ended"):
            raise SessionEndedError("this session has ended")

    # -- inputs ----------------------------------------------------------------------------

    async def apply_input(
        self, user_id: str, frame: ClientFrame, run_code: Callable[[], Awaitable[LoggedEvent]]
    ) -> int | None:
        """Apply one input of ``user_id`` (once per input id); the seq to ack it with.

        ``run_code`` runs the session's latest code (``code.run``). Raises NotFound for
        another user's session (never confirming it exists) and SessionEndedError for an
        input after the end (a repeated ``session.end`` is acked again)."""
        if self.row.user_id != user_id:
            raise NotFound("no such session")
        if self.ended and not isinstance(frame, SessionEnd):
            raise SessionEndedError("this session has ended")
        match frame:
            case CandidateMessage(id=ref, text=text):
                return await self.candidate_message(ref, text)
            case CodeUpdate(id=ref, language=language, source=source):
                return await self.code_update(ref, language, source)
            case CodeRun(id=ref):
                return await self.apply_once(ref, run_code, bounded=False)
            case InterviewerInterrupt(id=ref):
                await self.apply_once(ref if isinstance(ref, str) else None, self._interrupted)
                return None
            case SessionEnd(id=ref):
                # Acked once session.ended (and so everything before it) is in Postgres.
                seq = await self.apply_once(ref, lambda: self.end("candidate_ended"), bounded=False)
                return seq if seq is not None else self.log.last_seq
        raise MentaraError(f"{type(frame).__name__} is not an input")

    async def _interrupted(self) -> None:
        self.interrupt()  # appends no event of its own

    async def candidate_message(self, input_id: str | None, text: str) -> int | None:
        self.ensure_open()

        async def apply() -> LoggedEvent:
            self.candidate_turns += 1
            turn_id = f"c{self.candidate_turns}"
            logged = await self.log.append(
                CandidateSaid(turn_id=turn_id, text=text, seq=0, ts=0), input_id=input_id
            )
            self.engine.heard(text)
            return logged

        return await self.apply_once(input_id, apply)

    async def code_update(self, input_id: str | None, language: str, source: str) -> int | None:
        self.ensure_open()

        async def apply() -> LoggedEvent | None:
            digest = hashlib.sha256(source.encode()).hexdigest()
            if (
                self.code is not None
                and self.code.sha256 == digest
                and self.code.language == language
            ):
                return None  # identical to the latest version: nothing new to store
            version = 1 if self.code is None else self.code.version + 1
            logged = await self.log.append(
                CodeSnapshot(
                    version=version, language=language, sha256=digest, source=source, seq=0, ts=0
                ),
                input_id=input_id,
            )
            self.code = CodeVersion(version, language, digest, source, logged.seq)
            self.engine.code_updated(language, source)
            await self.engine.advance_phase("coding")
            return logged

        seq = await self.apply_once(input_id, apply)
        if seq is None and self.code is not None:
            return self.code.seq
        return seq

    def interrupt(self) -> bool:
        self.ensure_open()
        return self.engine.interrupt()

    async def end(self, reason: str) -> LoggedEvent | None:
        """End the session; return ``session.ended`` (None if it was already ending)."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self.ended:
            return None
        self.ended = True
        ended = await self.engine.finish(reason)
        self.spawn(self.write_report())
        return ended

    async def write_report(self) -> None:
        """Hidden tests, final scores, the report and ``report.ready``: after the ack of
        ``session.end``, bounded in time (a report that cannot be finished is logged)."""
        try:
            if self.scoring is not None:
                async with asyncio.timeout(REPORT_TIMEOUT_S):
                    await self.scoring.finish(code=self.code)
        finally:
            self.report_done.set()

    # -- time limit ------------------------------------------------------------------------

    def arm_deadline(self) -> None:
        if self.row.deadline_ts is None or self.ended:
            return
        delay = max(0.0, (self.row.deadline_ts - now_ms()) / 1000)
        self._deadline = asyncio.get_running_loop().call_later(delay, self._time_up)

    def _time_up(self) -> None:
        self._deadline = None
        self.spawn(self.end("time_up"))

    def spawn(self, coro: Awaitable[object]) -> None:
        """Run ``coro`` in a task held by this session; its failure is logged, not lost."""

        async def supervised() -> None:
            try:
                await coro
            except Exception:
                log.exception("session task failed", extra={"session_id": self.id})

        task = asyncio.create_task(supervised())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sockets ---------------------------------------------------------------------------

    def notify(self, code: ErrorCode, message: str, retryable: bool) -> None:
        """Tell every socket on the session, on every worker (a control frame, not an event)."""
        error = Error(
            code=code, message=message, retryable=retryable, ref=msgspec.UNSET, field=msgspec.UNSET
        )
        self.broadcast(error)

    async def close(self) -> None:
        """Stop on this worker without ending the session (shutdown)."""
        if self._deadline is not None:
            self._deadline.cancel()
        await self.engine.close()
        if self.scoring is not None and not self.ended:
            await self.scoring.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _durable_seq(logged: LoggedEvent | None) -> int | None:
    if logged is None:
        return None
    if logged.durable is not None:
        await logged.durable
    return logged.seq
