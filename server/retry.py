"""One retry policy for every retry loop of the server.

:class:`Backoff` is the policy: exponential from ``base_s``, capped at ``max_s``, with
optional "equal jitter" (every wait at least half its ceiling, so concurrent retries spread
out without collapsing to zero), and a server's ``retry_after`` honoured up to the cap. It
computes waits and never sleeps, so it is tested without a clock. :class:`Retrying` is one
loop's state under a policy: the wait before the next attempt, ``None`` once the loop's time
is up, and a reset after a success.

The loops that use it: the fenced append while Redis is unreachable
(:mod:`server.sessions.log`), the write-behind and its helpers while Postgres is
(:mod:`server.sessions.event_writer`), the pub/sub reader's reconnects
(:mod:`server.hub.pubsub`) and Claude's stream before its first token
(:mod:`server.interviewer.anthropic_provider`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "Retrying"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits ``base_s * 2**retry`` capped at ``max_s``; with ``jitter``, scaled by
    ``0.5 + 0.5 * rand`` for a ``rand`` in [0, 1). Pure."""

    base_s: float = 0.05
    max_s: float = 1.0
    jitter: bool = False

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.max_s < self.base_s:
            raise ValueError("Backoff needs 0 < base_s <= max_s")

    def delay(self, retry: int, *, rand: float = 1.0, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        delay = min(self.max_s, self.base_s * 2.0 ** min(max(retry, 0), 32))
        if self.jitter:
            delay *= 0.5 + 0.5 * min(max(rand, 0.0), 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_s))
        return delay


class Retrying:
    """One retry loop's state under ``policy``.

    :meth:`next_delay` answers the wait before the next attempt, or ``None`` once
    ``give_up_after_s`` (from this object's creation, on ``clock``) has passed: the caller
    then raises its last error. :meth:`reset` starts the waits over (after a success, for a
    loop that runs for ever, like a reconnecting reader).
    """

    def __init__(
        self,
        policy: Backoff,
        *,
        give_up_after_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.retries = 0
        self._clock = clock
        self._rand = rand
        self._deadline = None if give_up_after_s is None else clock() + give_up_after_s

    def next_delay(self, *, retry_after: float | None = None) -> float | None:
        if self._deadline is not None and self._clock() > self._deadline:
            return None
        delay = self.policy.delay(self.retries, rand=self._rand(), retry_after=retry_after)
        self.retries += 1
        return delay

    def reset(self) -> None:
        self.retries = 0
