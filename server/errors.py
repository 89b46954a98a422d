"""The server's one exception root, and the one place that maps exceptions to wire codes.

Every error the server raises on purpose is a :class:`MentaraError` carrying a protocol
``ErrorCode`` and, where the socket must end, a ``CloseCode``. Anything else that escapes a
handler is unexpected: it is logged, the client sees ``internal`` (or close 1011) and no detail.
"""

from __future__ import annotations

from protocol.errors import CloseCode, ErrorCode


class MentaraError(Exception):
    """Root of the server's deliberate errors.

    ``message`` is safe to show to the client; ``retryable`` tells the client whether the same
    request may succeed later; ``close`` is set when the socket must be closed with that code.
    """

    code: ErrorCode = ErrorCode.INTERNAL
    retryable: bool = False
    close: CloseCode | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthorized(MentaraError):
    code = ErrorCode.UNAUTHORIZED
    close = CloseCode.UNAUTHENTICATED


class InvalidField(MentaraError):
    code = ErrorCode.INVALID_FIELD


class Forbidden(MentaraError):
    code = ErrorCode.FORBIDDEN


class NotFound(MentaraError):
    code = ErrorCode.NOT_FOUND


class RateLimited(MentaraError):
    code = ErrorCode.RATE_LIMITED
    retryable = True


class SandboxUnavailableError(MentaraError):
    """Code cannot run isolated on this deployment now (``code.run``): nothing ran."""

    code = ErrorCode.SANDBOX_UNAVAILABLE
    retryable = True


class FellBehind(MentaraError):
    """A socket fell too far behind its session's events: it must resume (4003)."""

    code = ErrorCode.RATE_LIMITED
    close = CloseCode.SLOW_CONSUMER


class HistoryLost(MentaraError):
    """History cannot close a socket's gap: it must resume and gets a snapshot (1011)."""

    retryable = True
    close = CloseCode.INTERNAL


class SessionDeleted(MentaraError):
    """The session was erased (``DELETE /v1/me``): the socket on it ends (4004)."""

    code = ErrorCode.NOT_FOUND
    close = CloseCode.SESSION_NOT_FOUND


class ServiceUnavailable(MentaraError):
    code = ErrorCode.INTERNAL
    retryable = True


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.INVALID_FIELD: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.SESSION_ENDED: 409,
    ErrorCode.HISTORY_EXPIRED: 410,
    ErrorCode.LLM_UNAVAILABLE: 503,
    ErrorCode.QUOTA_EXCEEDED: 402,
    ErrorCode.SANDBOX_UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}
