"""The phrases the offline behavioral judge listens for (:mod:`scoring.judges.behavioral`).

Plain data: compiled, case-insensitive regular expressions, one per behaviour, kept apart
from the rules so the wording can grow without touching them. Matching is on the
candidate's (or the interviewer's) words as typed.
"""

from __future__ import annotations

import re
from typing import Final


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# -- the story: who did what --------------------------------------------------------------

_NOT_ACTIONS: Final = (
    "wanted|needed|realised|realized|learned|learnt|noticed|thought|felt|liked|loved|hoped|"
    "used|seemed|guessed|supposed|assumed|remembered|believed|expected|wished|enjoyed|hated|"
    "mentioned"
)
_VERB: Final = (
    rf"(?!(?:{_NOT_ACTIONS})\b)"
    r"(\w+ed|took|made|ran|set|wrote|built|got|went|sat|met|led|put|gave|told|spoke|brought|"
    r"drew|cut|kept|began|chose|sent|split|dug|found|did|rewrote|paid|shipped|pulled|"
    r"pushed|broke|held|spent|stepped|laid|sought|taught|caught|threw|drove|bought|won)\b"
)
I_ACTION: Final = re.compile(
    r"\bI\s+(?:then\s+|also\s+|first\s+|quickly\s+|personally\s+|immediately\s+|just\s+)?" + _VERB
)
"""The candidate as the subject of an action verb ("I set up", "I then wrote")."""
I_SUBJECT: Final = re.compile(r"\bI\b(?!')")
CHAINED_ACTION: Final = re.compile(r"(?:,\s*(?:and\s+|then\s+)?|\band\s+(?:then\s+)?)" + _VERB)
"""A further action in a sentence whose subject is the candidate ("I set up X, measured Y")."""
WE: Final = _rx(r"\bwe\b")
PAST: Final = _rx(
    r"\b(?:was|were|had|did|took|kept|went|made|got|came|ran|said|told|began|found|led|left|"
    r"lost|met|put|sat|saw|spent|wrote|built|brought|chose|gave|grew|knew|\w{3,}ed)\b"
)
CONCRETE: Final = _rx(
    r"\blast (?:year|quarter|month|spring|summer|autumn|fall|winter|job)\b|\bin 20\d\d\b|"
    r"\b(?:at|on|in) my (?:previous|last|current|old|first) (?:job|company|team|role|employer|project)\b|"
    r"\bwhen I was (?:at|on|working|leading)\b|"
    r"\b(?:a few|a couple of|two|three|four|five|\d+) (?:months|years|weeks) ago\b|"
    r"\b\d+ (?:engineers|people|developers|weeks|months|customers|users|services)\b|"
    r"\bour (?:company|startup|product|service|app|platform|customers?|clients?)\b|"
    r"\bthe (?:launch|migration|release|rewrite|deadline|client|customer)\b"
)
STAKES: Final = _rx(
    r"\b(?:deadline|launch(?:ed|ing)?|customers?|clients?|revenue|the goal was|"
    r"was supposed to|at stake|at risk|contract|migration|release|on-?call|outage|incident|"
    r"(?:\d+|two|three|four|five|six|seven|eight) (?:engineers|people|developers|of us))\b"
)
ROLE: Final = _rx(
    r"\bI was (?:the|a|one of the) [\w -]{0,30}?(?:lead|owner|manager|responsible|in charge|"
    r"point person|engineer on|architect)\b|\bI (?:owned|led|ran|drove)\b|"
    r"\bmy (?:role|job|responsibility) was\b|\bI was responsible\b|"
    r"\bit was my (?:call|decision|project|responsibility)\b|"
    r"\bI took (?:ownership|charge|responsibility)\b"
)
HYPOTHETICAL: Final = _rx(
    r"\b(?:I would|I'?d|I usually|usually I|I generally|generally,? I|in general|typically|"
    r"I always|I tend to|what I do is|I try to|I like to)\b"
)
DIFFERENTLY_ASKED: Final = _rx(
    r"\b(?:differently|next time|go back|would you|what (?:did|have) you (?:learn|change))\b"
)

# -- actions and judgment ------------------------------------------------------------------

