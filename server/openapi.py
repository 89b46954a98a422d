"""The HTTP API (PROTOCOL.md §7) as an OpenAPI 3.1 document, served at ``/v1/openapi.json``.

Hand-kept beside the routes it describes, with the schemas of the protocol's own types taken
from ``protocol/`` (``ScoreDelta`` in a session's score events). ``tests/test_openapi.py``
keeps it honest: every route of the Starlette app (the development-only one too) must be in
it, and real responses of a real server must validate against the schemas given here. The
WebSocket endpoints appear as their upgrade request; their frames are in the AsyncAPI
document (``/v1/asyncapi.json``).

This module assembles the document: its ``paths`` come from ``server/openapi_paths.py``, its
``components.schemas`` from ``server/openapi_schemas.py``.

``python -m server.openapi`` writes ``docs/openapi.json``; ``--check`` fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final

from server.openapi_paths import api_paths
from server.openapi_schemas import component_schemas

DOCUMENT_PATH: Final = Path("docs") / "openapi.json"


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
        "paths": api_paths(),
        "components": {
            "schemas": component_schemas(),
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
