"""The OpenAPI document's schemas: small JSON Schema builders and ``components.schemas``.

The builders: ``ref(name)`` (a ``$ref`` to a named schema), ``obj`` (an object with its
required and optional properties), ``nullable``, ``array``, and the scalar schemas ``STR``,
``INT``, ``NUM``, ``BOOL`` (shared constants: never mutate them). :func:`component_schemas`
is every named schema of the HTTP API's bodies, with the protocol's own types
(``ScoreDelta``) taken from ``protocol/`` through msgspec. The operations of
``server/openapi_paths.py`` point at them with ``ref(name)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from protocol.errors import ErrorCode
from protocol.messages import ScoreDelta

__all__ = [
    "BOOL",
    "INT",
    "NUM",
    "REF_TEMPLATE",
    "STR",
    "array",
    "component_schemas",
    "nullable",
    "obj",
    "ref",
]

REF_TEMPLATE: Final = "#/components/schemas/{name}"


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(name=name)}


def obj(required: Mapping[str, Any], optional: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
    }


STR: Final = {"type": "string"}
INT: Final = {"type": "integer"}
NUM: Final = {"type": "number"}
BOOL: Final = {"type": "boolean"}


def nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [dict(schema), {"type": "null"}]}


def array(items: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": dict(items)}


def component_schemas() -> dict[str, Any]:
    """The document's ``components.schemas``: every schema ``ref(name)`` may point at."""
    _, protocol = msgspec.json.schema_components([ScoreDelta], ref_template=REF_TEMPLATE)
    evidence_quote = obj({"signal_id": STR, "polarity": STR, "note": STR, "seqs": array(INT)})
    return {
        **protocol,
        "Error": obj(
            {"error": obj({"code": {"enum": [c.value for c in ErrorCode]}, "message": STR})}
        ),
        "Session": obj(
            {
                "id": STR,
                "track": STR,
                "language": nullable(STR),
                "question_id": STR,
                "status": STR,
                "end_reason": nullable(STR),
                "created_at_ms": INT,
                "deadline_ts": nullable(INT),
            }
        ),
        "SessionList": obj({"sessions": array(ref("Session"))}),
        "SessionDetail": obj(
            {
                "session": ref("Session"),
                "transcript": array(
                    obj(
                        {
                            "turn_id": STR,
                            "role": {"enum": ["candidate", "interviewer"]},
                            "text": STR,
                            "seq": INT,
                            "end_seq": nullable(INT),
                            "stop_reason": nullable(STR),
                        }
                    )
                ),
                "code_snapshots": array(
                    obj(
                        {
                            "version": INT,
                            "language": STR,
                            "sha256": STR,
                            "source": STR,
                            "seq": INT,
                        }
                    )
                ),
                "score_events": array(ref("ScoreDelta")),
            }
        ),
        "Report": obj(
            {
                "track": STR,
                "question_id": nullable(STR),
                "overall": NUM,
                "band": INT,
                "band_label": STR,
                "dimensions": array(
                    obj(
                        {
                            "name": STR,
                            "title": STR,
                            "score": nullable(NUM),
                            "band": nullable(INT),
                            "band_label": nullable(STR),
                            "band_description": nullable(STR),
                            "evidence_count": INT,
                        }
                    )
                ),
                "strengths": array(ref("Finding")),
                "weaknesses": array(ref("Finding")),
                "summary": STR,
                "summary_source": {"enum": ["ledger", "written"]},
                "hidden_tests": nullable({"type": "object"}),
                "evidence": array({"type": "object"}),
            }
        ),
        "Finding": obj(
            {
                "dimension": STR,
                "title": STR,
                "score": NUM,
                "band_label": STR,
                "evidence": array(evidence_quote),
            }
        ),
        "AdminSessionPage": obj(
            {
                "sessions": array(
                    obj(
                        {
                            "id": STR,
                            "user_id": STR,
                            "track": STR,
                            "language": nullable(STR),
                            "question": obj({"id": STR, "title": nullable(STR)}),
                            "status": {"enum": ["live", "ended"]},
                            "end_reason": nullable(STR),
                            "phase": nullable(STR),
                            "started_at": nullable(INT),
                            "ended_at": nullable(INT),
                            "deadline_ts": nullable(INT),
                            "last_seq": INT,
                            "stored_seq": INT,
                            "owner": nullable(obj({"worker": STR, "fence": nullable(INT)})),
                            "counts": obj(
                                {
                                    "candidate_messages": INT,
                                    "interviewer_turns": INT,
                                    "code_snapshots": INT,
                                }
                            ),
                        }
                    )
                ),
                "next_cursor": nullable(STR),
            }
        ),
        "QuestionList": obj(
            {
                "questions": array(
                    obj(
                        {
                            "id": STR,
                            "track": {"enum": ["coding", "system_design", "behavioral"]},
                            "title": STR,
                        },
                        {
                            "difficulty": STR,
                            "starter_code": {
                                "type": "object",
                                "additionalProperties": STR,
                            },
                        },
                    )
                ),
                "languages": array(STR),
            }
        ),
        "DevToken": obj({"token": STR, "user_id": STR, "expires_at": INT}),
        "DevTokenRequest": obj({"user": {"type": "string", "pattern": "^[A-Za-z0-9._@-]{1,64}$"}}),
        "PushToken": obj(
            {"token": {"type": "string", "minLength": 1, "maxLength": 512}},
            {"platform": {"enum": ["ios", "android", "web"]}},
        ),
        "Health": obj({"status": {"const": "ok"}}),
        "Ready": obj({"status": {"const": "ready"}, "postgres": STR, "redis": STR, "sandbox": STR}),
        "WebhookOutcome": obj({"status": STR, "event_id": STR}),
        "Entitlement": obj(
            {
                "id": STR,
                "active": BOOL,
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
                "expires_at_ms": nullable(INT),
                "expires_at": nullable(STR),
            },
            {"product_id": nullable(STR), "store": nullable(STR), "will_renew": BOOL},
        ),
        "Quota": obj(
            {
                "period": {"const": "month"},
                "period_start": STR,
                "resets_at": STR,
                "limit": nullable(INT),
                "granted": INT,
                "used": INT,
                "left": nullable(INT),
            }
        ),
        "Account": obj(
            {
                "user_id": STR,
                "plan": {"enum": ["free", "paid"]},
                "entitlement": nullable(ref("Entitlement")),
                "quota": ref("Quota"),
            },
            {"push_tokens": INT},
        ),
        "Grant": obj(
            {"interviews": {"type": "integer", "minimum": 1, "maximum": 1000}},
            {"reason": {"type": "string", "maxLength": 500}},
        ),
        "Progress": obj(
            {
                "user_id": STR,
                "sessions": INT,
                "tracks": array(
                    obj(
                        {
                            "track": STR,
                            "sessions": INT,
                            "dimensions": array({"type": "object"}),
                            "best": nullable(STR),
                            "weakest": nullable(STR),
                            "overall": array({"type": "object"}),
                            "hidden_tests": array({"type": "object"}),
                        }
                    )
                ),
                "questions": {"type": "object"},
            }
        ),
    }
