"""Progress across interviews from Postgres: the stored reports :mod:`scoring.progress` reads.

Only what a report stored is read (its track, question, overall, dimensions and hidden-test
counts, not the evidence ledger), joined to its session for the user and the date (when the
session started, so a report recovered later keeps its place). A session erased is gone from
here with its report (``ON DELETE CASCADE``). At most :data:`MAX_SESSIONS` reports, the most
recent, are read per request.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import asyncpg

from scoring.progress import TREND_WINDOW, PastReport, build_progress

__all__ = ["MAX_SESSIONS", "previous_reports", "progress", "user_reports"]

#: Most reports one progress answer reads (the most recent).
MAX_SESSIONS = 1000

_FIELDS = """jsonb_build_object(
    'track', r.body->'track', 'question_id', r.body->'question_id',
    'overall', r.body->'overall', 'dimensions', r.body->'dimensions',
    'hidden_tests', r.body->'hidden_tests')::text AS body"""


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _past(records: list[asyncpg.Record]) -> list[PastReport]:
    """Oldest first, from records newest first."""
    return [
        PastReport(r["id"], _iso(r["created_at"]), json.loads(r["body"])) for r in reversed(records)
    ]


async def user_reports(pool: asyncpg.Pool, user_id: str) -> list[PastReport]:
    """The user's stored reports, oldest session first (the last :data:`MAX_SESSIONS`)."""
    records = await pool.fetch(
        f"""SELECT s.id, s.created_at, {_FIELDS}
            FROM reports r JOIN sessions s ON s.id = r.session_id
            WHERE s.user_id = $1 ORDER BY s.created_at DESC, s.id DESC LIMIT $2""",
        user_id,
        MAX_SESSIONS,
    )
    return _past(records)


async def progress(
    pool: asyncpg.Pool, user_id: str, title: Callable[[str], str | None] | None = None
) -> dict[str, Any]:
    """``GET /v1/me/progress``'s body: :func:`scoring.progress.build_progress` with the user
    and ``questions``, the title of each question the reports name (``title`` gives it, None
    for one no longer in the bank)."""
    reports = await user_reports(pool, user_id)
    ids = sorted({r.question_id for r in reports if r.question_id is not None})
    questions = {q: title(q) if title is not None else None for q in ids}
    return {"user_id": user_id, **build_progress(reports), "questions": questions}


async def previous_reports(
    pool: asyncpg.Pool, session_id: str, limit: int = TREND_WINDOW
) -> list[PastReport]:
    """The reports of the ``limit`` sessions of the same user and track that started before
    ``session_id``, oldest first (the same answer whenever it is asked, while they exist)."""
    records = await pool.fetch(
        f"""SELECT s.id, s.created_at, {_FIELDS}
            FROM sessions me
            JOIN sessions s ON s.user_id = me.user_id AND s.track = me.track
                AND (s.created_at, s.id) < (me.created_at, me.id)
            JOIN reports r ON r.session_id = s.id
            WHERE me.id = $1
            ORDER BY s.created_at DESC, s.id DESC LIMIT $2""",
        session_id,
        limit,
    )
    return _past(records)