REASON: Final = _rx(
    r"\b(?:because|so that|the reason|my (?:thinking|reasoning) was|"
    r"I wanted to (?:make sure|avoid|get|understand|see|reduce|know|test|check)|"
    r"since (?:we|I|the|it|they)|to make sure|in order to|which meant|that way)\b"
)
DECIDED: Final = _rx(r"\bI (?:decided|chose|picked|suggested|proposed|recommended)\b")
ALTERNATIVES: Final = _rx(
    r"\b(?:I considered|we considered|the options were|(?:one|the other|another) option|"
    r"(?:two|three|both) options|"
    r"alternatively|instead of|rather than|we could have|trade-?offs?|weigh(?:ed|ing)|"
    r"the alternative)\b"
)
ASKED_ACTIONS: Final = _rx(
    r"\bwhat did you (?:personally |actually |specifically )?do\b|\bwhat (?:actions|steps)\b|"
    r"\bwhat did you do (?:next|once|about|then)\b"
)
GENERIC_ACTION: Final = _rx(
    r"\b(?:worked (?:really )?hard|handled it|took care of (?:it|things)|dealt with it|"
    r"did (?:my|our) best|sorted it out|figured it out|made it work|pushed through|"
    r"communicated(?: more| better)?|worked (?:it|things) out|just (?:got|did) it|"
    r"tried to help|stayed positive)\b"
)
POOR_JUDGMENT: Final = _rx(
    r"\b(?:without telling (?:anyone|my manager|them|him|her|the team)|"
    r"I ignored (?:the|their|his|her|it|them)|went around (?:him|her|them|my manager)|"
    r"didn'?t bother|I just merged|pushed (?:it )?straight to prod(?:uction)?|"
    r"I overr(?:o|i)de|I overruled)\b"
)

# -- impact and results --------------------------------------------------------------------

OUTCOME: Final = _rx(
    r"\b(?:in the end|ended up|as a result|eventually|turned out|"
    r"the (?:outcome|result) was|we (?:shipped|launched|delivered|hit|met|missed|cancell?ed|"
    r"canceled|finished)|it (?:shipped|launched|worked)|"
    r"(?:was|got) (?:shipped|launched|cancell?ed|canceled|shut down|rolled back|delayed)|"
    r"went live|finally)\b"
)
NUMBER_IMPACT: Final = _rx(
    r"\bfrom (?:about |around )?\d[\d.,]*\s*\w*\s*(?:%|percent)?\s*(?:\w+\s+){0,3}to \d|"
    r"\b\d[\d.]*\s?(?:%|percent)|"
    r"\b(?:cut|reduced|dropped|increased|saved|grew|halved|doubled|tripled|improved|"
    r"went down|went up|fell|rose|lowered|raised)\b[^.]{0,50}\d|"
    r"\b\d+(?:x| times) (?:faster|fewer|more|less|slower|cheaper)\b"
)
LINK: Final = _rx(
    r"\b(?:because of (?:that|this|the|those|my|our)|thanks to|"
    r"which (?:meant|led to|let us|let me|cut|reduced|brought|saved|helped)|"
    r"that (?:change|fix|process|spike|decision|plan|work) (?:meant|led|cut|reduced|brought|"
    r"saved|helped|let)|as a result of|so (?:we|the team) (?:could|were able to))\b"
)
ASKED_OUTCOME: Final = _rx(
    r"\bhow did (?:it|that|things) (?:turn out|end|go)\b|\bwhat happened\b|"
    r"\bwhat was the (?:outcome|result|impact)\b|\b(?:the|any) (?:result|impact|numbers?)\b"
)
NO_OUTCOME: Final = _rx(
    r"\b(?:I|we) (?:don'?t|didn'?t) (?:really )?know (?:how|what happened|if|whether)|"
    r"\bI left before\b|\bnever found out\b|\bnot sure (?:how|what) (?:it|happened)\b"
)
UNDUE_CREDIT: Final = _rx(
    r"\b(?:single-?handedly|all by myself|I saved the (?:project|team|company|day|launch)|"
    r"without me|nobody else (?:did|could|would)|it was all me|I carried)\b"
)

# -- collaboration -------------------------------------------------------------------------

