"""The candidate's interview page (``GET /``, PROTOCOL.md §7) and what it reads over HTTP.

``GET /`` serves ``server/static/candidate.html``; its script, stylesheet and the vendored
code editor are served from ``/app/{asset}`` (an allow-list, nothing else of the package).
Like the admin inspector, the page holds no data and no secret, so it is served to anyone
under a Content-Security-Policy that lets it load only its own files and talk only to its own
origin; session content is inserted as text only.

``GET /v1/questions`` (bearer token) lists the question bank as a candidate may see it: id,
track, title, difficulty (coding), starter code (Python), and the languages code runs in on
this host. Never tests, hints or reference solutions.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scoring.languages import supported_languages
from server.errors import NotFound
from server.http_admin import INSPECTOR_CSP
from server.http_auth import authenticate

if TYPE_CHECKING:
    from server.resources import Resources

_PAGE_HEADERS = {
    "Content-Security-Policy": INSPECTOR_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_JS = "text/javascript; charset=utf-8"
_CSS = "text/css; charset=utf-8"
#: The page's files: URL name -> (file under server/static, media type).
_ASSETS = {
    "candidate.js": ("candidate.js", _JS),
    "candidate_view.js": ("candidate_view.js", _JS),
    "candidate_socket.js": ("candidate_socket.js", _JS),
    "candidate.css": ("candidate.css", _CSS),
    "codemirror.js": ("vendor/codemirror/codemirror.js", _JS),
    "codemirror.css": ("vendor/codemirror/codemirror.css", _CSS),
    "codemirror-python.js": ("vendor/codemirror/mode/python.js", _JS),
    "codemirror-javascript.js": ("vendor/codemirror/mode/javascript.js", _JS),
}


@cache
def _static(name: str) -> bytes:
    path = resources.files("server").joinpath("static")
    for part in name.split("/"):
        path = path.joinpath(part)
    return path.read_bytes()


async def candidate_page(request: Request) -> Response:
    return Response(
        _static("candidate.html"), media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS
    )


async def candidate_asset(request: Request) -> Response:
    asset = _ASSETS.get(request.path_params["asset"])
    if asset is None:
        raise NotFound("no such file")
    name, media_type = asset
    return Response(_static(name), media_type=media_type, headers=_PAGE_HEADERS)


async def list_questions(request: Request) -> Response:
    await authenticate(request)
    res: Resources = request.app.state.resources
    questions: list[dict[str, Any]] = []
    for question in res.sessions.catalog.bank:
        view = question.public_view()
        entry: dict[str, Any] = {"id": view.id, "track": view.track, "title": view.title}
        difficulty = getattr(question, "difficulty", None)
        if difficulty is not None:
            entry["difficulty"] = difficulty
        if view.starter_code:
            entry["starter_code"] = {"python": view.starter_code}
        questions.append(entry)
    return JSONResponse(
        {"questions": questions, "languages": list(supported_languages())},
        headers={"Cache-Control": "no-store"},
    )


CANDIDATE_ROUTES = [
    Route("/", candidate_page, methods=["GET"]),
    Route("/app/{asset}", candidate_asset, methods=["GET"]),
    Route("/v1/questions", list_questions, methods=["GET"]),
]
