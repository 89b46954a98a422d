"""Development sign-in: ``POST /v1/dev/token`` mints a candidate token for a user name.

The route exists only while the server signs its own development tokens, that is when the
configured HS256 secret is the one ``mentara serve`` generated into the data folder
(``<data dir>/jwt-secret``) and no JWKS is configured (:func:`dev_signing_secret`). With an
operator-set ``MENTARA_JWT_SECRET`` or an identity provider's JWKS the app has no such route
at all (404), so production never hands out tokens.

``GET /v1/dev/token`` answers ``{"available": true}`` (the page asks it whether to offer the
development sign-in). ``POST`` request: ``{"user": "<name>"}`` (1 to 64 of ``A-Z a-z 0-9 . _ @ -``). Response (201):
``{"token", "user_id", "expires_at"}`` (Unix seconds). The token is a candidate's (never the
admin role), valid for :data:`DEV_TOKEN_TTL_S`.
"""

from __future__ import annotations

import hmac
import re
import time
from typing import TYPE_CHECKING, Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.data_folder import JWT_SECRET_FILE
from server.dev_tokens import mint_dev_token
from server.errors import InvalidField
from server.http_body import read_body

if TYPE_CHECKING:
    from server.config import Settings
    from server.resources import Resources

DEV_TOKEN_TTL_S: Final = 4 * 3600
"""Long enough for a whole interview and its report."""

_MAX_BODY: Final = 1024
_USER: Final = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def dev_signing_secret(settings: Settings) -> str | None:
    """The secret if this server signs its own development tokens, else ``None``: the
    configured secret must equal the one generated into the data folder, and no JWKS set."""
    if settings.jwks_url is not None or not settings.jwt_secret:
        return None
    try:
        stored = (settings.data_dir / JWT_SECRET_FILE).read_text().strip()
    except OSError:
        return None
    if not stored or not hmac.compare_digest(stored.encode(), settings.jwt_secret.encode()):
        return None
    return settings.jwt_secret


async def dev_token_available(request: Request) -> Response:
    return JSONResponse({"available": True}, headers={"Cache-Control": "no-store"})


class DevTokenRequest(msgspec.Struct, forbid_unknown_fields=False):
    user: str


async def dev_token(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    settings = resources.settings
    secret = dev_signing_secret(settings)
    if secret is None:  # the secret file changed since start-up: refuse as if absent
        return JSONResponse(
            {"error": {"code": "not_found", "message": "no development sign-in here"}},
            status_code=404,
        )
    raw = await read_body(request, _MAX_BODY)
    try:
        body = msgspec.json.decode(raw, type=DevTokenRequest)
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise InvalidField('the body must be JSON: {"user": "<name>"}', field="user") from None
    if not _USER.fullmatch(body.user):
        raise InvalidField(
            "user must be 1 to 64 letters, digits or . _ @ -", field="user"
        ) from None
    now = int(time.time())
    extra: dict[str, Any] = {}
    if settings.jwt_issuer:
        extra["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        extra["aud"] = settings.jwt_audience
    if settings.jwt_authorized_parties:
        extra["azp"] = settings.jwt_authorized_parties[0]
    token = mint_dev_token(
        secret,
        body.user,
        ttl_s=DEV_TOKEN_TTL_S,
        role_claim=settings.role_claim,
        admin_role=settings.admin_role,
        now=now,
        extra_claims=extra,
    )
    return JSONResponse(
        {"token": token, "user_id": body.user, "expires_at": now + DEV_TOKEN_TTL_S},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


def dev_token_routes(settings: Settings) -> list[Route]:
    """``POST /v1/dev/token`` when this server signs its own development tokens, else none."""
    if dev_signing_secret(settings) is None:
        return []
    return [
        Route("/v1/dev/token", dev_token_available, methods=["GET"]),
        Route("/v1/dev/token", dev_token, methods=["POST"]),
    ]
