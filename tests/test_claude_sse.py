"""The lean reader of Claude's event stream (server/claude_sse.py), byte by byte.

Each test feeds a real ``httpx2.Response`` a body split into reads the way a network may
split it, and checks the events the reader returns and the errors it raises. The whole
provider and judge run through it against the fake Messages API in
test_anthropic_provider.py, test_scoring_claude_judge.py and test_interview_claude.py.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import anthropic
import httpx2
import pytest

from server.claude_sse import MAX_EVENT_BYTES, ClaudeStream, StreamEvent

Opener = Callable[[list[bytes]], Awaitable[ClaudeStream]]


class _Body(httpx2.AsyncByteStream):
    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for read in self.reads:
            yield read

    async def aclose(self) -> None:
        self.closed = True


def _stream(reads: list[bytes]) -> tuple[ClaudeStream, _Body]:
    body = _Body(reads)
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/messages")
    response = httpx2.Response(200, stream=body, request=request)
    return ClaudeStream(response, anthropic.APIStatusError), body


class _Wire:
    """A loopback HTTP/1.1 server answering each request with the given reads, each one
    chunk of a chunked body written on its own (``gzip``: the whole body gzip-compressed,
    with ``content-encoding: gzip``), and the SDK's clients to it."""

    def __init__(self) -> None:
        self.reads: list[bytes] = []
        self.gzip = False
        self.clients: list[anthropic.AsyncAnthropic] = []
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A client that stops reading mid-stream (the abort tests) makes ``drain`` raise: the
        # connection is closed here all the same, never left for the garbage collector to
        # find after the loop has closed (an unraisable ResourceWarning in a later test).
        self.writers.add(writer)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.writers.discard(writer)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        reads = [gzip.compress(b"".join(self.reads))] if self.gzip else self.reads
        encoding = b"content-encoding: gzip\r\n" if self.gzip else b""
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            + encoding
            + b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        )
        for read in reads:
            writer.write(b"%x\r\n%s\r\n" % (len(read), read))
            await writer.drain()
            await asyncio.sleep(0.001)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def open(self, reads: list[bytes], *, aiohttp: bool = True) -> ClaudeStream:
        self.reads = reads
        if self.server is None:
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        client = anthropic.AsyncAnthropic(
            api_key="k",
            base_url=f"http://127.0.0.1:{port}",
            max_retries=0,
            http_client=anthropic.DefaultAioHttpClient() if aiohttp else None,
        )
        self.clients.append(client)
        return await ClaudeStream.open(
            client, {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "q"}]}
        )


@pytest.fixture
async def wire() -> AsyncIterator[_Wire]:
    served = _Wire()
    yield served
    for client in served.clients:
        await client.close()
    for writer in list(served.writers):
        writer.close()
    if served.server is not None:
        served.server.close()
        await served.server.wait_closed()


@pytest.fixture(params=["memory", "aiohttp"])
async def open_stream(
    request: pytest.FixtureRequest, wire: _Wire
) -> Callable[[list[bytes]], Awaitable[ClaudeStream]]:
    """A stream over the given reads: an in-memory httpx2 body (``aiter_bytes``), or the real
    SDK over aiohttp on loopback (the body read straight off aiohttp's buffer)."""

    async def open_(reads: list[bytes]) -> ClaudeStream:
        if request.param == "memory":
            return _stream(reads)[0]
        stream = await wire.open(reads)
        assert stream.direct
        return stream

    return open_


async def _all(stream: ClaudeStream) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    while (batch := await stream.next_events()) is not None:
        assert batch, "next_events returns at least one event or None"
        events += batch
    await stream.aclose()
    return events


def _sse(event: str, data: dict[str, object]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


TEXT = [
    _sse("message_start", {"type": "message_start", "message": {"id": "m", "usage": {
        "input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 30}}}),
    _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    _sse("ping", {"type": "ping"}),
    _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hello, "}}),
    _sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "wörld \u2603"}}),
    _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
    _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 5}}),
    _sse("message_stop", {"type": "message_stop"}),
]  # fmt: skip


def _texts(events: list[StreamEvent]) -> str:
    return "".join(e.delta.text for e in events if e.delta is not None and e.delta.text)


async def test_events_are_read_whole_however_the_body_is_split(open_stream: Opener) -> None:
    whole = b"".join(TEXT)
    for size in (1, 2, 3, 7, 64, len(whole)):
        reads = [whole[i : i + size] for i in range(0, len(whole), size)]
        stream = await open_stream(reads)
        events = await _all(stream)
        assert [e.type for e in events] == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ], size  # the ping is skipped
        assert _texts(events) == "Hello, wörld \u2603"
        assert events[0].message is not None and events[0].message.usage.input_tokens == 12
        assert events[0].message.usage.cache_read_input_tokens == 30
        assert events[5].delta is not None and events[5].delta.stop_reason == "end_turn"
        assert events[5].usage is not None and events[5].usage.output_tokens == 5
        assert stream.response.is_closed


