"""The offline conversation judge: each documented rule, the complexity reader, and the
property that an event's labels depend only on what was known at that event."""

from __future__ import annotations

import pytest

from scoring.evidence import Evidence
from scoring.judges.coding_signals import is_real_code
from scoring.judges.complexity import Cost, optimal_time_cost, parse_cost, stated_complexities
from scoring.judges.heuristic import label_event, label_transcript
from scoring.question_bank import CodingQuestion
from tests.scoring_support import BANK, GOOD_TWO_SUM, SessionBuilder, coding_question

pytestmark = pytest.mark.timeout(20)


def labels(builder: SessionBuilder, seq: int) -> list[Evidence]:
    return label_event(builder.question, builder.transcript(), seq)


def signals(builder: SessionBuilder, seq: int) -> set[str]:
    return {e.signal_id for e in labels(builder, seq)}


def one(builder: SessionBuilder, seq: int, signal: str) -> Evidence:
    found = [e for e in labels(builder, seq) if e.signal_id == signal]
    assert len(found) == 1, f"{signal} not labelled once in {labels(builder, seq)}"
    return found[0]


def presented(question_id: str = "two-sum") -> SessionBuilder:
    b = SessionBuilder(coding_question(question_id))
    b.interviewer("Hi! Here's the problem on your screen; tell me how you understand it.", t=10)
    return b


# -- complexity reader --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inner", "cost"),
    [
        ("n", Cost(0, 1, 0)),
        ("1", Cost(0, 0, 0)),
        ("n log n", Cost(0, 1, 1)),
        ("n^2", Cost(0, 2, 0)),
        ("n²", Cost(0, 2, 0)),
        ("n * k", Cost(0, 2, 0)),
        ("amount * len(coins)", Cost(0, 2, 0)),
        ("amount times number of coins", Cost(0, 2, 0)),
        ("mn", Cost(0, 2, 0)),
        ("n + m", Cost(0, 1, 0)),
        ("log n", Cost(0, 0, 1)),
        ("2^n", Cost(1, 0, 0)),
        ("len(coins)^amount", Cost(1, 0, 0)),
        ("n!", Cost(1, 0, 0)),
        ("min(n, k)", Cost(0, 1, 0)),
    ],
)
def test_parse_cost(inner: str, cost: Cost) -> None:
    assert parse_cost(inner) == cost


def test_stated_complexities_tell_time_from_space_and_skip_non_claims() -> None:
    text = (
        "Brute force is O(n^2), checking every pair, but with a hash map it's O(n) time and "
        "O(n) space. Each lookup is O(1), and it can't be O(log n)."
    )
    found = [(s.text, s.kind) for s in stated_complexities(text)]
    assert found == [("O(n^2)", "time"), ("O(n)", "time"), ("O(n)", "space")]
    words = stated_complexities(
        "It runs in linear time and constant space; space complexity is O(n)."
    )
    assert [(s.cost, s.kind) for s in words] == [
        (Cost(0, 1, 0), "time"),
        (Cost(0, 0, 0), "space"),
        (Cost(0, 1, 0), "space"),
    ]


def test_every_coding_question_states_an_optimal_time() -> None:
    for question in BANK.for_track("coding"):
        assert isinstance(question, CodingQuestion)
        assert optimal_time_cost(question.optimal_complexity) is not None, question.id


def test_real_code_is_more_than_the_starter() -> None:
    starter = coding_question().starter_code
    assert not is_real_code(starter, starter)
    assert not is_real_code(starter + "\n# thinking...\n", starter)
    assert is_real_code(GOOD_TWO_SUM, starter)


# -- problem understanding -----------------------------------------------------------------


