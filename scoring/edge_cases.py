"""The kinds of edge case the question bank tags its hidden tests with, and how the
interviewer asks about each without revealing an input.

Every hidden test of a coding question carries one or more tags (``tags = ["empty"]``),
checked at load time by :mod:`scoring.question_bank`. ``general`` marks an ordinary case:
its failure says nothing about one kind of input, so it is never probed. Each other
category has a :data:`PROBES` question, written to name the kind of case only (no values,
no test names), and :data:`CUES`, the words by which a candidate's answer shows they engage
with that kind of case. Pure data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["CATEGORIES", "CUES", "GENERAL", "LABELS", "PROBED_CATEGORIES", "PROBES"]

GENERAL: Final = "general"

PROBES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "empty": "Before we go on: what does your function do when the input is empty?",
        "single": "What happens with the smallest inputs, say a single element?",
        "duplicates": "How does your code handle repeated or equal values?",
        "negative": "Would your code still be right with negative numbers or zeros?",
        "large": "What about very large values or very long inputs: could anything overflow "
        "or get slow?",
        "boundaries": "Walk me through the cases right at the edges: the first and last "
        "positions, or ranges that just touch.",
        "order": "Does your code depend on the order of the input? What if it came unsorted "
        "or reversed?",
        "impossible": "What should happen when there is no answer at all, and what does your "
        "code do then?",
    }
)
"""The probe for each category, in the order they are preferred when several fail."""

LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "empty": "empty input",
        "single": "the smallest inputs",
        "duplicates": "repeated values",
        "negative": "negatives and zeros",
        "large": "very large inputs",
        "boundaries": "the edges of the input",
        "order": "the input's order",
        "impossible": "inputs with no answer",
    }
)
"""How evidence notes name each category (never an input)."""

PROBED_CATEGORIES: Final[tuple[str, ...]] = tuple(PROBES)
CATEGORIES: Final[frozenset[str]] = frozenset({*PROBES, GENERAL})
"""Every tag a test may carry."""

CUES: Final[Mapping[str, re.Pattern[str]]] = MappingProxyType(
    {
        "empty": re.compile(
            r"\b(empty|no (elements?|items?|words?|input)|nothing|len\(\w+\) == 0|not \w+:)", re.I
        ),
        "single": re.compile(
            r"\b(single|one (element|item|value)|only one|length (of )?one|1 element)", re.I
        ),
        "duplicates": re.compile(
            r"\b(duplicates?|repeat(ed|s)?|same (value|key|number)|equal)", re.I
        ),
        "negative": re.compile(r"\b(negatives?|zeros?|below zero|minus)\b", re.I),
        "large": re.compile(
            r"\b(large|huge|overflow|big|long (input|string|list)|performance|time ?out)", re.I
        ),
        "boundaries": re.compile(
            r"\b(edges?|first|last|ends?|boundar(y|ies)|touch(es|ing)?|off[- ]by[- ]one|inclusive)",
            re.I,
        ),
        "order": re.compile(r"\b(order|sort(ed|ing)?|unsorted|revers(ed|e)|shuffled)", re.I),
        "impossible": re.compile(
            r"\b(no (answer|solution|path|way)|impossible|not found|unreachable|-1|none|missing)",
            re.I,
        ),
    }
)
"""Words that show an answer is about that kind of case."""
