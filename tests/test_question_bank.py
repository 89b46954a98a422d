"""The question bank: it loads, every reference solution passes its tests in the sandbox,
wrong solutions fail them, the public view leaks nothing, and broken files are rejected
with the file and the field named. Also the rubric that scores each track."""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import tomllib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec
import pytest

from scoring.code_runner import CodeRunner, RunResult
from scoring.question_bank import (
    DEFAULT_QUESTIONS_DIR,
    CodingQuestion,
    QuestionBank,
    QuestionBankError,
    QuestionNotFound,
    load_question_bank,
)
from scoring.rubric import SCALE, TRACKS
from scoring.rubrics import rubric_for

BANK = load_question_bank()
CODING = [q for q in BANK.for_track("coding") if isinstance(q, CodingQuestion)]
TWO_SUM = DEFAULT_QUESTIONS_DIR / "two-sum.toml"


def test_the_bank_loads_with_enough_questions_per_track() -> None:
    counts = {track: len(BANK.for_track(track)) for track in TRACKS}
    assert counts["coding"] >= 8
    assert counts["system_design"] >= 2
    assert counts["behavioral"] >= 2
    assert len(BANK) == sum(counts.values())
    assert len(CODING) == counts["coding"]


def test_coding_questions_cover_easy_to_hard() -> None:
    assert {q.difficulty for q in CODING} == {"easy", "medium", "hard"}
    assert {q.compare for q in CODING} >= {"exact", "unordered", "sorted", "float"}


@pytest.mark.parametrize("question", CODING, ids=lambda q: q.id)
def test_coding_question_content_is_complete(question: CodingQuestion) -> None:
    assert len(question.visible_tests) >= 3 and len(question.hidden_tests) >= 5
    assert len(question.hints) == 3
    assert 3 <= len(question.followups) <= 4
    assert len(question.script.acknowledge) >= 3
    assert re.search(r"45[- ]minute", question.script.intro)
    assert "out loud" in question.script.intro
    assert question.optimal_complexity.startswith("O(")
    assert question.signature in question.starter_code
    # Hints are graded nudges in prose, never the code itself.
    code_lines = [
        line.strip() for line in question.reference_solution.splitlines() if len(line.strip()) > 20
    ]
    for hint in question.hints:
        assert "\n" not in hint and "def " not in hint
        assert not any(line in hint for line in code_lines), hint


def solution_returning(value: Any, function_name: str) -> str:
    """Candidate code that returns ``value`` whatever the input."""
    literal = json.dumps(json.dumps(value))
    return f"import json\n\ndef {function_name}(*args):\n    return json.loads({literal})\n"


@pytest.mark.parametrize("question", CODING, ids=lambda q: q.id)
async def test_reference_passes_and_wrong_solutions_fail(question: CodingQuestion) -> None:
    runner = CodeRunner()  # the default bound: at most two of these run at once

    def run(source: str) -> Coroutine[Any, Any, RunResult]:
        return runner.run_tests(
            source,
            question.function_name,
            question.all_tests,
            compare=question.compare,
            tolerance=question.tolerance,
        )

    reference, returns_none, returns_constant, starter = await asyncio.gather(
        run(question.reference_solution),
        run(solution_returning(None, question.function_name)),
        run(solution_returning(question.visible_tests[0].expected, question.function_name)),
        run(question.starter_code),
    )
    assert reference.status == "passed", [t for t in reference.tests if not t.passed]
    assert len(reference.tests) == len(question.all_tests)
    for wrong in (returns_none, returns_constant, starter):
        assert wrong.status == "failed", wrong
        assert wrong.passed_count < len(question.all_tests)


@pytest.mark.parametrize("question", list(BANK), ids=lambda q: q.id)
def test_the_public_view_leaks_nothing_secret(question: Any) -> None:
    view = question.public_view()
    encoded = msgspec.json.encode(view).decode()
    assert set(msgspec.to_builtins(view)) <= {
        "id",
        "track",
        "title",
        "prompt",
        "examples",
        "starter_code",
    }
    for secret in (*question.hints, *question.followups, *question.script.acknowledge):
        assert json.dumps(secret)[1:-1] not in encoded
    if isinstance(question, CodingQuestion):
        assert json.dumps(question.reference_solution)[1:-1] not in encoded
        assert "expected" not in encoded and "hidden" not in encoded
        assert view.starter_code == question.starter_code