def test_clarifying_questions_weigh_more_when_there_are_several() -> None:
    b = presented()
    single = b.candidate("Can the array be empty?", t=30)
    double = b.candidate(
        "Okay. Are there duplicates in the array? And should I return the indices in order?",
        t=50,
    )
    chat = b.candidate("What a nice day, right now I'm ready?", t=60)
    assert one(b, single, "asks_clarifying_questions").weight == 0.75
    assert one(b, double, "asks_clarifying_questions").weight == 1.0
    assert one(b, double, "asks_clarifying_questions").seqs == (double,)
    assert "asks_clarifying_questions" not in signals(b, chat)


def test_restating_and_working_an_example_count_before_code_and_once() -> None:
    b = presented()
    first = b.candidate(
        "So I need to return the indices of two numbers that add up to the target. "
        "For example, with [2, 7, 11, 15] and 9 it's [0, 1].",
        t=40,
    )
    again = b.candidate("So we need to find a pair. Let's say [3, 3] with 6.", t=60)
    assert {"restates_problem", "works_example"} <= signals(b, first)
    assert not {"restates_problem", "works_example"} & signals(b, again)
    b2 = presented()
    b2.code(GOOD_TWO_SUM, t=100)
    late = b2.candidate("So I need to return indices. For example [2, 7] with 9.", t=120)
    assert not {"restates_problem", "works_example"} & signals(b2, late)


def test_naming_the_constraints() -> None:
    b = presented()
    seq = b.candidate("With up to 10^4 elements a quadratic scan is about 10^8 checks.", t=40)
    assert "identifies_constraints" in signals(b, seq)


def test_code_before_any_plan_is_starting_to_code_immediately() -> None:
    b = presented()
    b.candidate("Okay.", t=30)
    starter = b.code(b.question.starter_code, t=35)
    code = b.code(GOOD_TWO_SUM, t=120)
    later = b.code(GOOD_TWO_SUM + "\n", t=140)
    assert labels(b, starter) == []
    evidence = one(b, code, "starts_coding_immediately")
    assert evidence.seqs == (code,) and evidence.polarity == "negative"
    assert labels(b, later) == []


def test_code_after_a_plan_is_fine() -> None:
    b = presented()
    b.candidate(
        "I'd use a hash map from value to index: for each number I look up the complement, "
        "then store the number, so it's a single pass.",
        t=60,
    )
    code = b.code(GOOD_TWO_SUM, t=200)
    assert labels(b, code) == []


# -- approach and complexity ---------------------------------------------------------------


def test_stating_the_optimal_complexity_reaches_the_optimal_approach_once() -> None:
    b = presented()
    first = b.candidate("With a dictionary it's O(n) time and O(n) space.", t=60)
    second = b.candidate("Again, that's linear time overall.", t=90)
    assert {"states_complexity", "reaches_optimal_approach"} <= signals(b, first)
    assert "states_complexity" in signals(b, second)
    assert "reaches_optimal_approach" not in signals(b, second)


def test_brute_force_named_as_a_start_and_compared_with_the_optimum() -> None:
    b = presented()
    seq = b.candidate(
        "The brute force checks every pair, O(n^2), but a hash map makes it O(n).", t=60
    )
    assert {
        "proposes_brute_force_first",
        "compares_alternatives",
        "states_complexity",
        "reaches_optimal_approach",
    } <= signals(b, seq)


def test_settling_for_a_slow_complexity() -> None:
    b = presented("daily-temperatures")
    seq = b.candidate("It's O(n^2) because of the two loops. That should be fine.", t=60)
    evidence = one(b, seq, "suboptimal_without_awareness")
    assert "O(n^2)" in evidence.note and "O(n)" in evidence.note


def test_a_slow_complexity_stated_for_written_code_is_suboptimal() -> None:
    b = presented("daily-temperatures")
    b.code(
        "def daily_temperatures(t):\n    out = []\n    for i in t:\n        out.append(0)\n    return out\n",
        t=100,
    )
    seq = b.candidate("This is O(n^2).", t=130)
    assert "suboptimal_without_awareness" in signals(b, seq)


