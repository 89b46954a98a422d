"""The load harness's stream checks: each kind of integrity error is caught; a clean stream
(with resumes and snapshots) passes."""

from __future__ import annotations

import hashlib
from typing import Any

from loadtest.integrity import StreamChecker
from protocol.messages import (
    CandidateSaid,
    CodeSnapshot,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    Limits,
    PhaseChanged,
    Question,
    Resumed,
    Rubric,
    SessionEvent,
    SessionStarted,
    Snapshot,
    SnapshotState,
    TranscriptEntry,
)

SESSION = "s-1"


def started(seq: int = 1, session_id: str = SESSION) -> SessionStarted:
    return SessionStarted(
        session_id=session_id,
        track="coding",
        language="python",
        question=Question(id="q", title="Q", prompt="p", examples=[]),
        rubric=Rubric(dimensions=["d"], scale=[1.0, 4.0]),
        limits=Limits(duration_s=60),
        seq=seq,
        ts=1,
    )


def turn(first_seq: int, turn_id: str, *parts: str) -> list[SessionEvent]:
    """An interviewer turn: start, one delta per part, end; seqs from ``first_seq``."""
    events: list[SessionEvent] = [InterviewerTurnStart(turn_id=turn_id, seq=first_seq, ts=1)]
    for i, text in enumerate(parts, 1):
        events.append(InterviewerDelta(turn_id=turn_id, text=text, seq=first_seq + i, ts=1))
    events.append(
        InterviewerTurnEnd(
            turn_id=turn_id, stop_reason="end_turn", seq=first_seq + len(parts) + 1, ts=1
        )
    )
    return events


def clean_stream() -> list[SessionEvent]:
    """seq 1..9: started, phase, a 3-delta turn (i1: 3..7), a candidate message (8), and a
    1-delta turn start (9) left open."""
    return [
        started(),
        PhaseChanged(name="intro", seq=2, ts=1),
        *turn(3, "i1", "Hello, ", "I'm your ", "interviewer."),
        CandidateSaid(turn_id="c1", text="Hi!", seq=8, ts=1),
        InterviewerTurnStart(turn_id="i2", seq=9, ts=1),
    ]


def feed(checker: StreamChecker, events: list[SessionEvent]) -> list[Any]:
    found = []
    for event in events:
        found += checker.on_event(event)
    return found


def stored(*rows: tuple[str, str, str, int, int | None]) -> list[dict[str, Any]]:
    return [
        {"turn_id": t, "role": r, "text": x, "seq": s, "end_seq": e, "stop_reason": None}
        for t, r, x, s, e in rows
    ]


def checker_with_text() -> StreamChecker:
    checker = StreamChecker()
    checker.expect_candidate_text("Hi!")
    return checker


def test_a_clean_stream_passes_and_matches_its_transcript() -> None:
    checker = checker_with_text()
    assert feed(checker, clean_stream()) == []
    assert checker.session_id == SESSION
    assert checker.last_seq == 9
    feed(checker, [InterviewerDelta(turn_id="i2", text="Next.", seq=10, ts=1)])
    feed(checker, [InterviewerTurnEnd(turn_id="i2", stop_reason="interrupted", seq=11, ts=1)])
    check = checker.compare_transcript(
        stored(
            ("i1", "interviewer", "Hello, I'm your interviewer.", 3, 7),
            ("c1", "candidate", "Hi!", 8, None),
            ("i2", "interviewer", "Next.", 9, 11),
        )
    )
    assert check.issues == []
    assert (check.verified, check.unverified) == (3, 0)
    assert checker.issues == []


def test_a_gap_is_caught_once_and_its_turn_is_not_compared() -> None:
    checker = checker_with_text()
    events = clean_stream()
    del events[4]  # a delta of turn i1 (seq 5)
    found = feed(checker, events)
    assert [i.kind for i in found] == ["gap"]
    assert found[0].seq == 6
    assert "expected seq 5" in found[0].detail
    check = checker.compare_transcript(
        stored(
            ("i1", "interviewer", "Hello, I'm your interviewer.", 3, 7),
            ("c1", "candidate", "Hi!", 8, None),
        )
    )
    assert check.issues == []  # the lost delta is the gap's fault, reported once
    assert (check.verified, check.unverified) == (1, 1)


def test_a_duplicate_is_caught_and_not_applied_twice() -> None:
    checker = checker_with_text()
    events = clean_stream()
    events.insert(5, events[4])  # seq 5 delivered twice
    found = feed(checker, events)
    assert [i.kind for i in found] == ["duplicate"]
    assert checker.turns["i1"].text == "Hello, I'm your interviewer."


