"""The offline behavioral judge: documented rules over the candidate's story.

Used when no Claude judge is configured. :func:`label_event` labels what one
``candidate.message`` shows, judged on what was known at it (the candidate's earlier
messages and the interviewer's last turn), citing that message's seq. The rules listen for
what a trained interviewer listens for in a STAR answer (situation, task, action, result,
then reflection): a specific situation and the candidate's own part in it ("I" over "we"),
concrete actions with reasons, a measured outcome, how the disagreement or the team was
handled, and what was learned and changed since. Phrases are in
:mod:`scoring.judges.behavior_cues`. Pure; no clock.

Rules per message (weights in brackets; "once" means the first message that shows it).
Rules that read the interviewer's question ("asked ...") skip the candidate's first
answer: the opening question asks for the whole story at once.

Situation and ownership
- ``gives_specific_example`` + (1.0, once): 30 words or more, three past-tense verbs and a
  concrete marker (a year, "at my previous company", "our team", "6 engineers", ...).
- ``sets_context`` + (0.75, once): two different stakes words (deadline, launch,
  customers, outage, "the goal was", a team size).
- ``takes_ownership`` +: a stated role ("I was the tech lead", "I owned", "my role was":
  1.0, once), or a story told in the first person: three or more "I <action>" and at least
  as many as "we" (0.5, once).
- ``hypothetical_answer`` -: two "I would / usually / in general" phrases and under two
  past-tense verbs, unless the interviewer asked what they would do differently.
- ``we_not_i`` - (0.75): 30 words or more, three "we" and no "I <action>", with no role
  stated so far (a strong "we" story whose teller said what they owned is not penalised).

Actions and judgment
- ``describes_concrete_actions`` +: three or more different "I <action>" (1.0), two (0.75);
  verbs chained after one count ("I set up a spike, measured ..."), generic ones do not.
- ``explains_reasoning`` + (0.75): a reason ("because", "so that", "to make sure") in a
  message with an action or decision of the candidate's.
- ``weighs_alternatives`` + (1.0): options named ("I considered", "instead of",
  "rather than", "trade-off"), except in answer to "what would you do differently".
- ``vague_actions`` -: generic actions ("handled it", "worked hard", "communicated") with
  under two "I <action>" (0.75), or none at all in answer to "what did you do" (1.0).
- ``poor_judgment`` - (0.75): "without telling anyone", "I ignored their", "went around
  my manager", ... unless the same message owns it as a mistake.

Impact and results
- ``states_outcome`` +: how it ended ("in the end", "we shipped", "it was cancelled"):
  1.0 with a number, else 0.75.
- ``quantifies_impact`` + (1.0): a measured change ("from 40 to 8 minutes", "30%",
  "cut ... by 2 hours", "3x faster").
- ``links_actions_to_results`` + (0.75): "thanks to", "which meant", "that change cut".
- ``no_outcome`` - (1.0): "I never found out" / "I left before", or an answer to "how did
  it turn out" with no outcome and no number.
- ``takes_undue_credit`` - (0.75): "single-handedly", "it was all me", "I saved the project".

Collaboration
- ``seeks_other_views`` + (1.0): "I asked them why", "sat down with", "their concerns".
- ``resolves_disagreement`` + (1.0): "we agreed", "compromise", "decided together".
- ``supports_teammates`` + (0.75): "I helped", "paired with", "mentored", "unblocked".
- ``blames_others`` - (1.0): "their fault", "dropped the ball", "lazy", "incompetent".
- ``dismisses_others`` - (0.75): "he just didn't get it", "pointless", "I ignored them".

Self-reflection
- ``acknowledges_mistakes`` + (1.0): "I should have", "I underestimated", "in hindsight".
- ``states_lesson_learned`` +: "I learned", "the lesson", "taught me": 1.0 in a message of
  25 words or more, else 0.5 (a one-line lesson is usually a generic one).
- ``shows_growth`` + (1.0): "since then", "on my next project", "now I always".
- ``no_reflection`` - (1.0): "I wouldn't change anything", "I can't think of anything".
- ``defensive`` - (1.0): "not my fault", "out of my control", "nothing I could have done".
"""

from __future__ import annotations

from typing import Final

from scoring.evidence import Evidence
from scoring.judges import behavior_cues as bc
from scoring.judges.conversation import Rule, Turn, label_message, quote, sentences, words
from scoring.question_bank import BehavioralQuestion, Question
from scoring.transcript import Transcript

__all__ = ["label_event", "label_transcript"]

SO = "situation_and_ownership"
AJ = "actions_and_judgment"
IR = "impact_and_results"
CO = "collaboration"
SR = "self_reflection"


def _actions(text: str) -> list[str]:
    """The candidate's own actions: "I <verb>", and the verbs chained after one in the same
    sentence ("I set up a spike, measured deploy times"); generic ones ("worked hard",
    "communicated") do not count."""
    found: set[str] = set()
    for sentence in sentences(bc.GENERIC_ACTION.sub(" ", text)):
        first = bc.I_ACTION.search(sentence)
        if first is None:
            continue
        found.update(m.group(1).lower() for m in bc.I_ACTION.finditer(sentence))
        found.update(m.group(1).lower() for m in bc.CHAINED_ACTION.finditer(sentence, first.end()))
    return sorted(found)