def test_claiming_faster_than_possible_is_wrong() -> None:
    b = presented("merge-intervals")
    seq = b.candidate("It's O(n) because there's only one loop.", t=60)
    assert "wrong_complexity" in signals(b, seq)


def test_the_cost_of_one_step_beside_the_whole_is_not_a_wrong_claim() -> None:
    b = presented("merge-intervals")
    seq = b.candidate("The sort dominates, O(n log n); the merge pass itself is linear.", t=60)
    assert "wrong_complexity" not in signals(b, seq)
    assert "states_complexity" in signals(b, seq)


def test_a_variant_follow_up_is_not_judged_against_this_question() -> None:
    b = presented("merge-intervals")
    b.code(
        "def merge_intervals(xs):\n    out = []\n    for s, e in sorted(xs):\n        out.append([s, e])\n    return out\n",
        t=100,
    )
    b.run("passed", t=110)
    b.interviewer("How would you insert one new interval into an already merged list?", t=120)
    seq = b.candidate("One pass, O(n), copying the intervals before and after it.", t=150)
    assert not {"wrong_complexity", "states_complexity"} & signals(b, seq)


def test_saying_stuck_or_asking_for_a_hint() -> None:
    b = presented()
    stuck = b.candidate("Hmm, I'm stuck on how to keep the indices.", t=60)
    hint = b.candidate("Could you give me a hint?", t=90)
    assert "needs_strong_hints" in signals(b, stuck)
    assert "needs_strong_hints" in signals(b, hint)


# -- testing and edge cases ----------------------------------------------------------------


def test_naming_edge_cases_weighs_by_how_many_kinds() -> None:
    b = presented()
    one_kind = b.candidate("What about an empty list?", t=40)
    two_kinds = b.candidate("Negative numbers and duplicates could matter too.", t=60)
    loops = b.candidate("Two nested loops would work.", t=80)
    assert one(b, one_kind, "names_edge_cases").weight == 0.5
    assert one(b, two_kinds, "names_edge_cases").weight == 1.0
    assert "names_edge_cases" not in signals(b, loops)


def test_empty_input_handled_in_code_cites_message_and_code() -> None:
    b = presented()
    code = b.code(
        "def two_sum(nums, target):\n    if not nums:\n        return []\n    return [0, 1]\n",
        t=100,
    )
    seq = b.candidate("I return early on empty input.", t=120)
    assert one(b, seq, "handles_empty_input").seqs == (code, seq)


def test_tracing_counts_only_once_there_is_code() -> None:
    b = presented()
    before = b.candidate("Let me walk through the example: i = 0 first.", t=40)
    b.code(GOOD_TWO_SUM, t=100)
    after = b.candidate("Let me trace it: i = 0, num is 2, the complement 7 is not there.", t=130)
    assert "traces_code_by_hand" not in signals(b, before)
    assert "traces_code_by_hand" in signals(b, after)


def test_proposing_tests_and_not_testing() -> None:
    b = presented()
    b.code(GOOD_TWO_SUM, t=100)
    proposes = b.candidate("I'd also test negative numbers and a pair at both ends.", t=120)
    denies = b.candidate("I didn't really test those, but I think it works.", t=130)
    assert "writes_tests" in signals(b, proposes)
    assert "writes_tests" not in signals(b, denies)


def test_declaring_done_without_running_or_testing() -> None:
    b = presented()
    b.code(GOOD_TWO_SUM, t=100)
    untested = b.candidate("Okay, that should work now.", t=120)
    assert one(b, untested, "no_testing").seqs == (untested,)
    b.run("passed", t=130)
    tested = b.candidate("I'm done.", t=140)
    assert "no_testing" not in signals(b, tested)


# -- communication ---------------------------------------------------------------------------


APPROACH = (
    "The idea is to keep a dictionary from value to index. For each number I first look up "
    "the complement, target minus the number, and then store the number, so one pass is "
    "enough because every earlier value is already in the map."
)


