"""The benchmark's stand-in for the Claude Messages API: a process of its own on loopback.

``python -m bench.fake_claude --port 0 --tokens-per-s 70 --words-per-chunk 3`` serves
``POST /v1/messages`` as the API does, so a Mentara server with the ``anthropic`` provider
runs a whole interview through the official SDK against it:

- the interviewer's turns (``stream: true``, no tools): the real SSE wire format, event by
  event: ``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``
  (``text_delta``, ``--words-per-chunk`` words each, paced at ``--tokens-per-s`` counting a
  word as a token), ``content_block_stop``, ``message_delta`` (stop reason, usage),
  ``message_stop``;
- the evidence judge's calls (``stream: true`` with ``tools``): one ``tool_use`` block whose
  input (streamed as ``input_json_delta``, the first one empty as the API sends it) labels one
  positive signal of the rubric given in the system prompt, citing the seqs marked NEW;
- the report summary (``stream`` absent): one JSON ``message``.

It prints ``fake messages api listening on http://127.0.0.1:<port>`` once it listens. Its CPU
is the benchmark's to report apart: it runs in its own process so that it is never charged
to the server. It trusts its client (the bench's server) and validates nothing but the
shape it needs; a request it does not understand gets the API's 400 error body.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

__all__ = ["FakeClaude", "build_parser", "main"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_SENTENCES = (
    "That is a reasonable place to start, so let us look at it more closely.",
    "Walk me through what happens to the input when it is very large.",
    "How would you know that this part of your approach is correct?",
    "Think about the worst case for a moment and tell me what it costs.",
    "Good, and which data structure would make that lookup cheaper?",
    "Before you write more code, say what you expect each step to return.",
    "I like that you named the trade-off; which side would you choose here?",
    "Consider an empty input and a single element: what does your code do?",
)
_NEW_SEQ = re.compile(r"\[seq (\d+)\] NEW")
_SIGNAL = re.compile(r"^  - ([a-z0-9_]+) \(positive\):", re.M)
_DIMENSION = re.compile(r"^\* ([a-z0-9_]+):", re.M)
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"anthropic-organization-id", b"bench-org"),
]


def sse(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event as the API frames it."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _message(model: str, input_tokens: int) -> dict[str, Any]:
    return {
        "id": f"msg_bench{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _prompt_chars(request: dict[str, Any]) -> int:
    chars = 0
    for block in request.get("system") or []:
        if isinstance(block, dict):
            chars += len(str(block.get("text", "")))
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        chars += len(content) if isinstance(content, str) else 0
    return chars


def judge_input(request: dict[str, Any], turn: int) -> dict[str, Any]:
    """The ``record_evidence`` input for a judge request: one positive signal of the rubric in
    the system prompt (taken in turn), under the dimension listed above it, citing the seqs
    the last user message marks NEW; an empty list when either is missing (a valid answer)."""
    system = "".join(
        str(b.get("text", "")) for b in request.get("system") or [] if isinstance(b, dict)
    )
    messages = request.get("messages") or [{}]
    last = messages[-1].get("content", "") if isinstance(messages[-1], dict) else ""
    seqs = [int(s) for s in _NEW_SEQ.findall(last if isinstance(last, str) else "")]
    pairs: list[tuple[str, str]] = []
    dimension = ""
    for line in system.splitlines():
        found = _DIMENSION.match(line)
        if found:
            dimension = found.group(1)
            continue
        signal = _SIGNAL.match(line)
        if signal and dimension:
            pairs.append((dimension, signal.group(1)))
    if not pairs or not seqs:
        return {"evidence": []}
    dimension, signal_id = pairs[turn % len(pairs)]
    label = {
        "dimension": dimension,
        "signal_id": signal_id,
        "polarity": "positive",
        "seqs": seqs[-1:],
        "note": "Stated the approach and its cost clearly.",
    }
    return {"evidence": [label]}


class FakeClaude:
    """The ASGI app. ``tokens_per_s`` paces the interviewer's text (a word counts as a
    token); ``words_per_chunk`` words go in each ``content_block_delta``."""

    def __init__(self, *, tokens_per_s: float = 70.0, words_per_chunk: int = 3) -> None:
        self.interval_s = words_per_chunk / tokens_per_s if tokens_per_s > 0 else 0.0
        self.words_per_chunk = max(1, words_per_chunk)
        self._turns = itertools.count()
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests += 1
        try:
            request = json.loads(body)
            if scope["method"] != "POST" or scope["path"] != "/v1/messages":
                raise ValueError("not found")
            if not isinstance(request, dict) or not isinstance(request.get("model"), str):
                raise ValueError("bad request")
        except ValueError:
            await self._error(send, 400, "invalid_request_error")
            return
        turn = next(self._turns)
        if not request.get("stream"):
            await self._summary(send, request)
        elif request.get("tools"):
            await self._judge(send, request, turn)
        else:
            await self._speak(send, request, turn)

    async def _error(self, send: Send, status: int, kind: str) -> None:
        payload = {"type": "error", "error": {"type": kind, "message": kind}}
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})

    async def _start(self, send: Send) -> None:
        headers = [*_HEADERS, (b"request-id", f"req_bench{uuid.uuid4().hex[:16]}".encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def _summary(self, send: Send, request: dict[str, Any]) -> None:
        message = _message(request["model"], _prompt_chars(request) // 4)
        message["content"] = [
            {"type": "text", "text": "A steady interview: the approach was clear and tested."}
        ]
        message["stop_reason"] = "end_turn"
        message["usage"]["output_tokens"] = 12
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(message).encode()})

    async def _judge(self, send: Send, request: dict[str, Any], turn: int) -> None:
        await self._start(send)
        tool = request["tools"][0].get("name", "record_evidence")
        arguments = json.dumps(judge_input(request, turn))
        frames = [
            sse("message_start", {"type": "message_start", "message": _message(
                request["model"], _prompt_chars(request) // 4)}),
            sse("content_block_start", {"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": f"toolu_bench{turn}",
                                  "name": tool, "input": {}}}),
            sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ""}}),
            sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": arguments}}),
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            sse("message_delta", {"type": "message_delta", "delta": {
                "stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": len(arguments) // 4}}),
            sse("message_stop", {"type": "message_stop"}),
        ]  # fmt: skip
        await send({"type": "http.response.body", "body": b"".join(frames), "more_body": False})

    async def _speak(self, send: Send, request: dict[str, Any], turn: int) -> None:
        await self._start(send)
        max_tokens = int(request.get("max_tokens") or 1024)
        count = 3 + turn % 3
        words = " ".join(_SENTENCES[(turn + i) % len(_SENTENCES)] for i in range(count)).split()
        stop = "max_tokens" if len(words) > max_tokens else "end_turn"
        words = words[:max_tokens]
        head = [
            sse("message_start", {"type": "message_start", "message": _message(
                request["model"], _prompt_chars(request) // 4)}),
            sse("content_block_start", {"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            sse("ping", {"type": "ping"}),
        ]  # fmt: skip
        await send({"type": "http.response.body", "body": b"".join(head), "more_body": True})
        loop = asyncio.get_running_loop()
        started = loop.time()
        step = self.words_per_chunk
        for i, at in enumerate(range(0, len(words), step)):
            text = (" " if at else "") + " ".join(words[at : at + step])
            delay = started + i * self.interval_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": text}})  # fmt: skip
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        tail = [
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            sse("message_delta", {"type": "message_delta", "delta": {
                "stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": len(words)}}),
            sse("message_stop", {"type": "message_stop"}),
        ]  # fmt: skip
        await send({"type": "http.response.body", "body": b"".join(tail), "more_body": False})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.fake_claude", description=__doc__)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tokens-per-s", type=float, default=70.0)
    p.add_argument("--words-per-chunk", type=int, default=3)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    app = FakeClaude(tokens_per_s=args.tokens_per_s, words_per_chunk=args.words_per_chunk)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http="httptools",
        timeout_keep_alive=60,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"fake messages api listening on http://127.0.0.1:{port}", flush=True)
        await task

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
