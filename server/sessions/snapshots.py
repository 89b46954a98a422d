"""``snapshot``: a session's state as of its last event in Postgres, for a socket whose
``last_seq`` history no longer reaches (PROTOCOL.md §5).

Built from the tables that outlive event retention (the transcript by turn, the code
versions), plus whatever events remain for the phase and the scores.
"""

from __future__ import annotations

import json

from protocol.messages import CodeState, Snapshot, SnapshotState, TranscriptEntry
from server.sessions.catalog import Catalog
from server.sessions.store import SessionStore


async def build_snapshot(store: SessionStore, catalog: Catalog, session_id: str) -> Snapshot | None:
    row = await store.get_session(session_id)
    if row is None:
        return None
    last = await store.last_seq(session_id)
    if last == 0:
        return None
    events = await store.events_after(session_id, 0)
    phase = None
    code = None
    scores: dict[str, float] = {}
    for event in events:
        body = json.loads(event.body)
        if event.type == "phase":
            phase = body["name"]
        elif event.type == "score.delta":
            scores[body["dimension"]] = body["score"]
    versions = [v for v in await store.code_snapshots(session_id) if v["seq"] <= last]
    if versions:
        latest = versions[-1]
        code = CodeState(
            version=latest["version"], language=latest["language"], source=latest["source"]
        )
    transcript = [
        TranscriptEntry(
            turn_id=t["turn_id"],
            role=t["role"],
            text=t["text"],
            seq=t["end_seq"] or t["seq"],
        )
        for t in await store.transcript(session_id)
        if (t["end_seq"] or t["seq"]) <= last
    ]
    return Snapshot(
        session_id=session_id,
        seq=last,
        state=SnapshotState(
            status=row.status,
            track=row.track,  # type: ignore[arg-type]
            question=catalog.get(row.question_id).public,
            phase=phase,
            transcript=transcript,
            code=code,
            scores=scores,
        ),
    )
