"""The offline conversation judge of each track, behind one function.

:func:`label_event` sends a candidate event to the judge of its question's track:
:mod:`~scoring.judges.heuristic` (coding: messages and the first real code),
:mod:`~scoring.judges.system_design` and :mod:`~scoring.judges.behavioral` (messages).
Every judge labels an event from what was known at it, so live labels equal replayed ones.
"""

from __future__ import annotations

from scoring.evidence import Evidence
from scoring.judges import behavioral, heuristic, system_design
from scoring.question_bank import BehavioralQuestion, CodingQuestion, Question, SystemDesignQuestion
from scoring.transcript import Transcript

__all__ = ["label_event", "label_transcript"]


def label_event(question: Question, transcript: Transcript, seq: int) -> list[Evidence]:
    """The evidence candidate event ``seq`` shows, by the judge of the question's track
    (empty for events no judge reads). Pure and deterministic."""
    match question:
        case CodingQuestion():
            return heuristic.label_event(question, transcript, seq)
        case SystemDesignQuestion():
            return system_design.label_event(question, transcript, seq)
        case BehavioralQuestion():
            return behavioral.label_event(question, transcript, seq)


def label_transcript(question: Question, transcript: Transcript) -> list[Evidence]:
    """:func:`label_event` for every candidate event of ``transcript``, in seq order."""
    seqs = sorted([u.seq for u in transcript.candidate_turns] + [v.seq for v in transcript.code])
    out: list[Evidence] = []
    for seq in seqs:
        out.extend(label_event(question, transcript, seq))
    return out
