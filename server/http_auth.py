"""Who is calling an HTTP route: the bearer token, verified (the same checks as a socket's)."""

from __future__ import annotations

from starlette.requests import Request

from server.auth import Principal, token_from_authorization_header
from server.errors import Forbidden, Unauthorized
from server.resources import Resources

__all__ = ["authenticate", "authenticate_admin"]


async def authenticate(request: Request) -> Principal:
    """The caller, from ``Authorization: Bearer``; raises Unauthorized (401)."""
    token = token_from_authorization_header(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("send Authorization: Bearer <token>")
    resources: Resources = request.app.state.resources
    return await resources.verifier.verify(token)


async def authenticate_admin(request: Request) -> Principal:
    """The caller if they are an admin; raises Unauthorized (401) or Forbidden (403)."""
    principal = await authenticate(request)
    if not principal.is_admin:
        raise Forbidden("admin rights required")
    return principal
