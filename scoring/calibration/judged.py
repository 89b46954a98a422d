"""Replaying the calibration sets through any conversation judge: the offline one or Claude.

A conversation judge is anything shaped like the server's (:class:`ConversationJudge`):
``await judge.judge(session_id=, question=, transcript=, since_seq=)`` returns a
:class:`Judgement`-like result, its ``evidence`` and an ``outcome`` (``applied``,
``discarded``, ``failed`` or ``skipped``) with a ``reason``. The Claude judge
(``server.judging.claude_judge.ClaudeJudge``) is one; :class:`OfflineJudge` wraps the
offline judges in the same shape, so the same harness measures both.

Replay follows the live server (``server/sessions/scoring.py``) event for event: each event
is folded through the scorer with the offline conversation judge off (the code judge stays
on); after each ``candidate.message`` the judge is called once with everything since its
previous call (``since_seq``) on the transcript as it stood then, and its evidence is
applied all or nothing (evidence the ledger refuses discards the whole call); at the end,
the stored hidden-test result. Calls within a session are sequential; ``concurrency``
sessions are replayed at once (1 gives a fixed call order, which a scripted fake API
needs). Nothing here does I/O itself: the judge does, if it is remote.

:func:`score_judged` returns the agreement figures (:mod:`scoring.calibration.agreement`)
and a tally of the calls, so a run where calls failed is not mistaken for a judge that saw
nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol, TypeAlias

from protocol.messages import CandidateSaid
from scoring.calibration import CalibrationSession
from scoring.calibration.agreement import CalibrationFigures, figures_of
from scoring.evidence import Evidence, InvalidEvidence
from scoring.judges import offline
from scoring.question_bank import Question
from scoring.scorer import ScoringState, apply_evidence, score_event, score_hidden
from scoring.transcript import Transcript

__all__ = [
    "OUTCOMES",
    "ConversationJudge",
    "JudgedFigures",
    "Judgement",
    "JudgementLike",
    "OfflineJudge",
    "Outcome",
    "replay_judged",
    "score_judged",
]

Outcome: TypeAlias = Literal["applied", "discarded", "failed", "skipped"]
OUTCOMES: Final[tuple[Outcome, ...]] = ("applied", "discarded", "failed", "skipped")
_MAX_REASONS: Final = 8


class JudgementLike(Protocol):
    """What a judge call returns: its evidence, an outcome of :data:`OUTCOMES`, a reason."""

    @property
    def evidence(self) -> Sequence[Evidence]: ...
    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str: ...


class ConversationJudge(Protocol):
    """The live server's conversation-judge call. Must not raise for the model or the
    network (a failed call is an ``outcome``); may take its time."""

    async def judge(
        self, *, session_id: str, question: Question, transcript: Transcript, since_seq: int
    ) -> JudgementLike: ...


@dataclass(frozen=True, slots=True)
class Judgement:
    """One judge call's result (the shape of the server's ``JudgeResult``)."""

    evidence: tuple[Evidence, ...]
    outcome: Outcome
    reason: str = ""


class OfflineJudge:
    """The offline judges as a :class:`ConversationJudge`: each candidate event after
    ``since_seq`` (messages, and code in coding) is labelled, in seq order, by the track's
    offline judge on the transcript as it stood at that event. Pure; never fails."""

    async def judge(
        self, *, session_id: str, question: Question, transcript: Transcript, since_seq: int
    ) -> Judgement:
        seqs = sorted(
            [u.seq for u in transcript.candidate_turns if u.seq > since_seq]
            + [c.seq for c in transcript.code if c.seq > since_seq]
        )
        if not seqs:
            return Judgement((), "skipped", "no new candidate events")
        evidence: list[Evidence] = []
        for seq in seqs:
            evidence += offline.label_event(question, transcript.upto(seq), seq)
        return Judgement(tuple(evidence), "applied")


@dataclass(frozen=True, slots=True)
class JudgedFigures:
    """The agreement figures of a judged replay, the number of calls per outcome, and up to
    eight distinct reasons of calls not applied."""

    judge: str
    figures: CalibrationFigures
    calls: Mapping[str, int]
    reasons: tuple[str, ...]

    def markdown(self) -> str:
        tally = ", ".join(f"{self.calls.get(o, 0)} {o}" for o in OUTCOMES)
        lines = [self.figures.markdown(), "", f"Judge `{self.judge}`, calls: {tally}."]
        lines += [f"- {reason}" for reason in self.reasons]
        return "\n".join(lines)


async def replay_judged(
    session: CalibrationSession, judge: ConversationJudge
) -> tuple[ScoringState, list[JudgementLike]]:
    """Replay one calibration session with ``judge`` as the conversation judge, as the live
    server calls it; the final state and every call's result, in order. A call whose
    evidence the ledger refuses is reported as ``discarded`` and applies nothing."""
    state = ScoringState.start(session.question, offline_judge=False)
    results: list[JudgementLike] = []
    judged_upto = 0
    for event in session.events:
        state, _ = score_event(state, event)
        if not isinstance(event, CandidateSaid):
            continue
        transcript = state.transcript
        result = await judge.judge(
            session_id=f"calibration-{session.id}",
            question=session.question,
            transcript=transcript,
            since_seq=judged_upto,
        )
        judged_upto = transcript.last_seq
        if result.outcome == "applied" and result.evidence:
            try:
                state, _ = apply_evidence(state, result.evidence)
            except InvalidEvidence as exc:
                result = Judgement((), "discarded", f"refused by the ledger: {exc}")
        results.append(result)
    if session.hidden is not None:
        state, _ = score_hidden(state, session.hidden)
    return state, results


async def score_judged(
    sessions: Iterable[CalibrationSession],
    judge: ConversationJudge,
    *,
    name: str = "",
    concurrency: int = 1,
) -> JudgedFigures:
    """Replay every session through ``judge`` (``concurrency`` sessions at once, each
    sequentially) and measure the ordering; ``name`` labels the judge in the output."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    sessions = list(sessions)
    gate = asyncio.Semaphore(concurrency)

    async def one(session: CalibrationSession) -> tuple[ScoringState, list[JudgementLike]]:
        async with gate:
            return await replay_judged(session, judge)

    if concurrency == 1:
        done = [await replay_judged(s, judge) for s in sessions]
    else:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(s)) for s in sessions]
        done = [t.result() for t in tasks]
    calls: Counter[str] = Counter()
    reasons: list[str] = []
    for _, results in done:
        for result in results:
            calls[result.outcome] += 1
            if result.outcome in ("discarded", "failed") and result.reason not in reasons:
                reasons.append(result.reason)
    figures = figures_of((s, state) for s, (state, _) in zip(sessions, done, strict=True))
    return JudgedFigures(
        name or type(judge).__name__, figures, dict(calls), tuple(reasons[:_MAX_REASONS])
    )
