"""Reading big-O statements out of what a candidate says, and comparing them.

A complexity is reduced to a :class:`Cost`, ordered the way growth rates are: exponential
beats any polynomial, then the polynomial degree (each input-size variable counts once, so
``O(n * k)``, ``O(amount * len(coins))`` and ``O(n^2)`` all have degree 2), then the number
of log factors. That is coarse on purpose: the judge only needs "the same as the optimal
complexity", "worse" or "better than possible", and a candidate's ``O(n*k)`` must compare
equal to the question's ``O(amount * len(coins))``.

:func:`stated_complexities` finds every ``O(...)`` (and the plain-words forms: "linear",
"quadratic", "n log n", "constant time", "logarithmic", "exponential") in a text and decides
whether each is about time or space from the words around it. A statement right after a
negation ("can't be O(n)", "not O(1)") is left out: it is not a claim. Pure functions.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = ["Cost", "Stated", "optimal_time_cost", "parse_cost", "stated_complexities"]

Kind: TypeAlias = Literal["time", "space"]


@dataclass(frozen=True, slots=True, order=True)
class Cost:
    """A growth rate: ``exponential`` (0 or 1), polynomial ``degree``, ``logs`` log factors."""

    exponential: int
    degree: int
    logs: int

    def __str__(self) -> str:
        if self.exponential:
            return "exponential"
        parts = []
        if self.degree == 1:
            parts.append("n")
        elif self.degree > 1:
            parts.append(f"n^{self.degree}")
        parts.extend(["log n"] * self.logs)
        return f"O({' '.join(parts) or '1'})"


@dataclass(frozen=True, slots=True)
class Stated:
    """One complexity statement: the text as written, its cost, and time or space."""

    text: str
    cost: Cost
    kind: Kind


_STOPWORDS: Final = frozenset(
    {
        "times", "of", "the", "number", "size", "length", "len", "by", "and", "per",
        "operation", "operations", "time", "space", "total", "each", "in", "with", "for",
        "a", "an", "is", "to", "where", "words", "word", "call", "calls", "plus", "min",
        "max", "sqrt",
    }
)  # fmt: skip
_PACKED_VARIABLES: Final = frozenset("nmkvecrl")
_NEGATION: Final = re.compile(
    r"(?:\bnot|n't|\bnever|\bno way|\bbetter than|\bfaster than|\binstead of)\W*(?:\w+\W+){0,2}$"
)
_NAMED: Final[tuple[tuple[re.Pattern[str], Cost], ...]] = (
    (re.compile(r"\bn\s*-?\s*log\s*-?\s*n\b|\bnlogn\b|\blog[- ]?linear\b"), Cost(0, 1, 1)),
    (re.compile(r"\blinear(?:ly)?\b"), Cost(0, 1, 0)),
    (re.compile(r"\bquadratic\b|\bn\s+squared\b"), Cost(0, 2, 0)),
    (re.compile(r"\bcubic\b"), Cost(0, 3, 0)),
    (re.compile(r"\bconstant(?:\s+(?:time|space|extra space|memory))\b"), Cost(0, 0, 0)),
    (re.compile(r"\blogarithmic\b"), Cost(0, 0, 1)),
    (re.compile(r"\bexponential\b"), Cost(1, 0, 0)),
)


def parse_cost(inner: str) -> Cost | None:
    """The cost of the text inside ``O( )`` (``"n log n"``, ``"amount * len(coins)"``), or
    None when it names nothing recognisable."""
    text = inner.lower().replace("²", "^2").replace("³", "^3").replace("·", "*")
    if re.search(r"(?:\d|[a-z)])\s*(?:\^|\*\*)\s*[a-z(]|!|\bexp", text):
        return Cost(1, 0, 0)
    best: Cost | None = None
    for term in _top_level_split(text, "+"):
        cost = _term_cost(term)
        if cost is not None and (best is None or cost > best):
            best = cost
    return best


def _top_level_split(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _term_cost(term: str) -> Cost | None:
    logs = len(re.findall(r"\blog", term))
    term = re.sub(r"\blog\w*\s*(?:\([^)]*\)|[a-z_]\w*)?", " ", term)
    term = re.sub(r"\b(?:len|min|max)\s*\(([^,)]*)[^)]*\)", r" \1 ", term)
    degree = 0
    found = logs > 0
    for match in re.finditer(r"([a-z_][a-z_0-9]*)(?:\s*(?:\^|\*\*)\s*(\d+))?|\b(\d+)\b", term):
        name, power, number = match.group(1), match.group(2), match.group(3)
        if number is not None:
            found = True
            continue
        if name in ("squared", "cubed"):
            degree += 1 if name == "squared" else 2
            continue
        if name in _STOPWORDS:
            continue
        found = True
        weight = int(power) if power else 1
        if 2 <= len(name) <= 3 and set(name) <= _PACKED_VARIABLES and len(set(name)) == len(name):
            weight *= len(name)  # "nm", "nk": a product of single-letter sizes
        degree += weight
    return Cost(0, degree, logs) if found else None


def _closing_paren(text: str, start: int) -> int | None:
    depth = 0
    for index in range(start, min(len(text), start + 80)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


_OPERATION_AFTER: Final = re.compile(
    r"\W*(?:lookups?|look-?ups?|access(?:es)?|inserts?|insertions?|deletes?|deletions?|checks?"
    r"|pushe?s?|pops?|appends?|membership)\b"
)
_OPERATION_BEFORE: Final = re.compile(
    r"(?:lookups?|look-?ups?|access(?:es)?|inserts?|insertions?|deletes?|deletions?|checks?"
    r"|push(?:es)?|pops?|appends?|membership)\s+(?:is|are|takes?|costs?|in|each)\W*$"
)


def _kind(text: str, start: int, end: int) -> Kind:
    written = text[start:end]
    if re.search(r"space|memory", written):
        return "space"
    if re.search(r"time", written):
        return "time"
    after = text[end : end + 14]
    if re.match(r"[\s,:-]*(?:extra |additional |auxiliary )?(?:space|memory)", after):
        return "space"
    if re.match(r"[\s,:-]*(?:time|runtime)", after):
        return "time"
    before = text[max(0, start - 40) : start]
    keywords = list(re.finditer(r"space|memory|time|runtime|runs? in", before))
    if keywords and keywords[-1].group(0) in ("space", "memory"):
        return "space"
    return "time"


def _not_a_claim(text: str, start: int, end: int) -> bool:
    """A negated mention ("can't be O(n)") or the cost of one operation ("O(1) lookups"),
    not the cost of the candidate's algorithm."""
    before = text[max(0, start - 30) : start]
    return bool(
        _NEGATION.search(before)
        or _OPERATION_BEFORE.search(before)
        or _OPERATION_AFTER.match(text[end : end + 20])
    )


