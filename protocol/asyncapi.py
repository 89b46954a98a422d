"""Protocol v1 as an AsyncAPI 3 document, generated from the message types.

:func:`asyncapi_document` builds the document from :mod:`protocol.messages` alone: one JSON
Schema per frame class (``msgspec.json.schema_components``, under ``components.schemas``,
named after the class), one channel per endpoint and subprotocol (``/v1/interview`` and
``/v1/admin/watch``, each as ``mentara.v1.json`` and ``mentara.v1.msgpack``: the same objects,
so the same schemas, in a different content type), and one operation per direction and
channel (``receive``: frames the server takes from clients; ``send``: frames it sends).

The document is deterministic (same types, same bytes from :func:`render`), so the copy kept
in ``docs/asyncapi.json`` can be compared with a fresh one: ``python -m protocol.asyncapi``
rewrites it, ``python -m protocol.asyncapi --check`` fails when it is stale. The server serves
the document at ``GET /v1/asyncapi.json``.

Schemas carry the bounds decoding enforces (lengths, integer ranges, patterns, enums), so a
frame that validates against its schema is one this server's codecs accept or produce.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final

import msgspec

from protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from protocol.errors import CloseCode, ErrorCode
from protocol.messages import (
    ADMIN_FRAME_TYPES,
    CLIENT_FRAME_TYPES,
    CONTROL_FRAME_TYPES,
    PROTOCOL_VERSION,
    SERVER_FRAME_TYPES,
    SESSION_EVENT_TYPES,
)

__all__ = [
    "ASYNCAPI_VERSION",
    "DOCUMENT_PATH",
    "asyncapi_document",
    "frame_schema_name",
    "main",
    "render",
]

ASYNCAPI_VERSION: Final = "3.0.0"
DOCUMENT_PATH: Final = Path("docs") / "asyncapi.json"
"""Where the committed copy lives, relative to the repository root."""

_REF_TEMPLATE: Final = "#/components/schemas/{name}"
_CONTENT_TYPES: Final = {
    JSON_SUBPROTOCOL: "application/json",
    MSGPACK_SUBPROTOCOL: "application/msgpack",
}
_ENDPOINTS: Final = {
    # key prefix: (address, what it is, client frames it takes)
    "interview": ("/v1/interview", "a candidate's app", CLIENT_FRAME_TYPES),
    "adminWatch": ("/v1/admin/watch", "the admin session inspector (read-only)", ADMIN_FRAME_TYPES),
}


def frame_schema_name(cls: type[msgspec.Struct]) -> str:
    """The name of ``cls``'s schema under ``components.schemas`` (its class name)."""
    return cls.__name__


def _message_key(direction: str, wire_type: str) -> str:
    # ``candidate.message`` is both a client frame and a session event: keys name the side.
    return f"{direction}.{wire_type}"


def _first_line(cls: type) -> str:
    return _plain((cls.__doc__ or "").strip().split("\n\n", 1)[0])


def _messages(
    direction: str, frames: Mapping[str, type[msgspec.Struct]], content_type: str
) -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for wire_type, cls in frames.items():
        kind = (
            "session event"
            if wire_type in SESSION_EVENT_TYPES and direction == "server"
            else "control frame"
            if direction == "server"
            else "client frame"
        )
        messages[_message_key(direction, wire_type)] = {
            "name": wire_type,
            "title": f"{wire_type} ({kind})",
            "summary": _first_line(cls),
            "contentType": content_type,
            "payload": {"$ref": _REF_TEMPLATE.format(name=frame_schema_name(cls))},
        }
    return messages


def _channel(address: str, who: str, subprotocol: str, client: Mapping[str, Any]) -> dict[str, Any]:
    content_type = _CONTENT_TYPES[subprotocol]
    encoding = (
        "text frames, one JSON object each"
        if subprotocol == JSON_SUBPROTOCOL
        else "binary frames, one MessagePack map each"
    )
    return {
        "address": address,
        "title": f"{address} as {subprotocol}",
        "description": (
            f"The WebSocket of {who}, subprotocol `{subprotocol}`: {encoding}. Authenticate "
            "with `Authorization: Bearer <JWT>` on the upgrade, or with an `auth` frame "
            "first, within 5 s. Tokens are never accepted in the URL."
        ),
        "messages": {
            **_messages("client", client, content_type),
            **_messages("server", SERVER_FRAME_TYPES, content_type),
        },
        "bindings": {
            "ws": {
                "bindingVersion": "0.1.0",
                "method": "GET",
                "headers": {
                    "type": "object",
                    "properties": {
                        "Sec-WebSocket-Protocol": {
                            "type": "string",
                            "description": (
                                "The subprotocols the client offers; the server selects the "
                                "first it supports (none offered: JSON)."
                            ),
                            "examples": [subprotocol],
                        },
                        "Authorization": {
                            "type": "string",
                            "description": "`Bearer <JWT>`; browsers send an `auth` frame instead.",
                        },
                    },
                },
            }
        },
    }


