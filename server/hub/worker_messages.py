"""Every message one worker sends another, typed, in one place.

Workers talk over Redis pub/sub: input forwarded to a session's owner and its reply
(:mod:`server.hub.rpc`, MessagePack on each worker's own channel), and the erase rounds of
``DELETE /v1/me`` (:mod:`server.sessions.erasure`, JSON on the erase channel). Each message
is a frozen msgspec struct tagged by ``k``; :func:`decode_input_message` and
:func:`decode_erase_message` are the only decoders, and raise :class:`msgspec.DecodeError`
(a ``ValueError``) for anything else. (Control frames for a session's sockets, such as an
``error`` broadcast, are protocol frames and travel as the protocol's JSON.)

The wire format is the one workers spoke before these types existed, so workers of the
previous release and this one understand each other during a rolling deploy.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

__all__ = [
    "EraseDone",
    "EraseRound",
    "InputReply",
    "InputRequest",
    "RemoteFailure",
    "decode_erase_message",
    "decode_input_message",
    "encode_erase_message",
    "encode_input_message",
]

#: An error the owner answered with: ``[code, message, retryable, field]``.
RemoteFailure: TypeAlias = tuple[str, str, bool, "str | None"]


class InputRequest(msgspec.Struct, frozen=True, tag="req", tag_field="k"):
    """Apply client frame ``f`` (its protocol JSON) of user ``uid`` to session ``sid``; reply
    on channel ``to`` under ``rid``."""

    rid: int
    to: str
    sid: str
    uid: str
    f: bytes


class InputReply(msgspec.Struct, frozen=True, tag="rep", tag_field="k"):
    """The owner's answer to request ``rid``: the seq to ack, or the failure."""

    rid: int
    seq: int | None = None
    err: RemoteFailure | None = None


class EraseRound(msgspec.Struct, frozen=True):
    """One round of an erasure, from worker ``sender`` to every worker: ``end`` the listed
    sessions it owns, or close its sockets on them once they are ``gone``."""

    k: Literal["end", "gone"]
    rid: str
    sender: str = msgspec.field(name="from")
    sids: list[str] = msgspec.field(default_factory=list)


class EraseDone(msgspec.Struct, frozen=True, tag="done", tag_field="k"):
    """Worker's confirmation of round ``rid`` to the coordinating worker ``to``."""

    rid: str
    to: str


_input_decoder: msgspec.msgpack.Decoder[InputRequest | InputReply] = msgspec.msgpack.Decoder(
    InputRequest | InputReply
)
_input_encoder = msgspec.msgpack.Encoder()
_erase_done_decoder = msgspec.json.Decoder(EraseDone)
_erase_round_decoder = msgspec.json.Decoder(EraseRound)
_erase_encoder = msgspec.json.Encoder()


def encode_input_message(message: InputRequest | InputReply) -> bytes:
    return _input_encoder.encode(message)


def decode_input_message(data: bytes) -> InputRequest | InputReply:
    return _input_decoder.decode(data)


def encode_erase_message(message: EraseRound | EraseDone) -> bytes:
    return _erase_encoder.encode(message)


def decode_erase_message(data: bytes) -> EraseRound | EraseDone:
    """A round (``k`` = ``end`` or ``gone``) or a confirmation (``k`` = ``done``)."""
    kind = msgspec.json.decode(data, type=_Kind).k
    if kind == "done":
        return _erase_done_decoder.decode(data)
    return _erase_round_decoder.decode(data)


class _Kind(msgspec.Struct):
    k: Literal["end", "gone", "done"]
