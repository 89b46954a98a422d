"""Claude's streamed reply, read lean: the SDK sends the request, this reads the reply's body.

The SDK keeps what it does well: the request (auth headers, the body, the connection pool),
its retries before the response headers, and status errors raised as its own exceptions.
From the headers on, :class:`ClaudeStream` reads the ``text/event-stream`` body itself
instead of the SDK's event iterator and its accumulating ``MessageStream``: it splits the
server-sent events, skips ``ping`` without decoding it, and decodes each other ``data``
with msgspec into a :class:`StreamEvent` holding only the fields the server reads (type,
index, the delta's text or partial JSON, the stop reason, the usage, a tool block's name).
That is the per-event work the product needs and nothing else: no pydantic model per event,
no message snapshot copied per delta.

Each network read is one await: where the SDK's HTTP client is its aiohttp transport (the
worker's client, ``server.claude_client``) and the body is not content-encoded, the bytes
are read straight off aiohttp's ``StreamReader`` (``readany``), not through the five
generators of ``Response.aiter_bytes`` (httpx2's decoder and byte chunker, its stream
bindings, the transport's ``iter_chunked``); aiohttp's errors are raised as the transport
would raise them (``httpx2.ReadError``, ``httpx2.ReadTimeout``). Any other client or an
encoded body takes ``aiter_bytes``: same bytes, same errors (``tests/test_claude_sse.py``
reads every stream both ways).

Contract, as the SDK's stream: an ``event: error`` raises ``anthropic.APIStatusError`` with
the error body (status 200, so ``classify_failure`` reads ``error.type``), after the events
that came before it in the same read were returned; events without an
``event:`` line are ignored; a ``data`` that is not the JSON of an object raises
``ValueError``. The body is bounded: a single event over :data:`MAX_EVENT_BYTES` raises
``ValueError`` (the API's events are a few hundred bytes). :meth:`ClaudeStream.aclose`
closes the response (and returns its connection to the pool); it is idempotent and safe to
call from a cancelled task.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec

if TYPE_CHECKING:
    import anthropic
    import httpx2

__all__ = ["MAX_EVENT_BYTES", "ClaudeStream", "StreamEvent", "Usage"]

MAX_EVENT_BYTES = 1 << 20


class Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class Delta(msgspec.Struct):
    type: str = ""
    text: str = ""
    partial_json: str = ""
    stop_reason: str | None = None


class ContentBlock(msgspec.Struct):
    type: str = ""
    name: str = ""


class MessageStart(msgspec.Struct):
    usage: Usage = msgspec.field(default_factory=Usage)


class StreamEvent(msgspec.Struct):
    """One stream event, only the fields read: ``message_start`` (``message.usage``),
    ``content_block_start`` (``index``, ``content_block``), ``content_block_delta``
    (``index``, ``delta.type``, ``delta.text`` or ``delta.partial_json``), ``message_delta``
    (``delta.stop_reason``, ``usage``), ``content_block_stop``, ``message_stop``."""

    type: str = ""
    index: int = 0
    delta: Delta | None = None
    usage: Usage | None = None
    message: MessageStart | None = None
    content_block: ContentBlock | None = None


_decode_event = msgspec.json.Decoder(StreamEvent).decode


def _field(line: bytes, name: bytes) -> bytes | None:
    """The value of an SSE field line ``name: value`` (one leading space dropped)."""
    if not line.startswith(name):
        return None
    rest = line[len(name) :]
    if rest[:1] != b":":
        return None
    rest = rest[1:]
    return rest[1:] if rest[:1] == b" " else rest


class ClaudeStream:
    """One streamed ``messages.create`` reply. :meth:`open` sends the request through the SDK
    (its errors and retries unchanged); :meth:`next_events` returns the events of the next
    network read(s), at least one, or None at the end of the body."""

    def __init__(self, response: httpx2.Response, status_error: Callable[..., Exception]) -> None:
        self.response = response
        self._status_error = status_error
        self._content = _aiohttp_content(response)
        self._chunks: AsyncIterator[bytes] | None = (
            response.aiter_bytes().__aiter__() if self._content is None else None
        )
        self._buffer = b""
        self._cr = False  # the last read ended with a CR (its LF may follow)
        self._error: Exception | None = None  # raised by the next call
        self._closed = False

    @classmethod
    async def open(cls, client: anthropic.AsyncAnthropic, params: dict[str, Any]) -> ClaudeStream:
        import anthropic

        sdk_stream = await client.messages.create(**params, stream=True)
        return cls(sdk_stream.response, anthropic.APIStatusError)

    async def next_events(self) -> list[StreamEvent] | None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        events: list[StreamEvent] = []
        while not events:
            chunk = await self._read()
            if not chunk:
                if self._cr:
                    self._cr = False
                    self._buffer += b"\n"
                if self._buffer.strip():
                    self._parse(self._buffer, events)  # a last event with no blank line
                    self._buffer = b""
                return events or None
            if b"\r" in chunk or self._cr:
                chunk = self._normalize(chunk)
            buffer = self._buffer + chunk if self._buffer else chunk
            end = buffer.rfind(b"\n\n")
            if end < 0:
                if len(buffer) > MAX_EVENT_BYTES:
                    raise ValueError(f"a stream event over {MAX_EVENT_BYTES} bytes")
                self._buffer = buffer
                continue
            self._buffer = buffer[end + 2 :]
            for block in buffer[:end].split(b"\n\n"):
                try:
                    self._parse(block, events)
                except Exception as exc:
                    if not events:
                        raise
                    # The events before it first, as the SDK yields them one by one.
                    self._error = exc
                    break
        return events

    @property
    def direct(self) -> bool:
        """Whether the body is read straight off aiohttp's buffer (see the module docstring)."""
        return self._content is not None

    async def _read(self) -> bytes:
        """The next bytes of the body, b"" at its end."""
        if self._content is not None:
            try:
                return await self._content.readany()
            except aiohttp.ClientError as exc:
                raise _transport_error(exc) from exc
        assert self._chunks is not None
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            return b""

    def _normalize(self, chunk: bytes) -> bytes:
        """CRLF and CR line ends as LF, also when a CRLF is split across two reads."""
        if self._cr:
            self._cr = False
            chunk = b"\r" + chunk
        if chunk.endswith(b"\r"):
            self._cr = True
            chunk = chunk[:-1]
        return chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

    def _parse(self, block: bytes, out: list[StreamEvent]) -> None:
        name: bytes | None = None
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"data"):
                value = _field(line, b"data")
                if value is not None:
                    data.append(value)
            elif line.startswith(b"event"):
                name = _field(line, b"event")
        if not name or name == b"ping":
            return
        payload = b"\n".join(data)
        if name == b"error":
            self._raise_error(payload)
        if not payload:
            return
        try:
            out.append(_decode_event(payload))
        except msgspec.DecodeError as exc:
            raise ValueError(f"unreadable stream event {name.decode(errors='replace')}") from exc

    def _raise_error(self, payload: bytes) -> None:
        text = payload.decode(errors="replace")
        body: object = text
        try:
            body = json.loads(text)
            message = f"{body}"
        except ValueError:
            message = text or f"Error code: {self.response.status_code}"
        raise self._status_error(message, response=self.response, body=body)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self.response.aclose()


def _aiohttp_content(response: httpx2.Response) -> aiohttp.StreamReader | None:
    """aiohttp's body buffer under ``response``, when the SDK's aiohttp transport made it and
    the body needs no decoding; else None (read through ``aiter_bytes``)."""
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return None
    bound = getattr(response, "stream", None)  # httpx2's BoundAsyncStream
    transport_stream = getattr(bound, "_stream", None)  # the transport's response stream
    aiohttp_response = getattr(transport_stream, "_aiohttp_response", None)
    content = getattr(aiohttp_response, "content", None)
    return content if isinstance(content, aiohttp.StreamReader) else None


def _transport_error(exc: aiohttp.ClientError) -> Exception:
    """An aiohttp read error as the SDK's aiohttp transport raises it (an httpx2 error)."""
    import httpx2

    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx2.ReadTimeout(str(exc))
    return httpx2.ReadError(str(exc))
