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

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from scoring.evidence import Evidence
from scoring.judges import cues
from scoring.judges.complexity import Cost, optimal_time_cost, stated_complexities
from scoring.question_bank import CodingQuestion, Question
from scoring.rubric import Polarity
from scoring.transcript import CodeVersion, Transcript, Utterance

__all__ = ["SILENCE_LONG_MS", "SILENCE_MS", "is_real_code", "label_event", "label_transcript"]

SILENCE_MS: Final = 150_000
SILENCE_LONG_MS: Final = 300_000

PU = "problem_understanding"
AC = "approach_and_complexity"
TE = "testing_and_edge_cases"
CM = "communication"


@dataclass(frozen=True, slots=True)
class _Context:
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


def _quote(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return f"\u201c{text if len(text) <= limit else text[: limit - 1] + '…'}\u201d"


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.?!:])\s+|\n+", text) if s.strip()]


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9']+", text))


def is_real_code(source: str, starter: str = "") -> bool:
    """Whether ``source`` holds real code: two or more lines beyond blank lines, comments,
    docstrings, ``def``/``class`` headers, ``pass`` and the starter code's own lines."""
    starter_lines = {line.strip() for line in starter.splitlines()}
    count = 0
    for raw in source.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", '"""', "'''")) or line in starter_lines:
            continue
        if line == "pass" or line.startswith(("def ", "class ", "@")):
            continue
        count += 1
    return count >= 2


def _clarifying_questions(text: str) -> list[str]:
    return [
        s
        for s in _sentences(text)
        if s.endswith("?")
        and (
            (cues.CLARIFY_TOPIC.search(s) and cues.CLARIFY_OPENER.search(s))
            or cues.CONFIRMATION.search(s)
        )
    ]


def _describes_approach(text: str) -> bool:
    techniques = {m.group(0).lower() for m in cues.TECHNIQUE.finditer(text)}
    return len(techniques) >= 2 and _words(text) >= 15 and bool(cues.PLAN.search(text))


def _edge_kinds(text: str) -> list[str]:
    return [name for name, pattern in cues.EDGE_KINDS if pattern.search(text)]


@functools.lru_cache(maxsize=4096)
def _time_claims(text: str) -> tuple[Cost, ...]:
    """The time complexities ``text`` states. Cached: each rule reads the candidate's earlier
    messages again for every new one, so without it a session's parsing grows as n²."""
    return tuple(s.cost for s in stated_complexities(text) if s.kind == "time")


def _shows_planning(text: str) -> bool:
    return bool(
        _clarifying_questions(text) or cues.RESTATE.search(text) or _describes_approach(text)
    )


@functools.lru_cache(maxsize=4096)
def _tested_in_words(text: str) -> bool:
    return bool(
        (cues.TESTS.search(text) and not cues.NOT_TESTED.search(text)) or cues.TRACE.search(text)
    )


# -- the rules: each reads one message in its context and labels at most one piece ------------

Rule = Callable[[_Context], Evidence | list[Evidence] | None]


def _asks_clarifying_questions(c: _Context) -> Evidence | None:
    questions = _clarifying_questions(c.text)
    if not questions:
        return None
    weight = 1.0 if len(questions) >= 2 else 0.75
    note = f"asked {_quote(questions[0])}"
    if len(questions) > 1:
        note += f" and {len(questions) - 1} more clarifying question(s)"
    return c.evidence(PU, "asks_clarifying_questions", "positive", note, weight)


def _restates_problem(c: _Context) -> Evidence | None:
    if not c.before_code or not cues.RESTATE.search(c.text):
        return None
    if any(cues.RESTATE.search(u.text) for u in c.earlier):
        return None
    return c.evidence(PU, "restates_problem", "positive", "restated the problem before solving")


def _has_example(text: str) -> bool:
    return bool(
        (cues.EXAMPLE.search(text) and re.search(r"\d|\[|\(", text))
        or cues.LIST_LITERAL.search(text)
    )


def _works_example(c: _Context) -> Evidence | None:
    if not c.before_code or not _has_example(c.text):
        return None
    if any(_has_example(u.text) for u in c.earlier_before_code()):
        return None
    return c.evidence(PU, "works_example", "positive", "worked through an example by hand")


def _identifies_constraints(c: _Context) -> Evidence | None:
    match = cues.CONSTRAINT.search(c.text)
    if match is None or any(cues.CONSTRAINT.search(u.text) for u in c.earlier):
        return None
    return c.evidence(PU, "identifies_constraints", "positive", "used the input constraints")


def _complexity(c: _Context) -> list[Evidence]:
    """The complexity rules (see the module docstring). A message may mention the cost of
    one step ("the merge pass is linear") beside the whole algorithm's, so a claim counts as
    too fast only when every time complexity in the message is below the optimal."""
    claims = _time_claims(c.text)
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
        if not any(optimal in _time_claims(u.text) for u in c.earlier):
            note = f"reached an approach with the optimal {optimal} time"
            out.append(c.evidence(AC, "reaches_optimal_approach", "positive", note))
    elif close:
        note = f"stated {close[0]} time, within a log factor of the optimal {optimal}"
        out.append(c.evidence(AC, "states_complexity", "positive", note, 0.75))
    if slower:
        worst = max(slower)
        if cues.BRUTE_AWARE.search(c.text):
            if not any(cues.BRUTE_AWARE.search(u.text) and _time_claims(u.text) for u in c.earlier):
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


