"""A session whose row exists but whose log is empty is opened by whoever takes it over
(server/sessions/opening.py).

``session.start`` inserts the session's row, then owns it and appends ``session.started``.
A worker that dies between the two leaves the row and no event. The client, which got no
answer, sends its start again with the same ``id``: it is acked with seq 1 and attached, and
seq 1 must then come, as ``session.started`` of that very session (before the fix: nothing
ever came, and the interview hung). The dead worker's leftovers are made here as it leaves
them: the row, inserted directly, with no lease and no event. Another user's start with the
same id meanwhile gets a session of its own. (The same start cut short by Redis failing
under it: tests/test_outages.py.)
"""

from __future__ import annotations

import time
import uuid

import asyncpg

from protocol.client import open_client
from protocol.messages import ServerFrame, SessionEnd, SessionEnded, SessionStart, SessionStarted
from server.config import Settings
from tests.interview_support import (
    assert_gap_free,
    assert_stored_from,
    events,
    read_until,
    started_id,
    turn_ended,
)
from tests.support import running_server


async def test_a_start_whose_worker_died_after_its_row_opens_when_sent_again(
    settings: Settings,
) -> None:
    assert settings.database_url is not None
    user = f"o-{uuid.uuid4().hex[:6]}"
    session_id = uuid.uuid4().hex
    deadline_ts = int(time.time() * 1000) + 1800 * 1000
    fast = settings.with_(offline_tokens_per_s=300.0, coalesce_ms=5.0, lease_ms=1500)
    async with running_server(fast) as server:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(
                """INSERT INTO sessions (id, user_id, track, language, question_id,
                                         start_input_id, deadline_ts)
                   VALUES ($1, $2, 'coding', 'python', 'two-sum', 's1', $3)""",
                session_id,
                user,
                deadline_ts,
            )
        finally:
            await conn.close()
        # Another user's start with the same id gets a session of her own, never this one.
        async with open_client(server.ws_url(), token=server.token(f"m-{user}")) as mallory:
            await mallory.request(SessionStart(id="s1", track="coding"), timeout=30)
            theirs = await read_until(mallory, turn_ended(1), timeout=30)
            assert started_id(theirs) != session_id
            assert all(getattr(f, "session_id", None) != session_id for f in theirs)
        async with open_client(server.ws_url(), token=server.token(user)) as phone:
            ack = await phone.request(SessionStart(id="s1", track="coding"), timeout=30)
            assert ack.seq == 1
            frames: list[ServerFrame] = await read_until(phone, turn_ended(1), timeout=30)
            started = events(frames)[0]  # after the ``resumed`` of the attach (replayed=0)
            assert isinstance(started, SessionStarted), frames[:3]
            assert (started.seq, started.session_id, started.question.id) == (
                1,
                session_id,
                "two-sum",
            )
            assert started.language == "python"
            await phone.send(SessionEnd(id="end"))
            frames += await read_until(phone, lambda f: isinstance(f, SessionEnded), timeout=30)
    evts = events(frames)
    assert_gap_free(evts)
    await assert_stored_from(settings.database_url, session_id, evts)
