"""HTTP for admins (PROTOCOL.md §7): ``GET /v1/admin/sessions`` and the inspector page.

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

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import admin_sessions
from server.errors import NotFound
from server.http_auth import authenticate_admin

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
    Route("/admin", inspector_page, methods=["GET"]),
    Route("/admin/{asset}", inspector_asset, methods=["GET"]),
]
