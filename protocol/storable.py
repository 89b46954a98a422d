"""Storable text: strings the server can store, encode and send.

Two kinds of code point cannot be stored: U+0000 (Postgres ``text`` and ``jsonb`` refuse it,
and one refused row used to sink a whole write batch) and the lone surrogates U+D800-U+DFFF
(not Unicode scalar values: UTF-8 cannot encode them, so neither Postgres nor either wire
encoding can carry them). Every other code point is storable, control characters and astral
characters included.

Clients' strings with either are refused at decode: :mod:`protocol.codec` calls the
``refuse_*`` functions below, which raise ``FrameError(invalid_field)`` naming the field. The
server makes the text it produces storable (:func:`storable_value`) before an event is
appended. Everything here is pure, and cheap on the common case: an ASCII string costs one
``memchr``, any other one more UTF-8 encode.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final, TypeVar, cast

import msgpack
import msgspec

from protocol.errors import ErrorCode, FrameError

__all__ = [
    "REPLACEMENT",
    "holds_nul",
    "is_storable",
    "lenient_json",
    "lenient_msgpack",
    "refuse_lone_surrogates",
    "refuse_unstorable",
    "storable",
    "storable_value",
    "unstorable_path",
]

_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT: Final = "\ufffd"
"""What :func:`storable` puts in place of each unstorable code point (U+FFFD, the
replacement character: visible, and what a UTF-8 decoder shows for a broken sequence)."""

T = TypeVar("T")


def is_storable(text: str) -> bool:
    """Whether ``text`` holds neither U+0000 nor a lone surrogate."""
    if "\x00" in text:  # memchr
        return False
    if text.isascii():  # a flag on the string object: no scan
        return True
    try:
        text.encode()  # five times faster than a regex search: only a surrogate fails it
    except UnicodeEncodeError:
        return False
    return True


def storable(text: str) -> str:
    """``text`` with each U+0000 and lone surrogate replaced by U+FFFD; ``text`` itself (the
    same object) when it is storable already. Applied piecewise it gives the same result as
    applied to the whole: ``storable(a) + storable(b) == storable(a + b)`` (Python strings
    never join two surrogates into one character)."""
    if is_storable(text):
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)


def unstorable_path(value: object, path: str = "") -> str | None:
    """The dotted path (``text``, ``question.examples[0].input``, ``scores[...]`` for a map's
    key or value) of the first string in ``value`` that is not storable, or None.

    ``value`` is a string, a ``msgspec.Struct`` (its fields by wire name), or a list, tuple or
    dict of those; other values (numbers, None, ``UNSET``) hold no text.
    """
    if isinstance(value, str):
        return None if is_storable(value) else path
    if isinstance(value, msgspec.Struct):
        for name, wire_name in _field_names(type(value)):
            found = unstorable_path(
                getattr(value, name), f"{path}.{wire_name}" if path else wire_name
            )
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = unstorable_path(item, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{path}[...]"
            if unstorable_path(key, inner) is not None:
                return inner
            found = unstorable_path(item, inner)
            if found is not None:
                return found
    return None


def storable_value(value: T) -> T:
    """``value`` with every string in it made :func:`storable`: structs are rebuilt (with
    ``msgspec.structs.replace``) and containers copied only where something changed, so a
    value that is storable already comes back as the same object."""
    return _clean(value)  # type: ignore[no-any-return]


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, msgspec.Struct):
        changes = {}
        for name, _ in _field_names(type(value)):
            old = getattr(value, name)
            new = _clean(old)
            if new is not old:
                changes[name] = new
        return msgspec.structs.replace(value, **changes) if changes else value
    if isinstance(value, list | tuple):
        items = [_clean(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        cleaned = {_clean(k): _clean(v) for k, v in value.items()}
        unchanged = len(cleaned) == len(value) and all(
            k in value and value[k] is v for k, v in cleaned.items()
        )
        return value if unchanged else cleaned
    return value


_FIELD_NAMES: dict[type[msgspec.Struct], tuple[tuple[str, str], ...]] = {}


def _field_names(cls: type[msgspec.Struct]) -> tuple[tuple[str, str], ...]:
    """``(attribute, wire name)`` of each field of ``cls``, cached."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(
            (f.name, f.encode_name) for f in msgspec.structs.fields(cls)
        )
    return names


# --- client frames holding unstorable text: the codecs' refusal ---------------------------------

_UNSTORABLE_RULE = "must not contain U+0000 or a lone surrogate (U+D800-U+DFFF)"
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_TYPE_NAME_LIMIT = 64  # as FrameError.frame_type


def _unstorable_field(path: str, frame_id: object, frame_type: str) -> FrameError:
    # An id with a lone surrogate cannot be sent back in any encoding: no ref then.
    sendable = type(frame_id) is str and _SURROGATE.search(frame_id) is None
    return FrameError(
        ErrorCode.INVALID_FIELD,
        f"`{path}` {_UNSTORABLE_RULE}",
        field=path,
        ref=cast(str, frame_id) if sendable else None,
        frame_type=frame_type[:_TYPE_NAME_LIMIT],
    )


def holds_nul(frame: msgspec.Struct) -> bool:
    """Whether a string field of ``frame`` (client frames are flat) holds U+0000."""
    for name in frame.__struct_fields__:
        value = getattr(frame, name)
        if value.__class__ is str:
            if "\x00" in value:
                return True
        elif isinstance(value, list | dict | msgspec.Struct):
            return True  # not flat after all: let the full walk decide
    return False


def refuse_unstorable(frame: msgspec.Struct) -> None:
    """Raise ``invalid_field`` naming the first string field of ``frame`` holding U+0000 or a
    lone surrogate."""
    path = unstorable_path(frame)
    if path is not None:
        tag = type(frame).__struct_config__.tag
        raise _unstorable_field(path, getattr(frame, "id", None), str(tag))


def refuse_lone_surrogates(obj: object, types: Mapping[str, type[msgspec.Struct]]) -> None:
    """``obj``, a frame the strict decoder refused, decoded again letting lone surrogates
    through (None if even that failed): raise ``invalid_field`` if one of its type's known
    fields holds text that is not storable; else return (the frame stays ``bad_frame``)."""
    if type(obj) is not dict or not all(type(key) is str for key in obj):
        return
    frame_type = obj.get("type")
    if type(frame_type) is not str or (cls := types.get(frame_type)) is None:
        return
    for field in msgspec.structs.fields(cls):
        if field.encode_name in obj:
            path = unstorable_path(obj[field.encode_name], field.encode_name)
            if path is not None:
                raise _unstorable_field(path, obj.get("id"), frame_type)


def lenient_json(data: bytes | str) -> object:
    """``data`` decoded by the standard library, which keeps ``\\udXXX`` escapes as lone
    surrogates; None when it holds no such escape or is not UTF-8 JSON text."""
    try:
        text = data.decode() if isinstance(data, bytes) else data
        text.encode()  # raw surrogates: not UTF-8 text
        if _SURROGATE_ESCAPE.search(text) is None:
            return None
        return json.loads(text)
    except Exception:  # RecursionError, ValueError, UnicodeError: not ours to name
        return None


def lenient_msgpack(data: bytes | str) -> object:
    """``data`` decoded with a surrogate's three-byte form read as that surrogate; None when
    it holds none (no 0xED byte) or does not decode."""
    if not isinstance(data, bytes) or b"\xed" not in data:
        return None
    try:
        return msgpack.unpackb(
            data, raw=False, unicode_errors="surrogatepass", strict_map_key=False
        )
    except Exception:  # malformed, too deep, extension types it cannot read
        return None
