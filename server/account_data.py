"""Everything stored about one user: the export and the erasure (PROTOCOL.md §7).

What a user's data is, table by table:

| table | keyed by | holds |
|---|---|---|
| ``sessions`` | ``user_id`` | one row per interview |
| ``session_events``, ``client_inputs``, ``transcript_turns``, ``code_snapshots``, ``reports`` | ``session_id`` (cascade) | the interview's events, inputs, transcript, code and report |
| ``push_tokens``, ``push_outbox`` | ``user_id`` | devices and the notifications queued for them |
| ``subscriptions``, ``subscription_events`` | ``user_id`` | RevenueCat subscription state and the events applied |
| ``interview_usage``, ``quota_grants`` | ``user_id`` | interviews started per month, and extra interviews an admin granted |

Progress (``server.progress``) is derived from the reports, so it is exported as computed and
goes with them.

plus, in Redis, each session's lease, fence, seq counter, history stream and input ids (erased by
:class:`server.sessions.erasure.SessionEraser`) and the user's limit counters
(``server.sessions.user_limits``). Kept after the erasure: when it happened, under the
SHA-256 of the user id (``account_erasures``: tokens issued before then are refused).

:func:`export_json` yields the export as JSON in chunks, one query page at a time, so a user
with years of sessions never becomes one object in memory and holds no connection while the
client reads. Stored JSON (events, questions, reports) is passed through as stored.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec

from scoring.progress import build_progress
from server.account_erasures import record_erasure
from server.progress import user_reports
from server.sessions.erasure import ERASE_BATCH, EraseIncomplete, SessionEraser
from server.sessions.user_limits import UserLimits

log = logging.getLogger("mentara.account")

#: Sessions read per query while exporting; events per query within a session.
SESSION_PAGE = 50
EVENT_PAGE = 1000
#: One page of a session's events in the export: one partition's primary key range
#: (tests/test_event_store.py checks the plan).
EXPORT_EVENTS_SQL = """SELECT seq, body::text AS body FROM session_events
                       WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"""
#: Rounds of ERASE_BATCH sessions before giving up (a user creating sessions faster than
#: they are erased); the request is then answered retryable.
MAX_ERASE_ROUNDS = 1000

_encode = msgspec.json.Encoder().encode


def _json(value: Any) -> bytes:
    return _encode(value)


def _raw(value: str | None) -> bytes:
    """Stored JSON (``jsonb::text``), passed through; SQL NULL becomes ``null``."""
    return b"null" if value is None else value.encode()


def _object(fields: dict[str, Any], **stored: str | None) -> bytes:
    """``fields`` as a JSON object, with ``stored`` JSON values spliced in as they are."""
    head = _json(fields)[:-1]
    parts = [b'"%s":' % name.encode() + _raw(value) for name, value in stored.items()]
    return head + (b"," if fields and parts else b"") + b",".join(parts) + b"}"


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in records]


async def export_json(pool: asyncpg.Pool, user_id: str) -> AsyncIterator[bytes]:
    """The user's data as one JSON object, in chunks:
    ``{user_id, exported_at, subscription, subscription_events, interview_usage,
    quota_grants, progress, push_tokens, push_notifications, sessions: [{..., question,
    transcript, code_snapshots, client_inputs, report, events}]}``."""
    now = dt.datetime.now(dt.UTC)
    yield b'{"user_id":' + _json(user_id) + b',"exported_at":' + _json(now)
    subscription = await pool.fetchrow(
        """SELECT status, product_id, entitlement_ids, expiration_at_ms, store, environment,
                  last_event_id, last_event_type, event_timestamp_ms, cancel_reason, updated_at
           FROM subscriptions WHERE user_id = $1""",
        user_id,
    )
    yield b',"subscription":' + _json(None if subscription is None else dict(subscription))
    yield b',"subscription_events":' + _json(
        _rows(
            await pool.fetch(
                """SELECT event_id, type, product_id, event_timestamp_ms, received_at
                   FROM subscription_events WHERE user_id = $1 ORDER BY event_timestamp_ms""",
                user_id,
            )
        )
    )
    yield b',"interview_usage":' + _json(
        _rows(
            await pool.fetch(
                """SELECT period_start, used, granted FROM interview_usage
                   WHERE user_id = $1 ORDER BY period_start""",
                user_id,
            )
        )
    )
    yield b',"quota_grants":' + _json(
        _rows(
            await pool.fetch(
                """SELECT period_start, interviews, granted_by, reason, created_at
                   FROM quota_grants WHERE user_id = $1 ORDER BY created_at, id""",
                user_id,
            )
        )
    )
    yield b',"progress":' + _json(build_progress(await user_reports(pool, user_id)))
    yield b',"push_tokens":' + _json(
        _rows(
            await pool.fetch(
                """SELECT token, platform, created_at FROM push_tokens
                   WHERE user_id = $1 ORDER BY created_at""",
                user_id,
            )
        )
    )
    yield b',"push_notifications":['
    last_id = 0
    first = True
    while True:
        page = await pool.fetch(
            """SELECT id, token, platform, payload::text AS payload, attempts, sent_at
               FROM push_outbox WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3""",
            user_id,
            last_id,
            EVENT_PAGE,
        )
        for r in page:
            fields = {k: r[k] for k in ("token", "platform", "attempts", "sent_at")}
            yield (b"" if first else b",") + _object(fields, payload=r["payload"])
            first = False
        if len(page) < EVENT_PAGE:
            break
        last_id = page[-1]["id"]
    yield b'],"sessions":['
    cursor: tuple[dt.datetime, str] | None = None
    first = True
    while True:
        page = await pool.fetch(
            """SELECT id, track, language, question_id, question::text AS question, status,
                      end_reason, created_at, ended_at, deadline_ts
               FROM sessions
               WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
               ORDER BY created_at, id LIMIT $4""",
            user_id,
            cursor[0] if cursor else None,
            cursor[1] if cursor else "",
            SESSION_PAGE,
        )
        for row in page:
            yield b"" if first else b","
            first = False
            async for chunk in _session_json(pool, row):
                yield chunk
        if len(page) < SESSION_PAGE:
            break
        cursor = (page[-1]["created_at"], page[-1]["id"])
    yield b"]}"


async def _session_json(pool: asyncpg.Pool, row: asyncpg.Record) -> AsyncIterator[bytes]:
    session_id = row["id"]
    fields = dict(row)
    question = fields.pop("question")
    yield _object(fields, question=question)[:-1]
    yield b',"transcript":' + _json(
        _rows(
            await pool.fetch(
                """SELECT turn_id, role, text, seq, end_seq, stop_reason FROM transcript_turns
                   WHERE session_id = $1 ORDER BY seq""",
                session_id,
            )
        )
    )
    yield b',"code_snapshots":' + _json(
        _rows(
            await pool.fetch(
                """SELECT version, language, sha256, source, seq FROM code_snapshots
                   WHERE session_id = $1 ORDER BY version""",
                session_id,
            )
        )
    )
    yield b',"client_inputs":' + _json(
        _rows(
            await pool.fetch(
                """SELECT input_id, seq, created_at FROM client_inputs
                   WHERE session_id = $1 ORDER BY created_at, input_id""",
                session_id,
            )
        )
    )
    report = await pool.fetchval("SELECT body::text FROM reports WHERE session_id = $1", session_id)
    yield b',"report":' + _raw(report) + b',"events":['
    after = 0
    while True:
        page = await pool.fetch(
            EXPORT_EVENTS_SQL,
            session_id,
            after,
            EVENT_PAGE,
        )
        if page:
            yield (b"," if after else b"") + b",".join(r["body"].encode() for r in page)
        if len(page) < EVENT_PAGE:
            break
        after = page[-1]["seq"]
    yield b"]}"


# -- erasure -------------------------------------------------------------------------------


async def erase_account(
    pool: asyncpg.Pool, eraser: SessionEraser, user_id: str, limits: UserLimits | None = None
) -> int:
    """Delete everything stored about ``user_id``; return how many sessions were erased.

    Sessions go in rounds of ERASE_BATCH: marked ended (no worker takes them over from then
    on), ended and closed on every worker with ``session.ended {deleted}`` and 4004, rows and
    Redis keys deleted. Then the user's own rows and limit counters; then the erasure time
    is recorded (``server.account_erasures``: older tokens are refused). Idempotent; raises EraseIncomplete
    (retryable) when a worker did not confirm, with what was erased so far gone for good.
    """
    erased = 0
    for _ in range(MAX_ERASE_ROUNDS):
        ids = [
            r["id"]
            for r in await pool.fetch(
                "SELECT id FROM sessions WHERE user_id = $1 ORDER BY id LIMIT $2",
                user_id,
                ERASE_BATCH,
            )
        ]
        if not ids:
            break
        await pool.execute(
            """UPDATE sessions SET status = 'ended', end_reason = coalesce(end_reason, 'deleted'),
                      ended_at = coalesce(ended_at, now())
               WHERE id = ANY($1::text[])""",
            ids,
        )

        async def delete_rows(session_ids: list[str]) -> None:
            # Events, inputs, turns, snapshots and reports go with ON DELETE CASCADE.
            await pool.execute(
                "DELETE FROM sessions WHERE id = ANY($1::text[]) AND user_id = $2",
                session_ids,
                user_id,
            )

        await eraser.erase(ids, delete_rows)
        erased += len(ids)
    else:
        raise EraseIncomplete("sessions keep being created; retry")
    async with pool.acquire() as conn, conn.transaction():
        for table in (
            "push_outbox",
            "push_tokens",
            "subscription_events",
            "subscriptions",
            "interview_usage",
            "quota_grants",
        ):
            await conn.execute(f"DELETE FROM {table} WHERE user_id = $1", user_id)
    if limits is not None:
        await limits.forget(user_id)
    # Last: a failed erasure (above) leaves the caller's token good for the retry.
    await record_erasure(pool, user_id)
    log.info("erased the account data of a user (%d sessions)", erased)
    return erased