def stated_complexities(text: str) -> list[Stated]:
    """Every complexity claimed in ``text``, in order: negated mentions and costs of single
    operations ("O(1) lookups") are left out."""
    lowered = text.lower()
    found: list[tuple[int, Stated]] = []
    taken: list[tuple[int, int]] = []
    for match in re.finditer(r"\b[oθ]\s*\(", lowered):
        close = _closing_paren(lowered, match.end() - 1)
        if close is None:
            continue
        cost = parse_cost(lowered[match.end() : close])
        if cost is None or _not_a_claim(lowered, match.start(), close + 1):
            continue
        written = text[match.start() : close + 1]
        found.append(
            (match.start(), Stated(written, cost, _kind(lowered, match.start(), close + 1)))
        )
        taken.append((match.start(), close + 1))
    for pattern, cost in _NAMED:
        for match in pattern.finditer(lowered):
            if any(a <= match.start() < b for a, b in taken):
                continue
            if _not_a_claim(lowered, match.start(), match.end()):
                continue
            stated = Stated(match.group(0), cost, _kind(lowered, match.start(), match.end()))
            found.append((match.start(), stated))
            taken.append((match.start(), match.end()))
    return [stated for _, stated in sorted(found, key=lambda item: item[0])]


@functools.lru_cache(maxsize=256)
def optimal_time_cost(optimal_complexity: str) -> Cost | None:
    """The time cost a question's ``optimal_complexity`` text states first, if any."""
    for stated in stated_complexities(optimal_complexity):
        if stated.kind == "time":
            return stated.cost
    return None
