"""Rebuild a live session's state from Postgres (a worker restart, or a session taken over).

The stored events are the truth: the phase, the transcript, the latest code, and whether an
interviewer turn was left open. An open turn (a ``turn.start`` with no ``turn.end``: its
worker died mid-turn) is ended with ``stop_reason: error`` and stored as exactly the deltas
that were delivered (ARCHITECTURE.md invariant 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.messages import (
    CandidateSaid,
    CodeSnapshot,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    PhaseChanged,
)
from server.interviewer.prompt import TranscriptTurn
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
        # Its row (the deltas delivered) is projected by the log, warmed with the turn.
        await log.append(InterviewerTurnEnd(turn_id=turn.turn_id, stop_reason="error", seq=0, ts=0))
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
