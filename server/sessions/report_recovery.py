"""Reports for sessions left without one: any worker finishes them.

A session's report is written by its owner right after ``session.ended`` (hidden tests,
final scores, the report, push rows, ``report.ready``). If that worker dies or shuts down
meanwhile, or the report does not finish in time, the session stays ended with no report,
and no take-over would ever happen (nobody takes over an ended session). Postgres marks such
sessions (``sessions.report_pending``, set when a session ends and cleared when its report
is stored), and every worker sweeps them.

Contract of :class:`ReportRecovery`: every ``interval_s`` it asks Postgres for sessions
pending for more than ``retry_after_s`` since they ended (the owner's own attempt is over
by then) and hands each to :meth:`SessionManager.recover_report`, one at a time. The
session's lease makes this exclusive cluster-wide: an owner still writing holds it, and two
sweeping workers cannot both take it. A session whose report fails ``max_attempts`` times on
this worker is given up (logged as an error, no longer pending).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from server.errors import NotFound

if TYPE_CHECKING:
    from server.sessions.manager import SessionManager
    from server.sessions.store import SessionStore

log = logging.getLogger("mentara.reports")


class ReportRecovery:
    def __init__(
        self,
        manager: SessionManager,
        store: SessionStore,
        *,
        retry_after_s: float,
        interval_s: float | None = None,
        max_attempts: int = 3,
        batch: int = 20,
    ) -> None:
        self.manager = manager
        self.store = store
        self.retry_after_s = retry_after_s
        self.interval_s = interval_s if interval_s is not None else min(30.0, retry_after_s / 3)
        self.max_attempts = max_attempts
        self.batch = batch
        self._attempts: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="report-recovery")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("report sweep failed", exc_info=True)

    async def sweep(self) -> int:
        """One pass; returns how many sessions it wrote a report for (or tried to)."""
        pending = await self.store.sessions_awaiting_report(
            ended_before_s=self.retry_after_s, limit=self.batch
        )
        done = 0
        for session_id in pending:
            attempts = self._attempts.get(session_id, 0)
            if attempts >= self.max_attempts:
                log.error("gave up the report of %s after %d attempts", session_id, attempts)
                await self.store.abandon_report(session_id)
                self._attempts.pop(session_id, None)
                continue
            try:
                tried = await self.manager.recover_report(session_id)
            except NotFound:
                continue  # erased meanwhile
            if tried:
                self._attempts[session_id] = attempts + 1
                done += 1
        for session_id in list(self._attempts):
            if session_id not in pending:
                self._attempts.pop(session_id, None)  # written (or no longer ours to retry)
        return done
