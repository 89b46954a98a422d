"""Every message of protocol v1 (PROTOCOL.md §3-§5) as a typed, immutable ``msgspec.Struct``.

Each frame class is tagged by its wire ``type`` (``tag_field="type"``), so encoding a struct
writes ``type`` first and decoding picks the class from it; :mod:`protocol.codec` does the
decoding. Contracts shared by all classes here:

- Construction is keyword-only and instances are frozen. Constructing a struct does not
  validate the ``Meta`` bounds; decoding does. Build frames with valid values.
- Optional fields default to ``UNSET`` and are then absent from the wire (never ``null``).
  Fields typed ``X | None`` (``SnapshotState.code``, ``SnapshotState.phase``) are required
  and sent as ``null`` when empty. Required booleans are always present.
- Unknown fields in decoded input are ignored, as the protocol requires.
- Instances are not tracked by Python's cycle collector (``gc=False``): messages are acyclic
  data (strings, numbers, lists and other messages, never a reference back), and a server
  holds many of them (each session's recent events), which would otherwise lengthen every
  full collection, a pause of the whole event loop.
- Integers are bounded to ``0 .. 2**53 - 1`` (exact in JavaScript, representable in both
  encodings); floats must be finite (JSON cannot carry NaN or infinity), so both encodings
  always carry exactly the same objects.

The frames are defined in :mod:`protocol.client_frames` (client to server),
:mod:`protocol.control_frames` and :mod:`protocol.session_events` (server to client), on the
pieces of :mod:`protocol.wire_types`; this module is their public face: import them from
here. ``ClientFrame``, ``ControlFrame``, ``SessionEvent`` and ``ServerFrame`` are the unions
to ``match`` on; the ``*_TYPES`` maps go from wire ``type`` to class.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeAlias

import msgspec

from protocol.client_frames import (
    Auth,
    CandidateMessage,
    ClientFrame,
    CodeRun,
    CodeUpdate,
    InterviewerInterrupt,
    Ping,
    SessionEnd,
    SessionResume,
    SessionStart,
    Watch,
)
from protocol.control_frames import (
    Ack,
    CodeState,
    ControlFrame,
    Error,
    Pong,
    Resumed,
    Snapshot,
    SnapshotState,
    TranscriptEntry,
    Welcome,
)
from protocol.session_events import (
    CandidateSaid,
    CodeResult,
    CodeSnapshot,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    Limits,
    PhaseChanged,
    ReportReady,
    Rubric,
    ScoreDelta,
    SessionEnded,
    SessionEvent,
    SessionStarted,
    TestOutcome,
)
from protocol.wire_types import (
    MAX_ID_LENGTH,
    MAX_LANGUAGE_LENGTH,
    MAX_SAFE_INTEGER,
    MAX_SESSION_ID_LENGTH,
    MAX_SOURCE_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_TOKEN_LENGTH,
    PROTOCOL_VERSION,
    EndReason,
    Example,
    PhaseName,
    Question,
    Role,
    RunStatus,
    StopReason,
    Track,
)

__all__ = [
    "ADMIN_FRAME_TYPES",
    "CLIENT_FRAME_TYPES",
    "CONTROL_FRAME_TYPES",
    "MAX_ID_LENGTH",
    "MAX_LANGUAGE_LENGTH",
    "MAX_SAFE_INTEGER",
    "MAX_SESSION_ID_LENGTH",
    "MAX_SOURCE_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_TOKEN_LENGTH",
    "PROTOCOL_VERSION",
    "SERVER_FRAME_TYPES",
    "SESSION_EVENT_TYPES",
    "Ack",
    "Auth",
    "CandidateMessage",
    "CandidateSaid",
    "ClientFrame",
    "CodeResult",
    "CodeRun",
    "CodeSnapshot",
    "CodeState",
    "CodeUpdate",
    "ControlFrame",
    "EndReason",
    "Error",
    "Example",
    "InterviewerDelta",
    "InterviewerInterrupt",
    "InterviewerTurnEnd",
    "InterviewerTurnStart",
    "Limits",
    "PhaseChanged",
    "PhaseName",
    "Ping",
    "Pong",
    "Question",
    "ReportReady",
    "Resumed",
    "Role",
    "Rubric",
    "RunStatus",
    "ScoreDelta",
    "ServerFrame",
    "SessionEnd",
    "SessionEnded",
    "SessionEvent",
    "SessionResume",
    "SessionStart",
    "SessionStarted",
    "Snapshot",
    "SnapshotState",
    "StopReason",
    "TestOutcome",
    "Track",
    "TranscriptEntry",
    "Watch",
    "Welcome",
    "wire_type",
]

ServerFrame: TypeAlias = ControlFrame | SessionEvent


# --- lookup tables ---------------------------------------------------------------------------


def wire_type(frame: msgspec.Struct | type[msgspec.Struct]) -> str:
    """The wire ``type`` of a frame or frame class. Raises ``TypeError`` for untagged structs."""
    cls = frame if isinstance(frame, type) else type(frame)
    tag = cls.__struct_config__.tag
    if not isinstance(tag, str) or cls.__struct_config__.tag_field != "type":
        raise TypeError(f"{cls.__name__} is not a frame")
    return tag


def _by_wire_type(*classes: type[msgspec.Struct]) -> Mapping[str, type[msgspec.Struct]]:
    return MappingProxyType({wire_type(cls): cls for cls in classes})


CLIENT_FRAME_TYPES: Mapping[str, type[msgspec.Struct]] = _by_wire_type(
    Auth,
    SessionStart,
    SessionResume,
    CandidateMessage,
    CodeUpdate,
    CodeRun,
    InterviewerInterrupt,
    SessionEnd,
    Ping,
    Watch,
)
"""Wire ``type`` to class, for every frame a client may send."""

ADMIN_FRAME_TYPES: Mapping[str, type[msgspec.Struct]] = _by_wire_type(Auth, Watch, Ping)
"""The subset of client frames an admin (watch) socket may send."""

CONTROL_FRAME_TYPES: Mapping[str, type[msgspec.Struct]] = _by_wire_type(
    Welcome, Ack, Error, Pong, Resumed, Snapshot
)
"""Wire ``type`` to class, for the unnumbered frames that belong to one socket."""

SESSION_EVENT_TYPES: Mapping[str, type[msgspec.Struct]] = _by_wire_type(
    SessionStarted,
    PhaseChanged,
    CandidateSaid,
    InterviewerTurnStart,
    InterviewerDelta,
    InterviewerTurnEnd,
    CodeSnapshot,
    CodeResult,
    ScoreDelta,
    SessionEnded,
    ReportReady,
)
"""Wire ``type`` to class, for the numbered events that make up a session's history."""

SERVER_FRAME_TYPES: Mapping[str, type[msgspec.Struct]] = MappingProxyType(
    {**CONTROL_FRAME_TYPES, **SESSION_EVENT_TYPES}
)
"""Wire ``type`` to class, for every frame a server may send."""
