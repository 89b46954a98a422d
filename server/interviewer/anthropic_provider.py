"""The ``anthropic`` provider: Claude through the official SDK, streaming, with retries.

Two layers of retry, because the SDK's own retries stop where the stream starts:

1. The SDK (``max_retries``) retries 408/409/429/5xx/529 responses and connection errors
   *before* the response headers, honouring ``retry-after-ms`` / ``retry-after`` and
   ``x-should-retry``.
2. This provider retries the whole turn while nothing of it was yielded: any retryable
   failure (see :func:`classify_failure`) before the first text delta (an error status the SDK
   gave up on, the in-stream ``overloaded_error`` the SDK raises as an ``APIStatusError`` with
   status 200, a transport error such as a dropped connection, a stall) is retried up to
   ``retry_attempts_before_first_token`` times with exponential backoff and jitter
   (:func:`backoff_delay`). Once text was yielded nothing is retried: the candidate has seen it.

Timeouts: ``timeout_s`` is the SDK's HTTP timeout (connect, write, and each read), which bounds
the wait for the response headers. From the headers on, the first text delta must arrive within
``first_token_timeout_s`` (pings do not extend it), and after that every stream event within
``stall_timeout_s`` of the previous one; otherwise the attempt counts as stalled.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Literal

import anthropic
import httpx
from anthropic.types import TextBlockParam

from server.claude_sse import ClaudeStream, Usage
from server.interviewer.provider import (
    LLMUnavailable,
    StreamItem,
    TextDelta,
    TurnFinished,
    TurnRequest,
)
from server.retry import Backoff

try:  # newer SDKs speak httpx2; older ones httpx. Transport errors of either are network failures.
    import httpx2

    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
        httpx.TransportError,
        httpx2.TransportError,
    )
except ImportError:  # pragma: no cover - depends on the installed SDK
    _TRANSPORT_ERRORS = (httpx.TransportError,)

log = logging.getLogger(__name__)

# Not "claude-sonnet-4-5": the installed SDK lists it as deprecated (end of life 2026-11-30)
# and warns (DeprecationWarning) on every call that names it.
DEFAULT_MODEL = "claude-sonnet-4-6"

Failure = Literal["retryable", "fatal"]

# `error.type` values the API sends, by whether the same request may succeed later.
RETRYABLE_ERROR_TYPES = frozenset(
    {"overloaded_error", "rate_limit_error", "api_error", "timeout_error"}
)
FATAL_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "billing_error",
    }
)
RETRYABLE_STATUSES = frozenset({408, 409, 429})


class StreamStalled(Exception):
    """No stream event arrived in time (see the module docstring for the limits)."""


class StreamIncomplete(Exception):
    """The stream ended cleanly but before ``message_stop``: the turn is cut short."""


def _api_error_type(exc: anthropic.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
    return None


def classify_failure(exc: BaseException) -> Failure | None:
    """Whether a failure of a model call may succeed if the call is made again.

    ``"retryable"``: overload, rate limit, server error, network failure, stall. ``"fatal"``:
    the request itself is wrong (400, 401, 403, 404, 413, ...) or the SDK failed in a way a
    retry will not fix. ``None``: not a model-call failure at all (a bug; let it propagate).
    For an ``APIStatusError`` an explicit ``x-should-retry`` header wins, as in the SDK; then
    the body's ``error.type`` (this is how an in-stream error, status 200, is told apart); then
    the status. Pure: looks only at the exception.
    """
    if isinstance(exc, StreamStalled | StreamIncomplete | anthropic.APIConnectionError):
        return "retryable"  # APITimeoutError is an APIConnectionError
    if isinstance(exc, _TRANSPORT_ERRORS):
        return "retryable"
    if isinstance(exc, anthropic.APIStatusError):
        should_retry = exc.response.headers.get("x-should-retry")
        if should_retry in ("true", "false"):
            return "retryable" if should_retry == "true" else "fatal"
        error_type = _api_error_type(exc)
        if error_type in RETRYABLE_ERROR_TYPES:
            return "retryable"
        if error_type in FATAL_ERROR_TYPES:
            return "fatal"
        status = exc.status_code
        if status in RETRYABLE_STATUSES or status >= 500 or status < 300:
            return "retryable"  # < 300: an unknown error sent inside a successful stream
        return "fatal"
    if isinstance(exc, anthropic.AnthropicError):
        return "fatal"
    return None


def retry_after_s(exc: BaseException) -> float | None:
    """The server's requested wait (``retry-after-ms``, else ``retry-after`` seconds), if any."""
    if not isinstance(exc, anthropic.APIStatusError):
        return None
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def backoff_delay(
    retry: int,
    *,
    base_s: float,
    max_s: float,
    jitter: float,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first retry): the server's
    one policy (:class:`server.retry.Backoff`) with equal jitter, ``jitter`` in [0, 1)
    (e.g. ``random.random()``); a server's ``retry_after`` raises the wait, never above
    ``max_s``. Pure."""
    policy = Backoff(base_s=base_s, max_s=max_s, jitter=True)
    return policy.delay(retry, rand=jitter, retry_after=retry_after)


def map_stop_reason(stop_reason: str | None) -> Literal["end_turn", "max_tokens"]:
    """The API's stop reason as the engine's: ``max_tokens`` stays, everything else ends the
    turn normally (``end_turn``, ``stop_sequence``, and reasons this provider never asks for)."""
    return "max_tokens" if stop_reason == "max_tokens" else "end_turn"


def _merge_usage(usage: Usage, update: Usage) -> None:
    """A ``message_delta``'s usage into the turn's: counts it carries replace the earlier
    ones (they are cumulative), as the SDK's accumulator does."""
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ):
        value = getattr(update, name)
        if value is not None:
            setattr(usage, name, value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, anthropic.APIStatusError):
        kind = _api_error_type(exc) or "error"
        request_id = exc.response.headers.get("request-id")
        where = f" (request {request_id})" if request_id else ""
        return f"Claude API {exc.status_code} {kind}{where}"
    return f"Claude API {type(exc).__name__}: {exc}"


