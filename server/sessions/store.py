"""Postgres access for sessions: the one module that writes and reads the session tables.

The write path is batched (:meth:`SessionStore.write_batch`, called by the EventWriter);
``create_session`` is the one synchronous write, because ``session.start`` must be unique per
``(user, id)`` across every worker before anything else happens.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from server.sessions.rows import EndingRow, EventRow, InputRow, SnapshotRow, TurnRow


@dataclass(frozen=True)
class SessionRow:
    id: str
    user_id: str
    track: str
    language: str | None
    question_id: str
    status: str
    end_reason: str | None
    created_at_ms: int
    deadline_ts: int | None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> SessionRow:
        return cls(
            id=r["id"],
            user_id=r["user_id"],
            track=r["track"],
            language=r["language"],
            question_id=r["question_id"],
            status=r["status"],
            end_reason=r["end_reason"],
            created_at_ms=int(r["created_at"].timestamp() * 1000),
            deadline_ts=r["deadline_ts"],
        )


@dataclass(frozen=True)
class StoredEvent:
    """A session event as stored: its seq, type and wire JSON."""

    seq: int
    type: str
    ts: int
    body: str


# One statement for a whole batch of events, its columns sent as arrays: Postgres plans and
# executes once, where a row-by-row executemany binds and executes per row (about a third
# less of Postgres's CPU per row: docs/benchmarks.md).
_INSERT_EVENTS = """INSERT INTO session_events (session_id, seq, type, ts, body)
                    SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[],
                                         $5::jsonb[])
                    ON CONFLICT DO NOTHING"""


_EVENT_COLUMNS = ("session_id", "seq", "type", "ts", "body")


async def _insert_events(conn: asyncpg.Connection, events: list[EventRow]) -> None:
    if not events:
        return
    session_ids, seqs, types, tss, bodies = zip(*events, strict=True)
    await conn.execute(_INSERT_EVENTS, session_ids, seqs, types, tss, bodies)


@dataclass
class WriteBatch:
    """Everything one flush writes, in one transaction."""

    events: list[EventRow] = field(default_factory=list)
    inputs: list[InputRow] = field(default_factory=list)
    turns: list[TurnRow] = field(default_factory=list)
    snapshots: list[SnapshotRow] = field(default_factory=list)
    endings: list[EndingRow] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.events)
            + len(self.inputs)
            + len(self.turns)
            + len(self.snapshots)
            + len(self.endings)
        )


_SESSION_COLUMNS = (
    "id, user_id, track, language, question_id, status, end_reason, created_at, deadline_ts"
)


#: The replay after a seq (a resume, a take-over's catch-up): one partition's primary key range
#: (tests/test_event_store.py checks the plan).
EVENTS_AFTER_SQL = """SELECT seq, type, ts, body::text AS body FROM session_events
                      WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"""
EVENTS_AFTER_OF_TYPES_SQL = """SELECT seq, type, ts, body::text AS body FROM session_events
                               WHERE session_id = $1 AND seq > $2 AND type = ANY($4::text[])
                               ORDER BY seq LIMIT $3"""


class SessionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create_session(
        self,
        *,
        session_id: str,
        user_id: str,
        track: str,
        language: str | None,
        question_id: str,
        start_input_id: str,
        deadline_ts: int,
        admit: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> tuple[SessionRow, bool]:
        """Create the session, or find the one this user created with the same ``id``.

        Returns ``(row, created)``; ``created`` is False when ``start_input_id`` was seen before.
        ``admit`` runs in the creating transaction once the new row is in (never for a
        repeated ``id``); whatever it raises rolls the row back and propagates (the quota:
        ``server.quota``).
        """
        async with self.pool.acquire() as conn, conn.transaction():
            record = await conn.fetchrow(
                f"""INSERT INTO sessions (id, user_id, track, language, question_id,
                                          start_input_id, deadline_ts)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (user_id, start_input_id) DO NOTHING
                    RETURNING {_SESSION_COLUMNS}""",
                session_id,
                user_id,
                track,
                language,
                question_id,
                start_input_id,
                deadline_ts,
            )
            if record is not None:
                if admit is not None:
                    await admit(conn)
                return SessionRow.from_record(record), True
            record = await conn.fetchrow(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND start_input_id = $2",
                user_id,
                start_input_id,
            )
            assert record is not None
            return SessionRow.from_record(record), False

    async def started_session(self, user_id: str, start_input_id: str) -> SessionRow | None:
        """The session ``user_id`` created with the ``session.start`` ``id`` given, if any."""
        record = await self.pool.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND start_input_id = $2",
            user_id,
            start_input_id,
        )
        return None if record is None else SessionRow.from_record(record)

    async def get_session(self, session_id: str) -> SessionRow | None:
        record = await self.pool.fetchrow(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = $1", session_id
        )
        return None if record is None else SessionRow.from_record(record)

    async def list_sessions(self, user_id: str, *, limit: int = 100) -> list[SessionRow]:
        records = await self.pool.fetch(
            f"""SELECT {_SESSION_COLUMNS} FROM sessions WHERE user_id = $1
                ORDER BY created_at DESC LIMIT $2""",
            user_id,
            limit,
        )
        return [SessionRow.from_record(r) for r in records]

    async def events_after(
        self, session_id: str, after_seq: int, *, limit: int = 100_000, types: tuple[str, ...] = ()
    ) -> list[StoredEvent]:
        if types:
            records = await self.pool.fetch(
                EVENTS_AFTER_OF_TYPES_SQL, session_id, after_seq, limit, list(types)
            )
        else:
            records = await self.pool.fetch(EVENTS_AFTER_SQL, session_id, after_seq, limit)
        return [StoredEvent(r["seq"], r["type"], r["ts"], r["body"]) for r in records]

    async def last_seq(self, session_id: str) -> int:
        value = await self.pool.fetchval(
            "SELECT coalesce(max(seq), 0) FROM session_events WHERE session_id = $1", session_id
        )
        return int(value)

    async def input_seq(self, session_id: str, input_id: str) -> tuple[bool, int | None]:
        """Whether the input ``input_id`` was applied to the session, and the seq it produced."""
        record = await self.pool.fetchrow(
            "SELECT seq FROM client_inputs WHERE session_id = $1 AND input_id = $2",
            session_id,
            input_id,
        )
        return (False, None) if record is None else (True, record["seq"])

    async def applied_inputs(self, session_id: str) -> dict[str, int | None]:
        records = await self.pool.fetch(
            "SELECT input_id, seq FROM client_inputs WHERE session_id = $1 ORDER BY created_at",
            session_id,
        )
        return {r["input_id"]: r["seq"] for r in records}

    async def transcript(self, session_id: str) -> list[dict[str, Any]]:
        records = await self.pool.fetch(
            """SELECT turn_id, role, text, seq, end_seq, stop_reason FROM transcript_turns
               WHERE session_id = $1 ORDER BY seq""",
            session_id,
        )
        return [dict(r) for r in records]

    async def code_snapshots(self, session_id: str) -> list[dict[str, Any]]:
        records = await self.pool.fetch(
            """SELECT version, language, sha256, source, seq FROM code_snapshots
               WHERE session_id = $1 ORDER BY version""",
            session_id,
        )
        return [dict(r) for r in records]

    async def save_report(
        self, *, session_id: str, user_id: str, report_id: str, overall: float, band: str, body: str
    ) -> str:
        """Store the report and queue its push notifications, in one transaction (idempotent:
        a report already stored for the session is kept). Returns the stored report's id."""
        from server.push import enqueue_report_ready

        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE sessions SET report_pending = false WHERE id = $1", session_id
            )
            inserted = await conn.fetchval(
                """INSERT INTO reports (session_id, report_id, overall, band, body)
                   VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (session_id) DO NOTHING
                   RETURNING report_id""",
                session_id,
                report_id,
                overall,
                band,
                body,
            )
            if inserted is not None:
                payload = {
                    "type": "report.ready",
                    "session_id": session_id,
                    "report_id": report_id,
                    "overall": overall,
                }
                await enqueue_report_ready(conn, user_id, payload)
                return report_id
            stored = await conn.fetchval(
                "SELECT report_id FROM reports WHERE session_id = $1", session_id
            )
            return str(stored)

    async def sessions_awaiting_report(self, *, ended_before_s: float, limit: int) -> list[str]:
        """Ended sessions still without their report, ended more than ``ended_before_s``
        seconds ago, the oldest first."""
        rows = await self.pool.fetch(
            """SELECT id FROM sessions
               WHERE report_pending AND ended_at < now() - make_interval(secs => $1)
               ORDER BY ended_at LIMIT $2""",
            ended_before_s,
            limit,
        )
        return [r["id"] for r in rows]

    async def abandon_report(self, session_id: str) -> None:
        """Stop trying to write this session's report (it failed every time)."""
        await self.pool.execute(
            "UPDATE sessions SET report_pending = false WHERE id = $1", session_id
        )

    async def write_batch(self, batch: WriteBatch) -> None:
        """Write the batch in one transaction; idempotent, so a retried batch is harmless.

        Events go by binary COPY, which costs both sides less per row than INSERT
        (docs/benchmarks.md) but cannot skip a row already stored: a batch that meets one (a
        retry after a lost commit reply, a take-over's backfill) fails as a whole, nothing
        of it written, and is written again with the idempotent INSERT."""
        try:
            await self._write_batch(batch, copy_events=True)
        except asyncpg.UniqueViolationError:
            await self._write_batch(batch, copy_events=False)

    async def _write_batch(self, batch: WriteBatch, *, copy_events: bool) -> None:
        async def write_events(conn: asyncpg.Connection) -> None:
            if not batch.events:
                return
            if copy_events:
                await conn.copy_records_to_table(
                    "session_events", records=batch.events, columns=_EVENT_COLUMNS
                )
            else:
                await _insert_events(conn, batch.events)

        if len(batch.events) == len(batch):
            # Events only (the interviewer speaking): one statement is atomic by itself, so
            # no BEGIN/COMMIT round trips.
            async with self.pool.acquire() as conn:
                await write_events(conn)
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await write_events(conn)
            if batch.inputs:
                await conn.executemany(
                    """INSERT INTO client_inputs (session_id, input_id, seq)
                       VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
                    batch.inputs,
                )
            if batch.turns:
                await conn.executemany(
                    """INSERT INTO transcript_turns
                           (session_id, turn_id, role, text, seq, end_seq, stop_reason)
                       VALUES ($1, $2, $3, $4, $5, $6, $7)
                       ON CONFLICT (session_id, turn_id) DO UPDATE
                       SET text = EXCLUDED.text, end_seq = EXCLUDED.end_seq,
                           stop_reason = EXCLUDED.stop_reason""",
                    batch.turns,
                )
            if batch.snapshots:
                await conn.executemany(
                    """INSERT INTO code_snapshots (session_id, version, language, sha256, source, seq)
                       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
                    batch.snapshots,
                )
            if batch.endings:
                await conn.executemany(
                    """UPDATE sessions SET status = 'ended', end_reason = $2, ended_at = now(),
                                           report_pending = ($2 <> 'deleted')
                       WHERE id = $1 AND status <> 'ended'""",
                    batch.endings,
                )


def decode_body(body: str) -> dict[str, Any]:
    value = json.loads(body)
    assert isinstance(value, dict)
    return value
