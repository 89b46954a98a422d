"""The Claude provider, driving the real ``anthropic`` SDK against the fake Messages API."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import pytest

from server.interviewer.anthropic_provider import (
    DEFAULT_MODEL,
    AnthropicProvider,
    StreamStalled,
    backoff_delay,
    classify_failure,
    map_stop_reason,
    retry_after_s,
)
from server.interviewer.provider import (
    ChatMessage,
    LLMProvider,
    LLMUnavailable,
    TextDelta,
    TurnFinished,
    TurnIntent,
    TurnRequest,
)
from tests.fake_anthropic import FakeMessagesAPI

pytestmark = pytest.mark.timeout(20)

MODEL = "claude-test-model"
SYSTEM = "You are a friendly, rigorous interviewer. Never give away the solution."
QUESTION = (
    "Question: two-sum. Given nums and target, return indices of two numbers adding to target."
)
REPLY = "Good morning! Let's start with the two-sum problem. What's your first idea?"
SDK_RETRIES = 1
PROVIDER_RETRIES = 2


def turn(candidate: str = "I would use a hash map from value to index.", **kw: Any) -> TurnRequest:
    fields: dict[str, Any] = {
        "session_id": "sess-0001",
        "intent": TurnIntent.REPLY,
        "system": SYSTEM,
        "question_context": QUESTION,
        "messages": (
            ChatMessage("user", "Begin the interview."),
            ChatMessage("assistant", "Hello! Here is the problem."),
            ChatMessage("user", candidate),
        ),
        "max_tokens": 512,
    }
    fields.update(kw)
    return TurnRequest(**fields)


@dataclass
class Outcome:
    deltas: list[str] = field(default_factory=list)
    finished: TurnFinished | None = None
    error: LLMUnavailable | None = None

    @property
    def text(self) -> str:
        return "".join(self.deltas)


async def run_turn(provider: AnthropicProvider, request: TurnRequest | None = None) -> Outcome:
    outcome = Outcome()
    try:
        async with contextlib.aclosing(provider.stream_turn(request or turn())) as items:
            async for item in items:
                assert outcome.finished is None, "nothing may follow TurnFinished"
                if isinstance(item, TextDelta):
                    assert item.text
                    outcome.deltas.append(item.text)
                else:
                    outcome.finished = item
    except LLMUnavailable as exc:
        outcome.error = exc
    return outcome


class Sleeps:
    """The provider's backoff sleep, recorded and shortened."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
async def api() -> AsyncIterator[FakeMessagesAPI]:
    async with FakeMessagesAPI() as fake:
        yield fake


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(params=["aiohttp", "httpx2"])
def http_client(request: pytest.FixtureRequest) -> str:
    """Which HTTP client the SDK sends with: the worker's (``server.claude_client``: aiohttp,
    whose body the stream reads straight off its buffer) or the SDK's default (httpx2, read
    through ``aiter_bytes``). Every provider test runs with both."""
    return str(request.param)


@pytest.fixture
async def make_provider(
    api: FakeMessagesAPI, sleeps: Sleeps, http_client: str
) -> AsyncIterator[Callable[..., AnthropicProvider]]:
    made: list[AnthropicProvider] = []
    clients: list[anthropic.AsyncAnthropic] = []

    def make(**overrides: Any) -> AnthropicProvider:
        options: dict[str, Any] = {
            "api_key": "test-key",
            "base_url": api.base_url,
            "model": MODEL,
            "max_retries": SDK_RETRIES,
            "timeout_s": 5.0,
            "first_token_timeout_s": 2.0,
            "stall_timeout_s": 2.0,
            "retry_attempts_before_first_token": PROVIDER_RETRIES,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
            "sleep": sleeps,
        }
        options.update(overrides)
        if http_client == "aiohttp" and "client" not in options:
            client = anthropic.AsyncAnthropic(
                api_key=options["api_key"],
                base_url=options["base_url"],
                http_client=anthropic.DefaultAioHttpClient(),
            )
            clients.append(client)
            options["client"] = client
        provider = AnthropicProvider(**options)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.aclose()
    for client in clients:
        await client.close()