def _compares_alternatives(c: _Context) -> Evidence | None:
    if len(set(_time_claims(c.text))) >= 2 or not cues.COMPARE.search(c.text):
        return None  # two costs are labelled with the complexity rules
    if len({m.group(0).lower() for m in cues.TECHNIQUE.finditer(c.text)}) < 2:
        return None
    return c.evidence(AC, "compares_alternatives", "positive", "weighed alternative approaches")


def _needs_strong_hints(c: _Context) -> Evidence | None:
    match = cues.STUCK.search(c.text)
    if match is None:
        return None
    return c.evidence(AC, "needs_strong_hints", "negative", f"said {_quote(match.group(0))}")


def _names_edge_cases(c: _Context) -> Evidence | None:
    kinds = _edge_kinds(c.text)
    if not kinds:
        return None
    weight = 1.0 if len(kinds) >= 2 else 0.5
    return c.evidence(TE, "names_edge_cases", "positive", "named " + ", ".join(kinds), weight)


def _handles_empty_input(c: _Context) -> Evidence | None:
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


def _traces_code_by_hand(c: _Context) -> Evidence | None:
    if c.before_code or not cues.TRACE.search(c.text):
        return None
    return c.evidence(TE, "traces_code_by_hand", "positive", "traced the code by hand")


def _writes_tests(c: _Context) -> Evidence | None:
    if not cues.TESTS.search(c.text) or cues.NOT_TESTED.search(c.text):
        return None
    return c.evidence(TE, "writes_tests", "positive", "proposed test cases")


def _no_testing(c: _Context) -> Evidence | None:
    code = c.latest_code
    if code is None or c.first_code is None or not cues.DONE.search(c.text):
        return None
    if _tested_in_words(c.text):
        return None
    ran = any(run.version >= code.version for run in c.transcript.runs if run.seq < c.turn.seq)
    talked = any(_tested_in_words(u.text) for u in c.earlier if u.seq > code.seq)
    if ran or talked:
        return None
    return c.evidence(TE, "no_testing", "negative", "declared the code done without testing it")


def _thinks_aloud(c: _Context) -> Evidence | None:
    if _words(c.text) < 25 or len(cues.REASONING.findall(c.text)) < 2 or _hedged(c.text):
        return None
    return c.evidence(CM, "thinks_aloud", "positive", "thought aloud while working", 0.5)


def _explains_clearly(c: _Context) -> Evidence | None:
    if not _describes_approach(c.text) or len(cues.FILLER.findall(c.text)) > 1:
        return None
    if c.before_code:
        return c.evidence(
            CM, "explains_clearly", "positive", "described the approach clearly before coding"
        )
    return c.evidence(CM, "explains_clearly", "positive", "explained the approach clearly", 0.5)


def _after_nudge(c: _Context) -> bool:
    return c.interviewer is not None and cues.is_nudge(c.interviewer.text)


def _incorporates_feedback(c: _Context) -> Evidence | None:
    if not _after_nudge(c) or not cues.ACKNOWLEDGE.search(c.text) or cues.DISMISS.search(c.text):
        return None
    if not cues.TECHNIQUE.search(c.text) or _words(c.text) < 8:
        return None
    return c.evidence(
        CM, "incorporates_feedback", "positive", "took the hint and built on it", 0.75
    )


def _ignores_hints(c: _Context) -> Evidence | None:
    match = cues.DISMISS.search(c.text)
    if not _after_nudge(c) or match is None:
        return None
    return c.evidence(CM, "ignores_hints", "negative", f"brushed off a hint: {_quote(c.text, 60)}")


def _hedged(text: str) -> bool:
    """Three or more fillers and hedges, or two in a message of under 60 words."""
    fillers = len(cues.FILLER.findall(text))
    return fillers >= 3 or (fillers == 2 and _words(text) < 60)


def _unclear_explanation(c: _Context) -> Evidence | None:
    fillers = len(cues.FILLER.findall(c.text))
    if not _hedged(c.text):
        return None
    weight = 1.0 if fillers >= 5 else 0.5
    found = sorted({m.group(0).lower().rstrip(",") for m in cues.FILLER.finditer(c.text)})
    note = "hedged: " + ", ".join(f"\u201c{f}\u201d" for f in found)
    return c.evidence(CM, "unclear_explanation", "negative", note, weight)


def _silent_for_long(c: _Context) -> Evidence | None:
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


_RULES: Final[tuple[Rule, ...]] = (
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


def _label_message(
    question: CodingQuestion, transcript: Transcript, turn: Utterance
) -> list[Evidence]:
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
    context = _Context(
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
    out: list[Evidence] = []
    for rule in _RULES:
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
    if any(_shows_planning(u.text) for u in said):
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
