"""The session events a server sends (PROTOCOL.md §4): numbered, the history of one session,
each a typed, frozen ``msgspec.Struct`` tagged by its wire ``type``, and the structs they
nest; :data:`SessionEvent` is their union. ``seq`` starts at 1 and increases by exactly 1
per event of a session. The contracts all frames share are in :mod:`protocol.messages`, the
package's public face for these classes.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

import msgspec
from msgspec import UNSET, Meta, UnsetType

from protocol.wire_types import (
    Count,
    EndReason,
    FiniteFloat,
    Language,
    PhaseName,
    PositiveInt,
    Question,
    RunStatus,
    Seq,
    ServerFrameBase,
    SessionId,
    Sha256Hex,
    Source,
    StopReason,
    TimestampMs,
    Track,
)

__all__ = [
    "CandidateSaid",
    "CodeResult",
    "CodeSnapshot",
    "InterviewerDelta",
    "InterviewerTurnEnd",
    "InterviewerTurnStart",
    "Limits",
    "PhaseChanged",
    "ReportReady",
    "Rubric",
    "ScoreDelta",
    "SessionEnded",
    "SessionEvent",
    "SessionStarted",
    "TestOutcome",
]


class _SessionEvent(ServerFrameBase, kw_only=True, frozen=True):
    """Base of session events: ``seq`` starts at 1 and increases by exactly 1 per event of a
    session; ``ts`` is server time in Unix milliseconds."""

    seq: Seq
    ts: TimestampMs


class Rubric(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """Scored dimensions and the score range ``[min, max]``."""

    dimensions: list[str]
    scale: Annotated[list[FiniteFloat], Meta(min_length=2, max_length=2)]


class Limits(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """Session limits."""

    duration_s: PositiveInt


class SessionStarted(_SessionEvent, tag="session.started", kw_only=True, frozen=True):
    """A session's first event."""

    session_id: SessionId
    track: Track
    language: str
    question: Question
    rubric: Rubric
    limits: Limits


class PhaseChanged(_SessionEvent, tag="phase", kw_only=True, frozen=True):
    """The interview entered phase ``name``; ``deadline_ts`` (Unix ms) when it is timed."""

    name: PhaseName
    deadline_ts: TimestampMs | UnsetType = UNSET


class CandidateSaid(_SessionEvent, tag="candidate.message", kw_only=True, frozen=True):
    """A candidate utterance, accepted into the transcript."""

    turn_id: str
    text: str


class InterviewerTurnStart(_SessionEvent, tag="interviewer.turn.start", kw_only=True, frozen=True):
    """The interviewer starts speaking."""

    turn_id: str


class InterviewerDelta(_SessionEvent, tag="interviewer.delta", kw_only=True, frozen=True):
    """One or more tokens of the interviewer's turn. The concatenated ``text`` of a turn's
    deltas is exactly the turn as persisted."""

    turn_id: str
    text: str


class InterviewerTurnEnd(_SessionEvent, tag="interviewer.turn.end", kw_only=True, frozen=True):
    """The interviewer's turn ended, and why."""

    turn_id: str
    stop_reason: StopReason


class CodeSnapshot(_SessionEvent, tag="code.snapshot", kw_only=True, frozen=True):
    """A new version of the candidate's code; ``sha256`` is the lowercase hex digest of
    ``source`` encoded as UTF-8."""

    version: Count
    language: Language
    sha256: Sha256Hex
    source: Source


class TestOutcome(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """The outcome of one visible test of a code run."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    passed: bool
    message: str | UnsetType = UNSET


class CodeResult(_SessionEvent, tag="code.result", kw_only=True, frozen=True):
    """The result of running code ``version``; ``stdout_tail`` is the end of its output."""

    run_id: str
    version: Count
    status: RunStatus
    tests: list[TestOutcome]
    stdout_tail: str
    duration_ms: Count


class ScoreDelta(_SessionEvent, tag="score.delta", kw_only=True, frozen=True):
    """Dimension ``dimension`` moved by ``delta`` to ``score``; ``evidence`` names the
    ``seq`` of the events that justified it."""

    dimension: str
    delta: FiniteFloat
    score: FiniteFloat
    reason: str
    evidence: list[Seq]


class SessionEnded(_SessionEvent, tag="session.ended", kw_only=True, frozen=True):
    """The session ended, and why."""

    reason: EndReason


class ReportReady(_SessionEvent, tag="report.ready", kw_only=True, frozen=True):
    """The report is ready (``GET /v1/sessions/{id}/report``)."""

    report_id: str
    overall: FiniteFloat
    summary: str


SessionEvent: TypeAlias = (
    SessionStarted
    | PhaseChanged
    | CandidateSaid
    | InterviewerTurnStart
    | InterviewerDelta
    | InterviewerTurnEnd
    | CodeSnapshot
    | CodeResult
    | ScoreDelta
    | SessionEnded
    | ReportReady
)
