"""What the offline coding judge reads in a candidate's words and code: plain text signals.

Pure functions over one message's text (or one snapshot's source), no context: the
questions it asks, whether it describes an approach, the edge cases and time complexities it
names, whether it hedges, whether a snapshot holds real code. The rules of
:mod:`scoring.judges.coding_rules` combine them with what was known at the message.
"""

from __future__ import annotations

import functools
import re

from scoring.judges import cues
from scoring.judges.complexity import Cost, stated_complexities

__all__ = [
    "clarifying_questions",
    "describes_approach",
    "edge_kinds",
    "has_example",
    "hedged",
    "is_real_code",
    "quote",
    "sentences",
    "shows_planning",
    "tested_in_words",
    "time_claims",
    "word_count",
]


def quote(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return f"\u201c{text if len(text) <= limit else text[: limit - 1] + '…'}\u201d"


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.?!:])\s+|\n+", text) if s.strip()]


def word_count(text: str) -> int:
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


def clarifying_questions(text: str) -> list[str]:
    return [
        s
        for s in sentences(text)
        if s.endswith("?")
        and (
            (cues.CLARIFY_TOPIC.search(s) and cues.CLARIFY_OPENER.search(s))
            or cues.CONFIRMATION.search(s)
        )
    ]


def describes_approach(text: str) -> bool:
    techniques = {m.group(0).lower() for m in cues.TECHNIQUE.finditer(text)}
    return len(techniques) >= 2 and word_count(text) >= 15 and bool(cues.PLAN.search(text))


def edge_kinds(text: str) -> list[str]:
    return [name for name, pattern in cues.EDGE_KINDS if pattern.search(text)]


@functools.lru_cache(maxsize=4096)
def time_claims(text: str) -> tuple[Cost, ...]:
    """The time complexities ``text`` states. Cached: each rule reads the candidate's earlier
    messages again for every new one, so without it a session's parsing grows as n²."""
    return tuple(s.cost for s in stated_complexities(text) if s.kind == "time")


def shows_planning(text: str) -> bool:
    return bool(clarifying_questions(text) or cues.RESTATE.search(text) or describes_approach(text))


@functools.lru_cache(maxsize=4096)
def tested_in_words(text: str) -> bool:
    return bool(
        (cues.TESTS.search(text) and not cues.NOT_TESTED.search(text)) or cues.TRACE.search(text)
    )


def has_example(text: str) -> bool:
    return bool(
        (cues.EXAMPLE.search(text) and re.search(r"\d|\[|\(", text))
        or cues.LIST_LITERAL.search(text)
    )


def hedged(text: str) -> bool:
    """Three or more fillers and hedges, or two in a message of under 60 words."""
    fillers = len(cues.FILLER.findall(text))
    return fillers >= 3 or (fillers == 2 and word_count(text) < 60)
