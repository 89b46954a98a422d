"""The two wire encodings of protocol v1, and subprotocol negotiation (PROTOCOL.md §1).

A :class:`Codec` turns message structs into frame payloads and payloads back into typed
messages. There is one per encoding, :data:`JSON` and :data:`MSGPACK`; both carry exactly the
same objects. Codecs are stateless and safe to share between tasks and threads.

Decoding contract (``decode_client`` / ``decode_server``), checked in this order:

1. not decodable in the codec's encoding (including nesting too deep, numbers out of range,
   invalid UTF-8, a text payload given to MessagePack), not a map, a map with a non-string
   key, or ``type`` missing or not a string: ``FrameError(bad_frame)``;
2. a ``type`` this side does not receive: ``FrameError(unknown_type)``, naming the type;
3. fields failing validation: ``FrameError(invalid_field, field=<dotted path>)``; for a
   client frame this includes a string field holding text no store can hold, U+0000 or a
   lone surrogate (:mod:`protocol.storable`), however the frame spells it: a JSON ``\\u``
   escape, or in MessagePack the three-byte form of a surrogate that JavaScript encoders
   write (otherwise invalid UTF-8). Raw surrogates in JSON text, and a lone surrogate
   anywhere but in a known field, stay ``bad_frame`` (not UTF-8 text).

Unknown fields are ignored. ``FrameError.ref`` is the frame's ``id`` whenever the frame was a
map and its ``id`` a string (but for an ``id`` holding a lone surrogate, which no encoding can
send back). Decoding raises nothing but ``FrameError``.

Cost: a valid frame pays one substring search of the raw payload for the rare bad case
(JSON: ``\\u0000``; MessagePack: a zero byte), and a walk of its string fields only when that
finds something.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

import msgspec
import msgspec.inspect as mi

from protocol.errors import ErrorCode, FrameError
from protocol.messages import (
    CLIENT_FRAME_TYPES,
    SERVER_FRAME_TYPES,
    ClientFrame,
    ServerFrame,
)
from protocol.storable import (
    holds_nul,
    lenient_json,
    lenient_msgpack,
    refuse_lone_surrogates,
    refuse_unstorable,
)

__all__ = [
    "CODECS",
    "JSON",
    "JSON_SUBPROTOCOL",
    "MSGPACK",
    "MSGPACK_SUBPROTOCOL",
    "Codec",
    "negotiate",
]

JSON_SUBPROTOCOL: Final = "mentara.v1.json"
MSGPACK_SUBPROTOCOL: Final = "mentara.v1.msgpack"

_TYPE_NAME_LIMIT = 64
_DETAIL_LIMIT = 160
_RAW_SEARCH_LIMIT = 1024

_Decode = Callable[[Any], Any]


class Codec:
    """One wire encoding: its subprotocol, frame kind, encoder and decoders.

    Attributes:
        name: ``"json"`` or ``"msgpack"``.
        subprotocol: the WebSocket subprotocol that selects this encoding.
        is_text: whether payloads travel in text frames (JSON) or binary frames (MessagePack).
    """

    __slots__ = (
        "_decode_builtins",
        "_decode_client_typed",
        "_decode_lenient",
        "_decode_server_typed",
        "_encode",
        "_label",
        "_nul_marks",
        "is_text",
        "name",
        "subprotocol",
    )

    def __init__(
        self,
        *,
        name: str,
        label: str,
        subprotocol: str,
        is_text: bool,
        encoder: msgspec.json.Encoder | msgspec.msgpack.Encoder,
        decoder: type[msgspec.json.Decoder[Any]] | type[msgspec.msgpack.Decoder[Any]],
    ) -> None:
        self.name = name
        self.subprotocol = subprotocol
        self.is_text = is_text
        self._label = label
        self._encode: Callable[[Any], bytes] = encoder.encode
        self._decode_builtins: _Decode = decoder().decode
        self._decode_client_typed: _Decode = decoder(ClientFrame).decode
        self._decode_server_typed: _Decode = decoder(ServerFrame).decode
        # How U+0000 shows in a raw payload (bytes, str): a JSON escape, a MessagePack byte.
        self._nul_marks: tuple[bytes, str] = (
            (b"\\u0000", "\\u0000") if is_text else (b"\x00", "\x00")
        )
        self._decode_lenient = lenient_json if is_text else lenient_msgpack

    def __repr__(self) -> str:
        return f"<Codec {self.name} ({self.subprotocol})>"

    def encode(self, msg: msgspec.Struct) -> bytes:
        """Encode one message into a frame payload.

        JSON gives UTF-8 bytes: send them as a text frame (decode to ``str``, or use a
        library's send-bytes-as-text option). Raises ``TypeError``/``ValueError`` only for
        values no valid message holds (a lone surrogate, say).
        """
        return self._encode(msg)

    def encode_raw(self, obj: object) -> bytes:
        """Encode plain builtin objects (dicts, lists, str, int, float, bool, None), as for a
        hostile-input test or a frame of a type this version does not define."""
        return self._encode(obj)

    def decode_client(self, data: bytes | str) -> ClientFrame:
        """Decode a frame a client sent. Raises only ``FrameError`` (see the module doc)."""
        try:
            frame = self._decode_client_typed(data)
        except Exception:  # the checked path below says what was wrong
            return cast(ClientFrame, self._decode_checked(data, CLIENT_FRAME_TYPES, client=True))
        # The typed decoders refuse lone surrogates but let U+0000 through. It can be in the
        # frame only if its raw mark is in the payload (JSON: the escape; MessagePack: a zero
        # byte, which is common there too: the integer 0), so one search of the payload
        # spares the rest. In a large JSON frame that search costs more than a memchr per
        # string field (a 10 KB code.update: 4 us against 0.2 us): those go to the fields.
        if not self.is_text or len(data) <= _RAW_SEARCH_LIMIT:
            if isinstance(data, str):
                if self._nul_marks[1] not in data:
                    return cast(ClientFrame, frame)
            elif self._nul_marks[0] not in data:
                return cast(ClientFrame, frame)
        if holds_nul(frame):
            refuse_unstorable(frame)
        return cast(ClientFrame, frame)

    def decode_server(self, data: bytes | str) -> ServerFrame:
        """Decode a frame a server sent. Raises only ``FrameError`` (see the module doc)."""
        try:
            return cast(ServerFrame, self._decode_server_typed(data))
        except Exception:  # the checked path below says what was wrong
            pass
        return cast(ServerFrame, self._decode_checked(data, SERVER_FRAME_TYPES))

    def _decode_checked(
        self,
        data: bytes | str,
        types: Mapping[str, type[msgspec.Struct]],
        *,
        client: bool = False,
    ) -> msgspec.Struct:
        # The typed decoders above are the fast path for valid frames; this path runs when
        # they fail and works out, step by step, which part of the contract was broken.
        if isinstance(data, str) and not self.is_text:
            raise FrameError(ErrorCode.BAD_FRAME, f"a {self._label} frame must be binary")
        try:
            obj = self._decode_builtins(data)
        except Exception:
            if client:
                refuse_lone_surrogates(self._decode_lenient(data), types)
            raise FrameError(ErrorCode.BAD_FRAME, f"frame is not valid {self._label}") from None
        if type(obj) is not dict:
            raise FrameError(ErrorCode.BAD_FRAME, "frame must be a map")
        frame_id = obj.get("id")
        ref = frame_id if type(frame_id) is str else None
        if not all(type(key) is str for key in obj):
            raise FrameError(ErrorCode.BAD_FRAME, "frame keys must be strings", ref=ref)
        frame_type = obj.get("type")
        if type(frame_type) is not str:
            raise FrameError(ErrorCode.BAD_FRAME, "frame must have a string `type`", ref=ref)
        shown_type = frame_type[:_TYPE_NAME_LIMIT]
        cls = types.get(frame_type)
        if cls is None:
            raise FrameError(
                ErrorCode.UNKNOWN_TYPE,
                f"unknown frame type {json.dumps(shown_type)}",
                ref=ref,
                frame_type=shown_type,
            )
        try:
            frame: msgspec.Struct = msgspec.convert(obj, type=cls)
            if client:
                refuse_unstorable(frame)
            return frame
        except FrameError:
            raise
        except msgspec.ValidationError as exc:
            field, message = describe_validation_error(str(exc), cls)
            raise FrameError(
                ErrorCode.INVALID_FIELD, message, field=field, ref=ref, frame_type=shown_type
            ) from None
        except Exception:
            raise FrameError(
                ErrorCode.BAD_FRAME, "frame could not be decoded", ref=ref, frame_type=shown_type
            ) from None


JSON: Final = Codec(
    name="json",
    label="JSON",
    subprotocol=JSON_SUBPROTOCOL,
    is_text=True,
    encoder=msgspec.json.Encoder(),
    decoder=msgspec.json.Decoder,
)
"""The JSON codec: one JSON object per text frame."""

MSGPACK: Final = Codec(
    name="msgpack",
    label="MessagePack",
    subprotocol=MSGPACK_SUBPROTOCOL,
    is_text=False,
    encoder=msgspec.msgpack.Encoder(),
    decoder=msgspec.msgpack.Decoder,
)
"""The MessagePack codec: one MessagePack map per binary frame."""

CODECS: Final[Mapping[str, Codec]] = {JSON_SUBPROTOCOL: JSON, MSGPACK_SUBPROTOCOL: MSGPACK}
"""Supported subprotocols, in the server's order of preference."""


def negotiate(offered: Sequence[str]) -> tuple[Codec, str | None]:
    """Pick the codec for a WebSocket upgrade from the client's offered subprotocols.

    The first offered subprotocol that we support wins; returns its codec and the
    subprotocol to echo in the handshake response. When none of ours is offered, returns
    ``(JSON, None)``: the socket speaks JSON and the response names no subprotocol.
    """
    for subprotocol in offered:
        codec = CODECS.get(subprotocol)
        if codec is not None:
            return codec, subprotocol
    return JSON, None


# --- turning msgspec validation errors into client-facing messages ---------------------------

_LOCATION = re.compile(r"(?P<detail>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`)?", re.S)
_MISSING = re.compile(r"Object missing required field `(?P<name>[^`]+)`")
_WRONG_TYPE = re.compile(r"Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`")
_LENGTH = re.compile(r"Expected `(?P<expected>[^`]+)` of length (?P<op>[<>]=) (?P<n>\d+)")
_BOUND = re.compile(r"Expected `(?P<expected>int|float)` (?P<op>[<>]=?) (?P<bound>\S+)")
_PATTERN = re.compile(r"Expected `str` matching regex (?P<regex>.+)")
_PATH_SEGMENT = re.compile(r"\[(?P<index>[^\]]*)\]|\.?(?P<name>[^.\[]+)")

_TYPE_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
    "bytes": "binary data",
    "ext": "a MessagePack extension",
    "datetime": "a timestamp",
}
_LENGTH_UNITS = {"str": "characters", "array": "items", "object": "entries"}


