"""The evidence ledger's fold: bounded steps, first observations, clamping, diminishing
returns, idempotence, validation, determinism and refolding a stored ledger."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codec import JSON
from protocol.messages import ScoreDelta
from scoring.evidence import (
    FIRST_NEGATIVE,
    FIRST_POSITIVE,
    MAX_DELTA,
    Evidence,
    InvalidEvidence,
    ScoreBook,
    fold_evidence,
)
from scoring.rubrics import rubric_for

pytestmark = pytest.mark.timeout(20)

CODING = rubric_for("coding")
SIGNALS = list(CODING.signals.values())


def piece(signal_id: str, *seqs: int, weight: float = 1.0, note: str = "") -> Evidence:
    signal = CODING.signal(signal_id)
    return Evidence(signal.dimension, signal_id, signal.polarity, seqs or (5,), note, weight)


def test_every_dimension_starts_not_yet_observed() -> None:
    book = ScoreBook.for_track("coding")
    assert dict(book.scores) == dict.fromkeys(CODING.dimension_names)
    assert book.observed == {}
    assert book.ledger == ()


def test_first_positive_observation_starts_at_band_3_midpoint() -> None:
    book, change = ScoreBook.empty(CODING).apply(piece("asks_clarifying_questions", 8))
    assert book.score("problem_understanding") == FIRST_POSITIVE == 3.0
    assert change is not None
    assert change.first_observation
    assert change.delta == MAX_DELTA
    assert change.score == 3.0
    assert change.evidence_seqs == (8,)
    assert book.score("implementation") is None  # other dimensions untouched


def test_first_negative_observation_starts_at_band_2_midpoint() -> None:
    book, change = ScoreBook.empty(CODING).apply(piece("silent_for_long", 9))
    assert book.score("communication") == FIRST_NEGATIVE == 2.0
    assert change is not None and change.delta == -MAX_DELTA


def test_first_observation_is_scaled_by_weight() -> None:
    book, change = ScoreBook.empty(CODING).apply(piece("thinks_aloud", 3, weight=0.5))
    assert book.score("communication") == 2.75
    assert change is not None and change.delta == 0.25


def test_scores_approach_the_ends_but_never_leave_the_scale() -> None:
    positives = ["code_passes_tests", "clean_structure", "fixes_bugs_independently"]
    negatives = ["code_fails_tests", "syntax_or_runtime_errors", "messy_code"]
    book = ScoreBook.empty(CODING)
    for seq in range(1, 150):
        book, change = book.apply(piece(positives[seq % 3], seq))
        assert change is None or 0 < change.delta <= MAX_DELTA
    top = book.score("implementation")
    assert top is not None and 3.8 < top <= 4.0
    for seq in range(200, 500):
        book, change = book.apply(piece(negatives[seq % 3], seq))
        assert change is None or -MAX_DELTA <= change.delta < 0
    bottom = book.score("implementation")
    assert bottom is not None and 1.0 <= bottom < 1.5


def test_one_signal_repeated_cannot_carry_a_dimension_to_the_top() -> None:
    """The steps of one signal form a geometric series (REPEAT_DECAY): however often it is
    seen, it adds at most MAX_DELTA * REPEAT_DECAY / (1 - REPEAT_DECAY) = 0.75 beyond its
    first step."""
    book = ScoreBook.empty(CODING)
    for seq in range(1, 300):
        book, _ = book.apply(piece("code_passes_tests", seq))
    score = book.score("implementation")
    assert score is not None and 3.0 < score < 3.5


def test_repeating_a_signal_gives_diminishing_returns() -> None:
    book = ScoreBook.empty(CODING)
    book, _ = book.apply(piece("silent_for_long", 3))  # start the dimension low, far from 4
    deltas = []
    for seq in (10, 11, 12, 13):
        book, change = book.apply(piece("thinks_aloud", seq))
        assert change is not None
        deltas.append(change.delta)
    assert deltas == sorted(deltas, reverse=True)
    assert deltas[-1] < deltas[0] / 2


def test_a_different_signal_is_not_discounted() -> None:
    book, _ = fold_evidence(CODING, [piece("silent_for_long", 3), piece("thinks_aloud", 4)])
    _, change_repeated = book.apply(piece("thinks_aloud", 5))
    _, change_fresh = book.apply(piece("explains_clearly", 5))
    assert change_repeated is not None and change_fresh is not None
    assert change_fresh.delta > change_repeated.delta


def test_the_same_observation_counts_once() -> None:
    book, first = ScoreBook.empty(CODING).apply(piece("writes_tests", 7, 9))
    again, second = book.apply(piece("writes_tests", 9, 7, note="other words"))
    assert first is not None and second is None
    assert again is book
    assert len(again.ledger) == 1


def test_apply_is_pure() -> None:
    book = ScoreBook.empty(CODING)
    after, _ = book.apply(piece("writes_tests", 7))
    assert book.score("testing_and_edge_cases") is None and book.ledger == ()
    assert after.score("testing_and_edge_cases") == 3.0


@pytest.mark.parametrize(
    ("evidence", "problem"),
    [
        (Evidence("implementation", "no_such_signal", "positive", (1,), "x"), "no signal"),
        (Evidence("communication", "writes_tests", "positive", (1,), "x"), "belongs to"),
        (Evidence("testing_and_edge_cases", "writes_tests", "negative", (1,), "x"), "positive"),
    ],
)
def test_evidence_that_does_not_fit_the_rubric_is_rejected(
    evidence: Evidence, problem: str
) -> None:
    with pytest.raises(InvalidEvidence, match=problem):
        ScoreBook.empty(CODING).apply(evidence)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seqs": ()},
        {"seqs": (0,)},
        {"weight": 0.0},
        {"weight": 1.5},
        {"polarity": "neutral"},
        {"source": "oracle"},
    ],
)
def test_malformed_evidence_cannot_be_built(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "dimension": "implementation",
        "signal_id": "code_passes_tests",
        "polarity": "positive",
        "seqs": (3,),
        "note": "ok",
    }
    fields.update(kwargs)
    with pytest.raises(InvalidEvidence):
        Evidence(**fields)  # type: ignore[arg-type]


def test_apply_all_is_all_or_nothing() -> None:
    good = piece("writes_tests", 4)
    bad = Evidence("testing_and_edge_cases", "made_up", "positive", (5,), "x")
    book = ScoreBook.empty(CODING)
    with pytest.raises(InvalidEvidence):
        book.apply_all([good, bad])
    assert book.ledger == ()


def test_a_change_that_rounds_to_nothing_is_recorded_but_not_reported() -> None:
    book = ScoreBook.empty(CODING)
    for seq in range(1, 200):
        book, _ = book.apply(piece("code_passes_tests", seq))
    before = book.score("implementation")
    after, change = book.apply(piece("code_passes_tests", 500))
    assert change is None
    assert after.score("implementation") == before
    assert after.ledger[-1].seqs == (500,)


def test_the_same_evidence_folds_to_the_same_book() -> None:
    ledger = [piece(s.id, i + 1, weight=0.5 + (i % 2) / 2) for i, s in enumerate(SIGNALS)]
    first, changes_1 = fold_evidence(CODING, ledger)
    second, changes_2 = fold_evidence(CODING, ledger)
    assert first == second
    assert changes_1 == changes_2


def test_a_stored_ledger_refolds_to_the_same_scores() -> None:
    ledger = [piece(s.id, i + 2, weight=1.0) for i, s in enumerate(SIGNALS)]
    book, _ = fold_evidence(CODING, ledger)
    stored = [e.to_dict() for e in book.ledger]
    again = ScoreBook.from_ledger(CODING, [Evidence.from_dict(d) for d in stored])
    assert again.scores == book.scores
    assert again.ledger == book.ledger
    with pytest.raises(InvalidEvidence):
        Evidence.from_dict({"dimension": "implementation"})


def test_a_change_becomes_a_valid_score_delta_event() -> None:
    _, change = ScoreBook.empty(CODING).apply(piece("code_passes_tests", 12, 14, note="passes"))
    assert change is not None
    event = change.to_event()
    assert isinstance(event, ScoreDelta)
    assert (event.dimension, event.delta, event.score, event.reason, event.evidence) == (
        "implementation",
        0.5,
        3.0,
        "passes",
        [12, 14],
    )
    stamped = ScoreDelta(
        **{**{f: getattr(event, f) for f in event.__struct_fields__}, "seq": 20, "ts": 1}
    )
    assert JSON.decode_server(JSON.encode(stamped)) == stamped


def test_the_reason_falls_back_to_the_signal_description() -> None:
    _, change = ScoreBook.empty(CODING).apply(piece("writes_tests", 3, note=""))
    assert change is not None
    assert change.reason == CODING.signal("writes_tests").description


_evidence = st.builds(
    lambda signal, seqs, weight: Evidence(
        signal.dimension, signal.id, signal.polarity, tuple(seqs), "n", weight
    ),
    st.sampled_from(SIGNALS),
    st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=3),
    st.floats(min_value=0.01, max_value=1.0, allow_nan=False),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_evidence, max_size=60))
def test_any_evidence_gives_bounded_steps_and_scores_on_the_scale(
    ledger: list[Evidence],
) -> None:
    book = ScoreBook.empty(CODING)
    for evidence in ledger:
        before = book.score(evidence.dimension)
        book, change = book.apply(evidence)
        after = book.score(evidence.dimension)
        if change is None:
            continue
        assert abs(change.delta) <= MAX_DELTA
        assert after == change.score
        assert 1.0 <= change.score <= 4.0
        assert (change.delta > 0) == (evidence.polarity == "positive")
        if before is not None:
            assert change.delta == pytest.approx(after - before, abs=1e-9)
    assert fold_evidence(CODING, ledger)[0].scores == book.scores
