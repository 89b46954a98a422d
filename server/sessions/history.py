"""Reading a session's past events: the Redis history stream first, Postgres for the rest.

Contract of :meth:`History.read`: the events with ``after < seq <= upto`` (``upto`` None: to the
end), in order and without gaps, taken from Redis while the stream still holds them and from
Postgres before that; ``None`` when neither reaches back to ``after + 1`` (retention passed:
the caller sends a ``snapshot``). Redis may hold events Postgres does not have yet (the
write-behind lag); Postgres holds everything Redis trimmed or lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from server.hub.keys import session_keys
from server.hub.redis_client import RedisClient
from server.sessions.logged_event import LoggedEvent
from server.sessions.store import SessionStore

_PG_RETRIES = 20  # the write-behind lag is ~10 ms; wait up to ~1 s for Postgres to catch up


class History:
    def __init__(self, redis: RedisClient, store: SessionStore, prefix: str) -> None:
        self.redis = redis
        self.store = store
        self.prefix = prefix
        self.last_source = ""  # where the last read came from: "redis" or "postgres"

    async def current_seq(self, session_id: str) -> int:
        """The session's last assigned seq: Redis's counter, else (lost) what Postgres has."""
        raw = await self.redis.get(session_keys(self.prefix, session_id).seq)
        if raw is not None:
            return int(raw)
        return await self.store.last_seq(session_id)

    async def stream_range(
        self, session_id: str, after: int, upto: int | None
    ) -> list[LoggedEvent]:
        keys = session_keys(self.prefix, session_id)
        entries = await self.redis.xrange(
            keys.stream, min=f"{after + 1}-0", max="+" if upto is None else f"{upto}-0"
        )
        return [LoggedEvent.from_json(fields[b"e"]) for _id, fields in entries or () if fields]

    async def read(
        self, session_id: str, after: int, upto: int | None = None
    ) -> list[LoggedEvent] | None:
        tail = await self.stream_range(session_id, after, upto)
        if tail and tail[0].seq == after + 1 and _contiguous(tail, after):
            self.last_source = "redis"
            return tail
        # Redis does not reach back far enough (trimmed), or has a hole (a failover lost the
        # last appends a master acknowledged; the owner went on after them): Postgres has the
        # older part, Redis's contiguous end is kept.
        tail = _contiguous_end(tail)
        first_in_redis = tail[0].seq if tail else None
        limit_seq = (first_in_redis - 1) if first_in_redis is not None else upto
        for _ in range(_PG_RETRIES):
            stored = await self.store.events_after(session_id, after)
            older = [
                LoggedEvent.from_json(e.body)
                for e in stored
                if limit_seq is None or e.seq <= limit_seq
            ]
            if _contiguous(older, after) and (
                limit_seq is None or (older and older[-1].seq == limit_seq) or limit_seq == after
            ):
                self.last_source = "postgres"
                return older + tail
            if limit_seq is None and not older and not tail:
                self.last_source = "postgres"
                return []  # nothing after ``after`` anywhere
            await asyncio.sleep(0.05)
        return None


def _contiguous(events: Sequence[LoggedEvent], after: int) -> bool:
    return all(e.seq == after + 1 + i for i, e in enumerate(events))


def _contiguous_end(events: list[LoggedEvent]) -> list[LoggedEvent]:
    """The longest run of consecutive seqs that ends ``events``."""
    start = len(events) - 1
    while start > 0 and events[start - 1].seq == events[start].seq - 1:
        start -= 1
    return events[max(start, 0) :]
