"""HTTP for admins (PROTOCOL.md §7): ``GET /v1/admin/sessions``, ``POST
/v1/admin/users/{user_id}/grants`` (extra interviews this month, recorded and logged:
``server.quota``) and the inspector page.

``/v1/admin/sessions`` needs a bearer token with the admin role: no token or a bad one is
401, a valid token without the role is 403. ``GET /admin`` serves the session inspector, a
static page from ``server/static/`` with its script and stylesheet beside it; the page holds
no data and no secret (the admin pastes a token into it, kept in ``sessionStorage``), so it
is served to anyone, under a Content-Security-Policy that lets it load only its own script
and style and talk only to its own origin.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from protocol.storable import is_storable
from server import admin_sessions
from server.errors import InvalidField, NotFound
from server.http_auth import authenticate_admin
from server.http_body import read_body
from server.quota import MAX_GRANT

if TYPE_CHECKING:
    from server.resources import Resources

#: The inspector's policy: its own script and style only (no inline code, no eval), fetch and
#: WebSocket to its own origin only ('self' covers ws: and wss: on the same host), no
#: framing, no forms, no plugins, no <base>.
INSPECTOR_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_PAGE_HEADERS = {
    "Content-Security-Policy": INSPECTOR_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

#: The inspector's files: URL name -> (packaged file, media type).
_ASSETS = {
    "inspector.js": ("inspector.js", "text/javascript; charset=utf-8"),
    "inspector.css": ("inspector.css", "text/css; charset=utf-8"),
}


async def list_admin_sessions(request: Request) -> Response:
    await authenticate_admin(request)
    query = admin_sessions.parse_query(request.query_params)
    resources: Resources = request.app.state.resources
    catalog = resources.sessions.catalog

    def title(question_id: str) -> str | None:
        try:
            return catalog.get(question_id).public.title
        except KeyError:
            return None

    page = await admin_sessions.list_sessions(
        resources.pool, resources.redis, resources.settings.redis_prefix, query, title
    )
    return JSONResponse(page.to_json(), headers={"Cache-Control": "no-store"})


class Grant(msgspec.Struct, forbid_unknown_fields=True):
    interviews: int
    reason: str = ""


_MAX_USER_ID = 256


async def grant_interviews(request: Request) -> Response:
    """Add ``interviews`` (1 to MAX_GRANT) to the user's allowance for this month, with a
    ``reason`` (at most 500 characters); answers the user's plan and quota as ``GET /v1/me``
    has them."""
    admin = await authenticate_admin(request)
    user_id = request.path_params["user_id"]
    if not 1 <= len(user_id) <= _MAX_USER_ID or not is_storable(user_id):
        raise InvalidField(
            "the user id must be 1 to 256 characters, none of them U+0000 or a lone surrogate",
            field="user_id",
        )
    raw = await read_body(request, 4096)
    try:
        body = msgspec.json.decode(raw, type=Grant)
    except msgspec.ValidationError as exc:
        field = str(exc).rsplit("$.", 1)[-1].rstrip("`") if "$." in str(exc) else "interviews"
        raise InvalidField(f"invalid grant: {exc}", field=field) from None
    except msgspec.DecodeError:
        raise InvalidField(
            "the body must be JSON: {interviews, reason}", field="interviews"
        ) from None
    if not 1 <= body.interviews <= MAX_GRANT:
        raise InvalidField(f"interviews must be 1 to {MAX_GRANT}", field="interviews")
    if len(body.reason) > 500 or not is_storable(body.reason):
        raise InvalidField(
            "reason must be at most 500 characters, none of them U+0000 or a lone surrogate",
            field="reason",
        )
    resources: Resources = request.app.state.resources
    usage = await resources.quota.grant(
        user_id, body.interviews, by=admin.user_id, reason=body.reason
    )
    return JSONResponse(
        {"user_id": user_id, **usage.account_json()}, headers={"Cache-Control": "no-store"}
    )


@cache
def _static(name: str) -> bytes:
    return resources.files("server").joinpath("static", name).read_bytes()


async def inspector_page(request: Request) -> Response:
    return Response(
        _static("inspector.html"), media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS
    )


async def inspector_asset(request: Request) -> Response:
    asset = _ASSETS.get(request.path_params["asset"])
    if asset is None:
        raise NotFound("no such file")
    name, media_type = asset
    return Response(_static(name), media_type=media_type, headers=_PAGE_HEADERS)


ADMIN_ROUTES = [
    Route("/v1/admin/sessions", list_admin_sessions, methods=["GET"]),
    Route("/v1/admin/users/{user_id}/grants", grant_interviews, methods=["POST"]),
    Route("/admin", inspector_page, methods=["GET"]),
    Route("/admin/{asset}", inspector_asset, methods=["GET"]),
]