@pytest.fixture
def provider(make_provider: Callable[..., AnthropicProvider]) -> AnthropicProvider:
    return make_provider()


# -- the happy path ---------------------------------------------------------------------------


async def test_reply_streams_exactly_the_text_in_order(
    api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    api.reply(REPLY, chunk_size=5)
    outcome = await run_turn(provider)
    assert outcome.error is None
    assert outcome.deltas == [REPLY[i : i + 5] for i in range(0, len(REPLY), 5)]
    usage = api.requests[0].usage
    assert outcome.finished == TurnFinished(
        "end_turn",
        input_tokens=usage["input_tokens"]
        + usage["cache_creation_input_tokens"]
        + usage["cache_read_input_tokens"],
        output_tokens=math.ceil(len(REPLY) / 4),
    )
    assert outcome.finished.input_tokens > 0
    assert [r.outcome for r in api.requests] == ["completed"]


async def test_request_carries_prompt_cache_blocks_transcript_model_and_key(
    api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    api.reply(REPLY)
    candidate = "Sort first, then two pointers, O(n log n)."
    await run_turn(provider, turn(candidate, max_tokens=321))
    (request,) = api.requests
    body = request.body
    assert body["model"] == MODEL
    assert body["max_tokens"] == 321
    assert body["stream"] is True
    assert body["system"] == [
        {"type": "text", "text": SYSTEM},
        {"type": "text", "text": QUESTION, "cache_control": {"type": "ephemeral"}},
    ]
    assert body["messages"] == [
        {"role": "user", "content": "Begin the interview."},
        {"role": "assistant", "content": "Hello! Here is the problem."},
        {"role": "user", "content": candidate},
    ]
    assert QUESTION in request.system_text and candidate in request.messages_text
    user_id = body["metadata"]["user_id"]
    assert "sess-0001" not in user_id
    assert user_id == hashlib.sha256(b"sess-0001").hexdigest()[:32]
    # The installed SDK sends `api_key` as `Authorization: Bearer`, older ones as `x-api-key`.
    assert request.api_key == "test-key"
    assert request.headers["anthropic-version"]


async def test_the_fixed_prefix_is_read_from_the_prompt_cache_on_the_next_turn(
    api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    api.reply("First.")
    api.reply("Second.")
    first = await run_turn(provider, turn("one"))
    second = await run_turn(provider, turn("two"))
    assert api.requests[0].usage["cache_creation_input_tokens"] > 0
    assert api.requests[1].usage["cache_read_input_tokens"] > 0
    assert api.requests[1].usage["cache_creation_input_tokens"] == 0
    assert first.finished is not None and second.finished is not None
    assert first.finished.input_tokens == second.finished.input_tokens


async def test_empty_question_context_is_left_out_and_the_system_block_cached(
    api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    api.reply(REPLY)
    outcome = await run_turn(provider, turn(question_context=""))
    assert outcome.text == REPLY
    assert api.requests[0].body["system"] == [
        {"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}
    ]


@pytest.mark.parametrize(
    ("api_reason", "expected"),
    [("max_tokens", "max_tokens"), ("stop_sequence", "end_turn"), ("end_turn", "end_turn")],
)
async def test_stop_reason_maps(
    api: FakeMessagesAPI, provider: AnthropicProvider, api_reason: str, expected: str
) -> None:
    api.reply("Cut short becau", stop_reason=api_reason)
    outcome = await run_turn(provider)
    assert outcome.text == "Cut short becau"
    assert outcome.finished is not None and outcome.finished.stop_reason == expected


async def test_base_url_and_key_come_from_the_environment_when_not_given(
    api: FakeMessagesAPI,
    make_provider: Callable[..., AnthropicProvider],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key")
    provider = make_provider(base_url=None, api_key=None)
    assert provider.base_url.rstrip("/") == api.base_url
    api.reply(REPLY)
    outcome = await run_turn(provider)
    assert outcome.text == REPLY
    assert api.requests[0].api_key == "env-key"


async def test_default_model_is_not_deprecated_in_the_sdk(
    api: FakeMessagesAPI, make_provider: Callable[..., AnthropicProvider]
) -> None:
    # Warnings are errors here: a deprecated default would fail every turn with a warning.
    provider = make_provider(model=DEFAULT_MODEL)
    api.reply(REPLY)
    assert (await run_turn(provider)).text == REPLY
    assert api.requests[0].body["model"] == DEFAULT_MODEL


# -- failures before the first token: retried --------------------------------------------------


@pytest.mark.parametrize("status", [429, 529, 500])
async def test_error_status_then_success_is_retried_by_the_sdk(
    api: FakeMessagesAPI, provider: AnthropicProvider, sleeps: Sleeps, status: int
) -> None:
    api.fail_status(status, retry_after_ms=1)  # 429 and 529 carry it by default
    api.reply(REPLY)
    outcome = await run_turn(provider)
    assert outcome.error is None
    assert outcome.text == REPLY
    assert outcome.finished is not None and outcome.finished.stop_reason == "end_turn"
    assert [r.outcome for r in api.requests] == ["error_status", "completed"]
    assert api.requests[1].headers["x-stainless-retry-count"] == "1"
    assert sleeps.delays == []  # the SDK's own retry, honouring retry-after-ms


async def test_error_statuses_beyond_the_sdk_retries_are_retried_by_the_provider(
    api: FakeMessagesAPI, provider: AnthropicProvider, sleeps: Sleeps
) -> None:
    for _ in range(SDK_RETRIES + 1):
        api.fail_status(529)
    api.reply(REPLY)
    outcome = await run_turn(provider)
    assert outcome.text == REPLY
    assert len(api.requests) == SDK_RETRIES + 2
    assert len(sleeps.delays) == 1


async def test_persistent_overload_gives_up_after_the_bounded_attempts(
    api: FakeMessagesAPI, provider: AnthropicProvider, sleeps: Sleeps
) -> None:
    attempts = (PROVIDER_RETRIES + 1) * (SDK_RETRIES + 1)
    for _ in range(attempts):
        api.fail_status(529)
    api.reply("never sent")
    outcome = await run_turn(provider)
    assert outcome.deltas == [] and outcome.finished is None
    assert outcome.error is not None
    assert outcome.error.delivered is False
    assert outcome.error.retryable is True
    assert "529" in str(outcome.error) and "overloaded_error" in str(outcome.error)
    assert len(api.requests) == attempts
    assert api.pending == 1
    assert len(sleeps.delays) == PROVIDER_RETRIES
    assert all(0 < d <= 0.05 for d in sleeps.delays)


async def test_overloaded_error_in_the_stream_before_any_text_is_retried(
    api: FakeMessagesAPI, provider: AnthropicProvider, sleeps: Sleeps
) -> None:
    api.overloaded_midstream(after_chars=0)
    api.reply(REPLY)
    outcome = await run_turn(provider)
    assert outcome.error is None
    assert outcome.text == REPLY
    assert [r.outcome for r in api.requests] == ["overloaded", "completed"]
    assert len(sleeps.delays) == 1


async def test_connection_cut_before_any_text_is_retried(
    api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    api.cut_midstream(after_chars=0)
    api.reply(REPLY)
    outcome = await run_turn(provider)
    assert outcome.text == REPLY
    assert [r.outcome for r in api.requests] == ["cut", "completed"]


async def test_stall_before_the_first_token_is_retried(
    api: FakeMessagesAPI, make_provider: Callable[..., AnthropicProvider]
) -> None:
    provider = make_provider(first_token_timeout_s=0.3)
    api.stall(after_chars=0, seconds=10)
    api.reply(REPLY)
    started = time.monotonic()
    outcome = await run_turn(provider)
    assert outcome.text == REPLY
    assert time.monotonic() - started < 2.0
    assert [r.outcome for r in api.requests] == ["disconnected", "completed"]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_request_errors_are_not_retried(
    api: FakeMessagesAPI, provider: AnthropicProvider, sleeps: Sleeps, status: int
) -> None:
    api.fail_status(status)
    outcome = await run_turn(provider)
    assert outcome.error is not None
    assert outcome.error.delivered is False
    assert outcome.error.retryable is False
    assert len(api.requests) == 1
    assert sleeps.delays == []


async def test_a_wrong_api_key_is_not_retried(
    make_provider: Callable[..., AnthropicProvider], sleeps: Sleeps
) -> None:
    async with FakeMessagesAPI(api_key="the-right-key") as strict:
        provider = make_provider(base_url=strict.base_url, api_key="a-wrong-key")
        outcome = await run_turn(provider)
    assert outcome.error is not None and outcome.error.retryable is False
    assert "authentication_error" in str(outcome.error)
    assert len(strict.requests) == 1 and sleeps.delays == []


async def test_unscripted_request_fails_fast_in_strict_mode(
    make_provider: Callable[..., AnthropicProvider],
) -> None:
    async with FakeMessagesAPI(default_reply=None) as strict:
        provider = make_provider(base_url=strict.base_url)
        outcome = await run_turn(provider)
    assert outcome.error is not None and outcome.error.retryable is False
    assert len(strict.requests) == 1


# -- failures after text was delivered: never retried ----------------------------------------


async def test_overloaded_error_after_text_ends_the_turn_with_what_was_delivered(
    api: FakeMessagesAPI, provider: AnthropicProvider, sleeps: Sleeps
) -> None:
    api.overloaded_midstream(after_chars=13)
    api.reply(REPLY, chunk_size=3)
    outcome = await run_turn(provider)
    assert outcome.text == REPLY[:13]
    assert outcome.finished is None
    assert outcome.error is not None
    assert outcome.error.delivered is True
    assert outcome.error.retryable is True
    assert isinstance(outcome.error.__cause__, anthropic.APIStatusError)
    assert outcome.error.__cause__.status_code == 200
    assert len(api.requests) == 1 and api.pending == 1
    assert sleeps.delays == []


async def test_connection_cut_after_text_ends_the_turn_with_what_was_delivered(
    api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    api.cut_midstream(after_chars=10)
    api.reply(REPLY)
    outcome = await run_turn(provider)
    assert outcome.text == REPLY[:10]
    assert outcome.error is not None
    assert outcome.error.delivered is True and outcome.error.retryable is True
    assert [r.outcome for r in api.requests] == ["cut"]


async def test_stall_after_text_ends_the_turn_within_the_stall_timeout(
    api: FakeMessagesAPI, make_provider: Callable[..., AnthropicProvider]
) -> None:
    provider = make_provider(stall_timeout_s=0.3)
    api.stall(after_chars=8, seconds=10)
    api.reply(REPLY)
    started = time.monotonic()
    outcome = await run_turn(provider)
    elapsed = time.monotonic() - started
    assert outcome.text == REPLY[:8]
    assert outcome.error is not None
    assert outcome.error.delivered is True and outcome.error.retryable is True
    assert isinstance(outcome.error.__cause__, StreamStalled)
    assert 0.3 <= elapsed < 1.5
    await asyncio.wait_for(api.disconnected.wait(), 2)
    assert len(api.requests) == 1


async def test_the_provider_is_usable_after_a_failed_turn(
    api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    api.cut_midstream(after_chars=4)
    api.reply(REPLY)
    first = await run_turn(provider)
    assert first.error is not None and first.error.delivered
    second = await run_turn(provider)
    assert second.error is None and second.text == REPLY


# -- cancellation ----------------------------------------------------------------------------


async def test_cancelling_the_consumer_closes_the_http_stream(
    api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    api.reply(REPLY * 4, chunk_size=2, delay_s=0.02)
    received: list[str] = []
    first = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(provider.stream_turn(turn())) as items:
            async for item in items:
                if isinstance(item, TextDelta):
                    received.append(item.text)
                    first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(api.disconnected.wait(), 2)
    assert api.requests[0].outcome == "disconnected"
    assert 0 < len("".join(received)) < len(REPLY * 4)


async def test_cancelling_during_a_stall_closes_the_http_stream(
    api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    api.stall(after_chars=6, seconds=10)
    api.reply(REPLY)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in provider.stream_turn(turn()):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    await asyncio.sleep(0.05)  # the consumer is now waiting inside the stalled read
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(api.disconnected.wait(), 2)


# -- the pure helpers ------------------------------------------------------------------------


def _status_error(status: int, body: object, headers: dict[str, str] | None = None) -> Exception:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/messages")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    return anthropic.APIStatusError("error", response=response, body=body)


def _body(error_type: str) -> dict[str, object]:
    return {"type": "error", "error": {"type": error_type, "message": "x"}}


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_status_error(429, _body("rate_limit_error")), "retryable"),
        (_status_error(529, _body("overloaded_error")), "retryable"),
        (_status_error(500, _body("api_error")), "retryable"),
        (_status_error(503, None), "retryable"),
        (_status_error(200, _body("overloaded_error")), "retryable"),
        (_status_error(400, _body("invalid_request_error")), "fatal"),
        (_status_error(401, _body("authentication_error")), "fatal"),
        (_status_error(403, None), "fatal"),
        (_status_error(404, None), "fatal"),
        (_status_error(500, _body("api_error"), {"x-should-retry": "false"}), "fatal"),
        (_status_error(400, None, {"x-should-retry": "true"}), "retryable"),
        (anthropic.APIConnectionError(request=httpx2.Request("POST", "http://h/")), "retryable"),
        (anthropic.APITimeoutError(request=httpx2.Request("POST", "http://h/")), "retryable"),
        (httpx2.RemoteProtocolError("peer closed connection"), "retryable"),
        (httpx2.ReadTimeout("read timed out"), "retryable"),
        (StreamStalled("stalled"), "retryable"),
        (anthropic.AnthropicError("odd"), "fatal"),
        (KeyError("bug"), None),
    ],
)
def test_classify_failure(exc: BaseException, expected: str | None) -> None:
    assert classify_failure(exc) == expected


def test_retry_after_prefers_milliseconds() -> None:
    assert (
        retry_after_s(_status_error(429, None, {"retry-after-ms": "250", "retry-after": "3"}))
        == 0.25
    )
    assert retry_after_s(_status_error(429, None, {"retry-after": "3"})) == 3.0
    assert retry_after_s(_status_error(429, None, {"retry-after": "soon"})) is None
    assert retry_after_s(StreamStalled()) is None


def test_backoff_delay_grows_exponentially_with_jitter_and_a_cap() -> None:
    low = [backoff_delay(n, base_s=0.5, max_s=8.0, jitter=0.0) for n in range(7)]
    high = [backoff_delay(n, base_s=0.5, max_s=8.0, jitter=0.999999) for n in range(7)]
    assert low == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert high == pytest.approx([0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0])
    assert backoff_delay(10_000, base_s=0.5, max_s=8.0, jitter=0.5) <= 8.0
    assert backoff_delay(0, base_s=0.5, max_s=8.0, jitter=0.0, retry_after=3.0) == 3.0
    assert backoff_delay(0, base_s=0.5, max_s=8.0, jitter=0.0, retry_after=60.0) == 8.0


def test_map_stop_reason() -> None:
    assert map_stop_reason("max_tokens") == "max_tokens"
    for other in ("end_turn", "stop_sequence", "refusal", "pause_turn", None):
        assert map_stop_reason(other) == "end_turn"


async def test_implements_the_provider_protocol() -> None:
    provider: LLMProvider = AnthropicProvider(api_key="k", base_url="http://127.0.0.1:9")
    assert provider.name == "anthropic"
    await provider.aclose()
