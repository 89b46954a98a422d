"""The offline system-design judge: documented rules over the candidate's design talk.

Used when no Claude judge is configured. :func:`label_event` labels what one
``candidate.message`` shows, judged on what was known at it (the candidate's earlier
messages and the interviewer's last turn), citing that message's seq. The rules listen for
what a trained interviewer listens for: requirements and scale before boxes, numbers
estimated, components and the data flow between them, trade-offs between named options
with reasons, failure and growth handled specifically, and a structured conversation.
Phrases are in :mod:`scoring.judges.design_cues`. Pure; no clock.

Rules per message (weights in brackets; "once" means the first message that shows it).
Rules that read the interviewer's question ("asked ...") skip the candidate's first
answer, which answers the whole problem statement.

Requirements and scope
- ``clarifies_functional_requirements`` +: questions about features or users ("should
  users pick a custom alias?"), or requirements stated as such: 1.0 for two or more, 0.75.
- ``states_nonfunctional_requirements`` +: latency, availability, consistency, durability
  or a delivery guarantee: 1.0 for two kinds or more, 0.5 for one.
- ``estimates_scale`` +: a number with a rate or storage unit ("1,200 writes per
  second", "15 TB"): 1.0 when worked out ("about", "so that's", "x / y"), else 0.75.
- ``defines_scope`` + (0.75): "out of scope", "I'll assume", "I'll focus on", "stretch goal".
- ``skips_requirements`` - (1.0, once): the first message naming two or more components
  comes before any requirement, scale or scope was asked or stated.
- ``no_scale_estimate`` - (1.0, once): asked for numbers (rates, "how many"), answers with
  none.

High-level design
- ``defines_api`` +: an endpoint or signature (``POST /links``, ``send(user_id, template)``,
  "returns a 302"): 1.0; "an API / endpoint" alone: 0.5.
- ``designs_data_model`` +: tables, keys, fields, a key-value layout: 1.0 for two cues, 0.5.
- ``explains_data_flow`` + (1.0): two components or more and two flow phrases ("reads
  from", "puts it on", "consumes", "->").
- ``buzzword_design`` -: three technologies or more named without a single reason or a
  data flow that shows their part: 1.0 for four or more, 0.75 for three.

Deep dive and trade-offs
- ``discusses_tradeoffs`` + (1.0): two options compared ("instead of", "vs", "the
  downside") with a reason ("because", "cheaper", "but").
- ``justifies_choices`` + (0.75): a choice with its reason ("because", "so that", "to
  avoid"), in a message without a trade-off.
- ``deep_dives_component`` +: 50 words or more with three different mechanisms (base62,
  collisions, offsets, idempotency, backoff, ...): 0.75, or 1.0 with five.
- ``no_tradeoffs`` -: asked for trade-offs or alternatives, gives no comparison and no
  reason (1.0); "just use", "obviously", "industry standard" without a reason (0.75).
- ``shallow_answers`` -: "it just works", "the database handles it" (1.0); asked how
  something works, answers in under 25 words with no mechanism (0.75).

Scalability and reliability
- ``identifies_bottlenecks`` + (1.0): "bottleneck", "hot key", "read-heavy", "100:1".
- ``plans_partitioning_or_caching`` + (1.0): sharding, partitioning, caching or replicas
  with a specific (a key, "by channel", a TTL, a count, an eviction policy).
- ``handles_failures`` +: retries, idempotency, dead letters, circuit breakers, failover,
  degradation, backoff, replication: 1.0 for two kinds or more, 0.5 for one.
- ``mentions_monitoring`` + (0.75): metrics, alerting, dashboards, queue lag.
- ``single_point_of_failure`` -: "a single database" with no redundancy in the message
  (0.75); asked what happens when something fails, names no failure handling (1.0).
- ``hand_waves_scaling`` -: "just add more servers", "it will scale", "auto-scaling" with
  no specific (1.0); asked about growth, answers with neither a specific nor a number (0.75).

Communication
- ``structures_discussion`` + (1.0): "I'll start with", "first ... then I'll", "to recap".
- ``checks_in`` + (0.75): "does that make sense?", "should I go deeper on ...?".
- ``explains_clearly`` + (0.5): 25 to 200 words, two reasoning connectives, at most one
  hedge.
- ``rambles`` -: three hedges or more (0.5; 1.0 from five), or two in a message under 60
  words (the coding judge's "hedged") or of 200 words or more.
- ``ignores_interviewer`` - (1.0): after an interviewer's question, brushes it off ("not
  important", "doesn't matter", "moving on").
"""

