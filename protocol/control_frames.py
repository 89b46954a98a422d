"""The control frames a server sends (PROTOCOL.md §4): unnumbered, belonging to one socket
(welcome, ack, error, pong, resumed, snapshot), each a typed, frozen ``msgspec.Struct``
tagged by its wire ``type``, and the structs a snapshot nests; :data:`ControlFrame` is
their union. The contracts all frames share are in :mod:`protocol.messages`, the package's
public face for these classes.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

import msgspec
from msgspec import UNSET, Meta, UnsetType

from protocol.errors import ErrorCode
from protocol.wire_types import (
    MAX_SAFE_INTEGER,
    PROTOCOL_VERSION,
    Count,
    FiniteFloat,
    Language,
    PhaseName,
    PositiveInt,
    Question,
    Role,
    Seq,
    ServerFrameBase,
    SessionId,
    Source,
    Track,
)

__all__ = [
    "Ack",
    "CodeState",
    "ControlFrame",
    "Error",
    "Pong",
    "Resumed",
    "Snapshot",
    "SnapshotState",
    "TranscriptEntry",
    "Welcome",
]


class Welcome(ServerFrameBase, tag="welcome", kw_only=True, frozen=True):
    """First frame after authentication. ``heartbeat_s`` is the server's ping interval."""

    protocol: Literal[1] = PROTOCOL_VERSION
    server: str
    heartbeat_s: Annotated[float, Meta(gt=0, le=MAX_SAFE_INTEGER)]
    max_frame_bytes: PositiveInt
    user_id: str


class Ack(ServerFrameBase, tag="ack", kw_only=True, frozen=True):
    """The effect of client frame ``ref`` is durable; ``seq`` names the event it produced."""

    ref: str
    seq: Seq | UnsetType = UNSET


class Error(ServerFrameBase, tag="error", kw_only=True, frozen=True):
    """A request failed, or a frame was rejected (``ref`` set when the frame had an ``id``).

    ``field`` is an extension of v1: the dotted path of the invalid field, for
    ``invalid_field``. ``retryable`` is always present.
    """

    code: ErrorCode
    message: str
    ref: str | UnsetType = UNSET
    retryable: bool
    field: str | UnsetType = UNSET


class Pong(ServerFrameBase, tag="pong", kw_only=True, frozen=True):
    """Answer to ``ping``; echoes the ping's ``id`` when it had one."""

    id: str | UnsetType = UNSET


class Resumed(ServerFrameBase, tag="resumed", kw_only=True, frozen=True):
    """Attached; ``replayed`` events from history follow, then live events."""

    session_id: SessionId
    replayed: Count


class TranscriptEntry(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """One turn of the transcript in a snapshot; ``seq`` is the event that completed it."""

    turn_id: str
    role: Role
    text: str
    seq: Seq


class CodeState(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """The latest code snapshot."""

    version: Count
    language: Language
    source: Source


class SnapshotState(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """A session's state as of one event (§5). ``phase`` is ``None`` before the first
    ``phase`` event, ``code`` before the first code snapshot. ``status`` is the server's
    session status (such as ``"active"`` or ``"ended"``)."""

    status: str
    track: Track
    question: Question
    phase: PhaseName | None
    transcript: list[TranscriptEntry]
    code: CodeState | None
    scores: dict[str, FiniteFloat]


class Snapshot(ServerFrameBase, tag="snapshot", kw_only=True, frozen=True):
    """Sent instead of a replay when history no longer reaches ``last_seq + 1``; live events
    follow from ``seq + 1``."""

    session_id: SessionId
    seq: Seq
    state: SnapshotState


ControlFrame: TypeAlias = Welcome | Ack | Error | Pong | Resumed | Snapshot
