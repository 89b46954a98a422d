"""Live scoring folds the interviewer's deltas before scoring them (server/sessions/scoring.py):
the scores and the transcript must be exactly those of scoring every event."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.messages import (
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    SessionEvent,
)
from scoring.scorer import SessionScorer
from server.sessions.scoring import DeltaFolder
from tests.scoring_support import START_MS, SessionBuilder

SAYINGS = [
    "I'd use a hash map from value to index, one pass, so O(n) time and O(n) space.",
    "Could the input be empty? Are there negative numbers?",
    "Brute force is O(n^2) with two loops; I know it can improve.",
    "Let me trace it by hand on [2, 7, 11, 15] with target 9.",
    "I think that's fine.",
]
CODE = "def two_sum(nums, target):\n    seen = {}\n    for i, n in enumerate(nums):\n        if target - n in seen:\n            return [seen[target - n], i]\n        seen[n] = i\n"


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


@st.composite
def sessions(draw: st.DrawFn) -> list[SessionEvent]:
    """A session whose interviewer turns arrive as many deltas, sometimes with the candidate
    speaking (an interrupt) or code arriving between two deltas of one turn."""
    b = SessionBuilder()
    for i in range(draw(st.integers(1, 6))):
        turn = f"t{i}"
        ts = START_MS + i * 1000
        b.events.append(InterviewerTurnStart(seq=b.next_seq, ts=ts, turn_id=turn))
        text = draw(st.sampled_from(["Walk me through your approach.", "What about edge cases?"]))
        for j, piece in enumerate(_split(text, draw(st.lists(st.integers(0, 40), max_size=8)))):
            b.events.append(InterviewerDelta(seq=b.next_seq, ts=ts + j, turn_id=turn, text=piece))
            if draw(st.integers(0, 9)) == 0:
                b.candidate(draw(st.sampled_from(SAYINGS)), t=i + 0.5)
            if draw(st.integers(0, 19)) == 0:
                b.code(CODE, t=i + 0.6)
        b.events.append(
            InterviewerTurnEnd(seq=b.next_seq, ts=ts + 900, turn_id=turn, stop_reason="end_turn")
        )
        b.candidate(draw(st.sampled_from(SAYINGS)), t=i + 0.9)
    if draw(st.booleans()):
        b.end(t=10)
    return b.events


@settings(max_examples=60, deadline=None)
@given(sessions())
def test_folded_scoring_equals_scoring_every_event(events: list[SessionEvent]) -> None:
    every = SessionScorer(SessionBuilder().question)
    every_changes = [c for e in events for c in every.observe(e)]

    folder = DeltaFolder()
    folded = SessionScorer(SessionBuilder().question)
    scored = [e for event in events for e in folder.push(event)] + folder.flush()
    folded_changes = [c for e in scored for c in folded.observe(e)]

    assert folded_changes == every_changes
    assert folded.transcript.utterances == every.transcript.utterances
    assert folded.transcript.last_seq == every.transcript.last_seq
    deltas_in = sum(isinstance(e, InterviewerDelta) for e in events)
    assert sum(isinstance(e, InterviewerDelta) for e in scored) <= deltas_in


def test_a_turn_of_many_deltas_is_scored_as_one() -> None:
    folder = DeltaFolder()
    start = InterviewerTurnStart(seq=1, ts=1, turn_id="a")
    assert folder.push(start) == [start]
    for i in range(10):
        assert folder.push(InterviewerDelta(seq=2 + i, ts=2 + i, turn_id="a", text=str(i))) == []
    end = InterviewerTurnEnd(seq=12, ts=12, turn_id="a", stop_reason="end_turn")
    assert folder.push(end) == [
        InterviewerDelta(seq=11, ts=11, turn_id="a", text="0123456789"),
        end,
    ]


def test_a_delta_of_another_turn_flushes_the_held_ones() -> None:
    folder = DeltaFolder()
    assert folder.push(InterviewerDelta(seq=1, ts=1, turn_id="a", text="x")) == []
    assert folder.push(InterviewerDelta(seq=2, ts=2, turn_id="a", text="y")) == []
    ready = folder.push(InterviewerDelta(seq=3, ts=3, turn_id="b", text="z"))
    assert ready == [InterviewerDelta(seq=2, ts=2, turn_id="a", text="xy")]
    assert folder.flush() == [InterviewerDelta(seq=3, ts=3, turn_id="b", text="z")]
    assert folder.flush() == []
