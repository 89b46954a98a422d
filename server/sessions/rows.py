"""The rows a session's events become in Postgres, named (the write-behind and the store
speak these; :mod:`server.sessions.projector` derives them from events)."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["EndingRow", "EventRow", "InputRow", "SnapshotRow", "TurnRow"]


class EventRow(NamedTuple):
    """``session_events``: the event as streamed (``body`` is its wire JSON)."""

    session_id: str
    seq: int
    type: str
    ts: int
    body: str


class InputRow(NamedTuple):
    """``session_inputs``: a client input id and the seq of the event it made (None: it made
    none, e.g. an identical ``code.update``)."""

    session_id: str
    input_id: str
    seq: int | None


class TurnRow(NamedTuple):
    """``transcript_turns``: a candidate message (``end_seq`` and ``stop_reason`` None) or a
    whole interviewer turn, from its ``turn.start`` to its ``turn.end``."""

    session_id: str
    turn_id: str
    role: str
    text: str
    start_seq: int
    end_seq: int | None
    stop_reason: str | None


class SnapshotRow(NamedTuple):
    """``code_snapshots``: one version of the candidate's code."""

    session_id: str
    version: int
    language: str
    sha256: str
    source: str
    seq: int


class EndingRow(NamedTuple):
    """The session ended, for this reason (``sessions.status``, ``end_reason``)."""

    session_id: str
    reason: str
