"""Stream integrity: what one candidate checks about every event of its session.

A :class:`StreamChecker` follows one session's events as one virtual candidate receives them,
across all its sockets (first connection, resumes, snapshots). Pure: no I/O, no clock.

What it reports, as :class:`IntegrityIssue` kinds (each one fails a release check):

- ``gap``: an event's ``seq`` skips ahead of the last one received + 1.
- ``duplicate``: an event's ``seq`` is not above the last one received (a repeat, or out of
  order); or the server applied one candidate input twice (two ``candidate.message`` events
  for one message sent).
- ``resume_seam``: the first event after a ``session.resume`` is not ``last_seq + 1`` (a gap
  or a duplicate at the seam, reported once as this kind).
- ``foreign_event``: an event or control frame that names another session, a candidate
  message this candidate never sent, or a code snapshot of a buffer it never sent.
- ``malformed_stream``: an event inconsistent with the stream itself: a delta or turn end
  for a turn that is not open, a turn id used twice, a code snapshot whose ``sha256`` is not
  its source's.
- ``transcript_mismatch``: what the server stored (``GET /v1/sessions/{id}``) differs from
  what was streamed: a turn's text, a streamed turn not stored, a stored turn never streamed.

Turns whose events were not all received (a gap, a snapshot in the middle of them) are not
compared with the stored transcript: they are counted as unverified instead, so one lost event
is reported once, as a gap, not again as a mismatch.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from protocol.messages import (
    CandidateSaid,
    CodeSnapshot,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    Resumed,
    SessionEvent,
    SessionStarted,
    Snapshot,
)

__all__ = [
    "INTEGRITY_KINDS",
    "MAX_KEPT_ISSUES",
    "IntegrityIssue",
    "IssueKind",
    "StreamChecker",
    "TranscriptCheck",
    "TurnText",
]

IssueKind = Literal[
    "gap",
    "duplicate",
    "resume_seam",
    "foreign_event",
    "malformed_stream",
    "transcript_mismatch",
]
INTEGRITY_KINDS: Final[tuple[IssueKind, ...]] = (
    "gap",
    "duplicate",
    "resume_seam",
    "foreign_event",
    "malformed_stream",
    "transcript_mismatch",
)
MAX_KEPT_ISSUES = 100
_MAX_MISSING_RANGES = 1000
_EXCERPT = 60


@dataclass(frozen=True)
class IntegrityIssue:
    """One integrity error: its kind, the session, the event's seq where one applies."""

    kind: IssueKind
    detail: str
    session_id: str | None = None
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "detail": self.detail,
            "session_id": self.session_id,
            "seq": self.seq,
        }


@dataclass
class TurnText:
    """A turn as streamed: its text so far and whether every event of it was received."""

    role: Literal["interviewer", "candidate"]
    start_seq: int | None
    text: str = ""
    ended: bool = False
    complete: bool = True
    """False when part of the turn may be missing (gap, snapshot): it is not compared."""


@dataclass(frozen=True)
class TranscriptCheck:
    """The outcome of comparing the stored transcript with the stream."""

    issues: list[IntegrityIssue]
    verified: int
    """Turns whose stored text was compared with the streamed text and matched."""
    unverified: int
    """Turns that could not be compared (part of them not received)."""


