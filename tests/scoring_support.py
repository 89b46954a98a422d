"""Build session event logs for the scoring tests: real protocol events with gap-free seqs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from protocol.messages import (
    CandidateSaid,
    CodeResult,
    CodeSnapshot,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    Limits,
    PhaseChanged,
    Question,
    Rubric,
    RunStatus,
    SessionEnded,
    SessionEvent,
    SessionStarted,
    TestOutcome,
)
from scoring.question_bank import CodingQuestion, load_question_bank
from scoring.rubrics import rubric_for
from scoring.transcript import Transcript

BANK = load_question_bank()
START_MS = 1_767_261_600_000


def coding_question(question_id: str = "two-sum") -> CodingQuestion:
    question = BANK.get(question_id)
    assert isinstance(question, CodingQuestion)
    return question


class SessionBuilder:
    """Appends events with the next seq; ``t`` is seconds after the session started."""

    def __init__(self, question: CodingQuestion | None = None, *, track: str = "coding") -> None:
        self.question = question or coding_question()
        self.events: list[SessionEvent] = []
        self._turns = 0
        self._versions = 0
        rubric = rubric_for(track)
        self.events.append(
            SessionStarted(
                seq=1,
                ts=START_MS,
                session_id="s-test",
                track="coding",
                language="python",
                question=Question(
                    id=self.question.id, title=self.question.title, prompt="...", examples=[]
                ),
                rubric=Rubric(dimensions=list(rubric.dimension_names), scale=[1.0, 4.0]),
                limits=Limits(duration_s=2700),
            )
        )

    @property
    def next_seq(self) -> int:
        return len(self.events) + 1

    def _ts(self, t: float) -> int:
        return START_MS + round(t * 1000)

    def interviewer(self, text: str, t: float = 0) -> int:
        """An interviewer turn (start, delta, end); returns the seq of its end."""
        self._turns += 1
        turn = f"i{self._turns}"
        ts = self._ts(t)
        self.events.append(InterviewerTurnStart(seq=self.next_seq, ts=ts, turn_id=turn))
        self.events.append(InterviewerDelta(seq=self.next_seq, ts=ts, turn_id=turn, text=text))
        self.events.append(
            InterviewerTurnEnd(seq=self.next_seq, ts=ts, turn_id=turn, stop_reason="end_turn")
        )
        return self.next_seq - 1

    def candidate(self, text: str, t: float = 0) -> int:
        self._turns += 1
        seq = self.next_seq
        self.events.append(
            CandidateSaid(seq=seq, ts=self._ts(t), turn_id=f"c{self._turns}", text=text)
        )
        return seq

    def code(self, source: str, t: float = 0) -> int:
        self._versions += 1
        seq = self.next_seq
        self.events.append(
            CodeSnapshot(
                seq=seq,
                ts=self._ts(t),
                version=self._versions,
                language="python",
                sha256=hashlib.sha256(source.encode()).hexdigest(),
                source=source,
            )
        )
        return seq

    @property
    def version(self) -> int:
        return self._versions

    def run(
        self,
        status: RunStatus,
        results: Sequence[bool] | None = None,
        *,
        names: Sequence[str] | None = None,
        message: str | None = None,
        version: int | None = None,
        t: float = 0,
    ) -> int:
        names = list(names or ["example_1", "example_2", "example_3"])
        passed = list(results) if results is not None else [status == "passed"] * len(names)
        tests = [
            TestOutcome(name=n, passed=p)
            if p or message is None
            else TestOutcome(name=n, passed=p, message=message)
            for n, p in zip(names, passed, strict=True)
        ]
        seq = self.next_seq
        self.events.append(
            CodeResult(
                seq=seq,
                ts=self._ts(t),
                run_id=f"r{seq}",
                version=self._versions if version is None else version,
                status=status,
                tests=tests,
                stdout_tail="",
                duration_ms=40,
            )
        )
        return seq

    def phase(self, name: str, t: float = 0) -> int:
        seq = self.next_seq
        self.events.append(PhaseChanged(seq=seq, ts=self._ts(t), name=name))  # type: ignore[arg-type]
        return seq

    def end(self, t: float = 0) -> int:
        seq = self.next_seq
        self.events.append(SessionEnded(seq=seq, ts=self._ts(t), reason="candidate_ended"))
        return seq

    def transcript(self) -> Transcript:
        return Transcript.of(self.events)


GOOD_TWO_SUM = """
def two_sum(nums: list[int], target: int) -> list[int]:
    seen: dict[int, int] = {}
    for i, num in enumerate(nums):
        if target - num in seen:
            return [seen[target - num], i]
        seen[num] = i
    return []
"""
