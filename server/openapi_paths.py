"""The OpenAPI document's ``paths``: every route of the HTTP API and its operations.

:func:`api_paths` is hand-kept beside the routes it describes (``tests/test_openapi.py``
checks that every route of the Starlette app is here). Each operation is built by ``_op``:
secured ones get the bearer scheme and the 401 reply (and 403 for admin ones); bodies and
replies point at the schemas of ``server/openapi_schemas.py``. The WebSocket endpoints appear
as their upgrade request; their frames are in the AsyncAPI document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from server.openapi_schemas import STR, obj, ref

__all__ = ["api_paths"]


def _json(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(ref("Error"), description)


_AUTH_ERRORS: Final = {"401": _error("no token, or a token that does not verify")}


def _op(
    summary: str,
    responses: Mapping[str, Any],
    *,
    secured: bool = True,
    admin: bool = False,
    body: Mapping[str, Any] | None = None,
    parameters: Sequence[Mapping[str, Any]] = (),
    description: str | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": dict(responses)}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = [dict(p) for p in parameters]
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if secured:
        op["security"] = [{"bearer": []}]
        op["responses"] = {**_AUTH_ERRORS, **op["responses"]}
        if admin:
            op["responses"]["403"] = _error("the token lacks the admin role")
    else:
        op["security"] = []
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": STR}


def _query(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": dict(schema)}


def _page(summary: str, media_type: str = "text/html") -> dict[str, Any]:
    return _op(
        summary,
        {"200": {"description": summary, "content": {media_type: {"schema": STR}}}},
        secured=False,
    )


def _upgrade(summary: str) -> dict[str, Any]:
    return _op(
        summary,
        {"101": {"description": "Switching Protocols: the frames are in /v1/asyncapi.json"}},
        secured=False,
        description=(
            "A WebSocket upgrade (subprotocols `mentara.v1.json`, `mentara.v1.msgpack`). "
            "Authenticate with `Authorization: Bearer` here or an `auth` frame first."
        ),
    )


def api_paths() -> dict[str, Any]:
    """The document's ``paths``: pages, probes, contract documents, sockets, then the API."""
    session = [_path_param("session_id")]
    asset = [_path_param("asset")]
    return {
        "/": {"get": _page("The candidate's interview page")},
        "/app/{asset}": {
            "get": {
                **_page("A file of the candidate page (script, style, code editor)", "*/*"),
                "parameters": asset,
                "responses": {
                    "200": {"description": "the file", "content": {"*/*": {"schema": STR}}},
                    "404": _error("no such file"),
                },
            }
        },
        "/admin": {"get": _page("The admin session inspector page")},
        "/admin/{asset}": {
            "get": {**_page("A file of the inspector page", "*/*"), "parameters": asset}
        },
        "/healthz": {"get": _op("Liveness", {"200": _json(ref("Health"), "alive")}, secured=False)},
        "/readyz": {
            "get": _op(
                "Readiness: Redis and Postgres reachable",
                {
                    "200": _json(ref("Ready"), "ready"),
                    "503": _error("a store is unreachable"),
                },
                secured=False,
            )
        },
        "/metrics": {"get": _page("Prometheus metrics", "text/plain")},
        "/v1/asyncapi.json": {
            "get": _op(
                "Protocol v1 as AsyncAPI 3",
                {"200": _json({"type": "object"}, "the AsyncAPI document")},
                secured=False,
            )
        },
        "/v1/openapi.json": {
            "get": _op(
                "This document",
                {"200": _json({"type": "object"}, "the OpenAPI document")},
                secured=False,
            )
        },
        "/v1/interview": {"get": _upgrade("The candidate's interview WebSocket")},
        "/v1/admin/watch": {"get": _upgrade("The admin's read-only watch WebSocket")},
        "/v1/questions": {
            "get": _op(
                "The question bank as a candidate sees it, and the languages code runs in",
                {"200": _json(ref("QuestionList"), "questions")},
            )
        },
        "/v1/sessions": {
            "get": _op("The caller's sessions", {"200": _json(ref("SessionList"), "sessions")})
        },
        "/v1/sessions/{session_id}": {
            "get": _op(
                "One session: transcript, code snapshots, score events",
                {
                    "200": _json(ref("SessionDetail"), "the session"),
                    "404": _error("no such session of the caller's"),
                },
                parameters=session,
            )
        },
        "/v1/sessions/{session_id}/report": {
            "get": _op(
                "The session's report, once ready",
                {
                    "200": _json(ref("Report"), "the report"),
                    "404": _error("no such session, or the report is not ready yet"),
                },
                parameters=session,
            )
        },
        "/v1/me": {
            "get": _op(
                "The caller's plan, entitlement, this month's interviews and push tokens",
                {"200": _json(ref("Account"), "the account")},
            ),
            "delete": _op(
                "Delete the caller's data everywhere",
                {
                    "204": {"description": "deleted (also when there was nothing)"},
                    "503": _error("a worker did not confirm in time: repeat"),
                },
            ),
        },
        "/v1/me/progress": {
            "get": _op(
                "The caller's progress across interviews, from their stored reports",
                {"200": _json(ref("Progress"), "per track and dimension")},
            )
        },
        "/v1/me/export": {
            "get": _op(
                "Everything stored about the caller",
                {"200": _json({"type": "object"}, "the export, streamed")},
            )
        },
        "/v1/me/push-tokens": {
            "post": _op(
                "Register a push token for report-ready notifications",
                {
                    "201": _json(ref("PushToken"), "registered"),
                    "400": _error("invalid body"),
                    "413": _error("body too large"),
                },
                body=ref("PushToken"),
            )
        },
        "/v1/webhooks/revenuecat": {
            "post": _op(
                "RevenueCat subscription events (shared-secret Authorization header)",
                {
                    "200": _json(ref("WebhookOutcome"), "applied, or already applied"),
                    "400": _error("invalid event"),
                    "401": _error("the header does not match the webhook secret"),
                    "503": _error("the webhook is not configured"),
                },
                secured=False,
                body={"type": "object"},
            )
        },
        "/v1/admin/users/{user_id}/grants": {
            "post": _op(
                "Admin: extra interviews for a user this month (recorded and logged)",
                {
                    "200": _json(ref("Account"), "the user's plan and quota after the grant"),
                    "400": _error("invalid body"),
                    "401": _error("no valid token"),
                    "403": _error("not an admin"),
                },
                body=ref("Grant"),
            )
        },
        "/v1/admin/sessions": {
            "get": _op(
                "Admin: live and recent sessions, newest first",
                {
                    "200": _json(ref("AdminSessionPage"), "one page"),
                    "400": _error("a bad query parameter"),
                },
                admin=True,
                parameters=[
                    _query("limit", {"type": "integer", "minimum": 1}),
                    _query("status", {"enum": ["live", "ended"]}),
                    _query("cursor", STR),
                    _query("user_id", STR),
                    _query("track", STR),
                ],
            )
        },
        "/v1/dev/token": {
            "get": _op(
                "Development only: whether the development sign-in is offered",
                {"200": _json(obj({"available": {"const": True}}), "it is")},
                secured=False,
                description="Exists only when the server signs its own development tokens.",
            ),
            "post": _op(
                "Development only: a candidate token for a user name",
                {
                    "201": _json(ref("DevToken"), "a token"),
                    "400": _error("an invalid user name"),
                },
                secured=False,
                body=ref("DevTokenRequest"),
                description=(
                    "Exists only when the server signs tokens with the secret it generated "
                    "into its data folder (`mentara serve` without MENTARA_JWT_SECRET): 404 "
                    "on any other server."
                ),
            ),
        },
    }
