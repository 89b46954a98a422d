"""The HTTP API (PROTOCOL.md §7) as an OpenAPI 3.1 document, served at ``/v1/openapi.json``.

Hand-kept beside the routes it describes, with the schemas of the protocol's own types taken
from ``protocol/`` (``ScoreDelta`` in a session's score events). ``tests/test_openapi.py``
keeps it honest: every route of the Starlette app (the development-only one too) must be in
it, and real responses of a real server must validate against the schemas given here. The
WebSocket endpoints appear as their upgrade request; their frames are in the AsyncAPI
document (``/v1/asyncapi.json``).

``python -m server.openapi`` writes ``docs/openapi.json``; ``--check`` fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final

import msgspec

from protocol.errors import ErrorCode
from protocol.messages import ScoreDelta

DOCUMENT_PATH: Final = Path("docs") / "openapi.json"
_REF: Final = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _obj(required: Mapping[str, Any], optional: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
    }


_STR: Final = {"type": "string"}
_INT: Final = {"type": "integer"}
_NUM: Final = {"type": "number"}
_BOOL: Final = {"type": "boolean"}


def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [dict(schema), {"type": "null"}]}


def _array(items: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": dict(items)}


def _schemas() -> dict[str, Any]:
    _, protocol = msgspec.json.schema_components([ScoreDelta], ref_template=_REF)
    evidence_quote = _obj({"signal_id": _STR, "polarity": _STR, "note": _STR, "seqs": _array(_INT)})
    return {
        **protocol,
        "Error": _obj(
            {"error": _obj({"code": {"enum": [c.value for c in ErrorCode]}, "message": _STR})}
        ),
        "Session": _obj(
            {
                "id": _STR,
                "track": _STR,
                "language": _nullable(_STR),
                "question_id": _STR,
                "status": _STR,
                "end_reason": _nullable(_STR),
                "created_at_ms": _INT,
                "deadline_ts": _nullable(_INT),
            }
        ),
        "SessionList": _obj({"sessions": _array(_ref("Session"))}),
        "SessionDetail": _obj(
            {
                "session": _ref("Session"),
                "transcript": _array(
                    _obj(
                        {
                            "turn_id": _STR,
                            "role": {"enum": ["candidate", "interviewer"]},
                            "text": _STR,
                            "seq": _INT,
                            "end_seq": _nullable(_INT),
                            "stop_reason": _nullable(_STR),
                        }
                    )
                ),
                "code_snapshots": _array(
                    _obj(
                        {
                            "version": _INT,
                            "language": _STR,
                            "sha256": _STR,
                            "source": _STR,
                            "seq": _INT,
                        }
                    )
                ),
                "score_events": _array(_ref("ScoreDelta")),
            }
        ),
        "Report": _obj(
            {
                "track": _STR,
                "question_id": _nullable(_STR),
                "overall": _NUM,
                "band": _INT,
                "band_label": _STR,
                "dimensions": _array(
                    _obj(
                        {
                            "name": _STR,
                            "title": _STR,
                            "score": _nullable(_NUM),
                            "band": _nullable(_INT),
                            "band_label": _nullable(_STR),
                            "band_description": _nullable(_STR),
                            "evidence_count": _INT,
                        }
                    )
                ),
                "strengths": _array(_ref("Finding")),
                "weaknesses": _array(_ref("Finding")),
                "summary": _STR,
                "summary_source": {"enum": ["ledger", "written"]},
                "hidden_tests": _nullable({"type": "object"}),
                "evidence": _array({"type": "object"}),
            }
        ),
        "Finding": _obj(
            {
                "dimension": _STR,
                "title": _STR,
                "score": _NUM,
                "band_label": _STR,
                "evidence": _array(evidence_quote),
            }
        ),
        "AdminSessionPage": _obj(
            {
                "sessions": _array(
                    _obj(
                        {
                            "id": _STR,
                            "user_id": _STR,
                            "track": _STR,
                            "language": _nullable(_STR),
                            "question": _obj({"id": _STR, "title": _nullable(_STR)}),
                            "status": {"enum": ["live", "ended"]},
                            "end_reason": _nullable(_STR),
                            "phase": _nullable(_STR),
                            "started_at": _nullable(_INT),
                            "ended_at": _nullable(_INT),
                            "deadline_ts": _nullable(_INT),
                            "last_seq": _INT,
                            "stored_seq": _INT,
                            "owner": _nullable(_obj({"worker": _STR, "fence": _nullable(_INT)})),
                            "counts": _obj(
                                {
                                    "candidate_messages": _INT,
                                    "interviewer_turns": _INT,
                                    "code_snapshots": _INT,
                                }
                            ),
                        }
                    )
                ),
                "next_cursor": _nullable(_STR),
            }
        ),
        "QuestionList": _obj(
            {
                "questions": _array(
                    _obj(
                        {
                            "id": _STR,
                            "track": {"enum": ["coding", "system_design", "behavioral"]},
                            "title": _STR,
                        },
                        {
                            "difficulty": _STR,
                            "starter_code": {
                                "type": "object",
                                "additionalProperties": _STR,
                            },
                        },
                    )
                ),
                "languages": _array(_STR),
            }
        ),
        "DevToken": _obj({"token": _STR, "user_id": _STR, "expires_at": _INT}),
        "DevTokenRequest": _obj({"user": {"type": "string", "pattern": "^[A-Za-z0-9._@-]{1,64}$"}}),
        "PushToken": _obj(
            {"token": {"type": "string", "minLength": 1, "maxLength": 512}},
            {"platform": {"enum": ["ios", "android", "web"]}},
        ),
        "Health": _obj({"status": {"const": "ok"}}),
        "Ready": _obj(
            {"status": {"const": "ready"}, "postgres": _STR, "redis": _STR, "sandbox": _STR}
        ),
        "WebhookOutcome": _obj({"status": _STR, "event_id": _STR}),
        "Entitlement": _obj(
            {
                "id": _STR,
                "active": _BOOL,
                "status": {
                    "enum": [
                        "active",
                        "cancelled",
                        "billing_issue",
                        "paused",
                        "expired",
                        "refunded",
                        "transferred",
                    ]
                },
                "expires_at_ms": _nullable(_INT),
                "expires_at": _nullable(_STR),
            },
            {"product_id": _nullable(_STR), "store": _nullable(_STR), "will_renew": _BOOL},
        ),
        "Quota": _obj(
            {
                "period": {"const": "month"},
                "period_start": _STR,
                "resets_at": _STR,
                "limit": _nullable(_INT),
                "granted": _INT,
                "used": _INT,
                "left": _nullable(_INT),
            }
        ),
        "Account": _obj(
            {
                "user_id": _STR,
                "plan": {"enum": ["free", "paid"]},
                "entitlement": _nullable(_ref("Entitlement")),
                "quota": _ref("Quota"),
            },
            {"push_tokens": _INT},
        ),
        "Grant": _obj(
            {"interviews": {"type": "integer", "minimum": 1, "maximum": 1000}},
            {"reason": {"type": "string", "maxLength": 500}},
        ),
        "Progress": _obj(
            {
                "user_id": _STR,
                "sessions": _INT,
                "tracks": _array(
                    _obj(
                        {
                            "track": _STR,
                            "sessions": _INT,
                            "dimensions": _array({"type": "object"}),
                            "best": _nullable(_STR),
                            "weakest": _nullable(_STR),
                            "overall": _array({"type": "object"}),
                            "hidden_tests": _array({"type": "object"}),
                        }
                    )
                ),
                "questions": {"type": "object"},
            }
        ),
    }


def _json(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


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
    return {"name": name, "in": "path", "required": True, "schema": _STR}


def _query(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": dict(schema)}


def _page(summary: str, media_type: str = "text/html") -> dict[str, Any]:
    return _op(
        summary,
        {"200": {"description": summary, "content": {media_type: {"schema": _STR}}}},
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


def _paths() -> dict[str, Any]:
    session = [_path_param("session_id")]
    asset = [_path_param("asset")]
    return {
        "/": {"get": _page("The candidate's interview page")},
        "/app/{asset}": {
            "get": {
                **_page("A file of the candidate page (script, style, code editor)", "*/*"),
                "parameters": asset,
                "responses": {
                    "200": {"description": "the file", "content": {"*/*": {"schema": _STR}}},
                    "404": _error("no such file"),
                },
            }
        },
        "/admin": {"get": _page("The admin session inspector page")},
        "/admin/{asset}": {
            "get": {**_page("A file of the inspector page", "*/*"), "parameters": asset}
        },
        "/healthz": {
            "get": _op("Liveness", {"200": _json(_ref("Health"), "alive")}, secured=False)
        },
        "/readyz": {
            "get": _op(
                "Readiness: Redis and Postgres reachable",
                {
                    "200": _json(_ref("Ready"), "ready"),
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
                {"200": _json(_ref("QuestionList"), "questions")},
            )
        },
        "/v1/sessions": {
            "get": _op("The caller's sessions", {"200": _json(_ref("SessionList"), "sessions")})
        },
        "/v1/sessions/{session_id}": {
            "get": _op(
                "One session: transcript, code snapshots, score events",
                {
                    "200": _json(_ref("SessionDetail"), "the session"),
                    "404": _error("no such session of the caller's"),
                },
                parameters=session,
            )
        },
        "/v1/sessions/{session_id}/report": {
            "get": _op(
                "The session's report, once ready",
                {
                    "200": _json(_ref("Report"), "the report"),
                    "404": _error("no such session, or the report is not ready yet"),
                },
                parameters=session,
            )
        },
        "/v1/me": {
            "get": _op(
                "The caller's plan, entitlement, this month's interviews and push tokens",
                {"200": _json(_ref("Account"), "the account")},
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
                {"200": _json(_ref("Progress"), "per track and dimension")},
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
                    "201": _json(_ref("PushToken"), "registered"),
                    "400": _error("invalid body"),
                    "413": _error("body too large"),
                },
                body=_ref("PushToken"),
            )
        },
        "/v1/webhooks/revenuecat": {
            "post": _op(
                "RevenueCat subscription events (shared-secret Authorization header)",
                {
                    "200": _json(_ref("WebhookOutcome"), "applied, or already applied"),
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
                    "200": _json(_ref("Account"), "the user's plan and quota after the grant"),
                    "400": _error("invalid body"),
                    "401": _error("no valid token"),
                    "403": _error("not an admin"),
                },
                body=_ref("Grant"),
            )
        },
        "/v1/admin/sessions": {
            "get": _op(
                "Admin: live and recent sessions, newest first",
                {
                    "200": _json(_ref("AdminSessionPage"), "one page"),
                    "400": _error("a bad query parameter"),
                },
                admin=True,
                parameters=[
                    _query("limit", {"type": "integer", "minimum": 1}),
                    _query("status", {"enum": ["live", "ended"]}),
                    _query("cursor", _STR),
                    _query("user_id", _STR),
                    _query("track", _STR),
                ],
            )
        },
        "/v1/dev/token": {
            "get": _op(
                "Development only: whether the development sign-in is offered",
                {"200": _json(_obj({"available": {"const": True}}), "it is")},
                secured=False,
                description="Exists only when the server signs its own development tokens.",
            ),
            "post": _op(
                "Development only: a candidate token for a user name",
                {
                    "201": _json(_ref("DevToken"), "a token"),
                    "400": _error("an invalid user name"),
                },
                secured=False,
                body=_ref("DevTokenRequest"),
                description=(
                    "Exists only when the server signs tokens with the secret it generated "
                    "into its data folder (`mentara serve` without MENTARA_JWT_SECRET): 404 "
                    "on any other server."
                ),
            ),
        },
    }


@cache
def openapi_document() -> Mapping[str, Any]:
    """The OpenAPI 3.1 document of the HTTP API (do not mutate the result)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Mentara interview server HTTP API",
            "version": "1",
            "description": (
                'Errors are JSON `{"error": {"code", "message"}}` with the matching '
                "status. The live interview runs over WebSocket: see /v1/asyncapi.json."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:8000", "description": "mentara serve"}],
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def render() -> str:
    """The document as the text kept in ``docs/openapi.json``."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m server.openapi [--check] [PATH]``: write (or check) the document."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    path = Path(paths[0]) if paths else DOCUMENT_PATH
    text = render()
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is stale: run python -m server.openapi", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
