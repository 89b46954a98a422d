"""Wire error codes, WebSocket close codes, and the protocol package's exceptions.

The codes are the ones PROTOCOL.md v1 §6 defines; their string and integer values are part of
the contract and never change. :class:`ProtocolError` is the one root of every exception this
package raises on purpose.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` frame (and of an HTTP error body)."""

    BAD_FRAME = "bad_frame"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    SESSION_ENDED = "session_ended"
    HISTORY_EXPIRED = "history_expired"
    LLM_UNAVAILABLE = "llm_unavailable"
    QUOTA_EXCEEDED = "quota_exceeded"
    SANDBOX_UNAVAILABLE = "sandbox_unavailable"
    INTERNAL = "internal"


class CloseCode(IntEnum):
    """WebSocket close codes the server uses, with what a client should do on each (§6)."""

    NORMAL = 1000
    """Normal closure: stop."""
    GOING_AWAY = 1001
    """Deploy or shutdown: reconnect and resume."""
    POLICY = 1008
    """Persistent abuse or forbidden: stop."""
    TOO_LARGE = 1009
    """A frame was larger than ``max_frame_bytes``: fix and reconnect."""
    INTERNAL = 1011
    """Internal error: reconnect with backoff and resume."""
    OVERLOADED = 1013
    """Overloaded: reconnect with backoff and resume."""
    UNAUTHENTICATED = 4001
    """Not authenticated, or the token expired: get a fresh token and reconnect."""
    SLOW_CONSUMER = 4003
    """The socket fell too far behind: reconnect and resume."""
    SESSION_NOT_FOUND = 4004
    """Session not found or deleted: stop."""


class ProtocolError(Exception):
    """Root of every exception the ``protocol`` package raises on purpose."""


class FrameError(ProtocolError):
    """A frame could not be decoded into a known, valid message.

    Raised by the codecs, and only with one of three codes:

    - ``bad_frame``: not decodable in the socket's encoding, not a map with string keys, or
      no string ``type``;
    - ``unknown_type``: a ``type`` this side does not know;
    - ``invalid_field``: a known type whose fields fail validation.

    Attributes:
        code: one of the three codes above.
        message: precise, human-readable and safe to send to the client as ``error.message``
            (it names fields and limits, never echoes the offending value).
        field: dotted path of the offending field (``"text"``,
            ``"question.examples[0].input"``) for ``invalid_field``; ``None`` otherwise.
        ref: the frame's ``id`` whenever the frame was a map whose ``id`` is a string, even if
            another field is invalid, so the server can answer ``error {ref}``.
        frame_type: the frame's ``type`` whenever it was a string (truncated to 64 characters).
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        field: str | None = None,
        ref: str | None = None,
        frame_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.ref = ref
        self.frame_type = frame_type

    def __repr__(self) -> str:
        return (
            f"FrameError(code={self.code.value!r}, message={self.message!r}, "
            f"field={self.field!r}, ref={self.ref!r}, frame_type={self.frame_type!r})"
        )
