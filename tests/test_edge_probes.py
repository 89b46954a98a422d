"""Edge-case probes, pure: which tagged kinds failed, one probe per kind, the probe turn
found by its start, the answer judged, and nothing of a hidden test in any probe or note."""

from __future__ import annotations

import json

import pytest

from protocol.messages import CandidateSaid, InterviewerTurnEnd, InterviewerTurnStart
from scoring.edge_cases import CUES, LABELS, PROBED_CATEGORIES, PROBES
from scoring.edge_probes import EdgeProbes, failing_categories, judge_answer
from scoring.evidence import ScoreBook
from scoring.question_bank import CodingQuestion, load_question_bank
from scoring.run_results import RunResult, TestCase, TestOutcome

pytestmark = pytest.mark.timeout(20)

TESTS = (
    TestCase(name="empty", args=([],), expected=[], tags=("empty",)),
    TestCase(name="neg", args=([-1],), expected=[], tags=("negative", "general")),
    TestCase(name="mixed", args=([1],), expected=[], tags=("general",)),
    TestCase(name="dupes", args=([1, 1],), expected=[], tags=("duplicates",)),
)


def run(status: str, failed: set[str]) -> RunResult:
    outcomes = tuple(TestOutcome(t.name, t.name not in failed) for t in TESTS)
    return RunResult(status, outcomes, "", 5)  # type: ignore[arg-type]


def test_failing_categories_are_the_failed_tests_tags_in_probe_order() -> None:
    assert failing_categories(TESTS, run("failed", {"dupes", "neg", "mixed"})) == (
        "duplicates",
        "negative",
    )
    assert failing_categories(TESTS, run("failed", {"mixed"})) == ()  # general: never probed
    assert failing_categories(TESTS, run("passed", set())) == ()
    assert failing_categories(TESTS, run("timeout", {"empty"})) == ()  # says nothing of a kind


def turn(seq: int, turn_id: str) -> tuple[InterviewerTurnStart, InterviewerTurnEnd]:
    return (
        InterviewerTurnStart(seq=seq, ts=0, turn_id=turn_id),
        InterviewerTurnEnd(seq=seq + 2, ts=0, turn_id=turn_id, stop_reason="end_turn"),
    )


def test_a_probe_is_asked_once_per_kind_and_its_answer_is_judged() -> None:
    state = EdgeProbes()
    state, probe, evidence = state.found(("negative", "empty"), snapshot_seq=20, after_seq=22)
    assert probe == PROBES["negative"]
    (miss,) = evidence
    assert (miss.signal_id, miss.polarity, miss.seqs) == ("misses_edge_case", "negative", (20,))
    # Nothing new while one is pending.
    assert state.found(("empty",), snapshot_seq=20, after_seq=22)[1] is None
    early_start, early_end = turn(21, "i5")  # a reply that started before the check
    start, end = turn(24, "i6")
    for event in (early_start, CandidateSaid(seq=23, ts=0, turn_id="c1", text="zero"), early_end):
        state, found = state.observe(event)
        assert found == []
    state, _ = state.observe(start)
    state, found = state.observe(CandidateSaid(seq=25, ts=0, turn_id="c2", text="while it speaks"))
    assert found == [] and state.pending is not None
    state, _ = state.observe(end)
    answer = "Good point: with a negative number I skip it, which is wrong; I'd drop that check."
    state, found = state.observe(CandidateSaid(seq=27, ts=0, turn_id="c3", text=answer))
    assert [(e.signal_id, e.polarity, e.seqs) for e in found] == [
        ("names_edge_cases", "positive", (20, 27))
    ]
    assert state.pending is None
    # The same kind is never probed twice; another kind is.
    assert state.found(("negative",), snapshot_seq=30, after_seq=31)[1] is None
    assert state.found(("negative", "empty"), snapshot_seq=30, after_seq=31)[1] == PROBES["empty"]
    _, changes = ScoreBook.for_track("coding").apply_all([*evidence, *found])
    assert [c.dimension for c in changes] == ["testing_and_edge_cases"] * 2
    assert changes[0].delta < 0 < changes[1].delta


@pytest.mark.parametrize(
    "answer",
    ["It should work fine.", "Hmm, I think it's correct.", "Negatives won't happen here."],
)
def test_an_answer_that_does_not_engage_counts_against(answer: str) -> None:
    evidence = judge_answer("negative", answer, 9, 4)
    assert (evidence.signal_id, evidence.polarity, evidence.weight) == (
        "misses_edge_case",
        "negative",
        0.5,
    )


def test_every_kind_has_a_probe_a_label_and_cues() -> None:
    assert set(PROBES) == set(LABELS) == set(CUES) == set(PROBED_CATEGORIES)
    for category in PROBED_CATEGORIES:
        assert judge_answer(category, PROBES[category], 3, 2).polarity == "positive"


def test_no_probe_or_note_reveals_a_hidden_test() -> None:
    texts = [*PROBES.values(), *LABELS.values()]
    texts += [EdgeProbes().found((c,), snapshot_seq=2, after_seq=3)[2][0].note for c in PROBES]
    for question in load_question_bank():
        if not isinstance(question, CodingQuestion):
            continue
        for test in question.hidden_tests:
            assert test.tags, (question.id, test.name)
            shown = [json.dumps(a) for a in test.args if json.dumps(a) not in ("0", "1", "[]")]
            for text in texts:
                # One-word names ("empty") are the kind itself; longer ones are the test.
                assert "_" not in test.name or test.name not in text, (test.name, text)
                assert not any(len(s) > 3 and s in text for s in shown), (test.name, text)