def test_explaining_the_approach_before_coding_counts_fully() -> None:
    b = presented()
    seq = b.candidate(APPROACH, t=60)
    assert one(b, seq, "explains_clearly").weight == 1.0
    assert one(b, seq, "thinks_aloud").weight == 0.5
    b.code(GOOD_TWO_SUM, t=200)
    after = b.candidate(APPROACH, t=230)
    assert one(b, after, "explains_clearly").weight == 0.5


def test_hedged_messages_are_unclear_not_thinking_aloud() -> None:
    b = presented()
    seq = b.candidate(
        "Um, I guess maybe a dictionary, kind of, or something, because then I could look "
        "things up faster, I'm not sure, so that would probably be better overall I think.",
        t=60,
    )
    found = signals(b, seq)
    assert "unclear_explanation" in found
    assert not {"thinks_aloud", "explains_clearly"} & found
    short = b.candidate("Um, if the start is smaller I guess.", t=90)
    assert "unclear_explanation" in signals(b, short)


def test_taking_a_nudge_and_brushing_one_off() -> None:
    b = presented()
    b.interviewer("Which data structure lets you check quickly whether you've seen a value?", t=60)
    takes = b.candidate("Oh, right, a hash map: I store each value's index as I go.", t=90)
    b.interviewer("What about an input with equal values?", t=120)
    brushes = b.candidate("I think it's fine, I'd rather not change it.", t=150)
    assert one(b, takes, "incorporates_feedback").weight == 0.75
    assert "ignores_hints" in signals(b, brushes)
    b2 = presented()
    b2.interviewer("Great, go ahead.", t=60)
    plain = b2.candidate("Oh, right, a hash map: I store each value's index as I go.", t=90)
    assert "incorporates_feedback" not in signals(b2, plain)


def test_silence_is_measured_from_the_last_activity() -> None:
    b = presented()
    b.candidate("Okay, let me think.", t=20)
    long = b.candidate("Sorry, still thinking.", t=20 + 320)
    assert one(b, long, "silent_for_long").weight == 1.0
    b.code(GOOD_TWO_SUM, t=500)
    typed = b.candidate("Here's my code.", t=560)
    assert "silent_for_long" not in signals(b, typed)
    medium = b.candidate("Hmm.", t=560 + 160)
    assert one(b, medium, "silent_for_long").weight == 0.5


# -- contracts ------------------------------------------------------------------------------


def test_labels_of_an_event_do_not_depend_on_later_events() -> None:
    b = presented()
    seqs = [
        b.candidate("So I need the indices of two numbers. Can the array be empty?", t=30),
        b.candidate(APPROACH + " That's O(n) time.", t=80),
    ]
    seqs.append(b.code(GOOD_TWO_SUM, t=200))
    b.run("passed", t=210)
    seqs.append(b.candidate("Let me trace it: i = 0, nothing stored yet. I'm done.", t=260))
    full = b.transcript()
    for seq in seqs:
        assert label_event(b.question, full, seq) == label_event(b.question, full.upto(seq), seq)


def test_every_label_cites_the_candidate_event_judged() -> None:
    b = presented()
    b.candidate("So I need the indices. Can the array be empty? " + APPROACH, t=30)
    b.code(GOOD_TWO_SUM, t=200)
    b.candidate("Let me trace it: i = 0, I'd also test negatives. It's O(n) time.", t=260)
    transcript = b.transcript()
    candidate_seqs = {u.seq for u in transcript.candidate_turns} | {c.seq for c in transcript.code}
    evidence = label_transcript(b.question, transcript)
    assert evidence
    for piece in evidence:
        assert set(piece.seqs) <= candidate_seqs
        assert piece.source == "conversation"


def test_non_coding_questions_get_no_offline_labels() -> None:
    question = next(iter(BANK.for_track("behavioral")))
    b = presented()
    seq = b.candidate("Can the array be empty? " + APPROACH, t=30)
    assert label_event(question, b.transcript(), seq) == []
    assert labels(b, 10_000) == []
