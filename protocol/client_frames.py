"""The frames a client sends (PROTOCOL.md §3), each a typed, frozen ``msgspec.Struct``
tagged by its wire ``type``; :data:`ClientFrame` is their union. The contracts all frames
share are in :mod:`protocol.messages`, the package's public face for these classes.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec
from msgspec import UNSET, UnsetType

from protocol.wire_types import (
    CandidateText,
    FrameId,
    Language,
    LastSeq,
    SessionId,
    Source,
    Token,
    Track,
)

__all__ = [
    "Auth",
    "CandidateMessage",
    "ClientFrame",
    "CodeRun",
    "CodeUpdate",
    "InterviewerInterrupt",
    "Ping",
    "SessionEnd",
    "SessionResume",
    "SessionStart",
    "Watch",
]


class _ClientFrame(msgspec.Struct, gc=False, tag_field="type", kw_only=True, frozen=True):
    """Base of client frames. Any client frame may carry an ``id`` (§2); the server answers a
    frame with an ``id`` with ``ack {ref: id}`` or ``error {ref: id}``."""


class Auth(_ClientFrame, tag="auth", kw_only=True, frozen=True):
    """Authenticate (the first frame on a browser socket) or refresh the token before ``exp``."""

    token: Token
    id: FrameId | UnsetType = UNSET


class SessionStart(_ClientFrame, tag="session.start", kw_only=True, frozen=True):
    """Create a session owned by the caller and attach this socket. A repeated ``id`` returns
    the session created the first time."""

    id: FrameId
    track: Track
    language: Language | UnsetType = UNSET
    question_id: FrameId | UnsetType = UNSET


class SessionResume(_ClientFrame, tag="session.resume", kw_only=True, frozen=True):
    """Attach to a session; replay every event with ``seq > last_seq`` (0: from the start)."""

    session_id: SessionId
    last_seq: LastSeq
    id: FrameId | UnsetType = UNSET


class CandidateMessage(_ClientFrame, tag="candidate.message", kw_only=True, frozen=True):
    """A candidate utterance: typed, or a final speech transcript. Not empty."""

    id: FrameId
    text: CandidateText


class CodeUpdate(_ClientFrame, tag="code.update", kw_only=True, frozen=True):
    """The candidate's whole editor buffer (may be empty)."""

    id: FrameId
    language: Language
    source: Source


class CodeRun(_ClientFrame, tag="code.run", kw_only=True, frozen=True):
    """Run the latest code against the question's visible tests."""

    id: FrameId


class InterviewerInterrupt(_ClientFrame, tag="interviewer.interrupt", kw_only=True, frozen=True):
    """Stop the interviewer's current turn."""

    id: FrameId | UnsetType = UNSET


class SessionEnd(_ClientFrame, tag="session.end", kw_only=True, frozen=True):
    """The candidate ends the interview; the report phase starts."""

    id: FrameId


class Ping(_ClientFrame, tag="ping", kw_only=True, frozen=True):
    """Application-level ping for platforms that hide WebSocket pings; answered with ``pong``."""

    id: FrameId | UnsetType = UNSET


class Watch(_ClientFrame, tag="watch", kw_only=True, frozen=True):
    """Admin socket only: attach read-only, like ``session.resume``. An absent ``last_seq``
    means the same as 0: replay from the start."""

    session_id: SessionId
    last_seq: LastSeq | UnsetType = UNSET
    id: FrameId | UnsetType = UNSET


ClientFrame: TypeAlias = (
    Auth
    | SessionStart
    | SessionResume
    | CandidateMessage
    | CodeUpdate
    | CodeRun
    | InterviewerInterrupt
    | SessionEnd
    | Ping
    | Watch
)
