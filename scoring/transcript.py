"""What the judges read: a session's events folded into turns, code versions and runs.

:meth:`Transcript.observe` is a pure reducer: ``Transcript.empty()`` folded over a session's
events (in ``seq`` order) gives the same transcript whether the events arrive live or come
from storage. Only complete things enter it: a candidate message at once, an interviewer
turn when its ``interviewer.turn.end`` arrives (with whatever text was delivered, also for
``interrupted`` and ``error`` turns), code snapshots and run results as they come. Other
events (``score.delta``, ``phase``, ``report.ready``) do not change it.

Every entry keeps its event's ``seq`` and ``ts`` (server time, Unix ms), so judges can cite
the events they read and measure gaps without a clock of their own. An interviewer turn's
``seq`` and ``ts`` are those of its ``interviewer.turn.end`` (as in a snapshot's
transcript).

Size: one session's transcript is bounded by the session's own limits (its duration and the
protocol's maximum message and source sizes); the open-turn buffer holds one entry per
interviewer turn in progress (one at a time in practice).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal, TypeAlias

from protocol.messages import (
    CandidateSaid,
    CodeResult,
    CodeSnapshot,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    SessionEnded,
    SessionEvent,
    SessionStarted,
)

__all__ = ["CodeVersion", "Role", "Run", "RunStatus", "Transcript", "Utterance"]

Role: TypeAlias = Literal["candidate", "interviewer"]
RunStatus: TypeAlias = Literal["passed", "failed", "error", "timeout"]


@dataclass(frozen=True, slots=True)
class Utterance:
    """A complete turn of the conversation."""

    seq: int
    ts: int
    role: Role
    text: str
    turn_id: str


@dataclass(frozen=True, slots=True)
class CodeVersion:
    """A ``code.snapshot``: version ``version`` of the candidate's editor buffer."""

    seq: int
    ts: int
    version: int
    language: str
    source: str


@dataclass(frozen=True, slots=True)
class Run:
    """A ``code.result`` of the visible tests. ``failed_tests`` names the tests that did not
    pass, and ``messages`` their messages (visible tests only, so safe to show)."""

    seq: int
    ts: int
    run_id: str
    version: int
    status: RunStatus
    passed: int
    total: int
    failed_tests: tuple[str, ...]
    messages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _OpenTurn:
    turn_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """The judged view of a session, as of ``last_seq``. Immutable; see the module docstring."""

    track: str | None = None
    question_id: str | None = None
    started_ts: int | None = None
    utterances: tuple[Utterance, ...] = ()
    code: tuple[CodeVersion, ...] = ()
    runs: tuple[Run, ...] = ()
    ended: bool = False
    last_seq: int = 0
    _open: Mapping[str, _OpenTurn] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def empty(cls) -> Transcript:
        return cls()

    @classmethod
    def of(cls, events: Iterable[SessionEvent]) -> Transcript:
        """Fold ``events`` (in order) into a transcript."""
        transcript = cls.empty()
        for event in events:
            transcript = transcript.observe(event)
        return transcript

    def observe(self, event: SessionEvent) -> Transcript:
        """The transcript after ``event``. Pure. Events at or below ``last_seq`` (a replayed
        duplicate) leave it unchanged."""
        if event.seq <= self.last_seq:
            return self
        at = replace(self, last_seq=event.seq)
        match event:
            case SessionStarted():
                return replace(
                    at, track=event.track, question_id=event.question.id, started_ts=event.ts
                )
            case CandidateSaid():
                said = Utterance(event.seq, event.ts, "candidate", event.text, event.turn_id)
                return replace(at, utterances=(*self.utterances, said))
            case InterviewerTurnStart():
                return at._with_open(event.turn_id, _OpenTurn(event.turn_id, ""))
            case InterviewerDelta():
                turn = self._open.get(event.turn_id, _OpenTurn(event.turn_id, ""))
                return at._with_open(event.turn_id, _OpenTurn(turn.turn_id, turn.text + event.text))
            case InterviewerTurnEnd():
                ending = self._open.get(event.turn_id)
                opened = {k: v for k, v in self._open.items() if k != event.turn_id}
                at = replace(at, _open=MappingProxyType(opened))
                if ending is None or not ending.text.strip():
                    return at
                spoken = Utterance(event.seq, event.ts, "interviewer", ending.text, event.turn_id)
                return replace(at, utterances=(*self.utterances, spoken))
            case CodeSnapshot():
                version = CodeVersion(
                    event.seq, event.ts, event.version, event.language, event.source
                )
                return replace(at, code=(*self.code, version))
            case CodeResult():
                failed = tuple(t.name for t in event.tests if not t.passed)
                messages = tuple(
                    t.message for t in event.tests if not t.passed and isinstance(t.message, str)
                )
                run = Run(
                    seq=event.seq,
                    ts=event.ts,
                    run_id=event.run_id,
                    version=event.version,
                    status=event.status,
                    passed=sum(1 for t in event.tests if t.passed),
                    total=len(event.tests),
                    failed_tests=failed,
                    messages=messages,
                )
                return replace(at, runs=(*self.runs, run))
            case SessionEnded():
                return replace(at, ended=True)
            case _:
                return at

    def _with_open(self, turn_id: str, turn: _OpenTurn) -> Transcript:
        return replace(self, _open=MappingProxyType({**self._open, turn_id: turn}))

    # -- queries judges use ----------------------------------------------------------------

    def upto(self, seq: int) -> Transcript:
        """This transcript cut to the entries with ``seq <= seq`` (what was known then)."""
        if seq >= self.last_seq:
            return self
        return replace(
            self,
            utterances=tuple(u for u in self.utterances if u.seq <= seq),
            code=tuple(c for c in self.code if c.seq <= seq),
            runs=tuple(r for r in self.runs if r.seq <= seq),
            ended=False,
            last_seq=seq,
            _open=MappingProxyType({}),
        )

    @property
    def candidate_turns(self) -> tuple[Utterance, ...]:
        return tuple(u for u in self.utterances if u.role == "candidate")

    def utterance_at(self, seq: int) -> Utterance | None:
        for utterance in self.utterances:
            if utterance.seq == seq:
                return utterance
        return None

    def code_at(self, seq: int) -> CodeVersion | None:
        for version in self.code:
            if version.seq == seq:
                return version
        return None

    def run_at(self, seq: int) -> Run | None:
        for run in self.runs:
            if run.seq == seq:
                return run
        return None

    def snapshot_of(self, version: int) -> CodeVersion | None:
        """The latest ``code.snapshot`` of code ``version``."""
        for snapshot in reversed(self.code):
            if snapshot.version == version:
                return snapshot
        return None

    def latest_code(self, before: int | None = None) -> CodeVersion | None:
        """The newest code snapshot (with ``seq < before`` when given)."""
        for snapshot in reversed(self.code):
            if before is None or snapshot.seq < before:
                return snapshot
        return None
