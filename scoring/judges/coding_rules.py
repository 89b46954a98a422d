"""The offline coding judge's rules: each reads one candidate message in its context
(:mod:`scoring.judges.coding_context`) and labels at most one piece of evidence (the
complexity rules a few). :data:`RULES` is the list :mod:`scoring.judges.heuristic` applies,
in order. Pure functions; no clock (gaps come from the events' ``ts``).

The rules, per candidate message ("before code" means before the first snapshot that holds
real code, at least two lines beyond the starter's ``def`` and ``pass``):

Problem understanding
- ``asks_clarifying_questions`` +: a sentence ending in "?" about the input, output or
  constraints (empty, duplicates, negative, sorted, size, "can I assume", "what should it
  return", ...). Weight 0.75, or 1.0 for two or more such questions.
- ``restates_problem`` +: "so we need to", "if I understand correctly", "in other words",
  "just to confirm" ... before code; once per session.
- ``works_example`` +: before code, an example with concrete numbers or brackets ("for
  example", "let's say", "walk through", "[2, 7, 11, 15]"); once per session.
- ``identifies_constraints`` +: names the constraints ("10^4", "constraint", "input size",
  "up to a million"); once per session.
- ``starts_coding_immediately`` -: (on a ``code.snapshot``) the first real code arrives
  before any candidate message asked a question, restated the problem or described an
  approach.

Approach and complexity (time complexities parsed by :mod:`scoring.judges.complexity`,
compared with the question's ``optimal_complexity``)
- ``states_complexity`` +: a stated time complexity equal to the optimal (weight 1.0) or
  within one log factor of it (0.75).
- ``reaches_optimal_approach`` +: the first message that states the optimal time.
- ``proposes_brute_force_first`` +: a slower complexity named as a starting point ("brute
  force", "naive", "we can do better"); once per session.
- ``suboptimal_without_awareness`` -: a slower complexity called fine ("good enough",
  "that's optimal"), or stated for code already written without any word of improving it.
- ``wrong_complexity`` -: a claim faster than the optimal complexity (impossible).
- ``compares_alternatives`` +: two different time complexities in one message, or a
  comparison ("alternatively", "trade-off", "instead of", "versus") between approaches.
- ``needs_strong_hints`` -: "I'm stuck", "no idea", "can I get a hint", "I give up".

Testing and edge cases
- ``names_edge_cases`` +: names edge cases (empty, single element, duplicates, negative,
  zero, overflow, no solution, ...): weight 0.5 for one kind, 1.0 for two or more.
- ``handles_empty_input`` +: talks about empty input while the code checks for it
  (``if not x``, ``len(x) == 0``); once per session.
- ``traces_code_by_hand`` +: after code, "trace", "walk through", "dry run", "step
  through", "first iteration", "i = 0"; weight 1.0.
- ``writes_tests`` +: proposes tests ("test case", "let me test", "assert", "I'd also
  test", "tests I'd add"), not "I didn't test".
- ``no_testing`` -: declares the code done ("that should work", "I'm done") while the
  latest code was neither run nor tested or traced in words since it was written.

Communication
- ``thinks_aloud`` +: a message of 25 words or more with reasoning connectives ("because",
  "so", "which means", "first", "then") that is not hedged (below); weight 0.5.
- ``explains_clearly`` +: describes an approach (two or more technique words, 15 words or
  more, a plan verb) with at most one filler: weight 1.0 before code ("described the
  approach before coding"), 0.5 after.
- ``incorporates_feedback`` +: after an interviewer nudge ("what if", "have you
  considered", "think about", "can you do better"), acknowledges it ("oh", "right", "good
  point") and builds on it with a technique; weight 0.75.
- ``ignores_hints`` -: after a nudge, brushes it off ("I'd rather", "I'll stick with",
  "it doesn't matter", "not needed").
- ``unclear_explanation`` -: a hedged message: three or more fillers or hedges ("um", "I
  guess", "kind of", "or something", "I'm not sure", "I don't remember"), or two in a
  message under 60 words; weight 0.5, or 1.0 for five or more.
- ``silent_for_long`` -: the message comes 150 s or more after the last activity (a
  message of either side, a code change, a run): weight 0.5, or 1.0 from 300 s. Typing
  code is activity; silence while stuck is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from scoring.evidence import Evidence
from scoring.judges import cues
from scoring.judges.coding_context import AC, CM, PU, TE, MessageContext
from scoring.judges.coding_signals import (
    clarifying_questions,
    describes_approach,
    edge_kinds,
    has_example,
    hedged,
    quote,
    tested_in_words,
    time_claims,
    word_count,
)
from scoring.judges.complexity import Cost

__all__ = ["RULES", "SILENCE_LONG_MS", "SILENCE_MS", "Rule"]

SILENCE_MS: Final = 150_000
SILENCE_LONG_MS: Final = 300_000

# -- the rules: each reads one message in its context and labels at most one piece ------------

Rule = Callable[[MessageContext], Evidence | list[Evidence] | None]


def _asks_clarifying_questions(c: MessageContext) -> Evidence | None:
    questions = clarifying_questions(c.text)
    if not questions:
        return None
    weight = 1.0 if len(questions) >= 2 else 0.75
    note = f"asked {quote(questions[0])}"
    if len(questions) > 1:
        note += f" and {len(questions) - 1} more clarifying question(s)"
    return c.evidence(PU, "asks_clarifying_questions", "positive", note, weight)


def _restates_problem(c: MessageContext) -> Evidence | None:
    if not c.before_code or not cues.RESTATE.search(c.text):
        return None
    if any(cues.RESTATE.search(u.text) for u in c.earlier):
        return None
    return c.evidence(PU, "restates_problem", "positive", "restated the problem before solving")


def _works_example(c: MessageContext) -> Evidence | None:
    if not c.before_code or not has_example(c.text):
        return None
    if any(has_example(u.text) for u in c.earlier_before_code()):
        return None
    return c.evidence(PU, "works_example", "positive", "worked through an example by hand")


def _identifies_constraints(c: MessageContext) -> Evidence | None:
    match = cues.CONSTRAINT.search(c.text)
    if match is None or any(cues.CONSTRAINT.search(u.text) for u in c.earlier):
        return None
    return c.evidence(PU, "identifies_constraints", "positive", "used the input constraints")


def _complexity(c: MessageContext) -> list[Evidence]:
    """The complexity rules (see the module docstring). A message may mention the cost of
    one step ("the merge pass is linear") beside the whole algorithm's, so a claim counts as
    too fast only when every time complexity in the message is below the optimal."""
    claims = time_claims(c.text)
    if not claims or c.optimal is None or c.answers_variant:
        return []
    optimal = c.optimal

    def near(cost: Cost) -> bool:
        return (cost.exponential, cost.degree, cost.logs) == (
            optimal.exponential,
            optimal.degree,
            optimal.logs + 1,
        )

    out: list[Evidence] = []
    has_optimal = optimal in claims
    close = [cost for cost in claims if near(cost)]
    slower = [cost for cost in claims if cost > optimal and not near(cost)]
    if max(claims) < optimal:
        note = f"claimed {max(claims)} time, faster than this problem allows ({optimal})"
        out.append(c.evidence(AC, "wrong_complexity", "negative", note))
    if has_optimal:
        out.append(
            c.evidence(AC, "states_complexity", "positive", f"stated the optimal {optimal} time")
        )
        if not any(optimal in time_claims(u.text) for u in c.earlier):
            note = f"reached an approach with the optimal {optimal} time"
            out.append(c.evidence(AC, "reaches_optimal_approach", "positive", note))
    elif close:
        note = f"stated {close[0]} time, within a log factor of the optimal {optimal}"
        out.append(c.evidence(AC, "states_complexity", "positive", note, 0.75))
    if slower:
        worst = max(slower)
        if cues.BRUTE_AWARE.search(c.text):
            if not any(cues.BRUTE_AWARE.search(u.text) and time_claims(u.text) for u in c.earlier):
                note = f"started from a simple {worst} approach, aware it can improve"
                out.append(c.evidence(AC, "proposes_brute_force_first", "positive", note))
        elif not (has_optimal or close) and (cues.COMPLACENT.search(c.text) or not c.before_code):
            note = f"settled on {worst} time where {optimal} is possible"
            out.append(c.evidence(AC, "suboptimal_without_awareness", "negative", note))
        if has_optimal or close:
            costs = " vs ".join(str(x) for x in sorted(set(claims)))
            note = f"compared approaches by cost ({costs})"
            out.append(c.evidence(AC, "compares_alternatives", "positive", note))
    return out


def _compares_alternatives(c: MessageContext) -> Evidence | None:
    if len(set(time_claims(c.text))) >= 2 or not cues.COMPARE.search(c.text):
        return None  # two costs are labelled with the complexity rules
    if len({m.group(0).lower() for m in cues.TECHNIQUE.finditer(c.text)}) < 2:
        return None
    return c.evidence(AC, "compares_alternatives", "positive", "weighed alternative approaches")


def _needs_strong_hints(c: MessageContext) -> Evidence | None:
    match = cues.STUCK.search(c.text)
    if match is None:
        return None
    return c.evidence(AC, "needs_strong_hints", "negative", f"said {quote(match.group(0))}")


def _names_edge_cases(c: MessageContext) -> Evidence | None:
    kinds = edge_kinds(c.text)
    if not kinds:
        return None
    weight = 1.0 if len(kinds) >= 2 else 0.5
    return c.evidence(TE, "names_edge_cases", "positive", "named " + ", ".join(kinds), weight)


def _handles_empty_input(c: MessageContext) -> Evidence | None:
    code = c.latest_code
    if code is None or not re.search(r"\bempty\b", c.text, re.IGNORECASE):
        return None
    if not cues.EMPTY_CHECK.search(code.source):
        return None
    if any(re.search(r"\bempty\b", u.text, re.I) for u in c.earlier if u.seq > code.seq):
        return None
    return Evidence(
        TE,
        "handles_empty_input",
        "positive",
        (c.turn.seq, code.seq),
        "handled empty input explicitly in the code",
    )


def _traces_code_by_hand(c: MessageContext) -> Evidence | None:
    if c.before_code or not cues.TRACE.search(c.text):
        return None
    return c.evidence(TE, "traces_code_by_hand", "positive", "traced the code by hand")


def _writes_tests(c: MessageContext) -> Evidence | None:
    if not cues.TESTS.search(c.text) or cues.NOT_TESTED.search(c.text):
        return None
    return c.evidence(TE, "writes_tests", "positive", "proposed test cases")


def _no_testing(c: MessageContext) -> Evidence | None:
    code = c.latest_code
    if code is None or c.first_code is None or not cues.DONE.search(c.text):
        return None
    if tested_in_words(c.text):
        return None
    ran = any(run.version >= code.version for run in c.transcript.runs if run.seq < c.turn.seq)
    talked = any(tested_in_words(u.text) for u in c.earlier if u.seq > code.seq)
    if ran or talked:
        return None
    return c.evidence(TE, "no_testing", "negative", "declared the code done without testing it")


def _thinks_aloud(c: MessageContext) -> Evidence | None:
    if word_count(c.text) < 25 or len(cues.REASONING.findall(c.text)) < 2 or hedged(c.text):
        return None
    return c.evidence(CM, "thinks_aloud", "positive", "thought aloud while working", 0.5)


def _explains_clearly(c: MessageContext) -> Evidence | None:
    if not describes_approach(c.text) or len(cues.FILLER.findall(c.text)) > 1:
        return None
    if c.before_code:
        return c.evidence(
            CM, "explains_clearly", "positive", "described the approach clearly before coding"
        )
    return c.evidence(CM, "explains_clearly", "positive", "explained the approach clearly", 0.5)


def _after_nudge(c: MessageContext) -> bool:
    return c.interviewer is not None and cues.is_nudge(c.interviewer.text)


def _incorporates_feedback(c: MessageContext) -> Evidence | None:
    if not _after_nudge(c) or not cues.ACKNOWLEDGE.search(c.text) or cues.DISMISS.search(c.text):
        return None
    if not cues.TECHNIQUE.search(c.text) or word_count(c.text) < 8:
        return None
    return c.evidence(
        CM, "incorporates_feedback", "positive", "took the hint and built on it", 0.75
    )


def _ignores_hints(c: MessageContext) -> Evidence | None:
    match = cues.DISMISS.search(c.text)
    if not _after_nudge(c) or match is None:
        return None
    return c.evidence(CM, "ignores_hints", "negative", f"brushed off a hint: {quote(c.text, 60)}")


def _unclear_explanation(c: MessageContext) -> Evidence | None:
    fillers = len(cues.FILLER.findall(c.text))
    if not hedged(c.text):
        return None
    weight = 1.0 if fillers >= 5 else 0.5
    found = sorted({m.group(0).lower().rstrip(",") for m in cues.FILLER.finditer(c.text)})
    note = "hedged: " + ", ".join(f"\u201c{f}\u201d" for f in found)
    return c.evidence(CM, "unclear_explanation", "negative", note, weight)


def _silent_for_long(c: MessageContext) -> Evidence | None:
    if c.previous_activity_ts is None:
        return None
    gap = c.turn.ts - c.previous_activity_ts
    if gap < SILENCE_MS:
        return None
    weight = 1.0 if gap >= SILENCE_LONG_MS else 0.5
    return c.evidence(
        CM,
        "silent_for_long",
        "negative",
        f"silent for {gap // 60_000} min {gap // 1000 % 60} s",
        weight,
    )


RULES: Final[tuple[Rule, ...]] = (
    _asks_clarifying_questions,
    _restates_problem,
    _works_example,
    _identifies_constraints,
    _complexity,
    _compares_alternatives,
    _needs_strong_hints,
    _names_edge_cases,
    _handles_empty_input,
    _traces_code_by_hand,
    _writes_tests,
    _no_testing,
    _thinks_aloud,
    _explains_clearly,
    _incorporates_feedback,
    _ignores_hints,
    _unclear_explanation,
    _silent_for_long,
)