from __future__ import annotations

from typing import Final

from scoring.evidence import Evidence
from scoring.judges import cues
from scoring.judges import design_cues as dc
from scoring.judges.conversation import Rule, Turn, hedges, label_message, quote, sentences, words
from scoring.question_bank import Question, SystemDesignQuestion
from scoring.transcript import Transcript

__all__ = ["label_event", "label_transcript"]

RS = "requirements_and_scope"
HD = "high_level_design"
DT = "deep_dive_and_tradeoffs"
SR = "scalability_and_reliability"
CM = "communication"


def _requirement_questions(text: str) -> list[str]:
    return [
        s
        for s in sentences(text)
        if s.endswith("?") and dc.QUESTION_OPENER.search(s) and dc.FEATURE_TOPIC.search(s)
    ]


def _nonfunctional(text: str) -> list[str]:
    return [name for name, pattern in dc.NONFUNCTIONAL_KINDS if pattern.search(text)]


def _shows_requirements(text: str) -> bool:
    return bool(
        _requirement_questions(text)
        or dc.REQUIREMENTS.search(text)
        or _nonfunctional(text)
        or dc.RATE.search(text)
        or dc.SCOPE.search(text)
    )


def _components(text: str) -> set[str]:
    return {m.group(0).lower() for m in dc.COMPONENT.finditer(text)}


def _asked_question(c: Turn) -> bool:
    return "?" in c.asked


def _functional(c: Turn) -> Evidence | None:
    questions = _requirement_questions(c.text)
    stated = dc.REQUIREMENTS.search(c.text) is not None
    if not questions and not stated:
        return None
    weight = 1.0 if len(questions) + stated >= 2 else 0.75
    note = f"asked {quote(questions[0])}" if questions else "stated the functional requirements"
    return c.evidence(RS, "clarifies_functional_requirements", "positive", note, weight)


def _non_functional(c: Turn) -> Evidence | None:
    kinds = _nonfunctional(c.text)
    if not kinds:
        return None
    weight = 1.0 if len(kinds) >= 2 else 0.5
    note = "named non-functional needs: " + ", ".join(kinds)
    return c.evidence(RS, "states_nonfunctional_requirements", "positive", note, weight)


def _estimates(c: Turn) -> Evidence | None:
    found = dc.RATE.search(c.text)
    if found is None:
        return None
    weight = 1.0 if dc.COMPUTED.search(c.text) else 0.75
    note = f"estimated the scale: {quote(found.group(0), 50)}"
    return c.evidence(RS, "estimates_scale", "positive", note, weight)


def _scope(c: Turn) -> Evidence | None:
    found = dc.SCOPE.search(c.text)
    if found is None:
        return None
    note = f"scoped the design: {quote(found.group(0), 50)}"
    return c.evidence(RS, "defines_scope", "positive", note, 0.75)


def _skips_requirements(c: Turn) -> Evidence | None:
    if len(_components(c.text)) < 2 or _shows_requirements(c.text):
        return None
    if any(len(_components(u.text)) >= 2 or _shows_requirements(u.text) for u in c.earlier):
        return None
    note = "went to components before establishing requirements or scale"
    return c.evidence(RS, "skips_requirements", "negative", note)


def _no_scale(c: Turn) -> Evidence | None:
    if not dc.ASKED_SCALE.search(c.asked) or dc.NUMBER.search(c.text):
        return None
    if any(dc.RATE.search(u.text) for u in c.earlier):
        return None
    return c.evidence(RS, "no_scale_estimate", "negative", "asked for numbers, gave none")


def _api(c: Turn) -> Evidence | None:
    if dc.API.search(c.text):
        return c.evidence(HD, "defines_api", "positive", "defined the API")
    if dc.API_WORD.search(c.text) and words(c.text) >= 15:
        return c.evidence(HD, "defines_api", "positive", "described the API in outline", 0.5)
    return None


def _data_model(c: Turn) -> Evidence | None:
    found = {m.group(0).lower() for m in dc.DATA_MODEL.finditer(c.text)}
    if not found:
        return None
    weight = 1.0 if len(found) >= 2 else 0.5
    return c.evidence(HD, "designs_data_model", "positive", "laid out the data model", weight)


