"""The Claude conversation judge: a small, cheap model labels evidence through tool use.

One call per judged moment (after a candidate message): the model sees the rubric and the
question (a fixed system prompt, marked for prompt caching), the recent transcript with the
candidate's events marked ``[seq N]``, and the latest code; it must call the
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
``max_turns`` transcript entries and :data:`MAX_CODE_CHARS` of code.
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
from anthropic.types import (
    InputJSONDelta,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStopEvent,
    ToolUseBlock,
)

from scoring.evidence import Evidence
from scoring.judges.code import CODE_JUDGE_SIGNALS
from scoring.question_bank import CodingQuestion, Question
from scoring.rubric import Rubric, rubric_for
from scoring.transcript import Transcript

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
TOOL_NAME: Final = "record_evidence"
MAX_LABELS: Final = 12
MAX_SEQS_PER_LABEL: Final = 8
MAX_NOTE_CHARS: Final = 200
MAX_INPUT_BYTES: Final = 32 * 1024
MAX_CODE_CHARS: Final = 8000
MAX_TURN_CHARS: Final = 2000


class InvalidLabels(ValueError):
    """The model's tool input cannot be accepted (the message says why); the call is
    discarded whole."""


@dataclass(frozen=True, slots=True)
class JudgeInput:
    """What one call shows the model: the user message, the seqs it may cite (``offered``)
    and the seqs judged for the first time (``new``; every label must cite one)."""

    text: str
    offered: frozenset[int]
    new: frozenset[int]


@dataclass(frozen=True, slots=True)
class JudgeResult:
    """The outcome of one call: ``applied`` (``evidence`` may still be empty: the model saw
    nothing to label), ``discarded`` (the tool input was cut off or invalid), ``failed``
    (API error, network, timeout) or ``skipped`` (nothing new to judge)."""

    evidence: tuple[Evidence, ...]
    outcome: Literal["applied", "discarded", "failed", "skipped"]
    reason: str = ""


def judgeable_signals(rubric: Rubric) -> tuple[str, ...]:
    """The signal ids Claude may label: the rubric's, less those the code judge owns."""
    return tuple(s for s in rubric.signals if s not in CODE_JUDGE_SIGNALS)


def evidence_tool(rubric: Rubric) -> dict[str, Any]:
    """The ``record_evidence`` tool: a strict JSON schema, fixed per track (so it caches)."""
    label = {
        "type": "object",
        "additionalProperties": False,
        "required": ["dimension", "signal_id", "polarity", "seqs", "note"],
        "properties": {
            "dimension": {"type": "string", "enum": list(rubric.dimension_names)},
            "signal_id": {"type": "string", "enum": list(judgeable_signals(rubric))},
            "polarity": {"type": "string", "enum": ["positive", "negative"]},
            "seqs": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "The [seq N] numbers of the candidate events that show it.",
            },
            "note": {
                "type": "string",
                "description": "What the candidate did, in under 25 words, addressed to no one.",
            },
        },
    }
    return {
        "name": TOOL_NAME,
        "description": (
            "Record the rubric evidence shown by the candidate's NEW events. Call exactly once; "
            "pass an empty list when the new events show nothing the rubric covers."
        ),
        "strict": True,
        "input_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["evidence"],
            "properties": {"evidence": {"type": "array", "items": label}},
        },
    }


