"""Live scoring for one session on its owner: judges beside the interviewer, never in its way.

Contract:
- :meth:`LiveScoring.observe` is called with every event the owner appends, in seq order; it
  only queues (never awaits), so scoring cannot delay the interviewer's stream. One scoring
  task per session drains the queue through ``scoring``'s pure :class:`SessionScorer` and
  appends each resulting ``score.delta`` (its ``evidence`` names the events behind it).
- The interviewer's deltas are folded before they are queued: consecutive deltas of one turn
  become one delta (the concatenated text, the last one's seq), queued when the next other
  event arrives. No judge reads a turn before it ends, so the scores are the same as scoring
  each delta, and the scoring task wakes a few times per turn instead of once per delta.
- With Claude configured, each candidate turn is also labelled by the Claude judge, at most
  one call in flight per session (turns said meanwhile are judged together next); its
  evidence goes through the same ledger.
- Edge-case probes (coding): :meth:`edge_probe` takes the kinds of edge case a hidden-test
  check of a passing version found failing (the check is :class:`CodeRunService`'s) and
  returns the probe the interviewer should ask, or None; the evidence (the miss, then the
  candidate's answer) goes through the same ledger (:mod:`scoring.edge_probes`). That state
  lives on this owner only: a probe pending when the session changes owner is forgotten.
- :meth:`finish` (after ``session.ended``): the hidden tests run on the final code (only counts
  reach the candidate), the final deltas are appended, the report is built (Claude writes
  the summary when configured, bounded in time; the ledger-built one otherwise or on
  failure, never nothing), stored with one push notification per registered device in the
  same transaction, and announced with ``report.ready``. The report's ``since_previous``
  compares it with the user's previous stored reports of the track (``server.progress``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from dataclasses import replace
from typing import Any

from protocol.messages import CandidateSaid, InterviewerDelta, ReportReady, SessionEvent
from scoring.code_runner import RunLimits, SandboxUnavailable
from scoring.edge_probes import EdgeProbes
from scoring.judges.code import HiddenTestResult
from scoring.progress import since_previous
from scoring.report import Report
from scoring.scorer import SessionScorer
from server.errors import MentaraError
from server.progress import previous_reports
from server.sessions.languages import runnable_language
from server.sessions.log import LoggedEvent, SessionLog
from server.sessions.store import SessionStore

log = logging.getLogger("mentara.scoring")

#: Hidden-test checks of passing versions per session, for edge-case probes: each costs a
#: code run, a scarce resource shared fairly between users.
MAX_EDGE_CHECKS = 3

#: Events waiting to be scored, per session. Scoring is pure and fast, so this only fills if
#: the event loop is starved; past it, scoring for the session stops (logged) rather than
#: holding memory without bound.
MAX_BACKLOG = 10_000


class DeltaFolder:
    """Folds the interviewer's deltas for scoring (see the module docstring).

    :meth:`push` takes the session's events in seq order and returns those ready to score:
    nothing for a delta (it is held), else the held deltas of the turn folded into one delta
    (their concatenated text, the last one's seq and ts), then the event. Scoring what it
    returns gives the same transcript and scores as scoring every event.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: list[InterviewerDelta] = []

    def push(self, event: SessionEvent) -> list[SessionEvent]:
        if isinstance(event, InterviewerDelta):
            if self._held and self._held[-1].turn_id != event.turn_id:
                ready = self.flush()
                self._held.append(event)
                return ready
            self._held.append(event)
            return []
        ready = self.flush()
        ready.append(event)
        return ready

    def flush(self) -> list[SessionEvent]:
        """The held deltas, folded (an empty list when none is held)."""
        held = self._held
        if not held:
            return []
        self._held = []
        last = held[-1]
        if len(held) == 1:
            return [last]
        text = "".join(d.text for d in held)
        return [InterviewerDelta(turn_id=last.turn_id, text=text, seq=last.seq, ts=last.ts)]


class LiveScoring:
    def __init__(
        self,
        *,
        session_id: str,
        user_id: str,
        question: Any,
        log: SessionLog,
        store: SessionStore,
        runner: Any,
        judge: Any | None = None,
        summary_writer: Any | None = None,
    ) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.question = question
        self.log = log
        self.store = store
        self.runner = runner
        self.judge = judge
        self.summary_writer = summary_writer
        self.scorer = SessionScorer(question, offline_judge=judge is None)
        self._backlog: deque[SessionEvent] = deque()
        self._folder = DeltaFolder()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._judging: asyncio.Task[None] | None = None
        self._judge_again = False
        self._judged_upto = 0
        self.edge = EdgeProbes()
        self.edge_checked: set[int] = set()  # versions whose hidden tests were claimed
        self.stopped = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"scoring-{self.session_id}")

    def catch_up(self, events: list[LoggedEvent]) -> None:
        """A new owner: fold the session so far into the scorer without appending anything
        (the deltas it implies are in the log already)."""
        for logged in events:
            self.scorer.observe(logged.event)
        self._judged_upto = events[-1].seq if events else 0

    def observe(self, logged: LoggedEvent) -> None:
        if self.stopped:
            return
        ready = self._folder.push(logged.event)
        if not ready:
            return
        if len(self._backlog) >= MAX_BACKLOG:
            log.error("scoring backlog full; scoring stops", extra={"session_id": self.session_id})
            self.stopped = True
            return
        self._backlog.extend(ready)
        self._wake.set()

    async def _run(self) -> None:
        while not self.stopped:
            if not self._backlog:
                self._wake.clear()
                await self._wake.wait()
                continue
            event = self._backlog.popleft()
            try:
                await self._append(self._score(event))
                if isinstance(event, CandidateSaid) and self.judge is not None:
                    self._judge_soon()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scoring failed on one event", extra={"session_id": self.session_id})

    def _score(self, event: SessionEvent) -> list[Any]:
        changes = self.scorer.observe(event)
        self.edge, evidence = self.edge.observe(event)
        if evidence:
            changes += self.scorer.apply(evidence)
        return changes

    def claim_edge_check(self, version: int) -> bool:
        """Whether a passing ``version`` should have its hidden tests checked for a probe
        (not claimed yet, fewer than :data:`MAX_EDGE_CHECKS` so far, no probe pending);
        True claims it, so a version is checked at most once even by concurrent runs."""
        if (
            self.stopped
            or version in self.edge_checked
            or len(self.edge_checked) >= MAX_EDGE_CHECKS
            or self.edge.pending is not None
        ):
            return False
        self.edge_checked.add(version)
        return True

    async def edge_probe(self, snapshot_seq: int, categories: tuple[str, ...]) -> str | None:
        """Record a check of the snapshot ``snapshot_seq`` that failed in
        ``categories``: the probe for the interviewer to ask next (None: nothing to ask),
        after appending the miss's score delta. Call just before queueing the probe."""
        if self.stopped:
            return None
        self.edge, probe, evidence = self.edge.found(
            categories, snapshot_seq=snapshot_seq, after_seq=self.log.last_seq
        )
        if evidence:
            await self._append(self.scorer.apply(evidence))
        return probe

    async def _append(self, changes: list[Any]) -> None:
        for change in changes:
            await self.log.append(change.to_event())

    # -- the Claude judge ------------------------------------------------------------------

    def _judge_soon(self) -> None:
        if self._judging is not None and not self._judging.done():
            self._judge_again = True
            return
        self._judging = asyncio.create_task(self._judge(), name=f"judge-{self.session_id}")

    async def _judge(self) -> None:
        judge = self.judge
        assert judge is not None
        while True:
            self._judge_again = False
            transcript = self.scorer.transcript
            upto = transcript.last_seq
            result = await judge.judge(
                session_id=self.session_id,
                question=self.question,
                transcript=transcript,
                since_seq=self._judged_upto,
            )
            self._judged_upto = upto
            if result.outcome == "applied" and result.evidence:
                await self._append(self.scorer.apply(result.evidence))
            elif result.outcome in ("discarded", "failed"):
                log.info(
                    "judge %s: %s",
                    result.outcome,
                    result.reason,
                    extra={"session_id": self.session_id},
                )
            if not self._judge_again or self.stopped:
                return

    # -- the end ---------------------------------------------------------------------------

    async def finish(self, *, code: Any | None) -> LoggedEvent | None:
        """Final scores and the report; returns ``report.ready`` (None if scoring stopped)."""
        self._backlog.extend(self._folder.flush())
        while self._backlog:
            event = self._backlog.popleft()
            await self._append(self._score(event))
        if self._judging is not None:
            await asyncio.gather(self._judging, return_exceptions=True)
        self.stopped = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        hidden = await self._hidden_tests(code)
        await self._append(self.scorer.finish(hidden))
        report = self.scorer.report()
        if self.summary_writer is not None:
            written = await self.summary_writer.write(report)
            if written:
                report = self.scorer.report(summary=written)
        report = replace(report, since_previous=await self._since_previous(report))
        report_id = await self.store.save_report(
            session_id=self.session_id,
            user_id=self.user_id,
            report_id=uuid.uuid4().hex,
            overall=report.overall,
            band=report.band_label,
            body=report.to_json(),
        )
        return await self.log.append(
            ReportReady(
                report_id=report_id, overall=report.overall, summary=report.summary, seq=0, ts=0
            )
        )

    async def _since_previous(self, report: Report) -> dict[str, Any] | None:
        """How this report compares with the user's previous reports of the track; None
        (logged) when they cannot be read: the report is never held up for it."""
        current = {"track": report.track, "dimensions": [d.to_dict() for d in report.dimensions]}
        try:
            previous = await previous_reports(self.store.pool, self.session_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("previous reports unreadable", extra={"session_id": self.session_id})
            return None
        return since_previous(current, previous)

    async def _hidden_tests(self, code: Any | None) -> HiddenTestResult | None:
        question = self.question
        tests = getattr(question, "hidden_tests", None)
        if code is None or not tests:
            return None
        try:
            language = runnable_language(code.language)
        except MentaraError:
            return None  # code this host cannot run: no hidden-test evidence
        try:
            result = await self.runner.run_tests(
                code.source,
                question.function_name,
                tests,
                language=language,
                compare=question.compare,
                tolerance=question.tolerance,
                limits=RunLimits(),
            )
        except SandboxUnavailable:
            return None  # no isolated run possible here: no hidden-test evidence

        return HiddenTestResult.from_run(code.version, code.seq, result)

    async def close(self) -> None:
        self.stopped = True
        for task in (self._task, self._judging):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