def _data_flow(c: Turn) -> Evidence | None:
    if len(_components(c.text)) < 2 or len(dc.FLOW.findall(c.text)) < 2:
        return None
    note = "walked the data flow through " + ", ".join(sorted(_components(c.text))[:4])
    return c.evidence(HD, "explains_data_flow", "positive", note)


def _buzzwords(c: Turn) -> Evidence | None:
    tech = sorted({m.group(0).lower() for m in dc.TECH.finditer(c.text)})
    if len(tech) < 3 or dc.REASONED.search(c.text) or len(dc.FLOW.findall(c.text)) >= 2:
        return None  # a reason, or a flow that says what each one does
    weight = 1.0 if len(tech) >= 4 else 0.75
    note = "named technologies without saying why: " + ", ".join(tech[:5])
    return c.evidence(HD, "buzzword_design", "negative", note, weight)


def _tradeoffs(c: Turn) -> Evidence | None:
    found = dc.COMPARE.search(c.text)
    if found is None or not dc.WHY.search(c.text):
        return None
    note = f"weighed options with a reason ({quote(found.group(0), 40)})"
    return c.evidence(DT, "discusses_tradeoffs", "positive", note)


def _justifies(c: Turn) -> Evidence | None:
    if dc.COMPARE.search(c.text) and dc.WHY.search(c.text):
        return None  # labelled as a trade-off
    for sentence in sentences(c.text):
        reason = dc.JUSTIFY.search(sentence)
        if reason and (dc.TECH.search(sentence) or dc.COMPONENT.search(sentence)):
            note = f"justified a choice ({quote(reason.group(0), 40)})"
            return c.evidence(DT, "justifies_choices", "positive", note, 0.75)
    return None


def _deep_dive(c: Turn) -> Evidence | None:
    terms = {m.group(0).lower() for m in dc.DEPTH.finditer(c.text)}
    if words(c.text) < 50 or len(terms) < 3:
        return None
    weight = 1.0 if len(terms) >= 5 else 0.75
    note = "went deep: " + ", ".join(sorted(terms)[:5])
    return c.evidence(DT, "deep_dives_component", "positive", note, weight)


def _no_tradeoffs(c: Turn) -> Evidence | None:
    if dc.COMPARE.search(c.text) or dc.JUSTIFY.search(c.text) or dc.REASONED.search(c.text):
        return None
    if dc.ASKED_TRADEOFF.search(c.asked):
        note = "asked for trade-offs, gave no alternative or reason"
        return c.evidence(DT, "no_tradeoffs", "negative", note)
    found = dc.ONLY_OPTION.search(c.text)
    if found is None:
        return None
    note = f"presented a choice as the only option: {quote(found.group(0), 40)}"
    return c.evidence(DT, "no_tradeoffs", "negative", note, 0.75)


def _shallow(c: Turn) -> Evidence | None:
    found = dc.GENERIC.search(c.text)
    if found is not None:
        return c.evidence(DT, "shallow_answers", "negative", f"said {quote(found.group(0), 40)}")
    if not dc.ASKED_DEEP.search(c.asked) or words(c.text) >= 25 or dc.DEPTH.search(c.text):
        return None
    note = f"answered a deep-dive question at the surface: {quote(c.text, 60)}"
    return c.evidence(DT, "shallow_answers", "negative", note, 0.75)


def _bottlenecks(c: Turn) -> Evidence | None:
    found = dc.BOTTLENECK.search(c.text)
    if found is None:
        return None
    note = f"found the bottleneck: {quote(found.group(0), 40)}"
    return c.evidence(SR, "identifies_bottlenecks", "positive", note)


def _partitioning(c: Turn) -> Evidence | None:
    tech = dc.SCALE_TECH.search(c.text)
    specific = dc.SCALE_SPECIFIC.search(c.text)
    if tech is None or specific is None:
        return None
    note = f"scaled it specifically: {tech.group(0).lower()} ({quote(specific.group(0), 40)})"
    return c.evidence(SR, "plans_partitioning_or_caching", "positive", note)


def _failures(c: Turn) -> Evidence | None:
    kinds = [name for name, pattern in dc.FAILURE_KINDS if pattern.search(c.text)]
    if not kinds:
        return None
    weight = 1.0 if len(kinds) >= 2 else 0.5
    note = "handled failure with " + ", ".join(kinds)
    return c.evidence(SR, "handles_failures", "positive", note, weight)