async def test_the_in_memory_body_is_closed() -> None:
    stream, body = _stream(TEXT)
    await _all(stream)
    assert body.closed


async def test_the_sdks_default_client_and_an_encoded_body_take_aiter_bytes(wire: _Wire) -> None:
    stream = await wire.open(TEXT, aiohttp=False)  # httpx2: no aiohttp buffer under it
    assert not stream.direct
    assert _texts(await _all(stream)) == "Hello, wörld \u2603"
    wire.gzip = True  # aiohttp's buffer holds compressed bytes: httpx2 decodes them
    stream = await wire.open(TEXT)
    assert not stream.direct
    assert _texts(await _all(stream)) == "Hello, wörld \u2603"


async def test_crlf_and_cr_line_ends_even_split_between_reads(open_stream: Opener) -> None:
    crlf = b"".join(TEXT).replace(b"\n", b"\r\n")
    cut = crlf.index(b"\r\n") + 1  # a read that ends between CR and LF
    stream = await open_stream([crlf[:cut], crlf[cut:]])
    assert _texts(await _all(stream)) == "Hello, wörld \u2603"
    cr = b"".join(TEXT).replace(b"\n", b"\r")
    stream = await open_stream([cr[i : i + 5] for i in range(0, len(cr), 5)])
    assert _texts(await _all(stream)) == "Hello, wörld \u2603"


async def test_an_error_event_raises_the_sdks_status_error_with_its_body() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    stream, _ = _stream([TEXT[0], TEXT[3], f"event: error\ndata: {json.dumps(error)}\n\n".encode()])
    assert [e.type for e in await stream.next_events() or []] == ["message_start"]
    assert _texts(await stream.next_events() or []) == "Hello, "
    with pytest.raises(anthropic.APIStatusError) as raised:
        await stream.next_events()
    assert raised.value.body == error
    assert raised.value.status_code == 200

    # In one read with text before it: the text first, then the error.
    stream, _ = _stream(
        [TEXT[0] + TEXT[3] + f"event: error\ndata: {json.dumps(error)}\n\n".encode()]
    )
    assert _texts(await stream.next_events() or []) == "Hello, "
    with pytest.raises(anthropic.APIStatusError):
        await stream.next_events()


async def test_an_error_event_over_the_wire_raises_after_the_events_before_it(
    wire: _Wire,
) -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    stream = await wire.open(
        [TEXT[0], TEXT[3], f"event: error\ndata: {json.dumps(error)}\n\n".encode()]
    )
    assert stream.direct
    seen: list[StreamEvent] = []
    with pytest.raises(anthropic.APIStatusError) as raised:
        while (batch := await stream.next_events()) is not None:
            seen += batch
    assert _texts(seen) == "Hello, "
    assert raised.value.body == error
    await stream.aclose()


async def test_a_body_cut_mid_event_raises_the_transports_read_error(wire: _Wire) -> None:
    stream = await wire.open([TEXT[0]])
    assert stream.direct
    content = stream._content
    assert content is not None
    await stream.next_events()
    content.set_exception(aiohttp.ClientPayloadError("Response payload is not completed"))
    with pytest.raises(httpx2.ReadError):
        await stream.next_events()
    await stream.aclose()


async def test_unnamed_events_comments_and_empty_data_are_ignored(open_stream: Opener) -> None:
    reads = [
        b": a comment\n\n",
        b'data: {"type":"content_block_delta"}\n\n',  # no event line: ignored, as by the SDK
        b"event: content_block_stop\n\n",  # no data: ignored
        TEXT[3],
        b"event:message_stop\ndata:" + b'{"type":"message_stop"}',  # no space; last, no blank
    ]
    events = await _all(await open_stream(reads))
    assert [e.type for e in events] == ["content_block_delta", "message_stop"]


async def test_unreadable_or_oversized_events_raise_value_error() -> None:
    stream, _ = _stream([b"event: content_block_delta\ndata: {not json\n\n"])
    with pytest.raises(ValueError, match="unreadable"):
        await stream.next_events()
    stream, _ = _stream([b"event: content_block_delta\ndata: " + b"x" * (MAX_EVENT_BYTES + 1)])
    with pytest.raises(ValueError, match="over"):
        await stream.next_events()
