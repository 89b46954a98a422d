"""Live scoring of one session: a fold over its events, judges included.

:func:`score_event` is the pure step: ``(state, event) -> (state, changes)``. It folds the
event into the :class:`~scoring.transcript.Transcript`, asks the offline judges for the
evidence that event shows, and applies it to the :class:`~scoring.evidence.ScoreBook`:

========================  ====================================================
event                      judged by
========================  ====================================================
``candidate.message``      the offline judge of the track (when enabled)
``code.snapshot``          the coding judge (code written before any plan)
``code.result``            the code judge (visible tests)
anything else              nobody (the transcript still records it)
========================  ====================================================

Evidence from elsewhere (the Claude conversation judge, which runs in the server) enters
with :func:`apply_evidence`, and the hidden tests' result with :func:`score_hidden`.
:class:`SessionScorer` wraps the three for a caller that keeps one object per session.

Replay: folding a stored session's events through :func:`score_event` gives the scores it
had live, because every judge labels an event from what was known at that event. Evidence
applied from outside (Claude) is not recomputable: persist the book's ledger
(``[e.to_dict() for e in book.ledger]``) and refold it with
:meth:`ScoreBook.from_ledger <scoring.evidence.ScoreBook.from_ledger>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from protocol.messages import CandidateSaid, CodeResult, CodeSnapshot, SessionEvent
from scoring.evidence import Evidence, ScoreBook, ScoreChange
from scoring.judges import code as code_judge
from scoring.judges import offline
from scoring.judges.code import HiddenTestResult
from scoring.question_bank import Question
from scoring.report import Report, build_report
from scoring.transcript import Transcript

__all__ = [
    "ScoringState",
    "SessionScorer",
    "apply_evidence",
    "replay",
    "score_event",
    "score_hidden",
]


@dataclass(frozen=True, slots=True)
class ScoringState:
    """Everything scoring knows about a session: the question, what was said and run, the
    scores with their ledger, the final hidden-test result. ``offline_judge`` says whether
    the offline conversation judge of the track labels candidate messages (off when Claude
    judges)."""

    question: Question
    transcript: Transcript
    book: ScoreBook
    offline_judge: bool = True
    hidden: HiddenTestResult | None = None

    @classmethod
    def start(cls, question: Question, *, offline_judge: bool = True) -> ScoringState:
        return cls(question, Transcript.empty(), ScoreBook.for_track(question.track), offline_judge)


def score_event(state: ScoringState, event: SessionEvent) -> tuple[ScoringState, list[ScoreChange]]:
    """Fold one session event in: the new state and the score changes it caused (each one a
    ``score.delta`` to append, see :meth:`ScoreChange.to_event`). Pure. Events at or below
    the transcript's ``last_seq`` are ignored (a duplicate delivery changes nothing)."""
    if event.seq <= state.transcript.last_seq:
        return state, []
    transcript = state.transcript.observe(event)
    evidence: list[Evidence] = []
    match event:
        case CandidateSaid() | CodeSnapshot() if state.offline_judge:
            evidence = offline.label_event(state.question, transcript, event.seq)
        case CodeResult():
            evidence = code_judge.label_run(transcript, event.seq)
        case _:
            pass
    book, changes = state.book.apply_all(evidence)
    return replace(state, transcript=transcript, book=book), changes


def apply_evidence(
    state: ScoringState, evidence: Iterable[Evidence]
) -> tuple[ScoringState, list[ScoreChange]]:
    """Apply evidence labelled outside (the Claude judge). All or nothing: raises
    :class:`~scoring.evidence.InvalidEvidence` and applies none if any piece does not fit
    the rubric. Pure."""
    book, changes = state.book.apply_all(evidence)
    return replace(state, book=book), changes


def score_hidden(
    state: ScoringState, hidden: HiddenTestResult
) -> tuple[ScoringState, list[ScoreChange]]:
    """Apply the final hidden-test result (once per session; a second result for the same
    version repeats observations and changes nothing). Pure."""
    book, changes = state.book.apply_all(code_judge.label_hidden(hidden))
    return replace(state, book=book, hidden=hidden), changes


def replay(
    question: Question,
    events: Iterable[SessionEvent],
    *,
    hidden: HiddenTestResult | None = None,
    offline_judge: bool = True,
) -> tuple[ScoringState, list[ScoreChange]]:
    """Fold a stored session's events (then its hidden-test result) from the start: the
    final state and every change, in order, as they were made live."""
    state = ScoringState.start(question, offline_judge=offline_judge)
    changes: list[ScoreChange] = []
    for event in events:
        state, made = score_event(state, event)
        changes.extend(made)
    if hidden is not None:
        state, made = score_hidden(state, hidden)
        changes.extend(made)
    return state, changes


class SessionScorer:
    """One session's scoring for a caller that keeps state in an object.

    Not thread-safe; call it from the session's owner task. Each method is quick (pure
    Python over one event and the transcript so far, no I/O), so it may run inline after an
    event is appended; it never awaits.
    """

    def __init__(self, question: Question, *, offline_judge: bool = True) -> None:
        self._state = ScoringState.start(question, offline_judge=offline_judge)

    @property
    def state(self) -> ScoringState:
        return self._state

    @property
    def book(self) -> ScoreBook:
        return self._state.book

    @property
    def transcript(self) -> Transcript:
        return self._state.transcript

    def observe(self, event: SessionEvent) -> list[ScoreChange]:
        """:func:`score_event`: call with every appended session event, in seq order."""
        self._state, changes = score_event(self._state, event)
        return changes

    def apply(self, evidence: Iterable[Evidence]) -> list[ScoreChange]:
        """:func:`apply_evidence` (all or nothing)."""
        self._state, changes = apply_evidence(self._state, evidence)
        return changes

    def finish(self, hidden: HiddenTestResult | None) -> list[ScoreChange]:
        """:func:`score_hidden` with the final hidden-test result (None: no code to run)."""
        if hidden is None:
            return []
        self._state, changes = score_hidden(self._state, hidden)
        return changes

    def report(self, *, summary: str | None = None) -> Report:
        """:func:`~scoring.report.build_report` of the current state; ``summary`` is a
        written summary (Claude's) to use instead of the ledger-built one."""
        return build_report(
            self._state.book,
            question_id=self._state.question.id,
            hidden=self._state.hidden,
            summary=summary,
        )
