"""Events become rows in one place (server/sessions/projector.py)."""

from __future__ import annotations

from protocol.messages import (
    CandidateSaid,
    CodeSnapshot,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    ScoreDelta,
    SessionEnded,
    SessionEvent,
)
from server.sessions.logged_event import LoggedEvent
from server.sessions.projector import SessionProjector, backfill_records
from server.sessions.rows import EndingRow, InputRow, SnapshotRow, TurnRow

SID = "s1"


def logged(seq: int, event: SessionEvent) -> LoggedEvent:
    import msgspec

    return LoggedEvent(msgspec.structs.replace(event, seq=seq, ts=1000 + seq))


SESSION = [
    logged(1, CandidateSaid(turn_id="c1", text="hello", seq=0, ts=0)),
    logged(2, InterviewerTurnStart(turn_id="t1", seq=0, ts=0)),
    logged(3, InterviewerDelta(turn_id="t1", text="Tell me ", seq=0, ts=0)),
    logged(
        4, ScoreDelta(dimension="d", delta=1.0, score=3.0, reason="r", evidence=[1], seq=0, ts=0)
    ),
    logged(5, InterviewerDelta(turn_id="t1", text="more.", seq=0, ts=0)),
    logged(6, InterviewerTurnEnd(turn_id="t1", stop_reason="end_turn", seq=0, ts=0)),
    logged(7, CodeSnapshot(version=1, language="python", sha256="ab", source="x=1", seq=0, ts=0)),
    logged(8, SessionEnded(reason="candidate_ended", seq=0, ts=0)),
]


def test_each_event_makes_its_rows_with_the_seq_it_got() -> None:
    projector = SessionProjector(SID)
    rows = [projector.rows(e, "in-1" if e.seq == 1 else None) for e in SESSION]
    assert [r.events[0].seq for r in rows] == list(range(1, 9))
    assert rows[0].inputs == (InputRow(SID, "in-1", 1),)
    assert rows[0].turns == (TurnRow(SID, "c1", "candidate", "hello", 1, None, None),)
    # The interviewer's turn is exactly the deltas between its start and its end.
    assert rows[5].turns == (TurnRow(SID, "t1", "interviewer", "Tell me more.", 2, 6, "end_turn"),)
    assert rows[6].snapshots == (SnapshotRow(SID, 1, "python", "ab", "x=1", 7),)
    assert rows[7].endings == (EndingRow(SID, "candidate_ended"),)
    assert all(not r.turns for r in rows[1:5])


def test_a_new_owner_warmed_with_an_open_turn_ends_it_with_its_text() -> None:
    projector = SessionProjector(SID)
    projector.warm(SESSION[:5])  # the dead owner's turn: start, deltas
    end = logged(9, InterviewerTurnEnd(turn_id="t1", stop_reason="error", seq=0, ts=0))
    assert projector.rows(end).turns == (
        TurnRow(SID, "t1", "interviewer", "Tell me more.", 2, 9, "error"),
    )


def test_a_backfill_projects_exactly_what_the_live_owner_would_have() -> None:
    live = SessionProjector(SID)
    expected = [live.rows(e) for e in SESSION]
    filled = backfill_records(SID, SESSION, after=3, inputs={"in-1": 1, "in-9": 7})
    assert filled.events == tuple(r.events[0] for r in expected[3:])
    assert filled.turns == expected[5].turns  # the turn began before the cut: still whole
    assert filled.inputs == (InputRow(SID, "in-9", 7),)
    assert filled.endings == expected[7].endings