def test_get_for_track_and_pick() -> None:
    assert BANK.get("two-sum").title == "Two Sum"
    assert "two-sum" in BANK
    assert all(q.track == "behavioral" for q in BANK.for_track("behavioral"))
    assert BANK.pick("coding", "two-sum").id == "two-sum"
    picked = {BANK.pick("system_design", rng=random.Random(seed)).id for seed in range(20)}
    assert picked == {q.id for q in BANK.for_track("system_design")}
    first = BANK.pick("coding", rng=random.Random(7))
    assert BANK.pick("coding", rng=random.Random(7)) == first
    with pytest.raises(QuestionNotFound, match="no question 'nope'"):
        BANK.get("nope")
    with pytest.raises(QuestionNotFound, match="not a behavioral question"):
        BANK.pick("behavioral", "two-sum")
    with pytest.raises(KeyError):
        BANK.pick("coding", "url-shortener")
    with pytest.raises(QuestionNotFound, match="no coding questions"):
        QuestionBank([]).pick("coding")


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer: JSON scalars and arrays are valid TOML; tables go inline."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    return "".join(f"{key} = {value(v)}\n" for key, v in data.items())


def two_sum_data() -> dict[str, Any]:
    return tomllib.loads(TWO_SUM.read_text())


def write_question(folder: Path, data: dict[str, Any], stem: str = "two-sum") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.toml"
    path.write_text(to_toml(data))
    return path


def test_the_toml_writer_round_trips_a_real_question(tmp_path: Path) -> None:
    write_question(tmp_path, two_sum_data())
    assert load_question_bank(tmp_path).get("two-sum") == BANK.get("two-sum")


Mutation = Callable[[dict[str, Any]], None]


def drop(key: str) -> Mutation:
    return lambda data: data.pop(key)


def put(key: str, value: Any) -> Mutation:
    return lambda data: data.__setitem__(key, value)


def put_in_first_test(key: str, value: Any) -> Mutation:
    return lambda data: data["visible_tests"][0].__setitem__(key, value)


