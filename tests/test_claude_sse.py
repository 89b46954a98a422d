"""The lean reader of Claude's event stream (server/claude_sse.py), byte by byte.

Each test feeds a real ``httpx2.Response`` a body split into reads the way a network may
split it, and checks the events the reader returns and the errors it raises. The whole
provider and judge run through it against the fake Messages API in
test_anthropic_provider.py, test_scoring_claude_judge.py and test_interview_claude.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anthropic
import httpx2
import pytest

from server.claude_sse import MAX_EVENT_BYTES, ClaudeStream, StreamEvent


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


async def test_events_are_read_whole_however_the_body_is_split() -> None:
    whole = b"".join(TEXT)
    for size in (1, 2, 3, 7, 64, len(whole)):
        reads = [whole[i : i + size] for i in range(0, len(whole), size)]
        stream, body = _stream(reads)
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
        assert body.closed


async def test_crlf_and_cr_line_ends_even_split_between_reads() -> None:
    crlf = b"".join(TEXT).replace(b"\n", b"\r\n")
    cut = crlf.index(b"\r\n") + 1  # a read that ends between CR and LF
    stream, _ = _stream([crlf[:cut], crlf[cut:]])
    assert _texts(await _all(stream)) == "Hello, wörld \u2603"
    cr = b"".join(TEXT).replace(b"\n", b"\r")
    stream, _ = _stream([cr[i : i + 5] for i in range(0, len(cr), 5)])
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


async def test_unnamed_events_comments_and_empty_data_are_ignored() -> None:
    reads = [
        b": a comment\n\n",
        b'data: {"type":"content_block_delta"}\n\n',  # no event line: ignored, as by the SDK
        b"event: content_block_stop\n\n",  # no data: ignored
        TEXT[3],
        b"event:message_stop\ndata:" + b'{"type":"message_stop"}',  # no space; last, no blank
    ]
    events = await _all(_stream(reads)[0])
    assert [e.type for e in events] == ["content_block_delta", "message_stop"]


async def test_unreadable_or_oversized_events_raise_value_error() -> None:
    stream, _ = _stream([b"event: content_block_delta\ndata: {not json\n\n"])
    with pytest.raises(ValueError, match="unreadable"):
        await stream.next_events()
    stream, _ = _stream([b"event: content_block_delta\ndata: " + b"x" * (MAX_EVENT_BYTES + 1)])
    with pytest.raises(ValueError, match="over"):
        await stream.next_events()
