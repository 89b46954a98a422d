"""Rebuild a live session's state from Postgres (a worker restart, or a session taken over).

The stored events are the truth: the phase, the transcript, the latest code, and whether an
interviewer turn was left open. An open turn (a ``turn.start`` with no ``turn.end``: its
worker died mid-turn) is ended with ``stop_reason: error`` and stored as exactly the deltas
that were delivered (ARCHITECTURE.md invariant 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.codec import JSON
from protocol.messages import (
    CandidateSaid,
    CodeSnapshot,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    PhaseChanged,
    SessionEnded,
)
from server.interviewer.prompt import TranscriptTurn
from server.sessions.event_writer import Records
from server.sessions.live import CodeVersion
from server.sessions.log import LoggedEvent, SessionLog


@dataclass
class OpenTurn:
    turn_id: str
    start_seq: int
    text: list[str] = field(default_factory=list)


@dataclass
class RecoveredState:
    session_id: str
    last_seq: int = 0
    phase: str = "intro"
    transcript: list[TranscriptTurn] = field(default_factory=list)
    code: CodeVersion | None = None
    candidate_turns: int = 0
    turns_spoken: int = 0
    open_turn: OpenTurn | None = None

    async def close_open_turn(self, log: SessionLog) -> None:
        """Append ``interviewer.turn.end{error}`` for the turn a dead worker left open."""
        turn = self.open_turn
        if turn is None:
            return
        text = "".join(turn.text)
        await log.append(
            InterviewerTurnEnd(turn_id=turn.turn_id, stop_reason="error", seq=0, ts=0),
            lambda end_seq: Records(
                turns=(
                    (
                        self.session_id,
                        turn.turn_id,
                        "interviewer",
                        text,
                        turn.start_seq,
                        end_seq,
                        "error",
                    ),
                )
            ),
        )
        self.transcript.append(TranscriptTurn("interviewer", text))
        self.open_turn = None


def recover_state(session_id: str, events: list[LoggedEvent]) -> RecoveredState:
    """Fold a session's events (all of them, in order) into the state a new owner needs."""
    state = RecoveredState(session_id)
    turns: dict[str, OpenTurn] = {}
    for logged in events:
        state.last_seq = logged.seq
        match logged.event:
            case PhaseChanged(name=name):
                state.phase = name
            case CandidateSaid(text=text):
                state.candidate_turns += 1
                state.transcript.append(TranscriptTurn("candidate", text))
            case InterviewerTurnStart(turn_id=turn_id):
                state.turns_spoken += 1
                turns[turn_id] = OpenTurn(turn_id, logged.seq)
            case InterviewerDelta(turn_id=turn_id, text=text):
                open_turn = turns.get(turn_id)
                if open_turn is not None:
                    open_turn.text.append(text)
            case InterviewerTurnEnd(turn_id=turn_id):
                done = turns.pop(turn_id, None)
                if done is not None:
                    state.transcript.append(TranscriptTurn("interviewer", "".join(done.text)))
            case CodeSnapshot(version=version, language=language, sha256=sha256, source=source):
                state.code = CodeVersion(version, language, sha256, source, logged.seq)
    if turns:
        state.open_turn = max(turns.values(), key=lambda t: t.start_seq)
    return state


def backfill_records(
    session_id: str,
    events: list[LoggedEvent],
    *,
    after: int,
    inputs: dict[str, int] | None = None,
) -> Records:
    """The Postgres rows for the events after ``after`` (with their transcript turns, code
    snapshots, ending and the client inputs that made them: ``inputs`` maps input id to seq,
    as the appends recorded them in Redis), for a new owner whose predecessor died before its
    write-behind reached Postgres. ``events`` must be the whole session, so turns can be
    reassembled."""
    rows = Records()
    rows.inputs = tuple(
        (session_id, input_id, seq)
        for input_id, seq in sorted((inputs or {}).items(), key=lambda item: item[1])
        if seq > after
    )
    events_rows: list[tuple[str, int, str, int, str]] = []
    turns: list[tuple[str, str, str, str, int, int | None, str | None]] = []
    snapshots: list[tuple[str, int, str, str, str, int]] = []
    endings: list[tuple[str, str]] = []
    open_turns: dict[str, tuple[int, list[str]]] = {}
    for logged in events:
        event = logged.event
        match event:
            case InterviewerTurnStart(turn_id=turn_id):
                open_turns[turn_id] = (logged.seq, [])
            case InterviewerDelta(turn_id=turn_id, text=text) if turn_id in open_turns:
                open_turns[turn_id][1].append(text)
        if logged.seq <= after:
            continue
        wire = logged.encoded(JSON).decode()
        events_rows.append((session_id, logged.seq, logged.type, event.ts, wire))
        match event:
            case CandidateSaid(turn_id=turn_id, text=text):
                turns.append((session_id, turn_id, "candidate", text, logged.seq, None, None))
            case InterviewerTurnEnd(turn_id=turn_id, stop_reason=reason) if turn_id in open_turns:
                start, parts = open_turns[turn_id]
                turns.append(
                    (session_id, turn_id, "interviewer", "".join(parts), start, logged.seq, reason)
                )
            case CodeSnapshot(version=version, language=language, sha256=sha256, source=source):
                snapshots.append((session_id, version, language, sha256, source, logged.seq))
            case SessionEnded(reason=reason):
                endings.append((session_id, reason))
    rows.events = tuple(events_rows)
    rows.turns = tuple(turns)
    rows.snapshots = tuple(snapshots)
    rows.endings = tuple(endings)
    return rows
