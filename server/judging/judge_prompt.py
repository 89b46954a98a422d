"""What the Claude judge shows the model: the tool, the system prompt and the user message.

Pure functions of the rubric, the question and the transcript (no I/O), shared by every
track: the ``record_evidence`` tool is fixed per track (so it and the system prompt cache),
the system prompt lists the track's judgeable signals (:func:`judgeable_signals`: the
rubric's, less those the code judge owns) and the question, and the user message
(:func:`build_judge_input`) shows the recent transcript with the candidate's events marked
``[seq N]``, the new ones ``NEW``, and for coding the latest code and visible runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from scoring.judges.code import CODE_JUDGE_SIGNALS
from scoring.question_bank import CodingQuestion, Question
from scoring.rubric import Rubric, Track
from scoring.transcript import Transcript

__all__ = [
    "MAX_CODE_CHARS",
    "MAX_TURN_CHARS",
    "TOOL_NAME",
    "JudgeInput",
    "build_judge_input",
    "evidence_tool",
    "judgeable_signals",
    "system_prompt",
]

TOOL_NAME: Final = "record_evidence"
MAX_CODE_CHARS: Final = 8000
MAX_TURN_CHARS: Final = 2000
_INTERVIEW_KIND: Final[dict[Track, str]] = {
    "coding": "coding",
    "system_design": "system design",
    "behavioral": "behavioral",
}


@dataclass(frozen=True, slots=True)
class JudgeInput:
    """What one call shows the model: the user message, the seqs it may cite (``offered``)
    and the seqs judged for the first time (``new``; every label must cite one)."""

    text: str
    offered: frozenset[int]
    new: frozenset[int]


def judgeable_signals(rubric: Rubric) -> tuple[str, ...]:
    """The signal ids Claude may label: the rubric's, less those the code judge owns."""
    return tuple(s for s in rubric.signals if s not in CODE_JUDGE_SIGNALS)


def evidence_tool(rubric: Rubric) -> dict[str, Any]:
    """The ``record_evidence`` tool: a strict JSON schema, fixed per track (so it caches)."""
    label = {
        "type": "object",
        "additionalProperties": False,
        "required": ["dimension", "signal_id", "polarity", "seqs", "note"],
        "properties": {
            "dimension": {"type": "string", "enum": list(rubric.dimension_names)},
            "signal_id": {"type": "string", "enum": list(judgeable_signals(rubric))},
            "polarity": {"type": "string", "enum": ["positive", "negative"]},
            "seqs": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "The [seq N] numbers of the candidate events that show it.",
            },
            "note": {
                "type": "string",
                "description": "What the candidate did, in under 25 words, addressed to no one.",
            },
        },
    }
    return {
        "name": TOOL_NAME,
        "description": (
            "Record the rubric evidence shown by the candidate's NEW events. Call exactly once; "
            "pass an empty list when the new events show nothing the rubric covers."
        ),
        "strict": True,
        "input_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["evidence"],
            "properties": {"evidence": {"type": "array", "items": label}},
        },
    }


def system_prompt(rubric: Rubric, question: Question) -> str:
    """The fixed per-session instructions: the task, the rubric's signals, the question.

    The same for every call of a session (so it caches). Per track: coding adds that test
    results are scored elsewhere and the optimal complexity (never shown to the candidate);
    system design and behavioral add the question's focus areas and say there is no code.
    """
    kind = _INTERVIEW_KIND[rubric.track]
    lines = [
        f"You are the silent evaluator of a live mock {kind} interview. You never talk to "
        "the candidate. You read the transcript and label rubric evidence by calling the "
        f"{TOOL_NAME} tool exactly once.",
        "",
        "Rules:",
        "- Label only what the candidate's events marked NEW show. Earlier lines are context.",
        "- Cite only seqs written as [seq N] in the transcript; every label must cite at least "
        "one NEW seq. Never label the interviewer's words.",
        "- Use a signal's own dimension and polarity, as listed below.",
        "- Be conservative: label clear behaviour only, at most one label per signal per call. "
        "An empty list is a good answer when nothing new is shown.",
        "- Notes are short, factual and about the candidate's behaviour.",
    ]
    if isinstance(question, CodingQuestion):
        lines.insert(
            -1, "- Test results are scored elsewhere: do not label passing or failing tests."
        )
    else:
        lines.append(
            "- This interview is spoken only: there is no code. Judge what the candidate says "
            "against the signals' descriptions, not against keywords."
        )
    lines += ["", f"Rubric ({rubric.track} track; scale 1 strong no hire to 4 strong hire):"]
    judgeable = set(judgeable_signals(rubric))
    for dimension in rubric.dimensions:
        lines.append(f"* {dimension.name}: {dimension.description}")
        for signal in dimension.signals:
            if signal.id in judgeable:
                lines.append(f"  - {signal.id} ({signal.polarity}): {signal.description}")
    lines += ["", f"Question: {question.title}", question.prompt.strip()]
    if isinstance(question, CodingQuestion):
        lines.append(
            f"Optimal complexity (never revealed to the candidate): {question.optimal_complexity}"
        )
    else:
        lines.append("What the interviewer listens for: " + "; ".join(question.focus_areas))
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_judge_input(
    transcript: Transcript, *, since_seq: int, max_turns: int = 16
) -> JudgeInput | None:
    """The user message for judging the candidate's events after ``since_seq``: the last
    ``max_turns`` transcript entries and the latest code. None when there is nothing new (no
    candidate message or code change after ``since_seq``). Pure."""
    turns = transcript.utterances[-max_turns:]
    code = transcript.latest_code()
    offered = {u.seq for u in turns if u.role == "candidate"}
    new = {seq for seq in offered if seq > since_seq}
    if code is not None:
        offered.add(code.seq)
        if code.seq > since_seq:
            new.add(code.seq)
    if not new:
        return None
    lines = ["Transcript, oldest first (NEW marks the events to judge now):"]
    for turn in turns:
        text = _clip(turn.text.strip(), MAX_TURN_CHARS)
        if turn.role == "candidate":
            mark = " NEW" if turn.seq in new else ""
            lines.append(f"[seq {turn.seq}]{mark} candidate: {text}")
        else:
            lines.append(f"interviewer: {text}")
    if code is not None:
        mark = " NEW" if code.seq in new else ""
        source = code.source
        if len(source) > MAX_CODE_CHARS:
            source = source[:MAX_CODE_CHARS] + "\n# ... (truncated)"
        lines += [
            "",
            f"[seq {code.seq}]{mark} the candidate's latest code (version {code.version}, "
            f"{code.language}):",
            "```",
            source.rstrip(),
            "```",
        ]
    runs = transcript.runs[-3:]
    if runs:
        lines.append("")
        lines.append("Recent visible-test runs (context only, scored elsewhere):")
        lines += [f"- version {r.version}: {r.status}, {r.passed}/{r.total} passed" for r in runs]
    lines += ["", f"Call {TOOL_NAME} with the evidence the NEW events show."]
    return JudgeInput("\n".join(lines), frozenset(offered), frozenset(new))
