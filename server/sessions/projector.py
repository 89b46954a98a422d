"""Events become rows: the one place that knows which rows an event makes.

The engine and the live session only append events; :class:`SessionProjector`, kept by the
session's log, derives the typed rows (:mod:`server.sessions.rows`) from each event with the
seq its append really got: the event itself, a candidate message's transcript turn, an
interviewer turn's (its text is exactly the deltas delivered between its start and its end,
invariant 4), a code snapshot, the session's ending, and the client input that made it. A
new owner warms the projector with the events it took over (an open turn's start and deltas),
and :func:`backfill_records` projects a dead owner's unflushed events the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.codec import JSON
from protocol.messages import (
    CandidateSaid,
    CodeSnapshot,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    SessionEnded,
)
from server.sessions.event_writer import Records
from server.sessions.logged_event import LoggedEvent
from server.sessions.rows import EndingRow, EventRow, InputRow, SnapshotRow, TurnRow

__all__ = ["SessionProjector", "backfill_records"]


class SessionProjector:
    """One session's projection. State: the interviewer turns open so far (their start seq and
    the deltas delivered), dropped at their end, so it stays as small as one turn."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self._open: dict[str, tuple[int, list[str]]] = {}

    def warm(self, events: Iterable[LoggedEvent]) -> None:
        """Take in events already stored (a take-over), emitting nothing."""
        for logged in events:
            self._follow(logged)

    def rows(self, logged: LoggedEvent, input_id: str | None = None) -> Records:
        """The rows of one appended event (``logged.seq`` assigned), and of ``input_id``."""
        event = logged.event
        finished = self._follow(logged)
        records = Records(
            events=(
                EventRow(
                    self.session_id,
                    logged.seq,
                    logged.type,
                    event.ts,
                    logged.encoded(JSON).decode(),
                ),
            )
        )
        if input_id is not None:
            records.inputs = (InputRow(self.session_id, input_id, logged.seq),)
        match event:
            case CandidateSaid(turn_id=turn_id, text=text):
                row = TurnRow(self.session_id, turn_id, "candidate", text, logged.seq, None, None)
                records.turns = (row,)
            case InterviewerTurnEnd(turn_id=turn_id, stop_reason=reason) if finished:
                start, text = finished
                row = TurnRow(
                    self.session_id, turn_id, "interviewer", text, start, logged.seq, reason
                )
                records.turns = (row,)
            case CodeSnapshot(version=version, language=language, sha256=sha256, source=source):
                snapshot = SnapshotRow(
                    self.session_id, version, language, sha256, source, logged.seq
                )
                records.snapshots = (snapshot,)
            case SessionEnded(reason=reason):
                records.endings = (EndingRow(self.session_id, reason),)
        return records

    def _follow(self, logged: LoggedEvent) -> tuple[int, str] | None:
        """Track open turns; a turn's (start seq, text) when this event ends it."""
        match logged.event:
            case InterviewerTurnStart(turn_id=turn_id):
                self._open[turn_id] = (logged.seq, [])
            case InterviewerDelta(turn_id=turn_id, text=text) if turn_id in self._open:
                self._open[turn_id][1].append(text)
            case InterviewerTurnEnd(turn_id=turn_id) if turn_id in self._open:
                start, parts = self._open.pop(turn_id)
                return start, "".join(parts)
        return None


def backfill_records(
    session_id: str,
    events: list[LoggedEvent],
    *,
    after: int,
    inputs: dict[str, int] | None = None,
) -> Records:
    """The Postgres rows for the events after ``after``, for a new owner whose predecessor
    died before its write-behind reached Postgres: the events' own rows, and the client inputs
    that made them (``inputs`` maps input id to seq, as the appends recorded them in Redis).
    ``events`` must be the whole session, so turns can be reassembled."""
    projector = SessionProjector(session_id)
    rows = Records()
    rows.inputs = tuple(
        InputRow(session_id, input_id, seq)
        for input_id, seq in sorted((inputs or {}).items(), key=lambda item: item[1])
        if seq > after
    )
    parts: list[Records] = []
    for logged in events:
        if logged.seq <= after:
            projector.warm((logged,))
        else:
            parts.append(projector.rows(logged))
    rows.events = tuple(r for p in parts for r in p.events)
    rows.turns = tuple(r for p in parts for r in p.turns)
    rows.snapshots = tuple(r for p in parts for r in p.snapshots)
    rows.endings = tuple(r for p in parts for r in p.endings)
    return rows
