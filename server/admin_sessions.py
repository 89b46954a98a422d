"""The admin's view of sessions: live and recent, newest first, with who owns each live one.

Postgres holds the sessions and their stored events; Redis holds what Postgres may not have
yet: the owner's lease (``<worker>:<fence>``) and the last seq assigned (events reach
Postgres write-behind, so Redis's counter can be a few events ahead). One page costs one SQL
statement and one Redis round trip, whatever its length.

Pages are keyset-paginated on ``(created_at, id)``, so a cursor stays valid while sessions
are created: a page never repeats or skips a session that existed when the first page was read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import asyncpg

from server.errors import InvalidField
from server.hub.keys import session_keys
from server.hub.redis_client import RedisClient

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

StatusFilter = Literal["live", "ended"]
STATUS_FILTERS: dict[str, str] = {"live": "active", "ended": "ended"}  # API name -> stored

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_VERSION = "1"


@dataclass(frozen=True)
class Cursor:
    """Where the previous page stopped: the last session's ``created_at`` (microseconds since
    the epoch, exact) and ``id``."""

    created_us: int
    session_id: str

    def encode(self) -> str:
        raw = f"{_CURSOR_VERSION}:{self.created_us}:{self.session_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Raises InvalidField (``cursor``) for anything ``encode`` did not make."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            version, micros, session_id = raw.split(":", 2)
            if version != _CURSOR_VERSION or not session_id:
                raise ValueError(version)
            return cls(int(micros), session_id)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidField("cursor is not one this server returned", field="cursor") from None

    @property
    def created_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.created_us)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def _ms(at: datetime | None) -> int | None:
    return None if at is None else _micros(at) // 1000


@dataclass(frozen=True)
class SessionQuery:
    """One page's request; ``limit`` is clamped to 1..MAX_LIMIT by :func:`parse_query`."""

    limit: int = DEFAULT_LIMIT
    cursor: Cursor | None = None
    status: StatusFilter | None = None
    user_id: str | None = None
    track: str | None = None


def parse_query(params: Mapping[str, str]) -> SessionQuery:
    """A :class:`SessionQuery` from URL query parameters; raises InvalidField naming the
    parameter that is wrong."""
    raw_limit = params.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise InvalidField("limit must be an integer", field="limit") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidField(f"limit must be 1 to {MAX_LIMIT}", field="limit")
    status = params.get("status") or None
    if status is not None and status not in STATUS_FILTERS:
        raise InvalidField("status must be live or ended", field="status")
    status_filter = cast(StatusFilter | None, status)
    cursor = params.get("cursor")
    user_id = params.get("user_id") or None
    if user_id is not None and len(user_id) > 128:
        raise InvalidField("user_id is at most 128 characters", field="user_id")
    track = params.get("track") or None
    if track is not None and track not in ("coding", "system_design", "behavioral"):
        raise InvalidField("track must be coding, system_design or behavioral", field="track")
    return SessionQuery(
        limit=limit,
        cursor=Cursor.decode(cursor) if cursor else None,
        status=status_filter,
        user_id=user_id,
        track=track,
    )


# The last phase is found walking the session's events backwards on the primary key; the
# counts come from the transcript and snapshot tables, one index range each.
_PAGE_SQL = """
SELECT s.id, s.user_id, s.track, s.language, s.question_id, s.status, s.end_reason,
       s.created_at, s.ended_at, s.deadline_ts,
       (SELECT coalesce(max(e.seq), 0) FROM session_events e WHERE e.session_id = s.id)
           AS stored_seq,
       (SELECT e.body->>'name' FROM session_events e
         WHERE e.session_id = s.id AND e.type = 'phase' ORDER BY e.seq DESC LIMIT 1) AS phase,
       (SELECT count(*) FROM transcript_turns t
         WHERE t.session_id = s.id AND t.role = 'candidate') AS candidate_messages,
       (SELECT count(*) FROM transcript_turns t
         WHERE t.session_id = s.id AND t.role = 'interviewer') AS interviewer_turns,
       (SELECT count(*) FROM code_snapshots c WHERE c.session_id = s.id) AS code_snapshots
  FROM sessions s
 WHERE ($1::text IS NULL OR s.status = $1)
   AND ($2::text IS NULL OR s.user_id = $2)
   AND ($3::text IS NULL OR s.track = $3)
   AND ($4::timestamptz IS NULL OR (s.created_at, s.id) < ($4, $5::text))
 ORDER BY s.created_at DESC, s.id DESC
 LIMIT $6
"""


@dataclass(frozen=True)
class SessionPage:
    sessions: list[dict[str, Any]]
    next_cursor: str | None

    def to_json(self) -> dict[str, Any]:
        return {"sessions": self.sessions, "next_cursor": self.next_cursor}


def _owner(lease: bytes | None) -> dict[str, Any] | None:
    if lease is None:
        return None
    worker, _, fence = lease.decode(errors="replace").rpartition(":")
    return {"worker": worker, "fence": int(fence) if fence.isdigit() else None}


async def list_sessions(
    pool: asyncpg.Pool,
    redis: RedisClient,
    prefix: str,
    query: SessionQuery,
    question_title: Callable[[str], str | None] | None = None,
) -> SessionPage:
    """One page of sessions, newest first. ``question_title(question_id)`` names a question
    (``None`` when unknown). Raises what asyncpg and redis-py raise when a store is down."""
    cursor = query.cursor
    records = await pool.fetch(
        _PAGE_SQL,
        STATUS_FILTERS[query.status] if query.status else None,
        query.user_id,
        query.track,
        cursor.created_at if cursor else None,
        cursor.session_id if cursor else None,
        query.limit + 1,  # one more than asked: tells whether another page follows
    )
    more = len(records) > query.limit
    records = records[: query.limit]
    live_from_redis: list[Any] = []
    if records:
        async with redis.pipeline(transaction=False) as pipe:
            for r in records:
                keys = session_keys(prefix, r["id"])
                pipe.get(keys.lease)
                pipe.get(keys.seq)
            live_from_redis = await pipe.execute()
    sessions = []
    for i, r in enumerate(records):
        lease, redis_seq = live_from_redis[2 * i], live_from_redis[2 * i + 1]
        live = r["status"] == "active"
        title = question_title(r["question_id"]) if question_title else None
        sessions.append(
            {
                "id": r["id"],
                "user_id": r["user_id"],
                "track": r["track"],
                "language": r["language"],
                "question": {"id": r["question_id"], "title": title},
                "status": "live" if live else "ended",
                "end_reason": r["end_reason"],
                "phase": r["phase"],
                "started_at": _ms(r["created_at"]),
                "ended_at": _ms(r["ended_at"]),
                "deadline_ts": r["deadline_ts"],
                "last_seq": max(int(r["stored_seq"]), int(redis_seq or 0)),
                "stored_seq": int(r["stored_seq"]),
                "owner": _owner(lease) if live else None,
                "counts": {
                    "candidate_messages": r["candidate_messages"],
                    "interviewer_turns": r["interviewer_turns"],
                    "code_snapshots": r["code_snapshots"],
                },
            }
        )
    next_cursor = None
    if more and records:
        last = records[-1]
        next_cursor = Cursor(_micros(last["created_at"]), last["id"]).encode()
    return SessionPage(sessions, next_cursor)
