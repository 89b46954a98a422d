"""``code.run``: the latest code against the question's visible tests, off the event loop.

The sandboxed runner lives in ``scoring.code_runner`` (a child process with limits, bounded
concurrency), in this process or in a ``mentara runner`` (:mod:`server.remote_runner`); this
module turns its result into a ``code.result`` event and tells the interviewer when the code
passes.
"""

from __future__ import annotations

import itertools
from typing import Any

from protocol.errors import ErrorCode
from protocol.messages import CodeResult
from scoring.code_runner import CodeRunner, RunLimits, RunResult, SandboxUnavailable
from scoring.judges.code import outcome_messages
from server.errors import MentaraError, SandboxUnavailableError
from server.runner_wire import RunsTests
from server.sessions.languages import runnable_language
from server.sessions.live import LiveSession
from server.sessions.log import LoggedEvent

_run_ids = itertools.count(1)


class NothingToRun(MentaraError):
    pass


class TooManyRuns(MentaraError):
    code = ErrorCode.RATE_LIMITED
    retryable = True


class CodeRunService:
    """Runs sessions' code with ``runner`` (default: ``scoring``'s sandboxed runner in this
    process, ``concurrency`` at a time)."""

    def __init__(
        self,
        limits: RunLimits | None = None,
        *,
        concurrency: int = 2,
        per_user: int = 1,
        runner: RunsTests | None = None,
    ) -> None:
        self.limits = limits or RunLimits()
        self.runner: RunsTests = runner or CodeRunner(max_concurrent=concurrency)
        self.per_user = per_user
        self._running: dict[str, int] = {}  # user -> runs in progress (entries removed at 0)

    async def run(self, session: LiveSession) -> LoggedEvent:
        session.ensure_open()
        code = session.code
        if code is None:
            raise NothingToRun("send code.update before code.run")
        question = session.question
        if getattr(question, "function_name", None) is None:
            raise NothingToRun("this question has no code to run")
        user = session.row.user_id
        if self._running.get(user, 0) >= self.per_user:
            raise TooManyRuns("a run of yours is in progress; wait for its code.result")
        self._running[user] = self._running.get(user, 0) + 1
        try:
            result = await self._run_visible(session, code, question)
        finally:
            left = self._running[user] - 1
            if left:
                self._running[user] = left
            else:
                del self._running[user]
        return await self._report(session, code, result)

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

    async def _report(self, session: LiveSession, code: Any, result: RunResult) -> LoggedEvent:
        logged = await session.log.append(
            CodeResult(
                run_id=f"r{next(_run_ids)}-{session.log.last_seq + 1}",
                version=code.version,
                status=result.status,
                tests=outcome_messages(result.tests),
                stdout_tail=result.stdout_tail,
                duration_ms=result.duration_ms,
                seq=0,
                ts=0,
            )
        )
        if result.status == "passed":
            await session.engine.code_passed()
        return logged
