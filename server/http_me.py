"""HTTP about the caller (PROTOCOL.md §7): ``GET /v1/me`` (plan and quota),
``GET /v1/me/progress``, ``GET /v1/me/export``, ``DELETE /v1/me``,
``POST /v1/me/push-tokens``. What the caller's data is: ``server.account_data``; the JSON
shapes are documented in docs/protocol.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from protocol.errors import ErrorCode
from server.account_data import erase_account, export_json
from server.errors import InvalidField
from server.http_auth import authenticate
from server.http_body import read_body
from server.http_errors import error_response
from server.progress import progress
from server.sessions.erasure import EraseIncomplete

if TYPE_CHECKING:
    from server.resources import Resources

_MAX_BODY = 4096


class PushTokenRegistration(msgspec.Struct, forbid_unknown_fields=False):
    token: str = msgspec.field()
    platform: Literal["ios", "android", "web"] = "ios"


async def register_push_token(request: Request) -> Response:
    principal = await authenticate(request)
    raw = await read_body(request, _MAX_BODY)  # 413 past the bound, never buffered whole
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


_NO_STORE = {"Cache-Control": "no-store"}


async def get_me(request: Request) -> Response:
    """The caller's account: ``{user_id, plan, entitlement, quota, push_tokens}``."""
    principal = await authenticate(request)
    resources: Resources = request.app.state.resources
    usage = await resources.quota.usage(principal.user_id)
    tokens = await resources.pool.fetchval(
        "SELECT count(*) FROM push_tokens WHERE user_id = $1", principal.user_id
    )
    return JSONResponse(
        {"user_id": principal.user_id, **usage.account_json(), "push_tokens": int(tokens)},
        headers=_NO_STORE,
    )


async def get_progress(request: Request) -> Response:
    """The caller's progress across interviews, from their stored reports only
    (``server.progress``)."""
    principal = await authenticate(request)
    resources: Resources = request.app.state.resources
    catalog = resources.sessions.catalog

    def title(question_id: str) -> str | None:
        try:
            return str(catalog.get(question_id).public.title)
        except KeyError:
            return None

    body = await progress(resources.pool, principal.user_id, title)
    return JSONResponse(body, headers=_NO_STORE)


async def export_me(request: Request) -> Response:
    """Everything stored about the caller, streamed as one JSON object (see
    ``account_data.export_json``). An error after the first byte cuts the response short, so
    a truncated export never parses as a complete one."""
    principal = await authenticate(request)
    resources: Resources = request.app.state.resources
    return StreamingResponse(
        export_json(resources.pool, principal.user_id),
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="mentara-export.json"',
            "Cache-Control": "no-store",
        },
    )


async def delete_me(request: Request) -> Response:
    """Delete the caller's data everywhere; live sockets on their sessions, on every worker,
    get ``session.ended {deleted}`` and 4004. 204, also when there was nothing to delete;
    503 when a worker did not confirm in time (repeat the request)."""
    principal = await authenticate(request)
    resources: Resources = request.app.state.resources
    try:
        sessions = resources.sessions
        await erase_account(resources.pool, sessions.eraser, principal.user_id, sessions.limits)
    except EraseIncomplete as exc:
        return error_response(503, ErrorCode.INTERNAL, exc.message)
    return Response(status_code=204)


ME_ROUTES = [
    Route("/v1/me", get_me, methods=["GET"]),
    Route("/v1/me/progress", get_progress, methods=["GET"]),
    Route("/v1/me/export", export_me, methods=["GET"]),
    Route("/v1/me", delete_me, methods=["DELETE"]),
    Route("/v1/me/push-tokens", register_push_token, methods=["POST"]),
]