def test_an_event_of_another_session_is_foreign() -> None:
    checker = checker_with_text()
    feed(checker, clean_stream())
    assert [i.kind for i in checker.on_event(started(10, "s-other"))] == ["foreign_event"]
    assert [i.kind for i in checker.on_resumed(Resumed(session_id="s-other", replayed=0))] == [
        "foreign_event"
    ]
    said = CandidateSaid(turn_id="c2", text="Someone else's words", seq=11, ts=1)
    assert [i.kind for i in checker.on_event(said)] == ["foreign_event"]
    source = "# candidate mallory\n"
    snapshot = CodeSnapshot(
        version=1,
        language="python",
        sha256=hashlib.sha256(source.encode()).hexdigest(),
        source=source,
        seq=12,
        ts=1,
    )
    assert [i.kind for i in checker.on_event(snapshot)] == ["foreign_event"]
    mine = "# candidate me\n"
    checker.expect_code(mine)
    ok = CodeSnapshot(
        version=2,
        language="python",
        sha256=hashlib.sha256(mine.encode()).hexdigest(),
        source=mine,
        seq=13,
        ts=1,
    )
    assert checker.on_event(ok) == []


def test_an_input_applied_twice_is_a_duplicate() -> None:
    checker = checker_with_text()
    feed(checker, clean_stream())
    again = CandidateSaid(turn_id="c2", text="Hi!", seq=10, ts=1)
    assert [i.kind for i in checker.on_event(again)] == ["duplicate"]


def test_the_resume_seam_must_continue_at_last_seq_plus_one() -> None:
    events = clean_stream()
    # A clean resume after seq 5: the replay starts at 6.
    checker = checker_with_text()
    feed(checker, events[:5])
    checker.begin_resume()
    assert checker.on_resumed(Resumed(session_id=SESSION, replayed=4)) == []
    assert feed(checker, events[5:]) == []
    # Replay starting one too late, and one too early: each caught once, as a seam error.
    for resume_from, detail in ((6, "gap"), (4, "duplicate")):
        checker = checker_with_text()
        feed(checker, events[:5])
        checker.begin_resume()
        found = feed(checker, events[resume_from:])
        assert [i.kind for i in found] == ["resume_seam"], found
        assert detail in found[0].detail


def test_transcript_mismatches_are_caught() -> None:
    checker = checker_with_text()
    feed(checker, clean_stream()[:8])
    # Stored text differs from the streamed deltas.
    check = checker.compare_transcript(
        stored(
            ("i1", "interviewer", "Hello, I'm your interviewer!", 3, 7),
            ("c1", "candidate", "Hi!", 8, None),
        )
    )
    assert [i.kind for i in check.issues] == ["transcript_mismatch"]
    assert "first difference at 27" in check.issues[0].detail
    # A streamed turn that was not stored, and a stored turn that was never streamed.
    check = checker.compare_transcript(
        stored(
            ("c1", "candidate", "Hi!", 8, None),
            ("i0", "interviewer", "A turn nobody heard.", 2, 2),
        )
    )
    details = sorted(i.detail for i in check.issues)
    assert [i.kind for i in check.issues] == ["transcript_mismatch"] * 2
    assert "i0" in details[0] and "never streamed" in details[0]
    assert "i1" in details[1] and "not stored" in details[1]
    # compare_transcript reports; it does not accumulate.
    assert checker.issues == []


def test_a_delta_outside_its_turn_is_malformed() -> None:
    checker = checker_with_text()
    feed(checker, clean_stream()[:8])
    late = InterviewerDelta(turn_id="i1", text="more", seq=9, ts=1)
    unknown = InterviewerDelta(turn_id="i9", text="?", seq=10, ts=1)
    assert [i.kind for i in feed(checker, [late, unknown])] == ["malformed_stream"] * 2


def test_a_snapshot_replaces_the_replay() -> None:
    checker = checker_with_text()
    events = clean_stream()
    feed(checker, events[:4])  # up to seq 4, mid-turn i1
    checker.begin_resume()
    state = SnapshotState(
        status="active",
        track="coding",
        question=Question(id="q", title="Q", prompt="p", examples=[]),
        phase="intro",
        transcript=[
            TranscriptEntry(
                turn_id="i1", role="interviewer", text="Hello, I'm your interviewer.", seq=7
            ),
            TranscriptEntry(turn_id="c1", role="candidate", text="Hi!", seq=8),
        ],
        code=None,
        scores={},
    )
    assert checker.on_snapshot(Snapshot(session_id=SESSION, seq=8, state=state)) == []
    assert checker.last_seq == 8
    assert feed(checker, events[8:]) == []  # live from seq 9
    check = checker.compare_transcript(
        stored(
            ("i1", "interviewer", "Hello, I'm your interviewer.", 3, 7),
            ("c1", "candidate", "Hi!", 8, None),
        )
    )
    assert check.issues == []
