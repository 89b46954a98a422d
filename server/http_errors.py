"""HTTP error responses as PROTOCOL.md §7: ``{"error": {"code", "message"}}`` with the status."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol.errors import ErrorCode
from server.errors import HTTP_STATUS, MentaraError

log = logging.getLogger("mentara.http")

_BY_STATUS = {
    400: ErrorCode.INVALID_FIELD,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.NOT_FOUND,
    413: ErrorCode.TOO_LARGE,
    429: ErrorCode.RATE_LIMITED,
}


def error_response(status: int, code: ErrorCode | str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": str(code), "message": message}}, status_code=status)


async def on_mentara_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MentaraError)
    return error_response(HTTP_STATUS.get(exc.code, 500), exc.code, exc.message)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _BY_STATUS.get(exc.status_code, ErrorCode.INTERNAL)
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return error_response(exc.status_code, code, message)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, ErrorCode.INTERNAL, "internal error")


EXCEPTION_HANDLERS = {
    MentaraError: on_mentara_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