SEEKS_VIEWS: Final = _rx(
    r"\bI asked (?:him|her|them|the team|my \w+|everyone)\b|\blistened\b|"
    r"\bI asked (?:the|our) \w+ (?:and (?:the|our) \w+ )?(?:for|what|why|how)\b|"
    r"\bto understand (?:his|her|their|the other)\b|"
    r"\b(?:his|her|their) (?:point of view|perspective|concerns?|reasons?|side)\b|"
    r"\bone-on-one\b|\b1:1\b|\bsat down with\b|\bI (?:got|asked for|gathered) (?:feedback|input)\b|"
    r"\bheard (?:him|her|them) out\b|\bwhere (?:he|she|they) (?:was|were) coming from\b"
)
RESOLVES: Final = _rx(
    r"\bwe (?:agreed|decided together|compromised|aligned|settled on|landed on|"
    r"found a middle ground|came to an agreement)\b|\bcompromise\b|\bmiddle ground\b|"
    r"\bdisagree and commit\b|\bagreed (?:to|on)\b|"
    r"\b(?:reached|came to) (?:a|an) (?:agreement|decision|consensus)\b|\bconsensus\b"
)
SUPPORTS: Final = _rx(
    r"\bI helped\b|\bI paired\b|\bpaired with\b|\bmentor(?:ed|ing)?\b|\bunblock(?:ed)?\b|"
    r"\bcovered for\b|\bgave (?:him|her|them) (?:the )?credit\b|\bI supported\b|"
    r"\bI offered to\b|\bhelped (?:him|her|them)\b"
)
BLAMES: Final = _rx(
    r"\b(?:his|her|their|the other team'?s|management'?s|the PM'?s) fault\b|"
    r"\bthey (?:messed|screwed) up\b|\bdropped the ball\b|\bincompetent\b|\blazy\b|"
    r"\bdidn'?t do (?:his|her|their) job\b|\bif (?:he|she|they) had (?:just )?(?:listened|done)\b|"
    r"\bblamed? (?:him|her|them|the)\b"
)
DISMISSES: Final = _rx(
    r"\b(?:he|she|they) (?:just |really )?(?:didn'?t|did not|doesn'?t) (?:really )?(?:get it|understand)\b|"
    r"\bI (?:ignored|overruled) (?:him|her|them|their)\b|"
    r"\bno point (?:in )?(?:talking|arguing|discussing)\b|\bpointless\b|"
    r"\b(?:he|she|they) (?:was|were) (?:just )?(?:being )?(?:difficult|stubborn|clueless)\b|"
    r"\bnot worth (?:it|arguing|discussing)\b|\bwhatever (?:he|she|they) (?:said|thought)\b"
)

# -- reflection ----------------------------------------------------------------------------

MISTAKE: Final = _rx(
    r"\bmy mistake\b|\bI should(?:n'?t)? have\b|\bI was wrong\b|\bI (?:under|over)estimated\b|"
    r"\bI misjudged\b|\bin hindsight\b|\blooking back,? I\b|"
    r"\bI (?:didn'?t|did not|failed to) (?:push|raise|flag|check|ask|escalate|notice|test|"
    r"communicate|involve|listen)\b|\bI made (?:a|the) (?:mistake|wrong call|error)\b|"
    r"\bmy (?:fault|part in it)\b"
)
LESSON: Final = _rx(
    r"\bI (?:learned|learnt)\b|\bthe lesson\b|\btaught me\b|\bwhat I took away\b|"
    r"\bmy takeaway\b|\bI (?:now )?reali[sz]ed\b|\blesson (?:I|was|for me)\b|\bit showed me\b"
)
GROWTH: Final = _rx(
    r"\b(?:since then|on my next (?:project|team)|on the next (?:project|one)|"
    r"now I (?:always|make sure|start|try|write|ask|set|run|book|share)|these days I|"
    r"I'?ve (?:started|since)|I have since|ever since|"
    r"I now (?:always|make sure|ask|start|write|run|set|book|share)|"
    r"in my current (?:role|team|job)|I started doing)\b"
)
NO_REFLECTION: Final = _rx(
    r"\bI (?:wouldn'?t|would not) (?:change|do) (?:anything|a thing)\b|"
    r"\bnothing (?:really )?(?:to|I'?d|I would) (?:change|do differently)\b|"
    r"\bI don'?t think I (?:did|made) (?:anything|any) (?:wrong|mistakes?)\b|"
    r"\bthere'?s nothing I (?:would|could) (?:have )?(?:change|done)\b|"
    r"\bI can'?t think of anything\b|\bI(?:'d| would) do (?:the same|it the same)\b"
)
DEFENSIVE: Final = _rx(
    r"\b(?:it|that) (?:wasn'?t|was not|isn'?t) (?:really )?my (?:fault|problem|call)\b|"
    r"\bnot my fault\b|\bnothing I could (?:have )?(?:do|done)\b|"
    r"\bI did (?:everything|my part) right\b|\bout of my (?:control|hands)\b|"
    r"\bI did what I was told\b"
)
