"""``snapshot``: a session's state as of its last stored event, for a socket whose
``last_seq`` history no longer reaches (PROTOCOL.md §5)."""

from __future__ import annotations

import json

from protocol.messages import CodeState, Snapshot, SnapshotState, TranscriptEntry
from server.sessions.catalog import Catalog
from server.sessions.store import SessionStore


async def build_snapshot(store: SessionStore, catalog: Catalog, session_id: str) -> Snapshot | None:
    row = await store.get_session(session_id)
    if row is None:
        return None
    events = await store.events_after(session_id, 0)
    if not events:
        return None
    phase = None
    code = None
    scores: dict[str, float] = {}
    for event in events:
        body = json.loads(event.body)
        if event.type == "phase":
            phase = body["name"]
        elif event.type == "code.snapshot":
            code = CodeState(
                version=body["version"], language=body["language"], source=body["source"]
            )
        elif event.type == "score.delta":
            scores[body["dimension"]] = body["score"]
    last = events[-1].seq
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
