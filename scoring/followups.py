"""Follow-ups chosen from the evidence: what the interviewer should ask next.

A trained interviewer does not read questions off a list: they ask about what the
candidate has not shown yet, and never for what was just said ("I was the tech lead" is
not followed by "what was your role?"). :func:`next_probe` does that over a
:class:`~scoring.evidence.ScoreBook`: it takes the rubric dimension with the least
evidence so far (fewest positive pieces, then the lowest score; unobserved first; rubric
order breaks ties) and returns its first :class:`Probe` that was not asked yet and whose
signals the candidate has not already shown. :func:`plan_followup` does it from the
conversation alone (the offline judge labels the candidate's messages), so the
interviewer can call it before the live scorer has caught up, and gets the same answer
for the same words. Pure; no clock, no I/O.

Probes exist for the talk-only tracks (system design, behavioral); coding keeps its own
flow (hints, then the question's follow-ups once the code passes).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from protocol.messages import (
    CandidateSaid,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    SessionEvent,
)
from scoring.evidence import ScoreBook
from scoring.judges import offline
from scoring.question_bank import Question
from scoring.transcript import Role, Transcript

__all__ = ["PROBES", "Probe", "covered_signals", "evidence_of", "next_probe", "plan_followup"]


@dataclass(frozen=True, slots=True)
class Probe:
    """A follow-up question about ``dimension``; ``shown_by`` are the positive signals that
    mean the candidate has already said what it asks for (then it is never asked)."""

    dimension: str
    text: str
    shown_by: frozenset[str]


def _p(dimension: str, text: str, *shown_by: str) -> Probe:
    return Probe(dimension, text, frozenset(shown_by))


PROBES: Final[Mapping[str, tuple[Probe, ...]]] = MappingProxyType(
    {
        "behavioral": (
            _p(
                "situation_and_ownership",
                "What was your own part in it: what did you personally own?",
                "takes_ownership",
            ),
            _p(
                "situation_and_ownership",
                "Could you set the scene: when was this, and what was at stake?",
                "gives_specific_example",
                "sets_context",
            ),
            _p(
                "actions_and_judgment",
                "What did you personally do, step by step?",
                "describes_concrete_actions",
            ),
            _p(
                "actions_and_judgment",
                "What other options did you have, and why did you choose that one?",
                "weighs_alternatives",
                "explains_reasoning",
            ),
            _p(
                "impact_and_results",
                "How did it turn out, and how did you know? Any numbers?",
                "states_outcome",
                "quantifies_impact",
            ),
            _p(
                "collaboration",
                "How did the people around you see it, and how did you bring them along?",
                "seeks_other_views",
                "resolves_disagreement",
                "supports_teammates",
            ),
            _p(
                "self_reflection",
                "Looking back, what would you do differently?",
                "acknowledges_mistakes",
                "states_lesson_learned",
            ),
            _p(
                "self_reflection",
                "Have you applied that since? Give me an example.",
                "shows_growth",
            ),
        ),
        "system_design": (
            _p(
                "requirements_and_scope",
                "Before going further: what must the system do, and what latency or "
                "consistency does it need?",
                "clarifies_functional_requirements",
                "states_nonfunctional_requirements",
            ),
            _p(
                "requirements_and_scope",
                "What do the numbers mean in requests per second and storage?",
                "estimates_scale",
            ),
            _p(
                "high_level_design",
                "Could you walk me through one request end to end?",
                "explains_data_flow",
            ),
            _p(
                "high_level_design",
                "What would the API and the data model look like?",
                "defines_api",
                "designs_data_model",
            ),
            _p(
                "deep_dive_and_tradeoffs",
                "What alternatives did you consider there, and why this one?",
                "discusses_tradeoffs",
            ),
            _p(
                "scalability_and_reliability",
                "What happens when a component fails, say a database node or a provider?",
                "handles_failures",
            ),
            _p(
                "scalability_and_reliability",
                "Where is the first bottleneck when traffic grows ten times?",
                "identifies_bottlenecks",
                "plans_partitioning_or_caching",
            ),
            _p(
                "communication",
                "How would you like to use the rest of our time?",
                "structures_discussion",
                "checks_in",
            ),
        ),
    }
)


def covered_signals(book: ScoreBook) -> frozenset[str]:
    """The positive signals the candidate has shown so far."""
    return frozenset(e.signal_id for e in book.ledger if e.polarity == "positive")


def next_probe(book: ScoreBook, asked: Collection[str] = ()) -> Probe | None:
    """The probe for the dimension with the least evidence (see the module docstring), or
    None when every probe of the track was asked or is already answered. ``asked`` holds
    the texts already asked."""
    probes = PROBES.get(book.rubric.track, ())
    shown = covered_signals(book)
    order = book.rubric.dimension_names

    def need(dimension: str) -> tuple[int, float, int]:
        positives = sum(1 for e in book.evidence_for(dimension) if e.polarity == "positive")
        score = book.score(dimension)
        return (positives, -1.0 if score is None else score, order.index(dimension))

    for dimension in sorted(order, key=need):
        for probe in probes:
            if probe.dimension != dimension or probe.text in asked:
                continue
            if probe.shown_by & shown:
                continue
            return probe
    return None


def evidence_of(question: Question, turns: Sequence[tuple[Role, str]]) -> ScoreBook:
    """The offline judge's book over a conversation given as (role, text) turns."""
    events: list[SessionEvent] = []
    seq = 1
    for n, (role, text) in enumerate(turns):
        turn_id = f"f{n}"
        if role == "interviewer":
            events += [
                InterviewerTurnStart(seq=seq, ts=0, turn_id=turn_id),
                InterviewerDelta(seq=seq + 1, ts=0, turn_id=turn_id, text=text or " "),
                InterviewerTurnEnd(seq=seq + 2, ts=0, turn_id=turn_id, stop_reason="end_turn"),
            ]
            seq += 3
        else:
            events.append(CandidateSaid(seq=seq, ts=0, turn_id=turn_id, text=text))
            seq += 1
    transcript = Transcript.of(events)
    book = ScoreBook.for_track(question.track)
    book, _ = book.apply_all(offline.label_transcript(question, transcript))
    return book


def plan_followup(question: Question, turns: Sequence[tuple[Role, str]]) -> Probe | None:
    """:func:`next_probe` over the offline judge's reading of ``turns``; a probe counts as
    asked when an interviewer turn contains its text."""
    spoken = [text for role, text in turns if role == "interviewer"]
    asked = {p.text for p in PROBES.get(question.track, ()) if any(p.text in s for s in spoken)}
    return next_probe(evidence_of(question, turns), asked)