def _excerpt(text: str) -> str:
    return repr(text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…")


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StreamChecker:
    """Checks one session's stream as one candidate receives it; see the module docstring.

    Feed it, in arrival order, every session event (:meth:`on_event`) and the ``resumed`` and
    ``snapshot`` control frames (:meth:`on_resumed`, :meth:`on_snapshot`); call
    :meth:`begin_resume` before sending ``session.resume``; register every candidate message
    and code buffer before sending it (:meth:`expect_candidate_text`, :meth:`expect_code`).
    Each ``on_*`` call returns the issues it found (also appended to ``issues``).
    ``session_id`` is bound by the first ``session.started`` (or given up front).
    """

    session_id: str | None = None
    last_seq: int = 0
    """The highest seq received: what ``session.resume`` sends as ``last_seq``."""
    issues: list[IntegrityIssue] = field(default_factory=list)
    """The first :data:`MAX_KEPT_ISSUES` issues found by the ``on_*`` calls."""
    issue_counts: Counter[IssueKind] = field(default_factory=Counter)
    """Every issue found by the ``on_*`` calls, by kind."""
    turns: dict[str, TurnText] = field(default_factory=dict)
    events: int = 0
    _seam: bool = False
    _snapshot_seq: int = 0
    _missing: list[tuple[int, int]] = field(default_factory=list)
    _missing_overflow: bool = False
    _said: Counter[str] = field(default_factory=Counter)
    _said_ever: set[str] = field(default_factory=set)
    _code: set[str] = field(default_factory=set)

    # -- what the candidate sends ------------------------------------------------------------

    def expect_candidate_text(self, text: str) -> None:
        """This candidate is sending a new ``candidate.message`` with ``text`` (once per id:
        not again when the same frame is re-sent after a reconnect)."""
        self._said[text] += 1
        self._said_ever.add(text)

    def expect_code(self, source: str) -> None:
        """This candidate is sending a ``code.update`` with ``source``."""
        self._code.add(_sha256(source))

    # -- what the server sends ---------------------------------------------------------------

    def begin_resume(self) -> None:
        """A ``session.resume {last_seq: self.last_seq}`` is about to be sent: the next event
        must be ``last_seq + 1``."""
        self._seam = True

    def on_resumed(self, frame: Resumed) -> list[IntegrityIssue]:
        if self.session_id is not None and frame.session_id != self.session_id:
            return self._report("foreign_event", f"resumed names session {frame.session_id}")
        return []

    def on_snapshot(self, frame: Snapshot) -> list[IntegrityIssue]:
        """History did not reach back: the state as of ``frame.seq`` replaces the replay."""
        self._seam = False
        if self.session_id is not None and frame.session_id != self.session_id:
            return self._report(
                "foreign_event", f"snapshot names session {frame.session_id}", frame.seq
            )
        found: list[IntegrityIssue] = []
        if frame.seq < self.last_seq:
            found += self._report(
                "duplicate",
                f"snapshot at seq {frame.seq} is behind the last event received ({self.last_seq})",
                frame.seq,
            )
            return found
        for turn in self.turns.values():
            if not turn.ended:
                turn.complete = False  # its deltas up to frame.seq came only as a snapshot
        for entry in frame.state.transcript:
            turn = TurnText(entry.role, entry.seq, entry.text, ended=True)
            self.turns[entry.turn_id] = turn
        self._snapshot_seq = frame.seq
        self.last_seq = frame.seq
        return found

    def on_event(self, event: SessionEvent) -> list[IntegrityIssue]:
        self.events += 1
        seq = event.seq
        expected = self.last_seq + 1
        seam, self._seam = self._seam, False
        if seq != expected:
            if seq > expected:
                what = f"gap: expected seq {expected}, got {seq}"
                kind: IssueKind = "gap"
                self._mark_missing(expected, seq - 1)
                self.last_seq = seq
            else:
                what = f"duplicate: seq {seq} after {self.last_seq}"
                kind = "duplicate"
            found = self._report("resume_seam" if seam else kind, what, seq)
            if kind == "duplicate":
                return found  # already applied: do not count its text twice
        else:
            found = []
            self.last_seq = seq
        return found + self._apply(event)

    # -- the stored transcript ---------------------------------------------------------------

    def compare_transcript(self, stored: Iterable[Mapping[str, Any]]) -> TranscriptCheck:
        """Compare the server's stored turns (rows with ``turn_id``, ``role``, ``text``,
        ``seq``, ``end_seq``) with the streamed ones. Call once the session has ended.

        Changes nothing (it may be called again on a fresher read); the issues it finds are
        in the result only, not in ``issues``."""
        found: list[IntegrityIssue] = []
        verified = unverified = 0
        stored_ids: set[str] = set()
        for row in stored:
            turn_id = str(row["turn_id"])
            stored_ids.add(turn_id)
            text = str(row["text"])
            streamed = self.turns.get(turn_id)
            if streamed is None:
                if self._fully_received(row.get("seq"), row.get("end_seq")):
                    found.append(
                        self._issue(
                            "transcript_mismatch",
                            f"stored {row['role']} turn {turn_id} {_excerpt(text)} was never streamed",
                            row.get("seq"),
                        )
                    )
                else:
                    unverified += 1
                continue
            if not streamed.complete or not streamed.ended:
                unverified += 1
                continue
            if streamed.text != text:
                at = _first_difference(streamed.text, text)
                found.append(
                    self._issue(
                        "transcript_mismatch",
                        f"turn {turn_id}: streamed {len(streamed.text)} chars, stored {len(text)}; "
                        f"first difference at {at}: streamed {_excerpt(streamed.text[at:])}, "
                        f"stored {_excerpt(text[at:])}",
                        row.get("seq"),
                    )
                )
            else:
                verified += 1
        for turn_id, turn in self.turns.items():
            if turn_id not in stored_ids and turn.ended and turn.complete:
                found.append(
                    self._issue(
                        "transcript_mismatch",
                        f"streamed {turn.role} turn {turn_id} {_excerpt(turn.text)} is not stored",
                        turn.start_seq,
                    )
                )
        return TranscriptCheck(found, verified, unverified)

    # -- internals ---------------------------------------------------------------------------

    def _apply(self, event: SessionEvent) -> list[IntegrityIssue]:
        seq = event.seq
        match event:
            case SessionStarted(session_id=session_id):
                if self.session_id is None:
                    self.session_id = session_id
                elif session_id != self.session_id:
                    return self._report(
                        "foreign_event", f"session.started of session {session_id}", seq
                    )
            case InterviewerTurnStart(turn_id=turn_id):
                if turn_id in self.turns:
                    self.turns[turn_id].complete = False
                    return self._report("malformed_stream", f"turn {turn_id} started twice", seq)
                self.turns[turn_id] = TurnText("interviewer", seq)
            case InterviewerDelta(turn_id=turn_id, text=text):
                turn = self.turns.get(turn_id)
                if turn is None or turn.ended:
                    return self._orphan(turn_id, "interviewer.delta", seq, text)
                turn.text += text
            case InterviewerTurnEnd(turn_id=turn_id):
                turn = self.turns.get(turn_id)
                if turn is None or turn.ended:
                    return self._orphan(turn_id, "interviewer.turn.end", seq, "")
                turn.ended = True
            case CandidateSaid(turn_id=turn_id, text=text):
                return self._candidate_said(turn_id, text, seq)
            case CodeSnapshot(sha256=digest, source=source, version=version):
                if _sha256(source) != digest:
                    return self._report(
                        "malformed_stream",
                        f"code.snapshot v{version}: sha256 is not its source's",
                        seq,
                    )
                if digest not in self._code:
                    return self._report(
                        "foreign_event", f"code.snapshot v{version} of a buffer never sent", seq
                    )
            case _:
                pass
        return []

    def _candidate_said(self, turn_id: str, text: str, seq: int) -> list[IntegrityIssue]:
        if text not in self._said_ever:
            return self._report(
                "foreign_event", f"candidate.message never sent: {_excerpt(text)}", seq
            )
        if self._said[text] <= 0:
            return self._report(
                "duplicate", f"candidate.message applied twice: {_excerpt(text)}", seq
            )
        self._said[text] -= 1
        if turn_id in self.turns:
            return self._report("malformed_stream", f"turn {turn_id} used twice", seq)
        self.turns[turn_id] = TurnText("candidate", seq, text, ended=True)
        return []

    def _orphan(self, turn_id: str, what: str, seq: int, text: str) -> list[IntegrityIssue]:
        if self._snapshot_seq and turn_id not in self.turns:
            # Started before the snapshot: its start is in the state, its deltas are not.
            self.turns[turn_id] = TurnText("interviewer", None, text, complete=False)
            if what == "interviewer.turn.end":
                self.turns[turn_id].ended = True
            return []
        if self._missing or self._missing_overflow:
            turn = self.turns.setdefault(turn_id, TurnText("interviewer", None, complete=False))
            turn.complete = False
            if what == "interviewer.turn.end":
                turn.ended = True
            return []  # its start may be in a gap, which is reported already
        state = "ended" if turn_id in self.turns else "never started"
        return self._report("malformed_stream", f"{what} for turn {turn_id}, {state}", seq)

    def _mark_missing(self, first: int, last: int) -> None:
        for turn in self.turns.values():
            if not turn.ended:
                turn.complete = False
        if len(self._missing) >= _MAX_MISSING_RANGES:
            self._missing_overflow = True
            return
        self._missing.append((first, last))

    def _fully_received(self, seq: object, end_seq: object) -> bool:
        """Whether every event from ``seq`` to ``end_seq`` was received one by one."""
        if not isinstance(seq, int):
            return False
        last = end_seq if isinstance(end_seq, int) else seq
        if self._missing_overflow or last > self.last_seq or seq <= self._snapshot_seq:
            return False
        return not any(first <= last and seq <= end for first, end in self._missing)

    def _issue(self, kind: IssueKind, detail: str, seq: object = None) -> IntegrityIssue:
        return IntegrityIssue(kind, detail, self.session_id, seq if isinstance(seq, int) else None)

    def _report(self, kind: IssueKind, detail: str, seq: int | None = None) -> list[IntegrityIssue]:
        issue = self._issue(kind, detail, seq)
        self.issue_counts[kind] += 1
        if len(self.issues) < MAX_KEPT_ISSUES:
            self.issues.append(issue)
        return [issue]
