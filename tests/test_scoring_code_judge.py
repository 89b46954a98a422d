"""The code judge: evidence from visible runs (first pass, fix, regression, errors, edge-case
tests) and from the hidden tests' counts."""

from __future__ import annotations

import pytest

from scoring.code_runner import RunResult, TestOutcome
from scoring.evidence import Evidence
from scoring.judges.code import CODE_JUDGE_SIGNALS, HiddenTestResult, label_hidden, label_run
from scoring.rubrics import rubric_for
from tests.scoring_support import GOOD_TWO_SUM, SessionBuilder

pytestmark = pytest.mark.timeout(20)

BROKEN = GOOD_TWO_SUM.replace("target - num", "num")


def run_labels(b: SessionBuilder, seq: int) -> dict[str, Evidence]:
    evidence = label_run(b.transcript(), seq)
    assert all(e.source == "code" and e.seqs == (seq,) for e in evidence)
    return {e.signal_id: e for e in evidence}


def test_a_first_run_that_passes() -> None:
    b = SessionBuilder()
    b.code(GOOD_TWO_SUM)
    seq = b.run("passed")
    found = run_labels(b, seq)
    assert set(found) == {"code_passes_tests"}
    assert found["code_passes_tests"].weight == 1.0
    assert "first run" in found["code_passes_tests"].note


def test_a_fix_after_a_failing_run_is_independent_without_a_nudge() -> None:
    b = SessionBuilder()
    b.code(BROKEN)
    failed = b.run("failed", [True, False, False], message="expected [1, 2], got [0, 0]")
    b.interviewer("Okay, take your time.")
    b.code(GOOD_TWO_SUM)
    passed = b.run("passed")
    failing = run_labels(b, failed)
    assert failing["code_fails_tests"].weight == pytest.approx(0.833, abs=1e-3)
    found = run_labels(b, passed)
    assert set(found) == {"code_passes_tests", "fixes_bugs_independently"}
    assert found["code_passes_tests"].weight == 0.75


def test_a_fix_after_a_hint_is_not_independent() -> None:
    b = SessionBuilder()
    b.code(BROKEN)
    b.run("failed", [False, False, False])
    b.interviewer("Look at what you store before you check for the complement.")
    b.code(GOOD_TWO_SUM)
    passed = b.run("passed")
    assert set(run_labels(b, passed)) == {"code_passes_tests"}


def test_a_regression_after_a_pass_weighs_fully() -> None:
    b = SessionBuilder()
    b.code(GOOD_TWO_SUM)
    b.run("passed")
    b.code(BROKEN)
    regressed = b.run("failed", [True, True, False])
    evidence = run_labels(b, regressed)["code_fails_tests"]
    assert evidence.weight == 1.0
    assert "regression" in evidence.note


def test_running_the_same_version_again_says_nothing_new() -> None:
    b = SessionBuilder()
    b.code(GOOD_TWO_SUM)
    b.run("passed")
    again = b.run("passed")
    assert label_run(b.transcript(), again) == []


def test_passing_again_after_a_pass() -> None:
    b = SessionBuilder()
    b.code(GOOD_TWO_SUM)
    b.run("passed")
    b.code(GOOD_TWO_SUM + "\n# tidy\n")
    seq = b.run("passed")
    assert run_labels(b, seq)["code_passes_tests"].weight == 0.5


def test_errors_timeouts_and_a_sandbox_that_did_not_start() -> None:
    b = SessionBuilder()
    b.code("def two_sum(nums, target)\n    return []\n")
    crashed = b.run("error", message="not run: SyntaxError: expected ':' (line 1)")
    b.code("def two_sum(nums, target):\n    while True:\n        pass\n")
    slow = b.run("timeout", message="not run: timed out")
    b.code(GOOD_TWO_SUM)
    sandbox = b.run("error", message="not run: the code sandbox is unavailable")
    error = run_labels(b, crashed)["syntax_or_runtime_errors"]
    assert "SyntaxError" in error.note and "not run" not in error.note
    assert run_labels(b, slow)["code_fails_tests"].weight == 0.75
    assert run_labels(b, sandbox) == {}


def test_failed_tests_named_like_edge_cases_are_missed_edge_cases_once() -> None:
    b = SessionBuilder()
    b.code(BROKEN)
    names = ["example_1", "equal_values", "zero_amount"]
    first = b.run("failed", [True, False, False], names=names)
    b.code(BROKEN + "\n")
    second = b.run("failed", [True, False, True], names=names)
    found = label_run(b.transcript(), first)
    missed = sorted(e.note for e in found if e.signal_id == "misses_edge_case")
    assert missed == ["the edge case 'equal_values' fails", "the edge case 'zero_amount' fails"]
    assert not [e for e in label_run(b.transcript(), second) if e.signal_id == "misses_edge_case"]


def test_other_seqs_give_nothing() -> None:
    b = SessionBuilder()
    code = b.code(GOOD_TWO_SUM)
    assert label_run(b.transcript(), code) == []


@pytest.mark.parametrize(
    ("status", "passed", "expected"),
    [
        ("passed", 8, {("passes_hidden_tests", 1.0), ("code_passes_tests", 1.0)}),
        ("failed", 7, {("fails_hidden_tests", 0.5), ("code_fails_tests", 0.25)}),
        ("failed", 5, {("fails_hidden_tests", 0.75), ("code_fails_tests", 0.375)}),
        ("failed", 2, {("fails_hidden_tests", 1.0), ("code_fails_tests", 0.75)}),
        ("timeout", 0, {("fails_hidden_tests", 1.0), ("code_fails_tests", 1.0)}),
        ("error", 3, {("fails_hidden_tests", 1.0), ("code_fails_tests", 1.0)}),
    ],
)
def test_hidden_results_by_pass_rate(
    status: str, passed: int, expected: set[tuple[str, float]]
) -> None:
    hidden = HiddenTestResult(4, 31, status, passed, 8)  # type: ignore[arg-type]
    evidence = label_hidden(hidden)
    assert {(e.signal_id, e.weight) for e in evidence} == expected
    assert all(e.seqs == (31,) and e.source == "code" for e in evidence)


def test_hidden_notes_carry_counts_only() -> None:
    result = RunResult(
        "failed",
        (TestOutcome("secret_case_name", False, "expected 41, got 42"), TestOutcome("b", True)),
        "",
        12,
    )
    hidden = HiddenTestResult.from_run(3, 17, result)
    assert (hidden.passed, hidden.total, hidden.version) == (1, 2, 3)
    assert hidden.to_dict() == {"version": 3, "status": "failed", "passed": 1, "total": 2}
    for evidence in label_hidden(hidden):
        assert "secret" not in evidence.note and "42" not in evidence.note
    with pytest.raises(ValueError, match="passed"):
        HiddenTestResult(1, 5, "failed", 3, 2)


def test_the_code_judge_owns_only_rubric_signals() -> None:
    assert set(rubric_for("coding").signals) >= CODE_JUDGE_SIGNALS