def system_prompt(rubric: Rubric, question: Question) -> str:
    """The fixed per-session instructions: the task, the rubric's signals, the question."""
    lines = [
        "You are the silent evaluator of a live mock technical interview. You never talk to "
        "the candidate. You read the transcript and label rubric evidence by calling the "
        f"{TOOL_NAME} tool exactly once.",
        "",
        "Rules:",
        "- Label only what the candidate's events marked NEW show. Earlier lines are context.",
        "- Cite only seqs written as [seq N] in the transcript; every label must cite at least "
        "one NEW seq. Never label the interviewer's words.",
        "- Use a signal's own dimension and polarity, as listed below.",
        "- Be conservative: label clear behaviour only, at most one label per signal per call. "
        "An empty list is a good answer when nothing new is shown.",
        "- Test results are scored elsewhere: do not label passing or failing tests.",
        "- Notes are short, factual and about the candidate's behaviour.",
        "",
        f"Rubric ({rubric.track} track; scale 1 strong no hire to 4 strong hire):",
    ]
    judgeable = set(judgeable_signals(rubric))
    for dimension in rubric.dimensions:
        lines.append(f"* {dimension.name}: {dimension.description}")
        for signal in dimension.signals:
            if signal.id in judgeable:
                lines.append(f"  - {signal.id} ({signal.polarity}): {signal.description}")
    lines += ["", f"Question: {question.title}", question.prompt.strip()]
    if isinstance(question, CodingQuestion):
        lines.append(
            f"Optimal complexity (never revealed to the candidate): {question.optimal_complexity}"
        )
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_judge_input(
    transcript: Transcript, *, since_seq: int, max_turns: int = 16
) -> JudgeInput | None:
    """The user message for judging the candidate's events after ``since_seq``: the last
    ``max_turns`` transcript entries and the latest code. None when there is nothing new (no
    candidate message or code change after ``since_seq``). Pure."""
    turns = transcript.utterances[-max_turns:]
    code = transcript.latest_code()
    offered = {u.seq for u in turns if u.role == "candidate"}
    new = {seq for seq in offered if seq > since_seq}
    if code is not None:
        offered.add(code.seq)
        if code.seq > since_seq:
            new.add(code.seq)
    if not new:
        return None
    lines = ["Transcript, oldest first (NEW marks the events to judge now):"]
    for turn in turns:
        text = _clip(turn.text.strip(), MAX_TURN_CHARS)
        if turn.role == "candidate":
            mark = " NEW" if turn.seq in new else ""
            lines.append(f"[seq {turn.seq}]{mark} candidate: {text}")
        else:
            lines.append(f"interviewer: {text}")
    if code is not None:
        mark = " NEW" if code.seq in new else ""
        source = code.source
        if len(source) > MAX_CODE_CHARS:
            source = source[:MAX_CODE_CHARS] + "\n# ... (truncated)"
        lines += [
            "",
            f"[seq {code.seq}]{mark} the candidate's latest code (version {code.version}, "
            f"{code.language}):",
            "```",
            source.rstrip(),
            "```",
        ]
    runs = transcript.runs[-3:]
    if runs:
        lines.append("")
        lines.append("Recent visible-test runs (context only, scored elsewhere):")
        lines += [f"- version {r.version}: {r.status}, {r.passed}/{r.total} passed" for r in runs]
    lines += ["", f"Call {TOOL_NAME} with the evidence the NEW events show."]
    return JudgeInput("\n".join(lines), frozenset(offered), frozenset(new))


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
        client: anthropic.AsyncAnthropic | None = None,
    ) -> None:
        if timeout_s <= 0 or max_tokens < 1 or max_retries < 0 or max_turns < 1:
            raise ValueError("timeout_s, max_tokens, max_turns must be positive")
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
        docstring); takes at most ``timeout_s``. Safe to cancel: ``CancelledError``
        propagates and the HTTP stream is closed.
        """
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
        stream = await self._client.messages.create(**params, stream=True)
        async with stream:
            async for event in stream:
                if isinstance(event, RawContentBlockStartEvent):
                    if isinstance(event.content_block, ToolUseBlock):
                        if tool_index is not None or event.content_block.name != TOOL_NAME:
                            raise InvalidLabels("expected exactly one record_evidence call")
                        tool_index = event.index
                elif isinstance(event, RawContentBlockDeltaEvent):
                    if isinstance(event.delta, InputJSONDelta) and event.index == tool_index:
                        size += len(event.delta.partial_json.encode())
                        if size > MAX_INPUT_BYTES:
                            raise InvalidLabels(f"tool input over {MAX_INPUT_BYTES} bytes")
                        parts.append(event.delta.partial_json)
                elif isinstance(event, RawMessageDeltaEvent):
                    stop_reason = event.delta.stop_reason
                elif isinstance(event, RawMessageStopEvent):
                    finished = True
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
