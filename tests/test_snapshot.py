"""When history no longer reaches a client's last_seq: ``snapshot``, then live (PROTOCOL §5)."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from protocol.client import open_client
from protocol.messages import (
    CandidateMessage,
    CodeUpdate,
    SessionEvent,
    SessionResume,
    SessionStart,
    SessionStarted,
    Snapshot,
)
from server.config import Settings
from server.hub.keys import session_keys
from tests.interview_support import read_until, turn_ended
from tests.support import running_server


async def test_resume_past_retention_gets_a_snapshot_then_live_events(settings: Settings) -> None:
    fast = settings.with_(offline_tokens_per_s=400.0, coalesce_ms=5.0)
    async with running_server(fast) as server:
        token = server.token("snap")
        async with open_client(server.ws_url(), token=token) as c:
            await c.request(SessionStart(id="s", track="coding"))
            started = await c.recv()
            assert isinstance(started, SessionStarted)
            await read_until(c, turn_ended(2))
            await c.request(CandidateMessage(id="m", text="I'd sort first."))
            await c.request(
                CodeUpdate(id="code", language="python", source="def f():\n    return 1\n")
            )
            await read_until(c, turn_ended(1))
            session_id = started.session_id

        # Retention: the oldest events leave Redis and Postgres (transcripts and code stay).
        redis = aioredis.from_url(fast.redis_url or "")
        await redis.xtrim(
            session_keys(fast.redis_prefix, session_id).stream, maxlen=3, approximate=False
        )
        await redis.aclose()
        conn = await asyncpg.connect(fast.database_url)
        await conn.execute(
            "DELETE FROM session_events WHERE session_id = $1 AND seq <= 5", session_id
        )
        last_in_pg = await conn.fetchval(
            "SELECT max(seq) FROM session_events WHERE session_id = $1", session_id
        )
        await conn.close()

        snapshots_before = (
            REGISTRY.get_sample_value("mentara_resumes_total", {"source": "snapshot"}) or 0
        )
        # A worker that never had the session in memory serves the resume.
        async with running_server(fast) as other, open_client(other.ws_url(), token=token) as again:
            await again.send(SessionResume(session_id=session_id, last_seq=0))
            snapshot = await again.recv()
            assert isinstance(snapshot, Snapshot)
            assert snapshot.session_id == session_id
            assert snapshot.seq == last_in_pg
            state = snapshot.state
            assert state.status == "active"
            assert state.track == "coding"
            assert state.code is not None
            assert state.code.source.startswith("def f()")
            assert "I'd sort first." in [t.text for t in state.transcript if t.role == "candidate"]
            assert len([t for t in state.transcript if t.role == "interviewer"]) >= 2
            # Then live, from snapshot.seq + 1.
            await again.request(CandidateMessage(id="m2", text="Continuing."))
            frames = await read_until(again, turn_ended(1))
            evts = [f for f in frames if isinstance(f, SessionEvent)]
            assert evts[0].seq == snapshot.seq + 1
            assert [e.seq for e in evts] == list(range(evts[0].seq, evts[0].seq + len(evts)))
        snapshots_after = REGISTRY.get_sample_value("mentara_resumes_total", {"source": "snapshot"})
        assert snapshots_after == snapshots_before + 1