def describe_validation_error(error: str, cls: type[msgspec.Struct]) -> tuple[str, str]:
    """Turn a ``msgspec.ValidationError`` text about struct ``cls`` into ``(field, message)``.

    ``field`` is the dotted path of the offending field (``"question.examples[0].input"``);
    ``message`` names it and the rule it broke, and never echoes the offending value.
    """
    location = _LOCATION.fullmatch(error)
    assert location is not None  # the pattern matches any string
    detail = location["detail"]
    path = (location["path"] or "").removeprefix(".")
    if missing := _MISSING.fullmatch(detail):
        field = f"{path}.{missing['name']}" if path else missing["name"]
        return field, f"`{field}` is required"
    if location["key"]:
        return path, f"keys of `{path}` must be strings"
    return path, f"`{path}` {_describe_rule(detail, cls, path)}"


def _describe_rule(detail: str, cls: type[msgspec.Struct], path: str) -> str:
    if m := _WRONG_TYPE.fullmatch(detail):
        return f"must be {_type_phrase(m['expected'])}, not {_type_phrase(m['got'])}"
    if m := _LENGTH.fullmatch(detail):
        expected, n = m["expected"], int(m["n"])
        if expected == "str" and m["op"] == ">=" and n == 1:
            return "must not be empty"
        bound = "at most" if m["op"] == "<=" else "at least"
        unit = _LENGTH_UNITS.get(expected, "elements")
        return f"must be {_type_phrase(expected)} of {bound} {n} {unit}"
    if m := _BOUND.fullmatch(detail):
        if m["expected"] == "float" and m["bound"].lstrip("-") == "1.7976931348623157e+308":
            return "must be a finite number"
        return f"must be {_type_phrase(m['expected'])} {m['op']} {m['bound']}"
    if m := _PATTERN.fullmatch(detail):
        return f"must match the pattern {m['regex']}"
    if detail.startswith("Invalid enum value"):
        allowed = _allowed_values(cls, path)
        if allowed:
            return "must be one of " + ", ".join(json.dumps(value) for value in allowed)
        return "has a value that is not allowed"
    return f"is invalid ({detail[:_DETAIL_LIMIT]})"


