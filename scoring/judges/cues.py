"""The cue vocabularies of the offline judges: the phrases that signal each behaviour.

Plain data (compiled, case-insensitive regular expressions) kept apart from the rules that
use them (:mod:`scoring.judges.heuristic`, :mod:`scoring.judges.code`), so the wording
can grow without touching the rules. Each pattern lists its phrases literally; matching is
on the candidate's (or the interviewer's) words as typed.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "ACKNOWLEDGE",
    "BRUTE_AWARE",
    "CLARIFY_OPENER",
    "CLARIFY_TOPIC",
    "COMPARE",
    "COMPLACENT",
    "CONFIRMATION",
    "CONSTRAINT",
    "DISMISS",
    "DONE",
    "EDGE_KINDS",
    "EMPTY_CHECK",
    "EXAMPLE",
    "FILLER",
    "LIST_LITERAL",
    "NOT_TESTED",
    "NUDGE",
    "PLAN",
    "REASONING",
    "RESTATE",
    "STUCK",
    "TECHNIQUE",
    "TESTS",
    "TRACE",
    "VARIANT",
    "is_nudge",
]


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


CLARIFY_TOPIC = _rx(
    r"\b(input|inputs|array|list|string|empty|null|none|negative|duplicates?|sorted|unique|"
    r"distinct|size|length|range|assume|constraints?|valid|return|output|overflow|zero|"
    r"integers?|characters?|order|ties?|multiple|always|guaranteed|possible|case|unicode|"
    r"spaces?|fit|memory|mutate|modify|in place|touch|overlap|same)\b"
)
CLARIFY_OPENER = _rx(
    r"^\s*(can|could|will|would|should|is|are|do|does|may|might|what|how|and|or|so|also|"
    r"just|if)\b|\b(can i assume|should i assume|what should|what if|what happens|"
    r"do we|do i|is it|are there|is there)\b"
)
CONFIRMATION = _rx(r",\s*(?:right|correct|is that right|is that correct)\?$")
VARIANT = _rx(
    r"\bhow (?:would|could|might) you\b|\bif (?:the|we|you|it|they)\b[^.?]*\b(?:were|was|could|had)\b|"
    r"\bwhat would you (?:do|change)\b|\bsuppose\b|\binstead of\b"
)
RESTATE = _rx(
    r"\bso (basically |essentially )?(we|i)('| a)?(ll| will)? ?(need|have|want|got) to\b|"
    r"\bif i understand( this| it)?( correctly)?\b|\blet me (make sure|restate|rephrase)\b|"
    r"\bin other words\b|\bso the (task|problem|goal|idea) is\b|\bjust to confirm\b|"
    r"\bto (make sure|check) i understand\b|\bso (given|for) (an?|the) "
)
EXAMPLE = _rx(
    r"\b(for example|for instance|e\.g\.|let'?s say|say we have|walk(ing)? through|"
    r"take the (first |second |third )?example|in the (first |second |third )?example|"
    r"with the example)\b"
)
LIST_LITERAL = re.compile(r"\[\s*-?\d+(?:\s*,\s*-?\d+)+\s*\]|[\"'][\[\](){}]{2,}[\"']")
CONSTRAINT = _rx(
    r"10\s*\^\s*\d|10\*\*\d|\bconstraints?\b|\binput size\b|\bup to (?:a )?(?:10|thousand|million)|"
    r"\bn is (?:up to|at most|small|large|bounded)|\bbounded by\b|\bmillion\b|\bbillion\b"
)
TECHNIQUE = _rx(
    r"\b(hash ?maps?|hash ?sets?|hash ?tables?|dictionar(?:y|ies)|dicts?|sets?|stacks?|queues?|"
    r"deques?|heaps?|priority queues?|two pointers?|sliding window|window|binary search|"
    r"sort(?:ed|ing|s)?(?! of\b)|dynamic programming|dp|memoi[sz]\w*|recursi\w*|bfs|dfs|"
    r"breadth[- ]first|depth[- ]first|greedy|iterat\w*|loops?|pointers?|prefix|bottom[- ]up|"
    r"top[- ]down|table|complement|lookups?|look (?:it )?up|push\w*|pop\w*|merge\w*|"
    r"array of size|left edge|right edge|indices|index)\b"
)
PLAN = _rx(
    r"\b(i'?d|i would|i will|i'?ll|we can|we could|i can|i could|the idea|my approach|my plan|"
    r"first,?|then|finally|i'm going to|we'?ll|let me)\b"
)
BRUTE_AWARE = _rx(
    r"\b(brute[- ]?force|naive(?:ly)?|simplest|straightforward|we can do better|"
    r"could do better|can do better|not optimal|not the best|improve|optimi[sz]e|"
    r"first (?:idea|approach|thought)|to start with|as a baseline|too slow)\b"
)
COMPLACENT = _rx(
    r"\b(good enough|that'?s fine|should be fine|is fine|that'?s optimal|it'?s optimal|"
    r"is optimal|can'?t do better|cannot do better|best we can|fast enough)\b"
)
COMPARE = _rx(
    r"\b(alternatively|another (?:approach|option|way|idea)|trade-?offs?|on the other hand|"
    r"instead of|compared to|versus|vs\.?|the other (?:approach|option)|either|"
    r"(?:i|we) could also)\b"
)
STUCK = _rx(
    r"\b(i'?m stuck|i am stuck|kind of stuck|no idea|don'?t know how|not sure how to "
    r"(?:start|approach|proceed|do|fix)|can i (?:get|have) a hint|could you give me a hint|"
    r"any hints?|a hint\b|i give up|i'?m lost|i'?m blanking|drawing a blank)"
)
EDGE_KINDS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("empty input", _rx(r"\bempty\b|\bno elements\b|\blength (?:of )?zero\b")),
    (
        "a single element",
        _rx(
            r"\b(?:single|only one) (?:element|item|character|char|number|day|interval|coin)|"
            r"\bone element\b|\blength (?:of )?one\b"
        ),
    ),
    (
        "duplicates",
        _rx(
            r"\bduplicates?\b|\brepeated (?:values|numbers|elements)|\bsame (?:value|number)s?\b|"
            r"\ball (?:the )?same\b|\ball equal\b|\bequal (?:values|temperatures|numbers)"
        ),
    ),
    ("negative numbers", _rx(r"\bnegatives?\b")),
    ("zero", _rx(r"\bzero\b|\bzeros\b|\bzeroes\b")),
    (
        "overflow or large values",
        _rx(
            r"\boverflow\b|\blarge (?:values|numbers|inputs?|amounts?)\b|"
            r"\bvery (?:long|large|big)\b"
        ),
    ),
    (
        "no valid answer",
        _rx(
            r"\bno (?:solution|answer|valid|match|combination)|\bimpossible\b|\bnot possible\b|"
            r"\bcan'?t be made\b|\bunreachable\b|\breturns? -1\b"
        ),
    ),
    (
        "boundary cases",
        _rx(
            r"\bedge cases?\b|\bcorner cases?\b|\bboundar(?:y|ies)\b|\btouching\b|\bunsorted\b|"
            r"\bnested (?:brackets?|intervals?|parenthes[ie]s|ones|inside|within)\b|"
            r"\bcontained\b|\binside (?:another|a larger|the other)\b|"
            r"\bstarts? with a closing\b|\bleftover\b|\bunmatched\b"
        ),
    ),
)
EMPTY_CHECK = re.compile(
    r"if\s+not\s+\w+\s*:|len\(\s*\w+\s*\)\s*(?:==|<)\s*[01]\b|==\s*(?:\"\"|''|\[\])|"
    r"if\s+\w+\s*==\s*0\s*:|return\s+not\s+\w+"
)
TRACE = _rx(
    r"\b(trac(?:e|ing)|walk(?:ing)? through|dry[- ]run|step(?:ping)? through|run(?:ning)? through|"
    r"go(?:ing)? through (?:it|this|the code|my code)|first iteration|second iteration|"
    r"next iteration|[ijk] ?= ?\d|at index \d|left ?= ?\d|right ?= ?\d|"
    r"(?:becomes|moves to|is now) -?\d)"
)
TESTS = _rx(
    r"\b(test cases?|let me test|"
    r"(?:i'?d|i would|i'?ll|we should|i should|i want to) (?:also )?test|"
    r"to test|tests? (?:i'?d|i would|to) (?:add|write|run)|add (?:a |some )?tests?|"
    r"write (?:a |some )?tests?|assert\w*|test (?:it |this )?(?:with|on|against)|"
    r"cases i'?d (?:test|check|try)|run (?:it|the code) (?:on|with)|"
    r"check (?:it|this) (?:on|with|against))\b"
)
NOT_TESTED = _rx(
    r"\b(?:didn'?t|did not|haven'?t|have not|won'?t|not|no|never)\s+(?:really\s+)?test"
)
DONE = _rx(
    r"\b(i'?m done|i am done|i think (?:that'?s|this is|it'?s) (?:it|done|correct|right|good)|"
    r"that should (?:work|be it|be correct|do it)|this should work|it should work|"
    r"looks good to me|i'?m finished|that'?s my (?:solution|answer)|done\.?\s*$)"
)
REASONING = _rx(
    r"\b(because|since|so that|which means|that way|the idea is|so|first|then|otherwise|"
    r"that'?s why|this means|therefore)\b"
)
FILLER = _rx(
    r"\b(?:u+m+|u+h+|hm+|erm|i guess|kind of|sort of|i'?m not (?:really |totally )?sure|"
    r"i don'?t (?:really )?(?:know|remember)|or something|whatever|i think maybe|probably|"
    r"dunno)\b|\blike,"
)
NUDGE = _rx(
    r"\b(what if|have you considered|how about|think about|could you use|is there a way|"
    r"what data structure|can you do better|could you do better|hint|consider|what would happen|"
    r"which data structure|is there any|do you need to|what happens|what about|look at)\b"
)
ACKNOWLEDGE = _rx(
    r"^\W*(oh|ah|aha|right|good point|yes|yeah|yep|that makes sense|okay so|ok so|i see|"
    r"true|of course|got it|makes sense)\b"
)
DISMISS = _rx(
    r"\b(i'?d rather|i'?ll stick with|i will stick with|doesn'?t matter|not needed|"
    r"no need|i don'?t think (?:that'?s|we need|it matters|it'?s necessary)|it'?s fine as is|"
    r"(?:it )?should be fine|i think (?:it'?s|that'?s) fine)\b"
)


def is_nudge(text: str) -> bool:
    """Whether an interviewer's turn nudges the candidate (a hint or a leading question)."""
    return bool(NUDGE.search(text))