def _operations(channel_key: str, client: Mapping[str, Any]) -> dict[str, Any]:
    def refs(direction: str, frames: Mapping[str, Any]) -> list[dict[str, str]]:
        return [
            {"$ref": f"#/channels/{channel_key}/messages/{_message_key(direction, t)}"}
            for t in frames
        ]

    return {
        f"{channel_key}.receive": {
            "action": "receive",
            "title": "Frames a client sends",
            "channel": {"$ref": f"#/channels/{channel_key}"},
            "messages": refs("client", client),
        },
        f"{channel_key}.send": {
            "action": "send",
            "title": "Frames the server sends: control frames and numbered session events",
            "channel": {"$ref": f"#/channels/{channel_key}"},
            "messages": refs("server", SERVER_FRAME_TYPES),
        },
    }


_CLOSE_ACTIONS: Final = {
    CloseCode.NORMAL: "normal: stop",
    CloseCode.GOING_AWAY: "server going away (deploy, shutdown): reconnect and resume",
    CloseCode.POLICY: "policy (persistent abuse, forbidden): stop",
    CloseCode.TOO_LARGE: "frame larger than `max_frame_bytes`: fix and reconnect",
    CloseCode.INTERNAL: "internal error: reconnect with backoff and resume",
    CloseCode.OVERLOADED: "overloaded: reconnect with backoff and resume",
    CloseCode.UNAUTHENTICATED: "not authenticated or token expired: get a fresh token, reconnect",
    CloseCode.SLOW_CONSUMER: "slow consumer (fell too far behind): reconnect and resume",
    CloseCode.SESSION_NOT_FOUND: "session not found or deleted: stop",
}


def _plain(doc: str) -> str:
    """A docstring as one paragraph of Markdown (reST double backticks made single)."""
    return " ".join(doc.replace("``", "`").split())


def _tidy(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: _plain(v) if k == "description" and isinstance(v, str) else _tidy(v)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_tidy(v) for v in schema]
    return schema


def _schemas() -> dict[str, Any]:
    classes = list(dict.fromkeys([*CLIENT_FRAME_TYPES.values(), *SERVER_FRAME_TYPES.values()]))
    names = [frame_schema_name(c) for c in classes]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two frame classes share a name: {sorted(names)}")
    (_, components) = msgspec.json.schema_components(classes, ref_template=_REF_TEMPLATE)
    return {name: _tidy(components[name]) for name in sorted(components)}


def _description() -> str:
    codes = ", ".join(f"`{c.value}`" for c in ErrorCode)
    missing = set(CloseCode) - set(_CLOSE_ACTIONS)
    if missing:
        raise RuntimeError(f"close codes without a stated action: {sorted(missing)}")
    closes = "; ".join(f"{int(c)} {action}" for c, action in _CLOSE_ACTIONS.items())
    return (
        "Mentara's live interview protocol, version 1 (PROTOCOL.md), generated from the "
        "server's `protocol/` types. Every frame is a map with a string `type`. Session "
        f"events ({', '.join(f'`{t}`' for t in SESSION_EVENT_TYPES)}) carry `seq` (1, 2, 3, "
        "... per session, no gap) and `ts` (Unix ms); control frames "
        f"({', '.join(f'`{t}`' for t in CONTROL_FRAME_TYPES)}) belong to one socket. "
        "Clients ignore types and fields they do not know. Optional fields are absent, "
        "never null. "
        f"`error.code` is one of {codes}. Close codes: {closes}."
    )


@cache
def asyncapi_document() -> Mapping[str, Any]:
    """The AsyncAPI 3 document of protocol v1 (do not mutate the result)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for prefix, (address, who, client) in _ENDPOINTS.items():
        for subprotocol in (JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL):
            key = f"{prefix}{'Json' if subprotocol == JSON_SUBPROTOCOL else 'Msgpack'}"
            channels[key] = _channel(address, who, subprotocol, client)
            operations.update(_operations(key, client))
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Mentara live interview protocol",
            "version": str(PROTOCOL_VERSION),
            "description": _description(),
        },
        "defaultContentType": "application/json",
        "servers": {
            "development": {
                "host": "127.0.0.1:8000",
                "protocol": "ws",
                "description": "`mentara serve` on this machine (use wss behind TLS).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": _schemas()},
    }


def render() -> str:
    """The document as the text kept in ``docs/asyncapi.json`` (keys in the order built,
    two-space indent, trailing newline)."""
    return json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m protocol.asyncapi [--check] [PATH]``: write (or check) the document."""
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    path = Path(paths[0]) if paths else DOCUMENT_PATH
    text = render()
    if check:
        try:
            current = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            current = ""
        if current != text:
            print(f"{path} is stale: run python -m protocol.asyncapi", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
