"""The Postgres write-behind (server/sessions/event_writer.py), on a real Postgres."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from server.db import create_pool
from server.sessions.event_writer import EventWriter, Records
from server.sessions.rows import EventRow, InputRow, TurnRow
from server.sessions.store import SessionStore, WriteBatch
from tests.support import Services


@pytest.fixture
async def store(services: Services) -> AsyncIterator[SessionStore]:
    pool = await create_pool(services.database_url, max_size=2)
    try:
        yield SessionStore(pool)
    finally:
        await pool.close()


async def new_session(store: SessionStore) -> str:
    session_id = uuid.uuid4().hex
    await store.create_session(
        session_id=session_id,
        user_id="u",
        track="coding",
        language="python",
        question_id="two-sum",
        start_input_id=session_id,
        deadline_ts=0,
    )
    return session_id


def event(session_id: str, seq: int) -> Records:
    body = json.dumps(
        {"seq": seq, "ts": 1, "type": "interviewer.delta", "turn_id": "t", "text": "x"}
    )
    return Records(events=(EventRow(session_id, seq, "interviewer.delta", 1, body),))


async def test_lazy_records_gather_and_an_urgent_one_takes_them_along(
    store: SessionStore,
) -> None:
    """Deadlines an hour away, so nothing is written before its time but by an urgent
    record: whatever the machine's load, the lazy records are still gathering when the
    urgent one comes, and its flush (the batch's only one) can be due to it alone."""
    session_id = await new_session(store)
    writer = EventWriter(store, max_delay_s=0.02, lazy_delay_s=3600)
    writer.start()
    try:
        lazy = [await writer.submit(event(session_id, seq), urgent=False) for seq in (1, 2)]
        await asyncio.sleep(0.05)
        assert not any(f.done() for f in lazy)  # still gathering: nobody waits for them
        urgent = await writer.submit(event(session_id, 3))
        await asyncio.wait_for(urgent, 30)  # long before the lazy deadline
        assert all(f.done() for f in lazy)  # the urgent record took the lazy ones along
        assert writer.flushes == 1
        seqs = [e.seq for e in await store.events_after(session_id, 0)]
        assert seqs == [1, 2, 3]
    finally:
        await writer.close()


async def test_a_lazy_record_alone_is_written_by_its_deadline(store: SessionStore) -> None:
    session_id = await new_session(store)
    writer = EventWriter(store, max_delay_s=3600, lazy_delay_s=0.05)
    writer.start()
    try:
        lone = await writer.submit(event(session_id, 1), urgent=False)
        await asyncio.wait_for(lone, 30)  # no urgent record, no close: the lazy deadline
        assert writer.flushes == 1
    finally:
        await writer.close()


async def test_close_writes_what_is_gathering(store: SessionStore) -> None:
    session_id = await new_session(store)
    writer = EventWriter(store, lazy_delay_s=30)
    writer.start()
    pending = await writer.submit(event(session_id, 1), urgent=False)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(writer.close(), 5)
    assert pending.done() and pending.exception() is None
    assert [e.seq for e in await store.events_after(session_id, 0)] == [1]


async def test_an_events_batch_written_again_stores_each_row_once(store: SessionStore) -> None:
    """Events go by COPY, which cannot skip a stored row: a batch repeating rows (a retry
    after a lost commit reply, a take-over's backfill) falls back to the idempotent INSERT,
    storing the new rows and leaving the old ones as they were."""
    session_id = await new_session(store)
    first = WriteBatch(events=[e for seq in (1, 2) for e in event(session_id, seq).events])
    await store.write_batch(first)
    again = WriteBatch(events=[e for seq in (1, 2, 3) for e in event(session_id, seq).events])
    again.events[0] = again.events[0]._replace(
        body=again.events[0].body.replace('"x"', '"changed"')
    )
    await store.write_batch(again)
    stored = await store.events_after(session_id, 0)
    assert [e.seq for e in stored] == [1, 2, 3]
    assert json.loads(stored[0].body)["text"] == "x"

    # The same with side rows: the transaction fails whole, then goes again by INSERT.
    mixed = WriteBatch(
        events=[e for seq in (3, 4) for e in event(session_id, seq).events],
        turns=[TurnRow(session_id, "c1", "candidate", "hello", 4, None, None)],
    )
    await store.write_batch(mixed)
    assert [e.seq for e in await store.events_after(session_id, 0)] == [1, 2, 3, 4]
    turns = await store.pool.fetch(
        "SELECT turn_id, seq FROM transcript_turns WHERE session_id = $1", session_id
    )
    assert [(t["turn_id"], t["seq"]) for t in turns] == [("c1", 4)]


def said(session_id: str, seq: int, text: str) -> Records:
    """A candidate message as the live session records it: the event, its input and turn."""
    body = json.dumps(
        {"seq": seq, "ts": 1, "type": "candidate.message", "turn_id": f"c{seq}", "text": text}
    )
    return Records(
        events=(EventRow(session_id, seq, "candidate.message", 1, body),),
        inputs=(InputRow(session_id, f"m{seq}", seq),),
        turns=(TurnRow(session_id, f"c{seq}", "candidate", text, seq, None, None),),
    )


@pytest.mark.parametrize("shape", ["events-only", "mixed"])
async def test_a_batch_refused_for_one_record_stores_every_other_record(
    store: SessionStore, shape: str
) -> None:
    """Postgres refuses a whole batch for one record it cannot store (U+0000 in jsonb or
    text, a lone surrogate asyncpg cannot encode): the batch is split until only that record
    fails; every other session's records are stored and their futures resolve."""
    sessions = [await new_session(store) for _ in range(4)]
    hostile = sessions[1]
    if shape == "events-only":  # one COPY statement
        nul_event = EventRow(hostile, 2, "interviewer.delta", 1, '{"seq": 2, "text": "\\u0000"}')
        bad = [Records(events=(nul_event,))]
    else:  # one transaction: events, inputs, turns
        bad = [said(hostile, 2, "a\x00b"), said(hostile, 3, "lone \ud800")]
    writer = EventWriter(store, max_delay_s=0.1)
    writer.start()
    try:
        good: list[asyncio.Future[None]] = []
        bad_futures: list[asyncio.Future[None]] = []
        for seq in (1, 4, 5):
            for session_id in sessions:
                records = (
                    event(session_id, seq)
                    if shape == "events-only"
                    else said(session_id, seq, "ok")
                )
                good.append(await writer.submit(records))
            if seq == 1:
                bad_futures += [await writer.submit(records) for records in bad]
        await asyncio.wait(good + bad_futures, timeout=10)
    finally:
        await writer.close()
    assert writer.flushes >= 2  # it was one batch, then split
    assert writer.refused == len(bad)
    for future in bad_futures:
        assert future.done() and isinstance(future.exception(), Exception)
    assert all(f.done() and f.exception() is None for f in good)
    for session_id in sessions:
        assert [e.seq for e in await store.events_after(session_id, 0)] == [1, 4, 5]
    if shape == "mixed":
        turns = await store.pool.fetch(
            "SELECT session_id, seq FROM transcript_turns WHERE session_id = ANY($1::text[])",
            sessions,
        )
        assert sorted((t["session_id"], t["seq"]) for t in turns) == sorted(
            (s, seq) for s in sessions for seq in (1, 4, 5)
        )
