"""The Claude conversation judge: a small, cheap model labels evidence through tool use.

The same judge serves all three tracks (coding, system design, behavioral): the rubric, the
tool's signal enum and the prompt are the track's (:mod:`server.judging.judge_prompt`).
One call per judged moment (after a candidate message): the model sees the rubric and the
question (a fixed system prompt, marked for prompt caching), the recent transcript with the
candidate's events marked ``[seq N]``, and in coding the latest code; it must call the
``record_evidence`` tool (``tool_choice`` forces it; the tool is ``strict``, its signal ids
an enum of the rubric's). The judge only labels; :mod:`scoring.evidence` turns labels into
scores.

All or nothing. The tool input is accepted only whole: the stream must end with
``message_stop`` and ``stop_reason: tool_use`` with exactly one ``record_evidence`` call,
its JSON must parse, and every label must pass :func:`parse_labels` (a known signal of this
track that the code judge does not own, the signal's own dimension and polarity, seqs that
were offered, at least one of them new, a short note). Anything else (cut off at
``max_tokens``, invalid JSON, an unknown signal, a seq not offered, an API error, a timeout)
discards the whole call: :meth:`ClaudeJudge.judge` then returns no evidence and the reason,
and never raises for it. ``CancelledError`` always propagates.

Bounds: each call is limited to ``timeout_s`` in total (connect, stream and all), the SDK
retries at most ``max_retries`` times before the stream starts, the reply to ``max_tokens``
tokens and its tool input to :data:`MAX_INPUT_BYTES`; the prompt shows at most
``max_turns`` transcript entries and ``MAX_CODE_CHARS`` of code.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Final, Literal

import anthropic
import httpx
import msgspec

from scoring.evidence import Evidence
from scoring.question_bank import Question
from scoring.rubric import Rubric
from scoring.rubrics import rubric_for
from scoring.transcript import Transcript
from server.claude_sse import ClaudeStream
from server.judging.judge_prompt import (
    TOOL_NAME,
    JudgeInput,
    build_judge_input,
    evidence_tool,
    judgeable_signals,
    system_prompt,
)

try:  # newer SDKs speak httpx2; older ones httpx
    import httpx2

    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
        httpx.TransportError,
        httpx2.TransportError,
    )
except ImportError:  # pragma: no cover - depends on the installed SDK
    _TRANSPORT_ERRORS = (httpx.TransportError,)

_CALL_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    anthropic.APIError,
    *_TRANSPORT_ERRORS,
)
"""A call that failed: timeout, API error (in-stream ones included), network."""

__all__ = [
    "DEFAULT_JUDGE_MODEL",
    "TOOL_NAME",
    "ClaudeJudge",
    "InvalidLabels",
    "JudgeInput",
    "JudgeResult",
    "build_judge_input",
    "evidence_tool",
    "judgeable_signals",
    "parse_labels",
    "system_prompt",
]

log = logging.getLogger(__name__)

# Haiku: small and cheap, and not on the installed SDK's deprecation list.
DEFAULT_JUDGE_MODEL: Final = "claude-haiku-4-5"
MAX_LABELS: Final = 12
MAX_SEQS_PER_LABEL: Final = 8
MAX_NOTE_CHARS: Final = 200
MAX_INPUT_BYTES: Final = 32 * 1024


class InvalidLabels(ValueError):
    """The model's tool input cannot be accepted (the message says why); the call is
    discarded whole."""


@dataclass(frozen=True, slots=True)
class JudgeResult:
    """The outcome of one call: ``applied`` (``evidence`` may still be empty: the model saw
    nothing to label), ``discarded`` (the tool input was cut off or invalid), ``failed``
    (API error, network, timeout) or ``skipped`` (nothing new to judge)."""

    evidence: tuple[Evidence, ...]
    outcome: Literal["applied", "discarded", "failed", "skipped"]
    reason: str = ""


class _Label(msgspec.Struct, forbid_unknown_fields=True):
    dimension: str
    signal_id: str
    polarity: str
    seqs: list[int]
    note: str


class _ToolInput(msgspec.Struct, forbid_unknown_fields=True):
    evidence: list[_Label]


def parse_labels(raw_json: str, rubric: Rubric, judge_input: JudgeInput) -> list[Evidence]:
    """The evidence in a ``record_evidence`` tool input, all of it or none.

    Raises :class:`InvalidLabels` at the first problem: not JSON, not the schema, too many
    labels, a signal this judge may not label, a dimension or polarity that is not the
    signal's, a seq not offered, no new seq, an empty or long note. Pure.
    """
    try:
        data = msgspec.json.decode(raw_json.encode(), type=_ToolInput, strict=True)
    except msgspec.DecodeError as exc:
        raise InvalidLabels(f"tool input is not valid: {exc}") from None
    if len(data.evidence) > MAX_LABELS:
        raise InvalidLabels(f"{len(data.evidence)} labels, more than {MAX_LABELS}")
    allowed = set(judgeable_signals(rubric))
    out: list[Evidence] = []
    for index, label in enumerate(data.evidence):
        where = f"evidence[{index}]"
        if label.signal_id not in allowed:
            raise InvalidLabels(f"{where}: unknown signal {label.signal_id!r}")
        signal = rubric.signal(label.signal_id)
        if label.dimension != signal.dimension:
            raise InvalidLabels(f"{where}: {signal.id} belongs to {signal.dimension}")
        if label.polarity != signal.polarity:
            raise InvalidLabels(f"{where}: {signal.id} is {signal.polarity}")
        seqs = set(label.seqs)
        if not seqs or len(seqs) > MAX_SEQS_PER_LABEL:
            raise InvalidLabels(f"{where}: 1 to {MAX_SEQS_PER_LABEL} seqs required")
        if not seqs <= judge_input.offered:
            raise InvalidLabels(f"{where}: seqs {sorted(seqs - judge_input.offered)} not offered")
        if not seqs & judge_input.new:
            raise InvalidLabels(f"{where}: cites no new event")
        note = " ".join(label.note.split())
        if not note or len(note) > MAX_NOTE_CHARS:
            raise InvalidLabels(f"{where}: note must be 1 to {MAX_NOTE_CHARS} characters")
        out.append(
            Evidence(signal.dimension, signal.id, signal.polarity, tuple(sorted(seqs)), note)
        )
    return out


class ClaudeJudge:
    """The conversation judge on Claude; one instance serves many sessions concurrently.

    ``api_key`` / ``base_url`` left as None are resolved by the SDK (``ANTHROPIC_API_KEY``,
    ``ANTHROPIC_BASE_URL``). :meth:`aclose` closes the HTTP client.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = DEFAULT_JUDGE_MODEL,
        timeout_s: float = 20.0,
        max_retries: int = 1,
        max_tokens: int = 1024,
        max_turns: int = 16,
        max_concurrent: int = 16,
        client: anthropic.AsyncAnthropic | None = None,
    ) -> None:
        if (
            timeout_s <= 0
            or max_tokens < 1
            or max_retries < 0
            or max_turns < 1
            or max_concurrent < 1
        ):
            raise ValueError("timeout_s, max_tokens, max_turns, max_concurrent must be positive")
        #: At most this many calls in flight (a worker's judge is one instance): a burst of
        #: candidate messages queues here instead of racing the interviewers' streams for the
        #: CPU, and a session's messages that arrive meanwhile are judged in one later call.
        self._slots = asyncio.Semaphore(max_concurrent)
        self.in_flight = 0
        self.model = model
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.max_turns = max_turns
        # A shared client (the worker's one, server.claude_client) is closed by its owner.
        self._owns_client = client is None
        self._client = (
            anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url)
            if client is None
            else client
        ).with_options(max_retries=max_retries, timeout=timeout_s)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()

    def request_params(
        self, session_id: str, question: Question, judge_input: JudgeInput
    ) -> dict[str, Any]:
        """The ``messages.create`` arguments of one call (``stream`` is added on sending)."""
        rubric = rubric_for(question.track)
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [
                {
                    "type": "text",
                    "text": system_prompt(rubric, question),
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            "tools": [evidence_tool(rubric)],
            "tool_choice": {"type": "tool", "name": TOOL_NAME, "disable_parallel_tool_use": True},
            "messages": [{"role": "user", "content": judge_input.text}],
            "metadata": {"user_id": hashlib.sha256(session_id.encode()).hexdigest()[:32]},
        }

    async def label(
        self, *, session_id: str, question: Question, transcript: Transcript, since_seq: int
    ) -> list[Evidence]:
        """:meth:`judge`, returning only the evidence (empty when the call was discarded)."""
        result = await self.judge(
            session_id=session_id, question=question, transcript=transcript, since_seq=since_seq
        )
        return list(result.evidence)

    async def judge(
        self, *, session_id: str, question: Question, transcript: Transcript, since_seq: int
    ) -> JudgeResult:
        """Label the candidate's events after ``since_seq`` in ``transcript``.

        Never raises for the model, the network or the tool input (see the module
        docstring); takes at most ``timeout_s`` once one of the ``max_concurrent`` slots is
        free. Safe to cancel: ``CancelledError``
        propagates and the HTTP stream is closed.
        """
        async with self._slots:  # the wait for a slot is not part of the call's timeout
            self.in_flight += 1
            try:
                return await self._judge(session_id, question, transcript, since_seq)
            finally:
                self.in_flight -= 1

    async def _judge(
        self, session_id: str, question: Question, transcript: Transcript, since_seq: int
    ) -> JudgeResult:
        judge_input = build_judge_input(transcript, since_seq=since_seq, max_turns=self.max_turns)
        if judge_input is None:
            return JudgeResult((), "skipped", "no new candidate events")
        params = self.request_params(session_id, question, judge_input)
        extra = {"session_id": session_id}
        try:
            async with asyncio.timeout(self.timeout_s):
                raw = await self._tool_input(params)
        except InvalidLabels as exc:
            log.warning("judge output discarded: %s", exc, extra=extra)
            return JudgeResult((), "discarded", str(exc))
        except _CALL_ERRORS as exc:
            reason = _describe(exc)
            log.warning("judge call failed: %s", reason, extra=extra)
            return JudgeResult((), "failed", reason)
        except ValueError as exc:  # a malformed event the SDK could not decode
            log.warning("judge stream unreadable: %s", exc, extra=extra)
            return JudgeResult((), "failed", f"unreadable stream: {exc}")
        try:
            evidence = parse_labels(raw, rubric_for(question.track), judge_input)
        except InvalidLabels as exc:
            log.warning("judge output discarded: %s", exc, extra=extra)
            return JudgeResult((), "discarded", str(exc))
        return JudgeResult(tuple(evidence), "applied")

    async def _tool_input(self, params: dict[str, Any]) -> str:
        """Stream one call and return the raw JSON of its single ``record_evidence`` input.
        Raises :class:`InvalidLabels` for a call that did not end with that tool call."""
        tool_index: int | None = None
        parts: list[str] = []
        size = 0
        stop_reason: str | None = None
        finished = False
        stream = await ClaudeStream.open(self._client, params)
        try:
            # To the body's end: a connection read to its end goes back to the pool.
            while (events := await stream.next_events()) is not None:
                for event in events:
                    kind = event.type
                    if kind == "content_block_start":
                        block = event.content_block
                        if block is not None and block.type == "tool_use":
                            if tool_index is not None or block.name != TOOL_NAME:
                                raise InvalidLabels("expected exactly one record_evidence call")
                            tool_index = event.index
                    elif kind == "content_block_delta":
                        delta = event.delta
                        if (
                            delta is not None
                            and delta.type == "input_json_delta"
                            and event.index == tool_index
                        ):
                            size += len(delta.partial_json.encode())
                            if size > MAX_INPUT_BYTES:
                                raise InvalidLabels(f"tool input over {MAX_INPUT_BYTES} bytes")
                            parts.append(delta.partial_json)
                    elif kind == "message_delta":
                        if event.delta is not None:
                            stop_reason = event.delta.stop_reason
                    elif kind == "message_stop":
                        finished = True
        finally:
            await stream.aclose()
        if not finished:
            raise InvalidLabels("the stream ended before message_stop")
        if stop_reason != "tool_use":
            raise InvalidLabels(f"stop_reason {stop_reason!r}: the tool input is incomplete")
        if tool_index is None:
            raise InvalidLabels("no record_evidence call")
        return "".join(parts)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body
        kind = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            kind = body["error"].get("type")
        return f"Claude API {exc.status_code} {kind or 'error'}"
    return f"{type(exc).__name__}: {exc}"
