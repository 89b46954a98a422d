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

``ClientFrame``, ``ControlFrame``, ``SessionEvent`` and ``ServerFrame`` are the unions to
``match`` on; the ``*_TYPES`` maps go from wire ``type`` to class.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Final, Literal, TypeAlias

import msgspec
from msgspec import UNSET, Meta, UnsetType

from protocol.errors import ErrorCode

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

PROTOCOL_VERSION: Final = 1

MAX_ID_LENGTH = 128
MAX_TOKEN_LENGTH = 8192
MAX_TEXT_LENGTH = 20_000
MAX_SOURCE_LENGTH = 200_000
MAX_LANGUAGE_LENGTH = 32
MAX_SESSION_ID_LENGTH = 64
MAX_SAFE_INTEGER = 2**53 - 1

FrameId = Annotated[str, Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Token = Annotated[str, Meta(min_length=1, max_length=MAX_TOKEN_LENGTH)]
CandidateText = Annotated[str, Meta(min_length=1, max_length=MAX_TEXT_LENGTH)]
Source = Annotated[str, Meta(max_length=MAX_SOURCE_LENGTH)]
Language = Annotated[str, Meta(min_length=1, max_length=MAX_LANGUAGE_LENGTH)]
SessionId = Annotated[str, Meta(min_length=1, max_length=MAX_SESSION_ID_LENGTH)]
Seq = Annotated[int, Meta(ge=1, le=MAX_SAFE_INTEGER)]
"""The number of a session event: 1 for a session's first event."""
LastSeq = Annotated[int, Meta(ge=0, le=MAX_SAFE_INTEGER)]
"""The last event a client has seen; 0 means none."""
Count = Annotated[int, Meta(ge=0, le=MAX_SAFE_INTEGER)]
PositiveInt = Annotated[int, Meta(ge=1, le=MAX_SAFE_INTEGER)]
TimestampMs = Annotated[int, Meta(ge=0, le=MAX_SAFE_INTEGER)]
"""Server time, Unix milliseconds."""
FiniteFloat = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
Sha256Hex = Annotated[str, Meta(pattern="^[0-9a-f]{64}$")]

Track: TypeAlias = Literal["coding", "system_design", "behavioral"]
PhaseName: TypeAlias = Literal["intro", "problem", "coding", "followup", "wrapup"]
StopReason: TypeAlias = Literal["end_turn", "max_tokens", "interrupted", "error"]
RunStatus: TypeAlias = Literal["passed", "failed", "error", "timeout"]
EndReason: TypeAlias = Literal["candidate_ended", "time_up", "deleted", "error"]
Role: TypeAlias = Literal["candidate", "interviewer"]


# --- client to server (§3) -------------------------------------------------------------------


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


# --- server to client: control frames (§4) ---------------------------------------------------


class _ServerFrame(msgspec.Struct, gc=False, tag_field="type", kw_only=True, frozen=True):
    """Base of every server frame."""


class Welcome(_ServerFrame, tag="welcome", kw_only=True, frozen=True):
    """First frame after authentication. ``heartbeat_s`` is the server's ping interval."""

    protocol: Literal[1] = PROTOCOL_VERSION
    server: str
    heartbeat_s: Annotated[float, Meta(gt=0, le=MAX_SAFE_INTEGER)]
    max_frame_bytes: PositiveInt
    user_id: str


class Ack(_ServerFrame, tag="ack", kw_only=True, frozen=True):
    """The effect of client frame ``ref`` is durable; ``seq`` names the event it produced."""

    ref: str
    seq: Seq | UnsetType = UNSET


class Error(_ServerFrame, tag="error", kw_only=True, frozen=True):
    """A request failed, or a frame was rejected (``ref`` set when the frame had an ``id``).

    ``field`` is an extension of v1: the dotted path of the invalid field, for
    ``invalid_field``. ``retryable`` is always present.
    """

    code: ErrorCode
    message: str
    ref: str | UnsetType = UNSET
    retryable: bool
    field: str | UnsetType = UNSET


class Pong(_ServerFrame, tag="pong", kw_only=True, frozen=True):
    """Answer to ``ping``; echoes the ping's ``id`` when it had one."""

    id: str | UnsetType = UNSET


class Resumed(_ServerFrame, tag="resumed", kw_only=True, frozen=True):
    """Attached; ``replayed`` events from history follow, then live events."""

    session_id: SessionId
    replayed: Count


class Example(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """A worked example shown with a question."""

    input: str
    output: str
    explanation: str | UnsetType = UNSET


class Question(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """The interview question as shown to the candidate."""

    id: str
    title: str
    prompt: str
    examples: list[Example]


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


class Snapshot(_ServerFrame, tag="snapshot", kw_only=True, frozen=True):
    """Sent instead of a replay when history no longer reaches ``last_seq + 1``; live events
    follow from ``seq + 1``."""

    session_id: SessionId
    seq: Seq
    state: SnapshotState


ControlFrame: TypeAlias = Welcome | Ack | Error | Pong | Resumed | Snapshot


# --- server to client: session events (§4) ---------------------------------------------------


class _SessionEvent(_ServerFrame, kw_only=True, frozen=True):
    """Base of session events: ``seq`` starts at 1 and increases by exactly 1 per event of a
    session; ``ts`` is server time in Unix milliseconds."""

    seq: Seq
    ts: TimestampMs


class Rubric(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """Scored dimensions and the score range ``[min, max]``."""

    dimensions: list[str]
    scale: Annotated[list[FiniteFloat], Meta(min_length=2, max_length=2)]


class Limits(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """Session limits."""

    duration_s: PositiveInt


class SessionStarted(_SessionEvent, tag="session.started", kw_only=True, frozen=True):
    """A session's first event."""

    session_id: SessionId
    track: Track
    language: str
    question: Question
    rubric: Rubric
    limits: Limits


class PhaseChanged(_SessionEvent, tag="phase", kw_only=True, frozen=True):
    """The interview entered phase ``name``; ``deadline_ts`` (Unix ms) when it is timed."""

    name: PhaseName
    deadline_ts: TimestampMs | UnsetType = UNSET


class CandidateSaid(_SessionEvent, tag="candidate.message", kw_only=True, frozen=True):
    """A candidate utterance, accepted into the transcript."""

    turn_id: str
    text: str


class InterviewerTurnStart(_SessionEvent, tag="interviewer.turn.start", kw_only=True, frozen=True):
    """The interviewer starts speaking."""

    turn_id: str


class InterviewerDelta(_SessionEvent, tag="interviewer.delta", kw_only=True, frozen=True):
    """One or more tokens of the interviewer's turn. The concatenated ``text`` of a turn's
    deltas is exactly the turn as persisted."""

    turn_id: str
    text: str


class InterviewerTurnEnd(_SessionEvent, tag="interviewer.turn.end", kw_only=True, frozen=True):
    """The interviewer's turn ended, and why."""

    turn_id: str
    stop_reason: StopReason


class CodeSnapshot(_SessionEvent, tag="code.snapshot", kw_only=True, frozen=True):
    """A new version of the candidate's code; ``sha256`` is the lowercase hex digest of
    ``source`` encoded as UTF-8."""

    version: Count
    language: Language
    sha256: Sha256Hex
    source: Source


class TestOutcome(msgspec.Struct, gc=False, kw_only=True, frozen=True):
    """The outcome of one visible test of a code run."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    passed: bool
    message: str | UnsetType = UNSET


class CodeResult(_SessionEvent, tag="code.result", kw_only=True, frozen=True):
    """The result of running code ``version``; ``stdout_tail`` is the end of its output."""

    run_id: str
    version: Count
    status: RunStatus
    tests: list[TestOutcome]
    stdout_tail: str
    duration_ms: Count


class ScoreDelta(_SessionEvent, tag="score.delta", kw_only=True, frozen=True):
    """Dimension ``dimension`` moved by ``delta`` to ``score``; ``evidence`` names the
    ``seq`` of the events that justified it."""

    dimension: str
    delta: FiniteFloat
    score: FiniteFloat
    reason: str
    evidence: list[Seq]


class SessionEnded(_SessionEvent, tag="session.ended", kw_only=True, frozen=True):
    """The session ended, and why."""

    reason: EndReason


class ReportReady(_SessionEvent, tag="report.ready", kw_only=True, frozen=True):
    """The report is ready (``GET /v1/sessions/{id}/report``)."""

    report_id: str
    overall: FiniteFloat
    summary: str


SessionEvent: TypeAlias = (
    SessionStarted
    | PhaseChanged
    | CandidateSaid
    | InterviewerTurnStart
    | InterviewerDelta
    | InterviewerTurnEnd
    | CodeSnapshot
    | CodeResult
    | ScoreDelta
    | SessionEnded
    | ReportReady
)

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
