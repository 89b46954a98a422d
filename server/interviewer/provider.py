"""The seam between the interviewer engine and a language model.

The engine decides *what* a turn is for (:class:`TurnIntent`) and builds the prompt; a
provider turns a :class:`TurnRequest` into a stream of text. Two providers implement it:
``anthropic`` (Claude through the official SDK) and ``offline`` (the question's script, paced
like a model), so the whole product runs without an API key.

Stream contract for :meth:`LLMProvider.stream_turn`:
- yields :class:`TextDelta` items (non-empty text), then exactly one :class:`TurnFinished`;
- a failure before any text was yielded may be retried inside the provider (backoff); if it
  cannot recover it raises :class:`LLMUnavailable` with ``delivered=False``;
- a failure after text was yielded raises :class:`LLMUnavailable` with ``delivered=True``:
  the engine ends the turn with ``stop_reason: error`` and keeps exactly what was delivered;
- the generator is cancelled to interrupt a turn; it must let ``CancelledError`` through and
  release its HTTP stream.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol


class TurnIntent(enum.Enum):
    INTRO = "intro"  # greet, explain the format
    PRESENT = "present"  # present the problem
    REPLY = "reply"  # answer the candidate's latest message
    HINT = "hint"  # the candidate is stuck: give the next graded hint, never the solution
    FOLLOWUP = "followup"  # ask about complexity, edge cases, testing
    CLOSING = "closing"  # wrap up the interview


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class TurnRequest:
    """Everything a provider needs for one interviewer turn.

    ``system`` and ``question_context`` are fixed for the whole session (the provider may mark
    them for prompt caching); ``messages`` is the transcript so far as alternating
    user/assistant messages ending with a user message (the engine's instruction for this turn
    is in that last message); ``script`` is the scripted text for this turn, used by the
    offline provider and ignored by real models.
    """

    session_id: str
    intent: TurnIntent
    system: str
    question_context: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    script: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class TurnFinished:
    stop_reason: Literal["end_turn", "max_tokens"]
    input_tokens: int = 0
    output_tokens: int = 0


StreamItem = TextDelta | TurnFinished


class LLMUnavailable(Exception):
    """The model could not produce (the rest of) a turn.

    ``delivered`` tells whether any text of this turn had already been yielded;
    ``retryable`` whether the same turn may succeed later (overload, rate limit, network).
    """

    def __init__(self, message: str, *, delivered: bool, retryable: bool = True) -> None:
        super().__init__(message)
        self.delivered = delivered
        self.retryable = retryable


class LLMProvider(Protocol):
    name: str

    def stream_turn(self, request: TurnRequest) -> AsyncIterator[StreamItem]: ...

    async def aclose(self) -> None: ...
