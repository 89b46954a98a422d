"""A fake Anthropic Messages API on loopback that speaks the real streaming wire format.

The real Claude API is out of reach from the test machines, so this stands in for it: a small
Starlette app under uvicorn on ``127.0.0.1:0`` that answers ``POST /v1/messages`` with
``stream: true`` exactly as the API does, so the official SDK runs unmodified against it::

    async with FakeMessagesAPI() as api:
        api.reply("Hello, I'm your interviewer.")
        client = AsyncAnthropic(base_url=api.base_url, api_key="test-key")

The wire format, event by event (``event: <name>\\ndata: <json>\\n\\n``, content type
``text/event-stream``, headers ``request-id`` and ``anthropic-organization-id``)::

    message_start        {"type":"message_start","message":{id, type, role, model, content: [],
                          stop_reason: null, stop_sequence: null, usage}}
    content_block_start  {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}
    ping                 {"type":"ping"}
    content_block_delta  {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":...}}  (per chunk)
    content_block_stop   {"type":"content_block_stop","index":0}
    message_delta        {"type":"message_delta","delta":{"stop_reason":...,"stop_sequence":null},"usage":{"output_tokens":N}}
    message_stop         {"type":"message_stop"}

Tool use: :meth:`FakeMessagesAPI.tool_reply` streams one ``tool_use`` content block instead of
text, as the API does for a forced ``tool_choice``: ``content_block_start`` carries
``{"type":"tool_use","id":"toolu_...","name":...,"input":{}}``, then the input arrives as
``content_block_delta`` events with ``{"type":"input_json_delta","partial_json":...}`` (the
first one empty, as the API sends it), and ``message_delta`` says ``stop_reason: tool_use``.
The JSON is streamed as given, so a test can send invalid JSON, or a prefix of valid JSON with
``stop_reason="max_tokens"`` to play a tool call cut off by the token limit.

Errors before the stream are JSON bodies ``{"type":"error","error":{"type":...,"message":...},
"request_id":...}`` with the matching status; 429 and 529 carry ``retry-after-ms`` (1 ms by
default, which the SDK prefers over ``retry-after``) so retries are fast. An in-stream error is
``event: error`` with the same body, after which the stream ends.

The script: each request takes the next item of a FIFO queue. :meth:`FakeMessagesAPI.reply`
enqueues a normal reply; the fault injections (:meth:`~FakeMessagesAPI.fail_status`,
:meth:`~FakeMessagesAPI.overloaded_midstream`, :meth:`~FakeMessagesAPI.cut_midstream`,
:meth:`~FakeMessagesAPI.stall`) are each consumed by exactly one request. A mid-stream fault
streams a prefix of *the next reply in the queue* without consuming it (or of ``text=`` when
given, or of the default reply), so ``overloaded_midstream(after_chars=5); reply("Hello
world")`` shows the first request "Hello" then an error, and a retry the whole reply.

With ``separate_lanes=True`` (a whole live session, where the interviewer and the judge call
the API concurrently), requests that carry ``tools`` take only what :meth:`tool_reply`
scripted, in their own queue, and get a 500 when it is empty; they never take the
interviewer's replies or faults.

When the queue is empty the fake answers with ``default_reply`` (a fixed sentence unless
configured), so tests that play whole interviews need not script every turn. With
``default_reply=None`` an unscripted request gets a 500 ``api_error`` with
``x-should-retry: false``, so it fails fast and loudly instead of being retried.

Also simulated: authentication (a request without ``x-api-key`` or ``Authorization: Bearer``
gets 401 ``authentication_error``; with ``api_key=`` set, a wrong key does too), basic body
validation (400 ``invalid_request_error``), and prompt caching in the usage counts: the system
prefix up to the last ``cache_control`` block counts as ``cache_creation_input_tokens`` the
first time it is seen and ``cache_read_input_tokens`` after (token counts are ``ceil(chars /
4)``; the API's minimum cacheable length is not modelled).

Every request is recorded in :attr:`FakeMessagesAPI.requests` (body, headers, outcome);
:attr:`FakeMessagesAPI.disconnected` is set when a client drops a stream before its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import socket
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

DEFAULT_REPLY = "Thanks, that makes sense. Let's keep going."

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}

ERROR_MESSAGES: dict[str, str] = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "The requested resource could not be found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}

Outcome = Literal[
    "pending",  # still being answered
    "completed",  # the whole reply was streamed
    "error_status",  # answered with an HTTP error status before any stream
    "overloaded",  # an in-stream `event: error` ended the stream
    "cut",  # the connection was dropped mid-body
    "disconnected",  # the client went away before the end of the stream
]


@dataclass(frozen=True)
class _ToolUse:
    """The ``tool_use`` block a reply streams; the reply's text is its input JSON."""

    name: str
    id: str