class AnthropicProvider:
    """:class:`~server.interviewer.provider.LLMProvider` for Claude, via ``AsyncAnthropic``.

    ``api_key`` / ``base_url`` left as None are resolved by the SDK itself (``ANTHROPIC_API_KEY``,
    ``ANTHROPIC_BASE_URL`` and its other credential sources). One instance serves many
    sessions concurrently (the SDK's connection pool is shared); :meth:`aclose` closes it.
    """

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        max_retries: int = 3,
        timeout_s: float = 60.0,
        first_token_timeout_s: float = 20.0,
        stall_timeout_s: float = 30.0,
        retry_attempts_before_first_token: int = 3,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 8.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        client: anthropic.AsyncAnthropic | None = None,
    ) -> None:
        self.model = model
        self.first_token_timeout_s = first_token_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.retry_attempts_before_first_token = retry_attempts_before_first_token
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        # A shared client (the worker's one, server.claude_client) is closed by its owner.
        self._owns_client = client is None
        self._client = (
            anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url)
            if client is None
            else client
        ).with_options(max_retries=max_retries, timeout=timeout_s)

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()

    def request_params(self, request: TurnRequest) -> dict[str, Any]:
        """The ``messages.stream`` arguments for a turn.

        The system prompt is a list of text blocks, ``system`` then ``question_context`` (empty
        ones left out: the API rejects them), with ``cache_control`` on the last, so the fixed
        prefix is cached across the turns of a session. ``metadata.user_id`` is a hash of the
        session id: stable per session, identifying no one.
        """
        system: list[TextBlockParam] = [
            {"type": "text", "text": text}
            for text in (request.system, request.question_context)
            if text
        ]
        if system:
            system[-1]["cache_control"] = {"type": "ephemeral"}
        messages: list[dict[str, str]] = [
            {"role": message.role, "content": message.content} for message in request.messages
        ]
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": messages,
            "metadata": {"user_id": hashlib.sha256(request.session_id.encode()).hexdigest()[:32]},
        }
        if system:
            params["system"] = system
        return params

    async def stream_turn(self, request: TurnRequest) -> AsyncGenerator[StreamItem, None]:
        """Stream one interviewer turn: :class:`TextDelta` items, then one :class:`TurnFinished`.

        Raises :class:`LLMUnavailable`: ``delivered=False`` when the turn failed before any
        text (after the retries, if the failure was retryable; ``retryable`` says which);
        ``delivered=True`` at once when it failed after text was yielded. Other exceptions are
        bugs and propagate unchanged.

        ``TurnFinished.input_tokens`` is every input token of the request (uncached, cache
        writes and cache reads), ``output_tokens`` the generated ones: what the engine charges
        to the session's token budget. A turn that failed reports no usage.

        Cancelling is safe at any point: ``CancelledError`` propagates and the HTTP stream is
        closed on the way out. A consumer that stops iterating early must close this generator
        (``contextlib.aclosing``), which closes the HTTP stream too.
        """
        params = self.request_params(request)
        retry = 0
        while True:
            delivered = False
            usage = Usage()
            stop_reason: str | None = None
            stream: ClaudeStream | None = None
            pause: float | None = None
            try:
                stream = await ClaudeStream.open(self._client, params)
                deadline = asyncio.get_running_loop().time() + self.first_token_timeout_s
                finished = False
                while True:  # to the body's end: a connection read to its end is reused
                    try:
                        if delivered:
                            async with asyncio.timeout(self.stall_timeout_s):
                                events = await stream.next_events()
                        else:
                            async with asyncio.timeout_at(deadline):
                                events = await stream.next_events()
                    except TimeoutError as exc:
                        if finished:
                            break  # the reply is whole; only the body's end is late
                        phase = "between events" if delivered else "before the first token"
                        raise StreamStalled(f"stream stalled {phase}") from exc
                    if events is None:
                        break
                    for event in events:
                        kind = event.type
                        if kind == "content_block_delta":
                            delta = event.delta
                            if delta is not None and delta.type == "text_delta" and delta.text:
                                delivered = True
                                yield TextDelta(delta.text)
                        elif kind == "message_start":
                            if event.message is not None:
                                usage = event.message.usage
                        elif kind == "message_delta":
                            if event.delta is not None:
                                stop_reason = event.delta.stop_reason
                            if event.usage is not None:
                                _merge_usage(usage, event.usage)
                        elif kind == "message_stop":
                            finished = True
                if not finished:
                    raise StreamIncomplete("stream ended before message_stop")
            except Exception as exc:
                failure = classify_failure(exc)
                if failure is None:
                    raise
                retryable = failure == "retryable"
                message = _describe(exc)
                if delivered:
                    log.warning(
                        "%s after text was delivered; turn ends",
                        message,
                        extra={"session_id": request.session_id},
                    )
                    raise LLMUnavailable(message, delivered=True, retryable=retryable) from exc
                if not retryable or retry >= self.retry_attempts_before_first_token:
                    log.warning(
                        "%s; giving up after %d attempt(s)",
                        message,
                        retry + 1,
                        extra={"session_id": request.session_id},
                    )
                    raise LLMUnavailable(message, delivered=False, retryable=retryable) from exc
                delay = backoff_delay(
                    retry,
                    base_s=self.backoff_base_s,
                    max_s=self.backoff_max_s,
                    jitter=random.random(),
                    retry_after=retry_after_s(exc),
                )
                retry += 1
                log.info(
                    "%s before the first token; retry %d in %.2fs",
                    message,
                    retry,
                    delay,
                    extra={"session_id": request.session_id},
                )
                pause = delay
            finally:
                if stream is not None:
                    await stream.aclose()  # before any pause: the connection goes back
            if pause is not None:
                await self._sleep(pause)
                continue
            input_tokens = (
                (usage.input_tokens or 0)
                + (usage.cache_creation_input_tokens or 0)
                + (usage.cache_read_input_tokens or 0)
            )
            yield TurnFinished(map_stop_reason(stop_reason), input_tokens, usage.output_tokens or 0)
            return
