"""Per-user limits that hold across workers: live sessions, session starts and code runs.

Each limit is one atomic Redis step over the user's keys (``server.hub.keys.user_keys``):

- **live sessions**: a sorted set of the user's live session ids scored by their deadline.
  :meth:`UserLimits.admit_start` adds the new session when fewer than ``live_sessions`` are
  live; :meth:`UserLimits.session_over` removes it when it ends. An entry whose deadline has
  passed no longer counts (a session whose owner died unseen cannot hold a place for ever).
- **session starts** and **code runs**: a sliding window of 60 s, one member per admission;
  a full window refuses. Refused attempts are not counted.

Every refusal is :class:`LimitReached` (``rate_limited``, retryable) with a message naming the
limit. The keys expire on their own (a minute after the last admission; the live set when its
last deadline has passed). A Redis restart that loses them forgets the counts: the limits
then start afresh (they bound abuse; they are not accounting). Safe to cancel: each call is a
single script.
"""

from __future__ import annotations

import time
import uuid

from server.errors import RateLimited
from server.hub.keys import user_keys
from server.hub.redis_client import RedisClient

WINDOW_MS = 60_000

# KEYS: live, starts. ARGV: now ms, session id, deadline ms, max live, max starts, window ms.
# Returns 0 when admitted, 1 when too many live sessions, 2 when too many starts.
_ADMIT_START = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[6]))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  return 2
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 0
"""

# KEYS: window. ARGV: now ms, member, max, window ms. 0 when admitted, 1 when full.
_ADMIT_IN_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[4]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 1
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 0
"""


class LimitReached(RateLimited):
    """A per-user limit refused the request; the message says which and when it frees."""


class UserLimits:
    """The per-user limits of one deployment (all workers share them through Redis)."""

    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        *,
        live_sessions: int,
        starts_per_min: int,
        runs_per_min: int,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.live_sessions = live_sessions
        self.starts_per_min = starts_per_min
        self.runs_per_min = runs_per_min
        self._admit_start = redis.register_script(_ADMIT_START)
        self._admit_in_window = redis.register_script(_ADMIT_IN_WINDOW)

    async def admit_start(self, user_id: str, session_id: str, deadline_ms: int) -> None:
        """Count a new live session of ``user_id`` (until ``session_over`` or its deadline)
        and a start; raises :class:`LimitReached` (counting nothing) when either is full."""
        keys = user_keys(self.prefix, user_id)
        refused = await self._admit_start(
            keys=[keys.live, keys.starts],
            args=[
                _now_ms(),
                session_id,
                deadline_ms,
                self.live_sessions,
                self.starts_per_min,
                WINDOW_MS,
            ],
        )
        if refused == 1:
            raise LimitReached(
                f"you have {self.live_sessions} live sessions, the most allowed at once;"
                " end one (session.end) before starting another"
            )
        if refused == 2:
            raise LimitReached(
                f"at most {self.starts_per_min} session starts a minute; retry in a minute"
            )

    async def session_over(self, user_id: str, session_id: str) -> None:
        """The session ended (or was never created): it no longer counts as live."""
        await self.redis.zrem(user_keys(self.prefix, user_id).live, session_id)

    async def admit_run(self, user_id: str) -> None:
        """Count a code run of ``user_id``; raises :class:`LimitReached` when the minute's
        quota is used up."""
        refused = await self._admit_in_window(
            keys=[user_keys(self.prefix, user_id).runs],
            args=[_now_ms(), uuid.uuid4().hex, self.runs_per_min, WINDOW_MS],
        )
        if refused:
            raise LimitReached(f"at most {self.runs_per_min} code runs a minute; retry shortly")

    async def forget(self, user_id: str) -> None:
        """Erase the user's counters (``DELETE /v1/me``)."""
        keys = user_keys(self.prefix, user_id)
        await self.redis.delete(keys.live, keys.starts, keys.runs)


def _now_ms() -> int:
    return int(time.time() * 1000)