def expect_everywhere(value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        for test in data["visible_tests"] + data["hidden_tests"]:
            test["expected"] = value

    return mutate


BROKEN: list[tuple[str, Mutation, str, str]] = [
    ("missing-field", drop("function_name"), "function_name", "missing required field"),
    ("missing-script", drop("script"), "script", "missing required field"),
    ("wrong-type", put("title", 5), "title", "Expected `str`, got `int`"),
    ("unknown-field", put("hint", "typo"), "hint", "unknown field"),
    ("bad-id", put("id", "three-sum"), "id", "must equal the file stem"),
    ("unknown-track", put("track", "puzzles"), "track", "Invalid value 'puzzles'"),
    ("unknown-compare", put("compare", "fuzzy"), "compare", "Invalid enum value 'fuzzy'"),
    (
        "no-function",
        put("reference_solution", "def solve(nums, target):\n    return []\n"),
        "reference_solution",
        "does not define a top-level function 'two_sum'",
    ),
    (
        "reference-does-not-parse",
        put("reference_solution", "def two_sum(:\n"),
        "reference_solution",
        "does not parse",
    ),
    (
        "too-few-hidden-tests",
        lambda data: data.__setitem__("hidden_tests", data["hidden_tests"][:4]),
        "hidden_tests",
        "length >= 5",
    ),
    (
        "too-few-visible-tests",
        lambda data: data.__setitem__("visible_tests", data["visible_tests"][:2]),
        "visible_tests",
        "length >= 3",
    ),
    ("no-hints", put("hints", []), "hints", "length >= 3"),
    ("no-followups", drop("followups"), "followups", "missing required field"),
    (
        "test-without-expected",
        lambda d: d["hidden_tests"][1].pop("expected"),
        "hidden_tests[1].expected",
        "missing required field",
    ),
    (
        "hidden-test-without-tags",
        lambda d: d["hidden_tests"][2].pop("tags"),
        "hidden_tests[2].tags",
        "a hidden test needs its tags",
    ),
    (
        "unknown-tag",
        lambda d: d["hidden_tests"][0].__setitem__("tags", ["empty", "spooky"]),
        "hidden_tests[0].tags",
        "unknown ['spooky']",
    ),
    ("wrong-arity", put_in_first_test("args", [[1, 2]]), "visible_tests[0].args", "1 arguments"),
    (
        "duplicate-test-name",
        put_in_first_test("name", "zeros"),
        "hidden_tests[3].name",
        "duplicate test name",
    ),
    ("difficulty", put("difficulty", "trivial"), "difficulty", "Invalid enum value 'trivial'"),
    (
        "constant-passes",
        expect_everywhere([0, 1]),
        "hidden_tests",
        "a constant would pass",
    ),
    (
        "few-acknowledgements",
        lambda d: d["script"].__setitem__("acknowledge", ["Okay."]),
        "script.acknowledge",
        "length >= 3",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "detail"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_a_broken_question_names_the_file_and_the_field(
    tmp_path: Path, mutate: Mutation, field: str, detail: str
) -> None:
    data = two_sum_data()
    mutate(data)
    path = write_question(tmp_path, data)
    with pytest.raises(QuestionBankError) as caught:
        load_question_bank(tmp_path)
    assert caught.value.path == path
    assert caught.value.field == field
    assert detail in caught.value.detail
    assert str(caught.value).startswith(f"{path}: {field}: ")


def test_a_duplicate_id_names_both_files(tmp_path: Path) -> None:
    first = write_question(tmp_path / "a", two_sum_data())
    second = write_question(tmp_path / "b", two_sum_data())
    with pytest.raises(QuestionBankError, match="duplicate id 'two-sum'") as caught:
        load_question_bank(tmp_path)
    assert caught.value.path == second and caught.value.field == "id"
    assert str(first) in caught.value.detail


def test_invalid_toml_and_empty_folders_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "two-sum.toml").write_text('id = "two-sum\n')
    with pytest.raises(QuestionBankError, match="invalid TOML") as caught:
        load_question_bank(tmp_path)
    assert caught.value.field is None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(QuestionBankError, match="no question files"):
        load_question_bank(empty)


def test_a_non_kebab_case_id_is_rejected(tmp_path: Path) -> None:
    data = two_sum_data() | {"id": "Two_Sum"}
    path = write_question(tmp_path, data, stem="Two_Sum")
    with pytest.raises(QuestionBankError, match="kebab-case") as caught:
        load_question_bank(tmp_path)
    assert caught.value.path == path


def test_toml_dates_are_not_json_values(tmp_path: Path) -> None:
    path = write_question(tmp_path, two_sum_data())
    text = re.sub(r"expected = \[0, 1\]", "expected = 1979-05-27", path.read_text(), count=1)
    path.write_text(text)
    with pytest.raises(QuestionBankError, match="date is not a JSON value") as caught:
        load_question_bank(tmp_path)
    assert caught.value.field == "visible_tests[0].expected"


def test_the_bundled_folder_can_be_copied_and_loaded(tmp_path: Path) -> None:
    shutil.copytree(DEFAULT_QUESTIONS_DIR, tmp_path / "questions")
    assert len(load_question_bank(tmp_path / "questions")) == len(BANK)


@pytest.mark.parametrize("track", TRACKS)
def test_each_track_has_a_rubric_with_four_written_bands_and_signals(track: str) -> None:
    rubric = rubric_for(track)
    assert rubric.track == track and rubric.scale == SCALE == (1.0, 4.0)
    assert len(rubric.dimensions) == 5
    assert rubric.unobserved_scores() == dict.fromkeys(rubric.dimension_names)
    assert rubric.public_view() == {"dimensions": list(rubric.dimension_names), "scale": [1.0, 4.0]}
    for dimension in rubric.dimensions:
        assert [b.level for b in dimension.bands] == [1, 2, 3, 4]
        assert all(b.description for b in dimension.bands)
        assert dimension.positive_signals and dimension.negative_signals
        assert dimension.band(1.0).level == 1 and dimension.band(2.6).level == 3
        assert dimension.band(4.0).label == "strong hire"
        for signal in dimension.signals:
            assert re.fullmatch(r"[a-z]+(_[a-z]+)*", signal.id)
            assert rubric.signal(signal.id) is signal
    with pytest.raises(ValueError, match="outside the scale"):
        rubric.dimensions[0].band(4.5)


def test_the_coding_rubric_has_the_product_dimensions() -> None:
    assert rubric_for("coding").dimension_names == (
        "problem_understanding",
        "approach_and_complexity",
        "implementation",
        "testing_and_edge_cases",
        "communication",
    )
    signal = rubric_for("coding").signal("states_complexity")
    assert (signal.dimension, signal.polarity) == ("approach_and_complexity", "positive")
    assert rubric_for("coding").signal("silent_for_long").polarity == "negative"
    with pytest.raises(KeyError, match="unknown track"):
        rubric_for("puzzles")