def _specific_example(c: Turn) -> Evidence | None:
    if words(c.text) < 30 or len(bc.PAST.findall(c.text)) < 3 or not bc.CONCRETE.search(c.text):
        return None
    if any(
        words(u.text) >= 30 and len(bc.PAST.findall(u.text)) >= 3 and bc.CONCRETE.search(u.text)
        for u in c.earlier
    ):
        return None
    return c.evidence(SO, "gives_specific_example", "positive", "told a real, specific story")


def _sets_context(c: Turn) -> Evidence | None:
    kinds = {m.group(0).lower() for m in bc.STAKES.finditer(c.text)}
    if len(kinds) < 2 or any(len(set(bc.STAKES.findall(u.text))) >= 2 for u in c.earlier):
        return None
    note = "set out the stakes: " + ", ".join(sorted(kinds)[:3])
    return c.evidence(SO, "sets_context", "positive", note, 0.75)


def _takes_ownership(c: Turn) -> Evidence | None:
    role = bc.ROLE.search(c.text)
    if role is not None:
        if c.said_before(bc.ROLE):
            return None
        note = f"stated their own role: {quote(role.group(0), 60)}"
        return c.evidence(SO, "takes_ownership", "positive", note)
    actions = len(_actions(c.text))
    if actions < 3 or actions < len(bc.WE.findall(c.text)):
        return None
    if any(len(_actions(u.text)) >= 3 for u in c.earlier):
        return None
    return c.evidence(SO, "takes_ownership", "positive", "told the story in the first person", 0.5)


def _hypothetical(c: Turn) -> Evidence | None:
    if bc.DIFFERENTLY_ASKED.search(c.asked):
        return None
    if len(bc.HYPOTHETICAL.findall(c.text)) < 2 or len(bc.PAST.findall(c.text)) >= 2:
        return None
    note = "answered with what they would do, not what they did"
    return c.evidence(SO, "hypothetical_answer", "negative", note)


def _we_not_i(c: Turn) -> Evidence | None:
    if words(c.text) < 30 or len(bc.WE.findall(c.text)) < 3 or bc.I_ACTION.search(c.text):
        return None
    if bc.ROLE.search(c.text) or c.said_before(bc.ROLE):
        return None
    note = "told what the team did, not their own part"
    return c.evidence(SO, "we_not_i", "negative", note, 0.75)


def _concrete_actions(c: Turn) -> Evidence | None:
    actions = _actions(c.text)
    if len(actions) < 2:
        return None
    weight = 1.0 if len(actions) >= 3 else 0.75
    note = "described their own actions: " + ", ".join(actions[:4])
    return c.evidence(AJ, "describes_concrete_actions", "positive", note, weight)


def _reasoning(c: Turn) -> Evidence | None:
    reason = bc.REASON.search(c.text)
    if reason is None or not (bc.I_ACTION.search(c.text) or bc.DECIDED.search(c.text)):
        return None
    note = f"explained why they acted ({quote(reason.group(0), 60)})"
    return c.evidence(AJ, "explains_reasoning", "positive", note, 0.75)


def _alternatives(c: Turn) -> Evidence | None:
    found = bc.ALTERNATIVES.search(c.text)
    if found is None or bc.DIFFERENTLY_ASKED.search(c.asked):
        return None  # options for next time are reflection, not the story's judgment
    note = f"weighed alternatives ({quote(found.group(0), 60)})"
    return c.evidence(AJ, "weighs_alternatives", "positive", note)


def _vague_actions(c: Turn) -> Evidence | None:
    actions = len(_actions(c.text))
    generic = bc.GENERIC_ACTION.search(c.text)
    if generic is not None and actions < 2:
        note = f"described actions only in general terms: {quote(generic.group(0), 60)}"
        return c.evidence(AJ, "vague_actions", "negative", note, 0.75)
    if bc.ASKED_ACTIONS.search(c.asked) and actions == 0 and not bc.DECIDED.search(c.text):
        return c.evidence(AJ, "vague_actions", "negative", "could not say what they did")
    return None


def _poor_judgment(c: Turn) -> Evidence | None:
    found = bc.POOR_JUDGMENT.search(c.text)
    if found is None or bc.MISTAKE.search(c.text):
        return None
    note = f"described a questionable call without owning it: {quote(found.group(0), 60)}"
    return c.evidence(AJ, "poor_judgment", "negative", note, 0.75)


def _outcome(c: Turn) -> Evidence | None:
    found = bc.OUTCOME.search(c.text)
    if found is None:
        return None
    weight = 1.0 if bc.NUMBER_IMPACT.search(c.text) else 0.75
    return c.evidence(IR, "states_outcome", "positive", "said how it ended", weight)


