"""What the offline judges of the talk-only tracks (system design, behavioral) share: the
context one candidate message is judged in, text helpers, and the loop that runs a track's
rules over one message.

A rule reads one candidate message in its :class:`Turn` (the message, the candidate's
earlier messages, the interviewer's last turn before it) and returns at most a few pieces
of :class:`~scoring.evidence.Evidence`, each citing that message's seq. Rules see nothing
after the message, so a message's labels never change as the session goes on, and
labelling live gives what labelling the stored session gives. Pure; no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from scoring.evidence import Evidence
from scoring.judges import cues
from scoring.rubric import Polarity
from scoring.transcript import Transcript, Utterance

__all__ = [
    "Rule",
    "Turn",
    "hedges",
    "label_message",
    "quote",
    "sentences",
    "words",
]


@dataclass(frozen=True, slots=True)
class Turn:
    """One candidate message and what was known when it was said."""

    turn: Utterance
    earlier: tuple[Utterance, ...]  # the candidate's earlier messages, oldest first
    interviewer: Utterance | None  # the interviewer's last turn before this message

    @property
    def text(self) -> str:
        return self.turn.text

    @property
    def asked(self) -> str:
        """The interviewer's last turn, as a follow-up question: "" before any, and for the
        candidate's first message (the opening question asks for the whole story or design
        at once, so a first answer is not held to each of its parts)."""
        if self.interviewer is None or not self.earlier:
            return ""
        return self.interviewer.text

    def said_before(self, pattern: re.Pattern[str]) -> bool:
        """Whether an earlier candidate message matches ``pattern``."""
        return any(pattern.search(u.text) for u in self.earlier)

    def evidence(
        self, dimension: str, signal: str, polarity: Polarity, note: str, weight: float = 1.0
    ) -> Evidence:
        """Evidence of ``signal`` citing this message."""
        return Evidence(dimension, signal, polarity, (self.turn.seq,), note, weight)


Rule: TypeAlias = Callable[[Turn], "Evidence | list[Evidence] | None"]


def quote(text: str, limit: int = 90) -> str:
    """``text`` on one line in curly quotes, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return f"\u201c{text if len(text) <= limit else text[: limit - 1] + '…'}\u201d"


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.?!;])\s+|\n+", text) if s.strip()]


def words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9']+", text))


def hedges(text: str) -> list[str]:
    """The fillers and hedges of ``text`` (the coding judge's vocabulary), lower-cased."""
    return [m.group(0).lower().rstrip(",") for m in cues.FILLER.finditer(text)]


def label_message(rules: Sequence[Rule], transcript: Transcript, seq: int) -> list[Evidence]:
    """Run ``rules`` over candidate message ``seq`` of ``transcript`` (judged on what was
    known at ``seq``); empty when ``seq`` is not a candidate message."""
    turn = transcript.utterance_at(seq)
    if turn is None or turn.role != "candidate":
        return []
    before = [u for u in transcript.utterances if u.seq < seq]
    context = Turn(
        turn=turn,
        earlier=tuple(u for u in before if u.role == "candidate"),
        interviewer=next((u for u in reversed(before) if u.role == "interviewer"), None),
    )
    out: list[Evidence] = []
    for rule in rules:
        found = rule(context)
        if isinstance(found, Evidence):
            out.append(found)
        elif found:
            out.extend(found)
    return out
