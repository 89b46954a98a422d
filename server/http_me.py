"""HTTP about the caller: ``POST /v1/me/push-tokens`` (PROTOCOL.md §7)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.errors import InvalidField
from server.http_sessions import authenticate

if TYPE_CHECKING:
    from server.app import Resources

_MAX_BODY = 4096


class PushTokenRegistration(msgspec.Struct, forbid_unknown_fields=False):
    token: str = msgspec.field()
    platform: Literal["ios", "android", "web"] = "ios"


async def register_push_token(request: Request) -> Response:
    principal = await authenticate(request)
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise InvalidField("body too large", field="token")
    try:
        body = msgspec.json.decode(raw, type=PushTokenRegistration)
    except msgspec.ValidationError as exc:
        field = str(exc).rsplit("$.", 1)[-1].rstrip("`") if "$." in str(exc) else "token"
        raise InvalidField(f"invalid push token registration: {exc}", field=field) from None
    except msgspec.DecodeError:
        raise InvalidField("the body must be JSON: {token, platform}", field="token") from None
    if not 1 <= len(body.token) <= 512:
        raise InvalidField("token must be 1 to 512 characters", field="token")
    resources: Resources = request.app.state.resources
    await resources.pool.execute(
        """INSERT INTO push_tokens (user_id, token, platform) VALUES ($1, $2, $3)
           ON CONFLICT (user_id, token) DO UPDATE SET platform = EXCLUDED.platform""",
        principal.user_id,
        body.token,
        body.platform,
    )
    return JSONResponse({"token": body.token, "platform": body.platform}, status_code=201)


ME_ROUTES = [Route("/v1/me/push-tokens", register_push_token, methods=["POST"])]
