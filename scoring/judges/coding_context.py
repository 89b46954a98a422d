"""What one candidate message of a coding interview is judged against: everything known at
its seq.

:func:`message_context` builds a :class:`MessageContext` from the transcript up to the
message (both roles), the code and runs before it, and the question (its optimal time
complexity and starter code); nothing after the message, so its labels never change as
the session goes on. The rules of :mod:`scoring.judges.coding_rules` read it, and
:meth:`MessageContext.evidence` cites the message's seq.
"""

from __future__ import annotations

from dataclasses import dataclass

from scoring.evidence import Evidence
from scoring.judges import cues
from scoring.judges.coding_signals import is_real_code
from scoring.judges.complexity import Cost, optimal_time_cost
from scoring.question_bank import CodingQuestion
from scoring.rubric import Polarity
from scoring.transcript import CodeVersion, Transcript, Utterance

__all__ = ["AC", "CM", "PU", "TE", "MessageContext", "message_context"]

PU = "problem_understanding"
AC = "approach_and_complexity"
TE = "testing_and_edge_cases"
CM = "communication"


@dataclass(frozen=True, slots=True)
class MessageContext:
    """What one candidate message is judged against: everything known at its seq."""

    question: CodingQuestion
    transcript: Transcript
    turn: Utterance
    earlier: tuple[Utterance, ...]  # the candidate's earlier messages, oldest first
    previous_activity_ts: int | None  # the last message of either side, code change or run
    interviewer: Utterance | None  # the last interviewer turn before this message
    first_code: CodeVersion | None  # the first real code, if written before this message
    latest_code: CodeVersion | None  # the newest snapshot before this message
    optimal: Cost | None

    @property
    def text(self) -> str:
        return self.turn.text

    @property
    def before_code(self) -> bool:
        return self.first_code is None

    @property
    def answers_variant(self) -> bool:
        """Whether this message answers a follow-up about a variant of the problem ("how
        would you...", "if the array were sorted...") asked once the code passed: its
        complexities are not about the question's optimal solution."""
        if self.interviewer is None or not cues.VARIANT.search(self.interviewer.text):
            return False
        return any(r.status == "passed" for r in self.transcript.runs if r.seq < self.turn.seq)

    def earlier_before_code(self) -> tuple[Utterance, ...]:
        if self.first_code is None:
            return self.earlier
        return tuple(u for u in self.earlier if u.seq < self.first_code.seq)

    def evidence(
        self, dimension: str, signal: str, polarity: Polarity, note: str, weight: float = 1.0
    ) -> Evidence:
        return Evidence(dimension, signal, polarity, (self.turn.seq,), note, weight)


def message_context(
    question: CodingQuestion, transcript: Transcript, turn: Utterance
) -> MessageContext:
    """The context of candidate message ``turn``: what ``transcript`` knew at its seq."""
    known = transcript.upto(turn.seq)
    before = [u for u in known.utterances if u.seq < turn.seq]
    first_code = next(
        (
            v
            for v in known.code
            if v.seq < turn.seq and is_real_code(v.source, question.starter_code)
        ),
        None,
    )
    return MessageContext(
        question=question,
        transcript=known,
        turn=turn,
        earlier=tuple(u for u in before if u.role == "candidate"),
        previous_activity_ts=max(
            [u.ts for u in before]
            + [v.ts for v in known.code if v.seq < turn.seq]
            + [r.ts for r in known.runs if r.seq < turn.seq],
            default=None,
        ),
        interviewer=next((u for u in reversed(before) if u.role == "interviewer"), None),
        first_code=first_code,
        latest_code=known.latest_code(before=turn.seq),
        optimal=optimal_time_cost(question.optimal_complexity),
    )
