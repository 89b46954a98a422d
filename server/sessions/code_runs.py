"""``code.run``: the latest code against the question's visible tests, off the event loop.

The sandboxed runner lives in ``scoring.code_runner`` (a child process with limits, bounded
concurrency), in this process or in a ``mentara runner`` (:mod:`server.remote_runner`); this
module turns its result into a ``code.result`` event and tells the interviewer when the code
passes.

Fair shares (refusals are ``rate_limited``, retryable, and run nothing):
- one run per session at a time: a ``code.run`` while one of the same session is pending is
  refused, never queued; and ``per_user`` runs per user at a time on this worker;
- ``UserLimits.admit_run``: at most so many runs per user a minute, across workers;
- the runner's ``max_concurrent`` places are shared round-robin by user among this worker's
  runs (:class:`~server.sessions.run_queue.FairRunQueue`); the hidden-test runs at a
  session's end (:meth:`CodeRunService.for_user`) queue the same way.

Edge-case probes (issue #17): when a version passes its visible tests, its hidden tests run
too, silently, in the same queue place right after the ``code.result`` is appended (no
second place, no quota count; the candidate may run again meanwhile, in another place). At most once per version and ``MAX_EDGE_CHECKS`` times per session, never
while a probe is pending. Nothing of it reaches the candidate but, when a tagged kind of
case failed, the interviewer's next turn: a question about that kind of case
(:mod:`scoring.edge_probes`), whose answer is scored.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from typing import Any

from protocol.errors import ErrorCode
from protocol.messages import CodeResult
from scoring.code_runner import CodeRunner, RunLimits, RunResult, SandboxUnavailable, TestCase
from scoring.edge_probes import failing_categories
from scoring.judges.code import outcome_messages
from server.errors import MentaraError, SandboxUnavailableError
from server.runner_wire import RunsTests
from server.sessions.languages import runnable_language
from server.sessions.live import LiveSession
from server.sessions.log import LoggedEvent
from server.sessions.run_queue import FairRunQueue
from server.sessions.user_limits import UserLimits

_run_ids = itertools.count(1)
_WORKER_RUNS = uuid.uuid4().hex[:8]  # run ids unique across workers and restarts


class NothingToRun(MentaraError):
    pass


class TooManyRuns(MentaraError):
    code = ErrorCode.RATE_LIMITED
    retryable = True


class CodeRunService:
    """Runs sessions' code with ``runner`` (default: ``scoring``'s sandboxed runner in this
    process, ``concurrency`` at a time), its places shared fairly between users (see the
    module docstring). ``user_limits``, when given, holds the per-user quota across workers."""

    def __init__(
        self,
        limits: RunLimits | None = None,
        *,
        concurrency: int = 2,
        per_user: int = 1,
        runner: RunsTests | None = None,
        user_limits: UserLimits | None = None,
    ) -> None:
        self.limits = limits or RunLimits()
        self.runner: RunsTests = runner or CodeRunner(max_concurrent=concurrency)
        self.queue = FairRunQueue(self.runner.max_concurrent)
        self.per_user = per_user
        self.user_limits = user_limits
        self._running: dict[str, int] = {}  # user -> runs pending (entries removed at 0)
        self._pending: set[str] = set()  # sessions with a run pending

    async def run(self, session: LiveSession) -> LoggedEvent:
        """Run the session's latest code and append its ``code.result``.

        Raises ``NothingToRun``, ``TooManyRuns`` (a run of the session, or ``per_user`` of
        the user, pending), ``LimitReached`` (the minute's quota), ``SessionEndedError``
        (also when the session ended while the code ran: no result is appended then)."""
        session.ensure_open()
        code = session.code
        if code is None:
            raise NothingToRun("send code.update before code.run")
        question = session.question
        if getattr(question, "function_name", None) is None:
            raise NothingToRun("this question has no code to run")
        user = session.row.user_id
        if session.id in self._pending:
            raise TooManyRuns("a run of this session is pending; wait for its code.result")
        if self._running.get(user, 0) >= self.per_user:
            raise TooManyRuns("a run of yours is in progress; wait for its code.result")
        self._pending.add(session.id)
        self._running[user] = self._running.get(user, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._pending.discard(session.id)
            left = self._running[user] - 1
            if left:
                self._running[user] = left
            else:
                del self._running[user]

        categories: tuple[str, ...] | None = None
        try:
            if self.user_limits is not None:
                await self.user_limits.admit_run(user)
            async with self.queue.slot(user):
                result = await self._run_visible(session, code, question)
                session.ensure_open()
                logged = await self._report(session, code, result)
                # The candidate may run again now; the check keeps only this queue place.
                release()
                if result.status == "passed":
                    categories = await self._edge_check(session, code, question)
        finally:
            release()
        if result.status == "passed":
            probe = None
            if categories and session.scoring is not None and not session.ended:
                probe = await session.scoring.edge_probe(code.seq, categories)
            await session.engine.code_passed(probe=probe)
        return logged

    def for_user(self, user_id: str) -> UserRunner:
        """A runner with ``CodeRunner.run_tests``'s signature whose runs take this worker's
        places in ``user_id``'s turn (the hidden tests at a session's end)."""
        return UserRunner(self, user_id)

    async def _run_visible(self, session: LiveSession, code: Any, question: Any) -> RunResult:
        try:
            return await self.runner.run_tests(
                code.source,
                question.function_name,
                question.visible_tests,
                language=runnable_language(code.language),
                compare=question.compare,
                tolerance=question.tolerance,
                limits=self.limits,
            )
        except SandboxUnavailable:
            raise SandboxUnavailableError(
                "code cannot run safely on this server now; nothing ran (try again later)"
            ) from None

    async def _edge_check(
        self, session: LiveSession, code: Any, question: Any
    ) -> tuple[str, ...] | None:
        """The kinds of edge case the passing ``code`` fails in its hidden tests (in the
        caller's queue place); None when no check is due or none could run."""
        scoring = session.scoring
        if scoring is None or not scoring.claim_edge_check(code.version):
            return None
        try:
            hidden = await self.runner.run_tests(
                code.source,
                question.function_name,
                question.hidden_tests,
                language=runnable_language(code.language),
                compare=question.compare,
                tolerance=question.tolerance,
                limits=self.limits,
            )
        except SandboxUnavailable:
            return None
        return failing_categories(question.hidden_tests, hidden)

    async def _report(self, session: LiveSession, code: Any, result: RunResult) -> LoggedEvent:
        logged = await session.log.append(
            CodeResult(
                run_id=f"r{_WORKER_RUNS}-{next(_run_ids)}",
                version=code.version,
                status=result.status,
                tests=outcome_messages(result.tests),
                stdout_tail=result.stdout_tail,
                duration_ms=result.duration_ms,
                seq=0,
                ts=0,
            )
        )
        return logged


class UserRunner:
    """``CodeRunner.run_tests`` for one user, through the service's fair queue."""

    def __init__(self, service: CodeRunService, user_id: str) -> None:
        self.service = service
        self.user_id = user_id

    async def run_tests(
        self, source: str, function_name: str, tests: Sequence[TestCase], **options: Any
    ) -> RunResult:
        async with self.service.queue.slot(self.user_id):
            return await self.service.runner.run_tests(source, function_name, tests, **options)