def _quantifies(c: Turn) -> Evidence | None:
    found = bc.NUMBER_IMPACT.search(c.text)
    if found is None:
        return None
    return c.evidence(
        IR, "quantifies_impact", "positive", f"measured the impact: {quote(found.group(0), 60)}"
    )


def _links(c: Turn) -> Evidence | None:
    if bc.LINK.search(c.text) is None:
        return None
    note = "tied the result to what was done"
    return c.evidence(IR, "links_actions_to_results", "positive", note, 0.75)


def _no_outcome(c: Turn) -> Evidence | None:
    if bc.NO_OUTCOME.search(c.text):
        return c.evidence(IR, "no_outcome", "negative", "did not know how the story ended")
    if not bc.ASKED_OUTCOME.search(c.asked):
        return None
    if bc.OUTCOME.search(c.text) or bc.NUMBER_IMPACT.search(c.text) or bc.LINK.search(c.text):
        return None
    return c.evidence(IR, "no_outcome", "negative", "asked how it turned out, gave no outcome")


def _undue_credit(c: Turn) -> Evidence | None:
    found = bc.UNDUE_CREDIT.search(c.text)
    if found is None:
        return None
    note = f"claimed the result alone: {quote(found.group(0), 60)}"
    return c.evidence(IR, "takes_undue_credit", "negative", note, 0.75)


def _seeks_views(c: Turn) -> Evidence | None:
    if bc.SEEKS_VIEWS.search(c.text) is None:
        return None
    return c.evidence(CO, "seeks_other_views", "positive", "sought out the other side's view")


def _resolves(c: Turn) -> Evidence | None:
    if bc.RESOLVES.search(c.text) is None:
        return None
    return c.evidence(CO, "resolves_disagreement", "positive", "reached an agreement together")


def _supports(c: Turn) -> Evidence | None:
    if bc.SUPPORTS.search(c.text) is None:
        return None
    return c.evidence(CO, "supports_teammates", "positive", "helped teammates succeed", 0.75)


def _blames(c: Turn) -> Evidence | None:
    found = bc.BLAMES.search(c.text)
    if found is None:
        return None
    return c.evidence(
        CO, "blames_others", "negative", f"blamed others: {quote(found.group(0), 60)}"
    )


def _dismisses(c: Turn) -> Evidence | None:
    found = bc.DISMISSES.search(c.text)
    if found is None:
        return None
    note = f"dismissed a colleague's view: {quote(found.group(0), 60)}"
    return c.evidence(CO, "dismisses_others", "negative", note, 0.75)


def _mistakes(c: Turn) -> Evidence | None:
    found = bc.MISTAKE.search(c.text)
    if found is None:
        return None
    note = f"owned a mistake: {quote(found.group(0), 60)}"
    return c.evidence(SR, "acknowledges_mistakes", "positive", note)


def _lesson(c: Turn) -> Evidence | None:
    if bc.LESSON.search(c.text) is None:
        return None
    weight = 1.0 if words(c.text) >= 25 else 0.5
    return c.evidence(SR, "states_lesson_learned", "positive", "drew a lesson from it", weight)


def _growth(c: Turn) -> Evidence | None:
    found = bc.GROWTH.search(c.text)
    if found is None:
        return None
    note = f"showed how they changed since: {quote(found.group(0), 60)}"
    return c.evidence(SR, "shows_growth", "positive", note)


def _no_reflection(c: Turn) -> Evidence | None:
    found = bc.NO_REFLECTION.search(c.text)
    if found is None:
        return None
    return c.evidence(
        SR, "no_reflection", "negative", f"saw nothing to change: {quote(c.text, 60)}"
    )


def _defensive(c: Turn) -> Evidence | None:
    found = bc.DEFENSIVE.search(c.text)
    if found is None:
        return None
    note = f"deflected responsibility: {quote(found.group(0), 60)}"
    return c.evidence(SR, "defensive", "negative", note)


RULES: Final[tuple[Rule, ...]] = (
    _specific_example,
    _sets_context,
    _takes_ownership,
    _hypothetical,
    _we_not_i,
    _concrete_actions,
    _reasoning,
    _alternatives,
    _vague_actions,
    _poor_judgment,
    _outcome,
    _quantifies,
    _links,
    _no_outcome,
    _undue_credit,
    _seeks_views,
    _resolves,
    _supports,
    _blames,
    _dismisses,
    _mistakes,
    _lesson,
    _growth,
    _no_reflection,
    _defensive,
)


def label_event(question: Question, transcript: Transcript, seq: int) -> list[Evidence]:
    """The evidence candidate message ``seq`` shows, judged on what was known at ``seq``;
    empty for any other seq and for questions of other tracks. Pure and deterministic."""
    if not isinstance(question, BehavioralQuestion):
        return []
    return label_message(RULES, transcript.upto(seq), seq)


def label_transcript(question: Question, transcript: Transcript) -> list[Evidence]:
    """:func:`label_event` for every candidate message of ``transcript``, in seq order."""
    out: list[Evidence] = []
    for turn in transcript.candidate_turns:
        out.extend(label_event(question, transcript, turn.seq))
    return out
