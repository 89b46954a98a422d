"""The session fold: live scoring equals replaying the stored events, duplicates change
nothing, every score.delta names real candidate events, external evidence is all or nothing."""

from __future__ import annotations

import pytest

from protocol.codec import JSON, MSGPACK
from protocol.messages import CandidateSaid, CodeResult, CodeSnapshot, SessionEvent
from scoring.evidence import Evidence, InvalidEvidence, ScoreChange
from scoring.judges.code import HiddenTestResult
from scoring.scorer import SessionScorer, replay
from tests.scoring_support import GOOD_TWO_SUM, SessionBuilder, coding_question

pytestmark = pytest.mark.timeout(20)

WRONG_APPROACH = """
def two_sum(nums: list[int], target: int) -> list[int]:
    nums = sorted(nums)
    return [0, len(nums) - 1]
"""


def good_session() -> tuple[SessionBuilder, HiddenTestResult]:
    b = SessionBuilder(coding_question("two-sum"))
    b.interviewer("Here's the problem. Tell me how you understand it.", t=20)
    b.candidate("So I return the indices of the two numbers. Can values repeat?", t=60)
    b.interviewer("Yes, duplicates can appear.", t=70)
    b.candidate(
        "The brute force is O(n^2) over all pairs. Better: a dictionary from value to index; "
        "for each number I first look up target minus it, then store it. That's O(n) time.",
        t=150,
    )
    b.interviewer("Sounds good, go ahead.", t=160)
    snapshot = b.code(GOOD_TWO_SUM, t=300)
    b.candidate(
        "Let me trace [3, 2, 4] with 6: i = 2 finds 2 at index 1. I'd also test negatives.", t=330
    )
    b.run("passed", t=340)
    b.interviewer("What's the complexity?", t=350)
    b.candidate("O(n) time and O(n) space.", t=380)
    b.end(t=400)
    return b, HiddenTestResult(b.version, snapshot, "passed", 8, 8)


def live(
    question_events: SessionBuilder, hidden: HiddenTestResult | None
) -> tuple[SessionScorer, list[ScoreChange]]:
    scorer = SessionScorer(question_events.question)
    changes: list[ScoreChange] = []
    for event in question_events.events:
        changes += scorer.observe(event)
    changes += scorer.finish(hidden)
    return scorer, changes


def test_live_scoring_equals_replaying_the_stored_events() -> None:
    b, hidden = good_session()
    scorer, live_changes = live(b, hidden)
    state, replayed = replay(b.question, b.events, hidden=hidden)
    assert replayed == live_changes
    assert state.book == scorer.book
    again, replayed_again = replay(b.question, b.events, hidden=hidden)
    assert again.book.scores == state.book.scores and replayed_again == replayed


@pytest.mark.parametrize("codec", [JSON, MSGPACK])
def test_events_read_back_from_storage_score_the_same(codec: object) -> None:
    b, hidden = good_session()
    stored = [codec.encode(e) for e in b.events]  # type: ignore[attr-defined]
    decoded: list[SessionEvent] = [codec.decode_server(raw) for raw in stored]  # type: ignore[attr-defined]
    original, _ = replay(b.question, b.events, hidden=hidden)
    restored, _ = replay(b.question, decoded, hidden=hidden)
    assert restored.book.scores == original.book.scores


def test_a_redelivered_event_changes_nothing() -> None:
    b, _ = good_session()
    scorer = SessionScorer(b.question)
    for event in b.events:
        scorer.observe(event)
    before = scorer.book
    for event in b.events[-6:]:
        assert scorer.observe(event) == []
    assert scorer.book is before


def test_correct_code_raises_implementation_and_testing_with_real_seqs() -> None:
    b, hidden = good_session()
    _, changes = live(b, hidden)
    by_seq = {e.seq: e for e in b.events}
    implementation = [c for c in changes if c.dimension == "implementation"]
    testing = [c for c in changes if c.dimension == "testing_and_edge_cases"]
    assert implementation and all(c.delta > 0 for c in implementation)
    assert testing and all(c.delta > 0 for c in testing)
    assert implementation[-1].score > 3.0 and testing[-1].score > 3.0
    for change in changes:
        assert change.evidence_seqs, change
        for seq in change.evidence_seqs:
            assert isinstance(by_seq[seq], CandidateSaid | CodeSnapshot | CodeResult)


def test_a_wrong_approach_lowers_approach_and_implementation() -> None:
    b = SessionBuilder(coding_question("two-sum"))
    b.interviewer("Here's the problem.", t=20)
    b.candidate("I'll sort it and take the two ends. It's O(1) after sorting, so O(1).", t=60)
    code = b.code(WRONG_APPROACH, t=200)
    failed = b.run("failed", [False, False, False], t=210)
    b.candidate("I think that's fine, it should work.", t=300)
    b.end(t=320)
    scorer, changes = live(b, HiddenTestResult(b.version, code, "failed", 1, 8))
    approach = [c for c in changes if c.dimension == "approach_and_complexity"]
    assert approach and approach[0].delta < 0
    assert scorer.book.score("approach_and_complexity") < 2.5  # type: ignore[operator]
    implementation = scorer.book.score("implementation")
    assert implementation is not None and implementation < 2.0
    assert any(failed in c.evidence_seqs for c in changes if c.dimension == "implementation")


def test_without_the_offline_judge_only_code_evidence_counts() -> None:
    b, hidden = good_session()
    state, changes = replay(b.question, b.events, hidden=hidden, offline_judge=False)
    assert changes
    assert {e.source for e in state.book.ledger} == {"code"}
    assert state.book.score("communication") is None


def test_external_evidence_is_applied_all_or_nothing() -> None:
    b, _ = good_session()
    scorer = SessionScorer(b.question, offline_judge=False)
    for event in b.events:
        scorer.observe(event)
    message = next(e.seq for e in b.events if isinstance(e, CandidateSaid))
    good = Evidence("communication", "explains_clearly", "positive", (message,), "clear plan")
    bad = Evidence("communication", "invented_signal", "positive", (message,), "x")
    before = scorer.book
    with pytest.raises(InvalidEvidence):
        scorer.apply([good, bad])
    assert scorer.book is before
    changes = scorer.apply([good])
    assert [c.dimension for c in changes] == ["communication"]
    assert scorer.book.score("communication") == 3.0


def test_a_second_hidden_result_for_the_same_version_changes_nothing() -> None:
    b, hidden = good_session()
    scorer, _ = live(b, hidden)
    assert scorer.finish(hidden) == []
    assert scorer.finish(None) == []
