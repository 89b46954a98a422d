"""The wire between the servers and ``mentara runner``: length-prefixed MessagePack frames.

One connection carries one exchange. The client sends two frames back to back, a
:class:`Hello` with the shared token and then a request (:class:`RunRequest` or
:class:`Ping`); the runner answers with exactly one reply frame and closes the connection.
Each frame is a 4-byte big-endian length followed by that many bytes of MessagePack: a map
tagged by ``type`` (msgspec tagged structs), decoded only by :func:`decode_request` and
:func:`decode_reply`.

Bounds: a hello is at most :data:`MAX_HELLO_BYTES`, a request at most
:data:`MAX_REQUEST_BYTES`, a reply at most :data:`MAX_REPLY_BYTES`. A length above the
bound is refused from the 4-byte prefix alone, before any of the body is read, so an
unauthenticated peer can make the runner buffer at most a hello.

The types of a run (``TestCase``, ``RunLimits``, ``RunResult``) are the code runner's own
(:mod:`scoring.code_runner`): msgspec encodes and decodes its structs and dataclasses
field by field, so servers and runner of one build always agree.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from typing import Final, Literal, Protocol, TypeAlias

import msgspec

from scoring.code_runner import DEFAULT_LIMITS, CompareMode, RunLimits, RunResult, TestCase
from scoring.code_runner import SandboxUnavailable as SandboxUnavailable

MAX_HELLO_BYTES: Final = 1024
MAX_REQUEST_BYTES: Final = 8 * 1024 * 1024
MAX_REPLY_BYTES: Final = 8 * 1024 * 1024
_LENGTH: Final = struct.Struct(">I")


class RunsTests(Protocol):
    """A code runner as the server uses one: :class:`scoring.code_runner.CodeRunner` (in
    this process) or :class:`server.remote_runner.RemoteCodeRunner` (a ``mentara runner``)."""

    @property
    def max_concurrent(self) -> int: ...

    async def run_tests(
        self,
        source: str,
        function_name: str,
        tests: Sequence[TestCase],
        *,
        language: str = "python",
        compare: CompareMode = "exact",
        tolerance: float = 1e-6,
        limits: RunLimits = DEFAULT_LIMITS,
    ) -> RunResult: ...


# --- client -> runner ----------------------------------------------------------------------


class Hello(msgspec.Struct, frozen=True, tag="hello", forbid_unknown_fields=True):
    """The first frame of every connection: the shared token (``MENTARA_RUNNER_TOKEN``)."""

    token: str


class RunRequest(msgspec.Struct, frozen=True, tag="run", forbid_unknown_fields=True):
    """:meth:`scoring.code_runner.CodeRunner.run_tests`'s arguments."""

    source: str
    function_name: str
    tests: tuple[TestCase, ...]
    language: str
    compare: CompareMode
    tolerance: float
    limits: RunLimits


class Ping(msgspec.Struct, frozen=True, tag="ping", forbid_unknown_fields=True):
    """Asks the runner whether it is up and what isolation it has."""


Request: TypeAlias = RunRequest | Ping


# --- runner -> client ----------------------------------------------------------------------

RefusalCode: TypeAlias = Literal["unauthorized", "too_large", "bad_request", "busy", "timeout"]


class RunReply(msgspec.Struct, frozen=True, tag="result"):
    result: RunResult


class Pong(msgspec.Struct, frozen=True, tag="pong"):
    sandbox: str


class InvalidRun(msgspec.Struct, frozen=True, tag="invalid"):
    """``run_tests`` refused its arguments (its ``ValueError``); the client raises the same."""

    message: str


class SandboxDown(msgspec.Struct, frozen=True, tag="sandbox_unavailable"):
    """``run_tests`` raised ``SandboxUnavailable``; the client raises it again."""

    detail: str


class Refused(msgspec.Struct, frozen=True, tag="refused"):
    """The runner would not take the request (bad token, too large, malformed, full, slow)."""

    code: RefusalCode
    message: str


Reply: TypeAlias = RunReply | Pong | InvalidRun | SandboxDown | Refused


# --- framing -------------------------------------------------------------------------------


class FrameTooLarge(Exception):
    """A frame's length prefix is above the bound; its body was not read."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes is above the limit of {limit}")
        self.length, self.limit = length, limit


_encoder = msgspec.msgpack.Encoder()
_hello_decoder = msgspec.msgpack.Decoder(Hello)
_request_decoder = msgspec.msgpack.Decoder(Request)
_reply_decoder = msgspec.msgpack.Decoder(Reply)


def encode_frame(message: Hello | Request | Reply) -> bytes:
    body = _encoder.encode(message)
    return _LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader, limit: int) -> bytes:
    """One frame's body. Raises :class:`FrameTooLarge` (nothing of the body read),
    ``asyncio.IncompleteReadError`` when the peer closes mid-frame. Safe to cancel, but the
    connection is then unusable (it is never reused)."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > limit:
        raise FrameTooLarge(length, limit)
    return await reader.readexactly(length)


def decode_hello(body: bytes) -> Hello:
    """Raises ``msgspec.ValidationError`` / ``msgspec.DecodeError`` for anything else."""
    return _hello_decoder.decode(body)


def decode_request(body: bytes) -> Request:
    """Raises ``msgspec.ValidationError`` / ``msgspec.DecodeError`` for anything else
    (unknown ``type``, a missing or extra field, a wrong type, invalid ``RunLimits``)."""
    request: Request = _request_decoder.decode(body)
    return request


def decode_reply(body: bytes) -> Reply:
    reply: Reply = _reply_decoder.decode(body)
    return reply