def _type_phrase(names: str) -> str:
    return " or ".join(_TYPE_NAMES.get(name, f"`{name}`") for name in names.split(" | "))


def _allowed_values(cls: type[msgspec.Struct], path: str) -> tuple[object, ...]:
    """The values a Literal or Enum field at ``path`` of ``cls`` accepts; () if unknown."""
    node: mi.Type | None = _struct_info(cls)
    for segment in _PATH_SEGMENT.finditer(path):
        node = _child(node, segment["name"], segment["index"])
    allowed: list[object] = []
    for member in _members(node):
        if isinstance(member, mi.LiteralType):
            allowed.extend(member.values)
        elif isinstance(member, mi.EnumType):
            allowed.extend(item.value for item in member.cls)
    return tuple(allowed)


@functools.cache
def _struct_info(cls: type[msgspec.Struct]) -> mi.Type:
    return mi.type_info(cls)


def _members(node: mi.Type | None) -> tuple[mi.Type, ...]:
    while isinstance(node, mi.Metadata):
        node = node.type
    if node is None:
        return ()
    if isinstance(node, mi.UnionType):
        return tuple(m for t in node.types for m in _members(t))
    return (node,)


def _child(node: mi.Type | None, name: str | None, index: str | None) -> mi.Type | None:
    for member in _members(node):
        if name is not None and isinstance(member, mi.StructType):
            for field in member.fields:
                if field.encode_name == name:
                    return field.type
        elif index is not None and isinstance(member, mi.ListType):
            return member.item_type
        elif index is not None and isinstance(member, mi.DictType):
            return member.value_type
    return None
