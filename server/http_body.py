"""Request bodies read with a bound: a hostile client cannot make the server buffer more.

:func:`read_body` refuses (413 ``too_large``) as soon as the body is known to exceed its
limit: from ``Content-Length`` before reading anything, else while reading a chunked body.
"""

from __future__ import annotations

from starlette.requests import Request

from protocol.errors import ErrorCode
from server.errors import MentaraError


class BodyTooLarge(MentaraError):
    code = ErrorCode.TOO_LARGE


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes; :class:`BodyTooLarge` past that."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
