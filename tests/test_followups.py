"""Follow-ups chosen from the evidence (pure): the probe targets the dimension with the
least evidence and never asks for what the candidate has already said."""

from __future__ import annotations

import pytest

from scoring.followups import PROBES, evidence_of, next_probe, plan_followup
from scoring.question_bank import load_question_bank
from scoring.transcript import Role

pytestmark = pytest.mark.timeout(30)

BANK = load_question_bank()
ROLE_PROBE = next(p for p in PROBES["behavioral"] if "takes_ownership" in p.shown_by)

ANSWERS = (
    "I was the tech lead on our deploy pipeline rewrite last year, and releases kept "
    "slipping past the deadline because deploys took 40 minutes.",
    "I set up a one-week spike, measured deploy times, and we decided together to cache "
    "the build layers.",
    "Deploys went from 40 to 8 minutes, and we shipped daily after that.",
    "I should have raised it months earlier; I learned to measure first.",
)


def test_a_stated_role_is_never_asked_for_again() -> None:
    question = BANK.get("failed-project")
    turns: list[tuple[Role, str]] = [("interviewer", "Tell me about a project that failed.")]
    asked: list[str] = []
    for answer in ANSWERS:
        turns.append(("candidate", answer))
        probe = plan_followup(question, turns)
        assert probe is not None and probe is not ROLE_PROBE
        assert probe.text not in asked
        asked.append(probe.text)
        turns.append(("interviewer", f"Thanks. {probe.text}"))
    # Without the role stated, the first probe is the role: ownership has no evidence yet
    # and comes first in the rubric among the empty dimensions.
    vague: list[tuple[Role, str]] = [
        ("interviewer", "Tell me."),
        ("candidate", "We had a project that went badly."),
    ]
    assert plan_followup(question, vague) is ROLE_PROBE


def test_the_probe_targets_the_dimension_with_the_least_evidence() -> None:
    question = BANK.get("notification-service")
    turns: list[tuple[Role, str]] = [
        ("candidate", "Which channels do we need? I'll assume at-least-once delivery."),
        ("candidate", "20 million a day is about 230 per second, so 2,300 per second at peak."),
    ]
    book = evidence_of(question, turns)
    probe = next_probe(book)
    assert probe is not None
    assert probe.dimension != "requirements_and_scope"
    assert book.score(probe.dimension) is None
    everything = {p.text for p in PROBES["system_design"]}
    assert next_probe(book, everything) is None


def test_coding_has_no_probes() -> None:
    question = BANK.get("two-sum")
    assert plan_followup(question, [("candidate", "Can the array be empty?")]) is None


def test_claude_gets_the_same_focus_as_guidance() -> None:
    from server.interviewer.prompt import focus_note, guidance
    from server.interviewer.provider import TurnIntent

    note = focus_note("impact and results", "How did it turn out?", ["Makes clear what they owned"])
    text = guidance(TurnIntent.REPLY, focus=note)
    assert "impact and results" in text and "How did it turn out?" in text
    assert "do not ask for it again: Makes clear what they owned" in text
    assert guidance(TurnIntent.REPLY) == (
        "[Respond to the candidate's latest message as the interviewer.]"
    )
