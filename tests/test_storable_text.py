"""``protocol.storable``: which text can be stored, and making server text storable."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import messages as m
from protocol.storable import REPLACEMENT, is_storable, storable, storable_value, unstorable_path

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
hostile_chars = st.characters(exclude_categories=()) | st.sampled_from(
    ["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\U0001f600", "é"]
)
hostile_text = st.text(hostile_chars, max_size=30)


def test_what_is_storable() -> None:
    for text in ["", "plain", "\x01\x1f\x7f", "é", "😀", "\U0010ffff", "\ufffd", "\\u0000"]:
        assert is_storable(text) and storable(text) is text
    for text in ["\x00", "a\x00", "é\x00", "\ud800", "😀\udfff", "x\udbffy"]:
        assert not is_storable(text)
    assert storable("a\x00b\ud800c😀") == f"a{REPLACEMENT}b{REPLACEMENT}c😀"


@PROPERTY
@given(a=hostile_text, b=hostile_text)
def test_cleaning_is_storable_piecewise_and_keeps_clean_text(a: str, b: str) -> None:
    cleaned = storable(a)
    assert is_storable(cleaned)
    cleaned.encode()  # UTF-8 can carry it
    assert len(cleaned) == len(a)
    assert all(x == y or y == REPLACEMENT for x, y in zip(a, cleaned, strict=True))
    # Deltas cleaned one by one concatenate to the turn cleaned whole.
    assert storable(a) + storable(b) == storable(a + b)


def test_paths_and_values_of_nested_messages() -> None:
    question = m.Question(
        id="q",
        title="t",
        prompt="p",
        examples=[m.Example(input="1", output="2"), m.Example(input="x\x00", output="y")],
    )
    result = m.CodeResult(
        run_id="r",
        version=1,
        status="failed",
        tests=[
            m.TestOutcome(name="a", passed=True),
            m.TestOutcome(name="b", passed=False, message="\ud800"),
        ],
        stdout_tail="out\x00",
        duration_ms=3,
        seq=1,
        ts=2,
    )
    assert unstorable_path(question) == "examples[1].input"
    assert unstorable_path(result) == "tests[1].message"
    assert unstorable_path({"ok": "x", "k\x00": "y"}, "scores") == "scores[...]"
    assert unstorable_path(["a", 1, None, m.Example(input="i", output="o")]) is None

    clean = storable_value(result)
    assert unstorable_path(clean) is None
    assert clean.stdout_tail == "out" + REPLACEMENT
    assert clean.tests[1].message == REPLACEMENT
    assert clean.tests[0] is result.tests[0]  # untouched parts are kept, not copied
    assert storable_value(clean) is clean
    said = m.CandidateSaid(turn_id="t", text="fine", seq=0, ts=0)
    assert storable_value(said) is said
