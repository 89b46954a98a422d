"""The offline judges of the talk-only tracks (system design, behavioral), on the issue's
two interviews and on the hard cases: every label cites the candidate message that shows
it, labels never change as the session goes on, and the fold moves at least four of five
dimensions for a specific, well-told answer."""

from __future__ import annotations

import pytest

from protocol.messages import (
    CandidateSaid,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    SessionEvent,
)
from scoring.evidence import Evidence
from scoring.judges import behavioral, heuristic, offline, system_design
from scoring.question_bank import Question, load_question_bank
from scoring.scorer import replay
from scoring.transcript import Transcript

pytestmark = pytest.mark.timeout(30)

BANK = load_question_bank()

BEHAVIORAL_STORY = (
    ("i", "Tell me about a project that failed. What was your role?"),
    (
        "c",
        "I was the tech lead on our deploy pipeline rewrite last year. Deploys took 40 "
        "minutes and the team shipped twice a week, so releases kept slipping past the deadline.",
    ),
    ("i", "What did you do?"),
    (
        "c",
        "I set up a one-week spike, measured deploy times, and we decided together. "
        "Deploys went from 40 to 8 minutes.",
    ),
    ("i", "What did you learn?"),
    (
        "c",
        "I learned to measure before proposing a fix, and I should have raised the slow "
        "deploys months earlier. Since then I start every project by measuring the baseline.",
    ),
)

DESIGN_ANSWERS = (
    ("i", "Design a notification service. Where would you like to start?"),
    (
        "c",
        "Let me start with requirements. Which channels do we need, and do callers need "
        "scheduled sends? I'll assume at-least-once delivery and security alerts within seconds.",
    ),
    ("i", "What's the load?"),
    ("c", "20 million a day is about 230 per second, so a 10x peak is roughly 2,300 per second."),
    ("i", "Walk me through the components."),
    (
        "c",
        "Callers use POST /notifications with an idempotency key. The API service writes to a "
        "queue partitioned by channel, then workers consume from it and send to the provider. "
        "Urgent alerts get their own priority queue instead of sharing one, because a campaign "
        "would otherwise delay them.",
    ),
    ("i", "What if a provider is down?"),
    (
        "c",
        "Idempotent retries with backoff, a dead-letter queue, and a circuit breaker per "
        "provider so one slow gateway doesn't block the workers. Does that make sense?",
    ),
)


def events(turns: tuple[tuple[str, str], ...]) -> list[SessionEvent]:
    out: list[SessionEvent] = []
    seq = 1
    for n, (role, text) in enumerate(turns):
        turn_id = f"t{n}"
        if role == "i":
            out += [
                InterviewerTurnStart(seq=seq, ts=seq * 1000, turn_id=turn_id),
                InterviewerDelta(seq=seq + 1, ts=seq * 1000, turn_id=turn_id, text=text),
                InterviewerTurnEnd(
                    seq=seq + 2, ts=seq * 1000, turn_id=turn_id, stop_reason="end_turn"
                ),
            ]
            seq += 3
        else:
            out.append(CandidateSaid(seq=seq, ts=seq * 1000, turn_id=turn_id, text=text))
            seq += 1
    return out


def labels(question: Question, turns: tuple[tuple[str, str], ...]) -> list[Evidence]:
    return offline.label_transcript(question, Transcript.of(events(turns)))


@pytest.mark.parametrize(
    ("question_id", "turns"),
    [("failed-project", BEHAVIORAL_STORY), ("notification-service", DESIGN_ANSWERS)],
)
def test_the_issues_interviews_move_four_of_five_dimensions(
    question_id: str, turns: tuple[tuple[str, str], ...]
) -> None:
    question = BANK.get(question_id)
    logged = events(turns)
    candidate_seqs = {e.seq for e in logged if isinstance(e, CandidateSaid)}
    state, changes = replay(question, logged)
    moved = {c.dimension for c in changes}
    assert len(moved) >= 4, state.book.scores
    for change in changes:
        assert set(change.evidence_seqs) <= candidate_seqs
        assert abs(change.delta) <= 0.5
    assert sum(1 for s in state.book.scores.values() if s is not None and s > 2.5) >= 4


def test_labels_of_a_message_do_not_change_as_the_session_goes_on() -> None:
    for question_id, turns in (
        ("failed-project", BEHAVIORAL_STORY),
        ("notification-service", DESIGN_ANSWERS),
    ):
        question = BANK.get(question_id)
        full = Transcript.of(events(turns))
        for cut in range(1, len(turns) + 1):
            early = Transcript.of(events(turns[:cut]))
            for turn in early.candidate_turns:
                assert offline.label_event(question, early, turn.seq) == offline.label_event(
                    question, full, turn.seq
                )


def test_a_strong_we_story_with_a_stated_role_is_not_penalised() -> None:
    question = BANK.get("teammate-conflict")
    told = (
        ("i", "Tell me about a disagreement."),
        (
            "c",
            "At my last job I owned the search backend, and another engineer and I disagreed "
            "about Elasticsearch versus Postgres for a client launch with a fixed deadline.",
        ),
        ("i", "What happened next?"),
        (
            "c",
            "We wrote down the requirements together, we ran a two-day spike on each option, we "
            "compared the results with real data, and we agreed to go with Postgres for now.",
        ),
    )
    found = {e.signal_id for e in labels(question, told)}
    assert "takes_ownership" in found and "we_not_i" not in found
    anonymous = (told[0], told[3])  # the same "we" story, no role stated
    assert "we_not_i" in {e.signal_id for e in labels(question, anonymous)}


def test_buzzwords_without_reasons_are_labelled_and_reasons_are_not() -> None:
    question = BANK.get("url-shortener")
    listed = (("c", "I'd use Kafka, Redis, Cassandra and Kubernetes with a load balancer."),)
    assert "buzzword_design" in {e.signal_id for e in labels(question, listed)}
    reasoned = (
        (
            "c",
            "I'd put Redis in front of Cassandra because redirects are read-heavy, and Kafka "
            "for click events so analytics never slows a redirect.",
        ),
    )
    found = {e.signal_id for e in labels(question, reasoned)}
    assert "buzzword_design" not in found and "justifies_choices" in found


def test_the_first_answer_is_not_held_to_each_part_of_the_opening_question() -> None:
    question = BANK.get("teammate-conflict")
    opening = (
        ("i", "What was the situation, what did you do, and how did it turn out?"),
        ("c", "A colleague and I disagreed about a code review on my last team."),
    )
    assert labels(question, opening) == []
    followed = (*opening, ("i", "How did it turn out?"), ("c", "He was annoyed for a bit."))
    assert "no_outcome" in {e.signal_id for e in labels(question, followed)}


def test_each_judge_labels_only_its_own_track() -> None:
    transcript = Transcript.of(events(BEHAVIORAL_STORY))
    seq = transcript.candidate_turns[0].seq
    story = BANK.get("failed-project")
    design = BANK.get("url-shortener")
    coding = BANK.get("two-sum")
    assert behavioral.label_event(story, transcript, seq)
    assert behavioral.label_event(design, transcript, seq) == []
    assert system_design.label_event(story, transcript, seq) == []
    assert heuristic.label_event(story, transcript, seq) == []
    assert offline.label_event(coding, transcript, seq) == heuristic.label_event(
        coding, transcript, seq
    )
