"""The report builder: scores, overall band, strengths and weaknesses that quote real
evidence, the ledger-built summary, and JSON."""

from __future__ import annotations

import json

import pytest

from scoring.evidence import Evidence, ScoreBook, fold_evidence
from scoring.judges.code import HiddenTestResult
from scoring.report import build_report, overall_band
from scoring.rubric import BAND_LABELS
from scoring.rubrics import rubric_for
from scoring.scorer import replay
from tests.scoring_support import GOOD_TWO_SUM, SessionBuilder

pytestmark = pytest.mark.timeout(20)

CODING = rubric_for("coding")


def piece(signal_id: str, seq: int, note: str, weight: float = 1.0) -> Evidence:
    signal = CODING.signal(signal_id)
    return Evidence(signal.dimension, signal.id, signal.polarity, (seq,), note, weight)


def mixed_book() -> ScoreBook:
    book, _ = fold_evidence(
        CODING,
        [
            piece("asks_clarifying_questions", 5, "asked about empty input"),
            piece("works_example", 7, "worked the first example"),
            piece("code_passes_tests", 20, "first run passed"),
            piece("no_testing", 22, "declared done untested"),
            piece("misses_edge_case", 21, "the edge case 'empty' fails", 0.75),
            piece("silent_for_long", 15, "silent for 5 min"),
            piece("thinks_aloud", 9, "thought aloud", 0.5),
        ],
    )
    return book


def test_scores_bands_and_overall() -> None:
    report = build_report(mixed_book(), question_id="two-sum")
    by_name = {d.name: d for d in report.dimensions}
    assert [d.name for d in report.dimensions] == list(CODING.dimension_names)
    assert by_name["approach_and_complexity"].score is None
    assert by_name["approach_and_complexity"].band is None
    assert by_name["implementation"].band_label == "lean hire"
    observed = [d.score for d in report.dimensions if d.score is not None]
    assert report.overall == round(sum(observed) / len(observed), 2)
    assert report.band == overall_band(report.overall)
    assert report.band_label == BAND_LABELS[report.band - 1]
    assert report.evidence_count == 7


def test_strengths_and_weaknesses_quote_their_evidence() -> None:
    book = mixed_book()
    report = build_report(book)
    ledger = {(e.signal_id, e.seqs): e for e in book.ledger}
    assert {f.dimension for f in report.strengths} == {"problem_understanding", "implementation"}
    assert [f.dimension for f in report.weaknesses] == ["testing_and_edge_cases", "communication"]
    assert [f.score for f in report.strengths] == sorted(
        (f.score for f in report.strengths), reverse=True
    )
    for finding in (*report.strengths, *report.weaknesses):
        assert finding.evidence
        wanted = "positive" if finding in report.strengths else "negative"
        for quote in finding.evidence:
            source = ledger[(quote.signal_id, quote.seqs)]
            assert source.dimension == finding.dimension
            assert source.polarity == quote.polarity == wanted
            assert quote.note == source.note
    testing = report.weaknesses[0]
    assert testing.evidence[0].signal_id == "no_testing"  # heaviest first


def test_communication_between_the_bars_is_neither() -> None:
    book, _ = fold_evidence(
        CODING, [piece("silent_for_long", 3, "silent"), piece("thinks_aloud", 4, "aloud", 0.5)]
    )
    report = build_report(book)
    score = book.score("communication")
    assert score is not None and score < 2.5
    assert [f.dimension for f in report.weaknesses] == ["communication"]


def test_the_ledger_summary_names_best_worst_and_hidden_counts() -> None:
    hidden = HiddenTestResult(2, 20, "failed", 6, 8)
    report = build_report(mixed_book(), hidden=hidden)
    assert report.summary_source == "ledger"
    assert report.summary.startswith(f"Overall {report.overall:.2f} of 4 ({report.band_label})")
    assert "Strongest:" in report.summary and "To work on first:" in report.summary
    assert "(event 22)" in report.summary  # the heaviest weakness evidence, by seq
    assert "Hidden tests: 6 of 8 passed." in report.summary
    assert "Not observed: approach and complexity." in report.summary
    assert report.hidden_tests == {"version": 2, "status": "failed", "passed": 6, "total": 8}


def test_a_written_summary_replaces_the_ledger_one() -> None:
    report = build_report(mixed_book(), summary="  Claude wrote this.  ")
    assert (report.summary, report.summary_source) == ("Claude wrote this.", "written")
    blank = build_report(mixed_book(), summary="   ")
    assert blank.summary_source == "ledger"


def test_an_interview_with_no_evidence_is_not_a_hire() -> None:
    report = build_report(ScoreBook.for_track("coding"))
    assert report.overall == 1.0
    assert report.band_label == "strong no hire"
    assert report.strengths == () and report.weaknesses == ()
    assert "not enough" in report.summary


def test_json_is_complete_deterministic_and_parseable() -> None:
    report = build_report(
        mixed_book(), question_id="two-sum", hidden=HiddenTestResult(1, 20, "passed", 8, 8)
    )
    text = report.to_json()
    assert (
        text
        == build_report(
            mixed_book(), question_id="two-sum", hidden=HiddenTestResult(1, 20, "passed", 8, 8)
        ).to_json()
    )
    data = json.loads(text)
    assert data["overall"] == report.overall
    assert data["question_id"] == "two-sum"
    assert len(data["dimensions"]) == 5
    assert data["strengths"][0]["evidence"][0]["seqs"]
    assert set(data) >= {"summary", "band_label", "weaknesses", "hidden_tests"}
    assert len(data["evidence"]) == report.evidence_count == 7


def test_the_stored_report_refolds_to_the_same_scores() -> None:
    book = mixed_book()
    stored = json.loads(build_report(book).to_json())
    again = ScoreBook.from_ledger(CODING, [Evidence.from_dict(d) for d in stored["evidence"]])
    assert again.scores == book.scores
    assert again.ledger == book.ledger


def test_a_replayed_session_report_quotes_events_of_that_session() -> None:
    b = SessionBuilder()
    b.interviewer("Here's the problem.", t=10)
    b.candidate("So I need the indices. Can the array be empty? Are there duplicates?", t=40)
    snapshot = b.code(GOOD_TWO_SUM, t=200)
    b.run("passed", t=210)
    b.candidate("Um, I guess it's done, kind of.", t=300)
    b.end(t=320)
    state, _ = replay(b.question, b.events, hidden=HiddenTestResult(1, snapshot, "passed", 8, 8))
    report = build_report(state.book, hidden=state.hidden)
    seqs = {e.seq for e in b.events}
    quoted = [q for f in (*report.strengths, *report.weaknesses) for q in f.evidence]
    assert quoted
    assert all(set(q.seqs) <= seqs for q in quoted)
    assert any(f.dimension == "communication" for f in report.weaknesses)
