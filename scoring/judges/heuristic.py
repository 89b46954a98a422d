"""The offline conversation judge: documented rules over the candidate's words and code.

Used when no Claude judge is configured. :func:`label_event` labels the evidence that one
candidate event shows (a ``candidate.message``, or a ``code.snapshot`` for the one rule
about code written too early), reading only what was known at that event: the transcript
up to its ``seq`` (both roles), the latest code before it, and the question (its optimal
complexity and starter code). So the labels of an event never change as the session goes
on, and labelling live, after each event, gives exactly what labelling a stored session
does (:func:`label_transcript`). Every piece of evidence cites the seq of the candidate
event that shows it. Pure functions; no clock (gaps come from the events' ``ts``).

Coding track only; other tracks get no offline labels (the Claude judge covers them).

The rules, and what each labels, are in :mod:`scoring.judges.coding_rules`; what a message
is judged against, in :mod:`scoring.judges.coding_context`.
"""

from __future__ import annotations

from scoring.evidence import Evidence
from scoring.judges.coding_context import PU, message_context
from scoring.judges.coding_rules import RULES
from scoring.judges.coding_signals import is_real_code, shows_planning
from scoring.question_bank import CodingQuestion, Question
from scoring.transcript import CodeVersion, Transcript, Utterance

__all__ = ["label_event", "label_transcript"]


def _label_message(
    question: CodingQuestion, transcript: Transcript, turn: Utterance
) -> list[Evidence]:
    context = message_context(question, transcript, turn)
    out: list[Evidence] = []
    for rule in RULES:
        found = rule(context)
        if isinstance(found, Evidence):
            out.append(found)
        elif found:
            out.extend(found)
    return out


def _label_snapshot(
    question: CodingQuestion, transcript: Transcript, snapshot: CodeVersion
) -> list[Evidence]:
    """``starts_coding_immediately`` on the first snapshot that holds real code."""
    if not is_real_code(snapshot.source, question.starter_code):
        return []
    earlier_code = [
        v
        for v in transcript.code
        if v.seq < snapshot.seq and is_real_code(v.source, question.starter_code)
    ]
    if earlier_code:
        return []
    said = [u for u in transcript.candidate_turns if u.seq < snapshot.seq]
    if any(shows_planning(u.text) for u in said):
        return []
    return [
        Evidence(
            PU,
            "starts_coding_immediately",
            "negative",
            (snapshot.seq,),
            "started coding without clarifying the problem or describing an approach",
        )
    ]


def label_event(question: Question, transcript: Transcript, seq: int) -> list[Evidence]:
    """The evidence that candidate event ``seq`` shows, judged on what was known at ``seq``.

    ``seq`` names a ``candidate.message`` or a ``code.snapshot`` in ``transcript``; for any
    other seq, and for questions of tracks other than coding, the result is empty. Pure and
    deterministic; the result does not depend on events after ``seq``.
    """
    if not isinstance(question, CodingQuestion):
        return []
    turn = transcript.utterance_at(seq)
    if turn is not None:
        return _label_message(question, transcript, turn) if turn.role == "candidate" else []
    snapshot = transcript.code_at(seq)
    if snapshot is not None:
        return _label_snapshot(question, transcript, snapshot)
    return []


def label_transcript(question: Question, transcript: Transcript) -> list[Evidence]:
    """:func:`label_event` for every candidate event of ``transcript``, in seq order."""
    seqs = sorted([u.seq for u in transcript.candidate_turns] + [v.seq for v in transcript.code])
    out: list[Evidence] = []
    for seq in seqs:
        out.extend(label_event(question, transcript, seq))
    return out
