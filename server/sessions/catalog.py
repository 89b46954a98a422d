"""The question bank and rubrics as the session layer sees them.

Loads and validates ``scoring``'s question bank once at start-up (a bad question file stops
the server with a message naming the file and field), and adapts each question into what
the protocol shows (``session.started.question``) and what the interviewer may say
(:class:`InterviewScript`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol.messages import Example, Question
from scoring.question_bank import QuestionBank, QuestionNotFound, load_question_bank
from scoring.rubric import Track
from scoring.rubrics import rubric_for
from server.errors import MentaraError, NotFound
from server.interviewer.engine import InterviewScript
from server.interviewer.prompt import question_context


@dataclass(frozen=True)
class CatalogQuestion:
    id: str
    track: str
    public: Question
    script: InterviewScript
    source: Any  # the bank's question (tests, reference solution): never sent to clients


@dataclass(frozen=True)
class RubricView:
    dimensions: tuple[str, ...]
    scale: tuple[float, float]


class UnknownQuestion(MentaraError):
    code = NotFound.code


class Catalog:
    def __init__(self, bank: QuestionBank | None = None) -> None:
        self.bank = bank or load_question_bank()
        self._questions: dict[str, CatalogQuestion] = {}
        for question in self.bank:
            self._questions[question.id] = _adapt(question)

    def pick(self, track: Track, question_id: str | None) -> CatalogQuestion:
        try:
            chosen = self.bank.pick(track, question_id)
        except QuestionNotFound:
            raise UnknownQuestion(
                f"no {track} question {question_id!r}", field="question_id"
            ) from None
        return self._questions[chosen.id]

    def get(self, question_id: str) -> CatalogQuestion:
        return self._questions[question_id]

    def rubric(self, track: str) -> RubricView:
        rubric = rubric_for(track)
        return RubricView(
            tuple(d.name for d in rubric.dimensions), (rubric.scale[0], rubric.scale[1])
        )

    def context(self, question: CatalogQuestion, track: str) -> str:
        source = question.source
        return question_context(
            title=source.title,
            prompt=source.prompt,
            track=track,
            rubric_dimensions=self.rubric(track).dimensions,
            hints=source.hints,
            followups=source.followups,
            optimal_complexity=getattr(source, "optimal_complexity", "") or "",
        )


def _adapt(question: Any) -> CatalogQuestion:
    view = question.public_view()
    examples = [
        Example(input=e.input, output=e.output, explanation=e.explanation)
        if e.explanation
        else Example(input=e.input, output=e.output)
        for e in view.examples
    ]
    script = question.script
    return CatalogQuestion(
        id=question.id,
        track=question.track,
        public=Question(id=view.id, title=view.title, prompt=view.prompt, examples=examples),
        script=InterviewScript(
            intro=script.intro,
            present=script.present,
            acknowledgements=tuple(script.acknowledge),
            hints=tuple(question.hints),
            followups=tuple(question.followups),
            closing=script.closing,
            question=question,
        ),
        source=question,
    )