def _monitoring(c: Turn) -> Evidence | None:
    if dc.MONITORING.search(c.text) is None:
        return None
    return c.evidence(SR, "mentions_monitoring", "positive", "planned monitoring", 0.75)


def _single_point(c: Turn) -> Evidence | None:
    has_failure = any(p.search(c.text) for _, p in dc.FAILURE_KINDS)
    asked = dc.ASKED_FAILURE.search(c.asked) and _asked_question(c)
    if asked and not has_failure and not dc.REDUNDANT.search(c.text):
        note = "asked what happens on a failure, named no way to survive it"
        return c.evidence(SR, "single_point_of_failure", "negative", note)
    found = dc.SINGLE.search(c.text)
    if found is None or dc.REDUNDANT.search(c.text) or has_failure:
        return None
    note = f"left a single point of failure: {quote(found.group(0), 40)}"
    return c.evidence(SR, "single_point_of_failure", "negative", note, 0.75)


def _hand_waves(c: Turn) -> Evidence | None:
    specific = dc.SCALE_SPECIFIC.search(c.text) or dc.BOTTLENECK.search(c.text)
    if specific or dc.NUMBER.search(c.text):
        return None
    found = dc.HAND_WAVE.search(c.text)
    if found is not None:
        note = f"answered scaling generically: {quote(found.group(0), 40)}"
        return c.evidence(SR, "hand_waves_scaling", "negative", note)
    if dc.ASKED_GROWTH.search(c.asked) and _asked_question(c) and not dc.SCALE_TECH.search(c.text):
        note = "asked about growth, gave nothing specific"
        return c.evidence(SR, "hand_waves_scaling", "negative", note, 0.75)
    return None


def _structures(c: Turn) -> Evidence | None:
    if dc.STRUCTURE.search(c.text) is None:
        return None
    return c.evidence(CM, "structures_discussion", "positive", "laid out a plan for the discussion")


def _checks_in(c: Turn) -> Evidence | None:
    found = dc.CHECK_IN.search(c.text)
    if found is None:
        return None
    note = f"checked in: {quote(found.group(0), 40)}"
    return c.evidence(CM, "checks_in", "positive", note, 0.75)


def _explains(c: Turn) -> Evidence | None:
    n = words(c.text)
    if not 25 <= n <= 200 or len(cues.REASONING.findall(c.text)) < 2 or len(hedges(c.text)) > 1:
        return None
    return c.evidence(CM, "explains_clearly", "positive", "explained the design clearly", 0.5)


def _rambles(c: Turn) -> Evidence | None:
    found = hedges(c.text)
    if len(found) < 3 and not (len(found) == 2 and (words(c.text) < 60 or words(c.text) >= 200)):
        return None
    weight = 1.0 if len(found) >= 5 else 0.5
    note = "hedged and unfocused: " + ", ".join(f"\u201c{f}\u201d" for f in sorted(set(found)))
    return c.evidence(CM, "rambles", "negative", note, weight)


def _ignores(c: Turn) -> Evidence | None:
    found = dc.IGNORES.search(c.text)
    if found is None or not _asked_question(c):
        return None
    note = f"brushed off the interviewer's question: {quote(found.group(0), 40)}"
    return c.evidence(CM, "ignores_interviewer", "negative", note)


RULES: Final[tuple[Rule, ...]] = (
    _functional,
    _non_functional,
    _estimates,
    _scope,
    _skips_requirements,
    _no_scale,
    _api,
    _data_model,
    _data_flow,
    _buzzwords,
    _tradeoffs,
    _justifies,
    _deep_dive,
    _no_tradeoffs,
    _shallow,
    _bottlenecks,
    _partitioning,
    _failures,
    _monitoring,
    _single_point,
    _hand_waves,
    _structures,
    _checks_in,
    _explains,
    _rambles,
    _ignores,
)


def label_event(question: Question, transcript: Transcript, seq: int) -> list[Evidence]:
    """The evidence candidate message ``seq`` shows, judged on what was known at ``seq``;
    empty for any other seq and for questions of other tracks. Pure and deterministic."""
    if not isinstance(question, SystemDesignQuestion):
        return []
    return label_message(RULES, transcript.upto(seq), seq)


def label_transcript(question: Question, transcript: Transcript) -> list[Evidence]:
    """:func:`label_event` for every candidate message of ``transcript``, in seq order."""
    out: list[Evidence] = []
    for turn in transcript.candidate_turns:
        out.extend(label_event(question, transcript, turn.seq))
    return out
