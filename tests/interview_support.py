"""Helpers for driving whole interviews over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg

from protocol.client import InterviewClient, ServerErrorReply
from protocol.messages import (
    Ack,
    ClientFrame,
    InterviewerDelta,
    InterviewerTurnEnd,
    ServerFrame,
    SessionEvent,
    SessionStarted,
)


async def read_until(
    client: InterviewClient, stop: Callable[[ServerFrame], bool], *, timeout: float = 15.0
) -> list[ServerFrame]:
    """Frames in arrival order up to and including the first for which ``stop`` is true."""
    frames: list[ServerFrame] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await client.recv(timeout=None)
            frames.append(frame)
            if stop(frame):
                return frames


async def request_until_accepted(
    client: InterviewClient,
    frame: ClientFrame,
    *,
    within: float = 60.0,
    pause: float = 0.5,
    timeout: float = 30.0,
) -> Ack:
    """``frame`` sent again, with its ``id``, while its answer is a retryable error (a service
    coming back, a take-over waiting), as a client does; its ``ack``. A refusal that is not
    retryable raises ``ServerErrorReply``."""
    async with asyncio.timeout(within):
        while True:
            try:
                return await client.request(frame, timeout=timeout)
            except ServerErrorReply as exc:
                if not exc.error.retryable:
                    raise
            await asyncio.sleep(pause)


def turn_ended(turn_count: int = 1) -> Callable[[ServerFrame], bool]:
    """A predicate true at the ``turn_count``-th ``interviewer.turn.end``."""
    seen = 0

    def stop(frame: ServerFrame) -> bool:
        nonlocal seen
        if isinstance(frame, InterviewerTurnEnd):
            seen += 1
        return seen >= turn_count

    return stop


def events(frames: list[ServerFrame]) -> list[SessionEvent]:
    return [f for f in frames if isinstance(f, SessionEvent)]


def started_id(frames: list[ServerFrame]) -> str:
    """The session id that ``session.started`` among ``frames`` gave."""
    return next(f for f in frames if isinstance(f, SessionStarted)).session_id


def turn_texts(frames: list[ServerFrame]) -> dict[str, str]:
    """Each interviewer turn's text, as the concatenation of its deltas."""
    texts: dict[str, str] = {}
    for f in frames:
        if isinstance(f, InterviewerDelta):
            texts[f.turn_id] = texts.get(f.turn_id, "") + f.text
    return texts


def assert_gap_free(evts: list[SessionEvent], start: int = 1) -> None:
    seqs = [e.seq for e in evts]
    assert seqs == list(range(start, start + len(seqs))), seqs


async def stored_turns(database_url: str, session_id: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT turn_id, role, text, stop_reason FROM transcript_turns WHERE session_id = $1 ORDER BY seq",
            session_id,
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()


async def stored_seqs(database_url: str, session_id: str) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT seq FROM session_events WHERE session_id = $1 ORDER BY seq", session_id
        )
        return [r["seq"] for r in rows]
    finally:
        await conn.close()


async def assert_stored_from(database_url: str, session_id: str, evts: list[SessionEvent]) -> None:
    """Postgres holds every event the client saw, gap-free from 1 (and possibly more after
    them: the final scores and ``report.ready`` follow ``session.ended``)."""
    stored = await stored_seqs(database_url, session_id)
    assert stored == list(range(1, len(stored) + 1)), stored
    assert stored[: len(evts)] == [e.seq for e in evts]