@dataclass(frozen=True)
class _Reply:
    text: str
    chunk_size: int = 4
    delay_s: float = 0.0
    stop_reason: str = "end_turn"
    tool: _ToolUse | None = None


@dataclass(frozen=True)
class _FailStatus:
    status: int
    error_type: str
    message: str
    retry_after_ms: int | None
    should_retry: bool | None


@dataclass(frozen=True)
class _Midstream:
    kind: Literal["overloaded", "cut", "stall"]
    after_chars: int
    seconds: float = 0.0
    text: str | None = None


_Script = _Reply | _FailStatus | _Midstream


@dataclass
class RecordedRequest:
    """One request as the fake saw it: the parsed JSON body and the headers (lower-case names)."""

    body: dict[str, Any]
    headers: dict[str, str]
    request_id: str
    outcome: Outcome = "pending"
    streamed_text: str = ""
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def api_key(self) -> str | None:
        """The credential sent: ``x-api-key``, or an ``Authorization: Bearer`` token (what the
        installed SDK sends for ``api_key``)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None

    @property
    def system_text(self) -> str:
        system = self.body.get("system", "")
        if isinstance(system, str):
            return system
        return "\n".join(str(block.get("text", "")) for block in system)

    @property
    def messages_text(self) -> str:
        parts: list[str] = []
        for message in self.body.get("messages", []):
            content = message.get("content", "")
            if isinstance(content, str):
                parts.append(content)
            else:
                parts.extend(str(block.get("text", "")) for block in content)
        return "\n".join(parts)


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


@dataclass(frozen=True)
class _Plan:
    """What one streamed response does: the text, its pacing, and where (and how) it fails."""

    text: str
    chunk_size: int
    delay_s: float
    stop_reason: str
    fault: _Midstream | None = None
    tool: _ToolUse | None = None

    @property
    def chunks(self) -> list[str]:
        # A fault point is a chunk boundary, so exactly `after_chars` reach the client.
        size = max(1, self.chunk_size)
        cut = len(self.text) if self.fault is None else min(self.fault.after_chars, len(self.text))
        parts = (self.text[:cut], self.text[cut:])
        return [part[i : i + size] for part in parts for i in range(0, len(part), size)]


class _EventStream(Response):
    """The streamed reply, written by hand so the fake controls every byte and the disconnect.

    One task writes the events; another waits for ``http.disconnect``; whichever ends first
    stops the other. Returning without the final empty body chunk makes uvicorn close the
    transport mid-body, which is how the connection cut is produced.
    """

    def __init__(self, api: FakeMessagesAPI, recorded: RecordedRequest, plan: _Plan) -> None:
        super().__init__(status_code=200)
        self._api = api
        self._recorded = recorded
        self._plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"request-id", self._recorded.request_id.encode()),
                    (b"anthropic-organization-id", b"00000000-0000-0000-0000-000000000000"),
                ],
            }
        )
        writer = asyncio.create_task(self._write(send))
        listener = asyncio.create_task(self._wait_for_disconnect(receive))
        try:
            await asyncio.wait({writer, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (writer, listener):
                task.cancel()
            await asyncio.gather(writer, listener, return_exceptions=True)
        if writer.done() and not writer.cancelled():
            self._recorded.outcome = writer.result()  # re-raises a failure of the fake itself
        else:
            self._recorded.outcome = "disconnected"
            self._api.disconnected.set()
        if self._recorded.outcome != "cut":
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        # On "cut" the app returns with the body unfinished: uvicorn closes the connection.

    async def _wait_for_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _write(self, send: Send) -> Outcome:
        plan, recorded = self._plan, self._recorded

        async def event(name: str, data: dict[str, Any]) -> None:
            await send({"type": "http.response.body", "body": _sse(name, data), "more_body": True})

        body = recorded.body
        input_tokens, cache_creation, cache_read = self._api._usage_of(body)
        recorded.usage = {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": cache_creation,
            "cache_read_input_tokens": cache_read,
            "output_tokens": max(1, _tokens(plan.text)),
        }
        await event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_fake{recorded.request_id[-12:]}",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", ""),
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": input_tokens,
                        "cache_creation_input_tokens": cache_creation,
                        "cache_read_input_tokens": cache_read,
                        "output_tokens": 1,
                        "service_tier": "standard",
                    },
                },
            },
        )
        tool = plan.tool
        block: dict[str, Any] = (
            {"type": "text", "text": ""}
            if tool is None
            else {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
        )
        await event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        await event("ping", {"type": "ping"})
        if tool is not None:
            empty = {"type": "input_json_delta", "partial_json": ""}
            await event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": empty}
            )

        fault = plan.fault
        fault_at = min(fault.after_chars, len(plan.text)) if fault is not None else -1

        async def at_fault_point() -> Outcome | None:
            """Inject the fault; an outcome ends the stream, None carries on (after a stall)."""
            assert fault is not None
            if fault.kind == "overloaded":
                error = _error_body("overloaded_error", "Overloaded", recorded.request_id)
                await event("error", error)
                return "overloaded"
            if fault.kind == "cut":
                return "cut"
            if await self._api._hang(fault.seconds):
                return "cut"  # the fake is shutting down
            return None

        sent = 0
        for chunk in plan.chunks:
            if sent == fault_at and (outcome := await at_fault_point()) is not None:
                return outcome
            if plan.delay_s > 0:
                await asyncio.sleep(plan.delay_s)
            delta = (
                {"type": "text_delta", "text": chunk}
                if tool is None
                else {"type": "input_json_delta", "partial_json": chunk}
            )
            await event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
            sent += len(chunk)
            recorded.streamed_text += chunk
        if sent == fault_at and (outcome := await at_fault_point()) is not None:
            return outcome

        await event("content_block_stop", {"type": "content_block_stop", "index": 0})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": plan.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": recorded.usage["output_tokens"]},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        return "completed"


class FakeMessagesAPI:
    """The fake Messages API server; use as ``async with FakeMessagesAPI() as api``.

    Not thread-safe: script it from the event loop it runs in. Leaving the context stops the
    server (stalled streams are cut) and waits for it, so no task outlives the block.
    """

    def __init__(
        self,
        *,
        default_reply: str | None = DEFAULT_REPLY,
        api_key: str | None = None,
        retry_after_ms: int = 1,
        separate_lanes: bool = False,
    ) -> None:
        self.default_reply = default_reply
        self.api_key = api_key
        self.retry_after_ms = retry_after_ms
        self.requests: list[RecordedRequest] = []
        self.separate_lanes = separate_lanes
        self._tool_script: deque[_Script] = deque()
        self.disconnected = asyncio.Event()
        self._script: deque[_Script] = deque()
        self._seen_prefixes: set[str] = set()
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self.port = 0

    # -- script ---------------------------------------------------------------------------

    def reply(
        self,
        text: str,
        *,
        chunk_size: int = 4,
        delay_s: float = 0.0,
        stop_reason: str = "end_turn",
    ) -> None:
        """Enqueue a normal streamed reply: ``text`` in deltas of ``chunk_size`` characters,
        ``delay_s`` apart, ending with ``stop_reason``."""
        self._script.append(_Reply(text, chunk_size, delay_s, stop_reason))

    def tool_reply(
        self,
        name: str,
        tool_input: dict[str, Any] | str,
        *,
        chunk_size: int = 16,
        delay_s: float = 0.0,
        stop_reason: str = "tool_use",
        tool_use_id: str | None = None,
    ) -> None:
        """Enqueue a reply that is one ``tool_use`` block calling ``name``: ``tool_input`` (a
        dict, sent as JSON, or a string sent as it is, valid JSON or not) streamed as
        ``input_json_delta`` events of ``chunk_size`` characters, ending with
        ``stop_reason`` (``tool_use``; ``max_tokens`` for a call cut off)."""
        text = tool_input if isinstance(tool_input, str) else json.dumps(tool_input)
        tool = _ToolUse(name, tool_use_id or f"toolu_fake{len(self._script) + 1:012d}")
        lane = self._tool_script if self.separate_lanes else self._script
        lane.append(_Reply(text, chunk_size, delay_s, stop_reason, tool))

    def fail_status(
        self,
        status: int,
        *,
        error_type: str | None = None,
        message: str | None = None,
        retry_after_ms: int | None = None,
        should_retry: bool | None = None,
    ) -> None:
        """The next request gets HTTP ``status`` with the API's JSON error body.

        429 and 529 carry ``retry-after-ms`` (the fake's ``retry_after_ms`` unless given) and a
        matching whole-second ``retry-after``; ``should_retry`` sets ``x-should-retry``.
        """
        kind = error_type or ERROR_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        if retry_after_ms is None and status in (429, 529):
            retry_after_ms = self.retry_after_ms
        self._script.append(
            _FailStatus(
                status,
                kind,
                message or ERROR_MESSAGES.get(kind, kind),
                retry_after_ms,
                should_retry,
            )
        )

    def overloaded_midstream(self, *, after_chars: int, text: str | None = None) -> None:
        """The next request streams ``after_chars`` characters, then ``event: error``
        (``overloaded_error``) and the end of the stream."""
        self._script.append(_Midstream("overloaded", after_chars, text=text))

    def cut_midstream(self, *, after_chars: int, text: str | None = None) -> None:
        """The next request streams ``after_chars`` characters, then the connection is closed
        without finishing the chunked body (the client sees a transport error)."""
        self._script.append(_Midstream("cut", after_chars, text=text))

    def stall(self, *, after_chars: int, seconds: float, text: str | None = None) -> None:
        """The next request streams ``after_chars`` characters, hangs for ``seconds`` (sending
        nothing), then streams the rest if the client is still there."""
        self._script.append(_Midstream("stall", after_chars, seconds=seconds, text=text))

    @property
    def interviewer_requests(self) -> list[RecordedRequest]:
        """The streaming requests without tools: the interviewer's turns (not the judge's
        labelling calls, not the report summary)."""
        return [r for r in self.requests if r.body.get("stream") and "tools" not in r.body]

    @property
    def pending(self) -> int:
        """Script items not yet consumed."""
        return len(self._script)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeMessagesAPI:
        app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])
        config = uvicorn.Config(
            app,
            log_config=None,
            lifespan="off",
            loop="asyncio",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._socket = sock
        self.port = sock.getsockname()[1]
        # Server.serve() without its signal capture and its 0.1 s polling loop: tests start
        # and stop many of these, and must not touch the process's signal handlers.
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        self._server = server
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _stop(self) -> None:
        """uvicorn's ``Server.shutdown`` minus its fixed 0.1 s pause (tests start hundreds of
        these): stop listening, close idle connections, let responses in flight finish (stalls
        are cut short), cancel what is left after 2 s."""
        self._closing.set()
        server, sock = self._server, self._socket
        try:
            if server is not None:
                for listener in server.servers:
                    listener.close()
                state = server.server_state
                for connection in list(state.connections):
                    connection.shutdown()
                in_flight = set(state.tasks)
                if in_flight:
                    _, leftover = await asyncio.wait(in_flight, timeout=2.0)
                    for task in leftover:
                        task.cancel()
                    await asyncio.gather(*leftover, return_exceptions=True)
                for _ in range(200):  # closed transports report connection_lost a tick later
                    if not state.connections:
                        break
                    await asyncio.sleep(0.005)
                for listener in server.servers:
                    await listener.wait_closed()
        finally:
            if sock is not None:
                sock.close()

    async def _hang(self, seconds: float) -> bool:
        """Sleep ``seconds``; True when cut short because the fake is shutting down."""
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # -- the endpoint ---------------------------------------------------------------------

    def _usage_of(self, body: dict[str, Any]) -> tuple[int, int, int]:
        """(uncached input tokens, cache-creation tokens, cache-read tokens) of a request."""
        system = body.get("system") or []
        blocks = [{"text": system}] if isinstance(system, str) else list(system)
        total = sum(_tokens(str(b.get("text", ""))) for b in blocks)
        total += sum(_tokens(json.dumps(m.get("content", ""))) for m in body.get("messages", []))
        marked = [i for i, b in enumerate(blocks) if b.get("cache_control")]
        if not marked:
            return total, 0, 0
        prefix = "\x00".join(str(b.get("text", "")) for b in blocks[: marked[-1] + 1])
        cached = sum(_tokens(str(b.get("text", ""))) for b in blocks[: marked[-1] + 1])
        key = f"{body.get('model')}\x00{prefix}"
        if key in self._seen_prefixes:
            return total - cached, 0, cached
        self._seen_prefixes.add(key)
        return total - cached, cached, 0

    def _error(
        self,
        recorded: RecordedRequest,
        status: int,
        error_type: str,
        message: str,
        *,
        retry_after_ms: int | None = None,
        should_retry: bool | None = None,
    ) -> Response:
        recorded.outcome = "error_status"
        headers = {"request-id": recorded.request_id}
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
            headers["retry-after"] = str(max(1, math.ceil(retry_after_ms / 1000)))
        if should_retry is not None:
            headers["x-should-retry"] = "true" if should_retry else "false"
        return JSONResponse(
            _error_body(error_type, message, recorded.request_id),
            status_code=status,
            headers=headers,
        )

    def _invalid(self, body: dict[str, Any], headers: dict[str, str]) -> str | None:
        """Why the API would reject this request (a subset of its checks), or None."""
        if "anthropic-version" not in headers:
            return "anthropic-version: header is required"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: Field required"
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return "max_tokens: must be a positive integer"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        for message in messages:
            if message.get("role") not in ("user", "assistant"):
                return "messages: role must be user or assistant"
            if not message.get("content"):
                return "messages: all messages must have non-empty content"
        system = body.get("system")
        if isinstance(system, list):
            for block in system:
                if block.get("type") != "text" or not block.get("text"):
                    return "system: text content blocks must be non-empty"
        tools = body.get("tools")
        names: set[str] = set()
        if tools is not None:
            if not isinstance(tools, list):
                return "tools: must be a list"
            for tool in tools:
                schema = tool.get("input_schema") if isinstance(tool, dict) else None
                if not isinstance(schema, dict) or schema.get("type") != "object":
                    return "tools: each tool needs an input_schema of type object"
                if not isinstance(tool.get("name"), str) or not tool["name"]:
                    return "tools: each tool needs a name"
                names.add(tool["name"])
        choice = body.get("tool_choice")
        if choice is not None:
            kind = choice.get("type") if isinstance(choice, dict) else None
            if kind not in ("auto", "any", "tool", "none"):
                return "tool_choice: type must be auto, any, tool or none"
            if kind in ("any", "tool") and not names:
                return "tool_choice: requires tools"
            if kind == "tool" and choice.get("name") not in names:
                return f"tool_choice: no tool named {choice.get('name')!r}"
        if body.get("stream") is not True:
            return "this fake serves only streaming requests (stream: true)"
        return None

    def _next_reply(self) -> _Reply | None:
        for item in self._script:
            if isinstance(item, _Reply):
                return item
        if self.default_reply is None:
            return None
        return _Reply(self.default_reply)

    async def _messages(self, request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = await request.json()
        except ValueError:
            body = None
        request_id = f"req_fake{next(self._ids):012d}"
        recorded = RecordedRequest(body if isinstance(body, dict) else {}, headers, request_id)
        self.requests.append(recorded)

        key = recorded.api_key
        if not key or (self.api_key is not None and key != self.api_key):
            return self._error(recorded, 401, "authentication_error", "invalid x-api-key")
        if not isinstance(body, dict):
            return self._error(recorded, 400, "invalid_request_error", "body: invalid JSON")
        problem = self._invalid(body, headers)
        if problem is not None:
            return self._error(recorded, 400, "invalid_request_error", problem)

        if self.separate_lanes and "tools" in body:
            # A judge's request: its own script, never the interviewer's replies.
            item = self._tool_script.popleft() if self._tool_script else None
            if item is None:
                return self._error(
                    recorded,
                    500,
                    "api_error",
                    "fake Messages API: no tool reply scripted",
                    should_retry=False,
                )
        else:
            item = self._script.popleft() if self._script else None
        if isinstance(item, _FailStatus):
            return self._error(
                recorded,
                item.status,
                item.error_type,
                item.message,
                retry_after_ms=item.retry_after_ms,
                should_retry=item.should_retry,
            )
        if isinstance(item, _Midstream):
            base = _Reply(item.text) if item.text is not None else self._next_reply()
            if base is None:
                base = _Reply("")
            plan = _Plan(
                base.text, base.chunk_size, base.delay_s, base.stop_reason, item, base.tool
            )
        else:
            reply = item or self._next_reply()
            if reply is None:
                return self._error(
                    recorded,
                    500,
                    "api_error",
                    "fake Messages API: no scripted reply left",
                    should_retry=False,
                )
            plan = _Plan(
                reply.text, reply.chunk_size, reply.delay_s, reply.stop_reason, tool=reply.tool
            )
        return _EventStream(self, recorded, plan)
