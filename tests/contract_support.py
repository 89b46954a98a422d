"""Validating real frames and responses against the committed AsyncAPI and OpenAPI documents.

Both documents keep their schemas under ``components.schemas`` and refer to them as
``#/components/schemas/<Name>``; a schema is checked (JSON Schema 2020-12, ``jsonschema``)
inside a copy of its document's ``components``, so every reference resolves the way a
client's generator resolves it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from server.config import Settings

ROOT = Path(__file__).resolve().parent.parent
ASYNCAPI_PATH = ROOT / "docs" / "asyncapi.json"
OPENAPI_PATH = ROOT / "docs" / "openapi.json"


@cache
def committed(path: Path) -> Mapping[str, Any]:
    document: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def validator(document: Mapping[str, Any], schema: Mapping[str, Any]) -> Draft202012Validator:
    """A validator for ``schema`` whose references resolve inside ``document``."""
    return Draft202012Validator({**schema, "components": document["components"]})


def problems(document: Mapping[str, Any], schema: Mapping[str, Any], value: Any) -> list[str]:
    """Every way ``value`` breaks ``schema`` (empty when it validates)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator(document, schema).iter_errors(value)
    ]


def frame_schema(channel: str, direction: str, frame: Mapping[str, Any]) -> Mapping[str, Any]:
    """The payload schema the AsyncAPI document gives a ``direction`` (``client`` or
    ``server``) frame of ``frame["type"]`` on ``channel``; KeyError when it has none."""
    document = committed(ASYNCAPI_PATH)
    message = document["channels"][channel]["messages"][f"{direction}.{frame['type']}"]
    payload: Mapping[str, Any] = message["payload"]
    return payload


def frame_problems(channel: str, direction: str, frame: Mapping[str, Any]) -> list[str]:
    """Why ``frame`` is not a valid ``direction`` frame on ``channel`` (empty when it is):
    its schema's rules, and no top-level field the schema does not name."""
    document = committed(ASYNCAPI_PATH)
    try:
        schema = frame_schema(channel, direction, frame)
    except KeyError:
        return [f"no {direction} message {frame.get('type')!r} on {channel}"]
    found = problems(document, schema, frame)
    name = schema["$ref"].rsplit("/", 1)[-1]
    known = set(document["components"]["schemas"][name].get("properties", {}))
    found += [f"{key}: not in the schema of {name}" for key in set(frame) - known]
    return found


def with_code_runs(settings: Settings) -> Settings:
    """``settings`` for a test that needs real ``code.result`` events: the bubblewrap sandbox
    where this host has it, else in-process runs without isolation (the code is the test's
    own, never a stranger's)."""
    from scoring.sandbox import SANDBOX_UNSAFE

    if shutil.which("bwrap"):
        return settings
    return settings.with_(sandbox=SANDBOX_UNSAFE)


def with_dev_sign_in(settings: Settings) -> Settings:
    """``settings`` of a server that signs its own development tokens: the secret is the one
    generated into its data folder, as ``mentara serve`` does in development."""
    from server.data_folder import JWT_SECRET_FILE, stored_secret

    secret, _ = stored_secret(settings.data_dir / JWT_SECRET_FILE)
    return settings.with_(jwt_secret=secret)


def response_schema(path: str, method: str, status: int) -> tuple[str, Mapping[str, Any]]:
    """The media type and schema the OpenAPI document gives a ``status`` response of
    ``method path`` (``path`` as templated in the document); KeyError when it has none."""
    operation = committed(OPENAPI_PATH)["paths"][path][method.lower()]
    content = operation["responses"][str(status)]["content"]
    ((media_type, body),) = content.items()
    schema: Mapping[str, Any] = body["schema"]
    return media_type, schema
