"""The interviewer's prompt: built from the question, the rubric, the phase, the transcript so far
(the candidate's latest code included) and what this turn is for.

The system prompt and the question context are fixed for a whole session, so the provider
can cache them (Anthropic prompt caching); everything that changes goes into the messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from server.interviewer.provider import ChatMessage, TurnIntent

SYSTEM_PROMPT = """\
You are Mentara's interviewer: a senior software engineer running a realistic, friendly mock \
technical interview over chat. The candidate is practising for real interviews.

Rules:
- Speak like an interviewer in a live conversation: short paragraphs, no headings, at most \
about 120 words per turn, one question at a time.
- Never give away the solution, never write the candidate's code, never state the optimal \
algorithm outright. When the candidate is stuck, give only the next graded hint you are told \
to give, phrased as a nudge.
- Ask about time and space complexity, edge cases and testing once the candidate has an \
approach or code.
- Evaluate silently: do not announce scores.
- Text in [brackets] in the user's messages is guidance from the interview system, not the \
candidate's words: follow it, never quote it.
"""


@dataclass(frozen=True)
class TranscriptTurn:
    role: str  # "candidate" | "interviewer"
    text: str


def question_context(
    *,
    title: str,
    prompt: str,
    track: str,
    rubric_dimensions: Sequence[str],
    hints: Sequence[str],
    followups: Sequence[str],
    optimal_complexity: str = "",
) -> str:
    """The fixed, per-session description of the question (cacheable)."""
    lines = [
        f"Interview track: {track}. Question: {title}.",
        "",
        "The candidate sees this problem statement:",
        prompt.strip(),
        "",
        "Rubric dimensions you are evaluating: " + ", ".join(rubric_dimensions) + ".",
    ]
    if optimal_complexity:
        lines.append(f"Expected optimal complexity (do not reveal): {optimal_complexity}.")
    if hints:
        lines.append("Graded hints, gentlest first (give one at a time, only when told):")
        lines.extend(f"{i}. {h}" for i, h in enumerate(hints, 1))
    if followups:
        lines.append("Follow-up questions to draw on:")
        lines.extend(f"- {f}" for f in followups)
    return "\n".join(lines)


_GUIDANCE = {
    TurnIntent.INTRO: "The candidate has joined. Greet them and explain the format briefly "
    "(about 45 minutes, think aloud, ask questions any time). Do not present the problem yet.",
    TurnIntent.PRESENT: "Present the problem in your own words (they can see the statement) and "
    "invite clarifying questions before they start.",
    TurnIntent.REPLY: "Respond to the candidate's latest message as the interviewer.{focus}",
    TurnIntent.HINT: "The candidate seems stuck. Give this hint as a gentle nudge, without "
    "revealing more: {hint}",
    TurnIntent.FOLLOWUP: "Ask this follow-up question: {followup}",
    TurnIntent.CLOSING: "The interview is over ({reason}). Thank the candidate and close in two "
    "or three sentences; do not evaluate them.",
}


def focus_note(dimension: str, probe: str, covered: Sequence[str]) -> str:
    """The REPLY guidance's ``focus``: the rubric dimension with the least evidence so far,
    the question the offline interviewer would ask about it, and what the candidate has
    already shown (never to be asked for again)."""
    note = (
        f" If you ask a question, ask about {dimension}: the evidence so far is thinnest "
        f'there (for example: "{probe}").'
    )
    if covered:
        note += " Already shown, so do not ask for it again: " + "; ".join(covered) + "."
    return note


def guidance(intent: TurnIntent, **values: str) -> str:
    return "[" + _GUIDANCE[intent].format_map(_Defaults(values)) + "]"


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def build_messages(
    transcript: Sequence[TranscriptTurn],
    *,
    phase: str,
    code: tuple[str, str] | None,
    instruction: str,
) -> tuple[ChatMessage, ...]:
    """The transcript as alternating user/assistant messages, ending with a user message that
    carries the candidate's latest code and this turn's instruction."""
    messages: list[ChatMessage] = []
    for turn in transcript:
        role: Literal["user", "assistant"] = "assistant" if turn.role == "interviewer" else "user"
        text = turn.text.strip() or "(silence)"
        if messages and messages[-1].role == role:
            messages[-1] = ChatMessage(role, messages[-1].content + "\n\n" + text)
        else:
            messages.append(ChatMessage(role, text))
    tail = [f"[Interview phase: {phase}.]"]
    if code is not None:
        language, source = code
        tail.append(f"[The candidate's current code ({language}):]\n```{language}\n{source}\n```")
    tail.append(instruction)
    extra = "\n\n".join(tail)
    if messages and messages[-1].role == "user":
        messages[-1] = ChatMessage("user", messages[-1].content + "\n\n" + extra)
    else:
        messages.append(ChatMessage("user", extra))
    return tuple(messages)
