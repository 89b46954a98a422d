"""HTTP: the caller's sessions (PROTOCOL.md §7). Bearer-token auth, JSON errors."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.errors import NotFound
from server.http_auth import authenticate

if TYPE_CHECKING:
    from server.resources import Resources


def _session_json(row: Any) -> dict[str, Any]:
    data = asdict(row)
    data.pop("user_id", None)
    return data


async def list_sessions(request: Request) -> Response:
    principal = await authenticate(request)
    resources: Resources = request.app.state.resources
    rows = await resources.store.list_sessions(principal.user_id)
    return JSONResponse({"sessions": [_session_json(r) for r in rows]})


async def get_session(request: Request) -> Response:
    principal = await authenticate(request)
    resources: Resources = request.app.state.resources
    session_id = request.path_params["session_id"]
    row = await resources.store.get_session(session_id)
    if row is None or (row.user_id != principal.user_id and not principal.is_admin):
        raise NotFound("no such session")
    store = resources.store
    scores = await store.events_after(session_id, 0, types=("score.delta",))
    return JSONResponse(
        {
            "session": _session_json(row),
            "transcript": await store.transcript(session_id),
            "code_snapshots": await store.code_snapshots(session_id),
            "score_events": [json.loads(e.body) for e in scores],
        }
    )


async def get_report(request: Request) -> Response:
    principal = await authenticate(request)
    resources: Resources = request.app.state.resources
    session_id = request.path_params["session_id"]
    row = await resources.store.get_session(session_id)
    if row is None or (row.user_id != principal.user_id and not principal.is_admin):
        raise NotFound("no such session")
    body = await resources.pool.fetchval(
        "SELECT body::text FROM reports WHERE session_id = $1", session_id
    )
    if body is None:
        raise NotFound("the report is not ready yet")
    return Response(body, media_type="application/json")


SESSION_ROUTES = [
    Route("/v1/sessions", list_sessions, methods=["GET"]),
    Route("/v1/sessions/{session_id}", get_session, methods=["GET"]),
    Route("/v1/sessions/{session_id}/report", get_report, methods=["GET"]),
]
