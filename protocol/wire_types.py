"""The pieces protocol v1's frames are made of (PROTOCOL.md §2-§5): bounds, bounded scalar
types, the closed sets of names, the structs a frame nests, and the base of server frames.

The frames themselves are in :mod:`protocol.client_frames`, :mod:`protocol.control_frames`
and :mod:`protocol.session_events`; :mod:`protocol.messages` is the public face of all of
them and states the contracts they share. Integers are bounded to ``0 .. 2**53 - 1`` (exact
in JavaScript, representable in both encodings); floats must be finite (JSON cannot carry
NaN or infinity). The bounds hold when decoding, not when constructing.
"""

from __future__ import annotations

import sys
from typing import Annotated, Final, Literal, TypeAlias

import msgspec
from msgspec import UNSET, Meta, UnsetType

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_LANGUAGE_LENGTH",
    "MAX_SAFE_INTEGER",
    "MAX_SESSION_ID_LENGTH",
    "MAX_SOURCE_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_TOKEN_LENGTH",
    "PROTOCOL_VERSION",
    "CandidateText",
    "Count",
    "EndReason",
    "Example",
    "FiniteFloat",
    "FrameId",
    "Language",
    "LastSeq",
    "PhaseName",
    "PositiveInt",
    "Question",
    "Role",
    "RunStatus",
    "Seq",
    "ServerFrameBase",
    "SessionId",
    "Sha256Hex",
    "Source",
    "StopReason",
    "TimestampMs",
    "Token",
    "Track",
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


class ServerFrameBase(msgspec.Struct, gc=False, tag_field="type", kw_only=True, frozen=True):
    """Base of every server frame."""


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
