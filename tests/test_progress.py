"""``GET /v1/me/progress`` against a real server and Postgres: the figures come from the
stored reports and nothing else (another user's reports, sessions without a report, and
deleted sessions do not count); a new interview's report says how it compares with the
previous three; the export carries the progress; the erasure leaves none."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from protocol.client import open_client
from protocol.messages import CandidateMessage, CodeUpdate, ReportReady, SessionEnd, SessionStart
from scoring.rubrics import rubric_for
from server.config import Settings
from tests.interview_support import read_until
from tests.support import RunningServer, later_token, running_server

DIMENSIONS = [d.name for d in rubric_for("coding").dimensions]
#: Per stored session, oldest first: a score per dimension (None: not observed).
SCORES: list[list[float | None]] = [
    [1.0, 1.5, 2.0, None, 1.0],
    [1.5, 2.0, 2.0, 2.0, 1.0],
    [2.0, 2.0, 2.5, 2.0, 1.5],
    [2.5, 2.5, 3.0, 3.0, 1.5],
    [3.0, 2.5, 3.0, 3.0, 2.0],
    [3.5, 3.0, 3.5, 3.5, 2.0],
]
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(settings.with_(offline_tokens_per_s=400.0, coalesce_ms=5.0)) as s:
        yield s


def report_body(scores: list[float | None], question: str, hidden: tuple[int, int]) -> str:
    observed = [s for s in scores if s is not None]
    return json.dumps(
        {
            "track": "coding",
            "question_id": question,
            "overall": round(sum(observed) / len(observed), 2),
            "band": 2,
            "band_label": "lean no hire",
            "dimensions": [
                {"name": n, "title": n.title(), "score": s, "band": None, "evidence_count": 1}
                for n, s in zip(DIMENSIONS, scores, strict=True)
            ],
            "strengths": [],
            "weaknesses": [],
            "summary": "stored by the test",
            "summary_source": "ledger",
            "hidden_tests": {"version": 1, "status": "ok", "passed": hidden[0], "total": hidden[1]},
            "evidence": [],
        }
    )


async def store_session(
    conn: asyncpg.Connection, user: str, at: dt.datetime, body: str | None, track: str = "coding"
) -> str:
    session_id = uuid.uuid4().hex
    await conn.execute(
        """INSERT INTO sessions (id, user_id, track, language, question_id, status, end_reason,
                                 start_input_id, created_at, ended_at)
           VALUES ($1, $2, $3, 'python', 'two-sum', 'ended', 'candidate_ended', $1, $4, $4)""",
        session_id,
        user,
        track,
        at,
    )
    if body is not None:
        await conn.execute(
            """INSERT INTO reports (session_id, report_id, overall, band, body)
               VALUES ($1, $2, 2.0, 'x', $3::jsonb)""",
            session_id,
            uuid.uuid4().hex,
            body,
        )
    return session_id


def bearer(server: RunningServer, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token(user)}"}


async def get_progress(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await http.get("/v1/me/progress", headers=headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert isinstance(data, dict)
    return data


async def stored_reports(conn: asyncpg.Connection, user: str) -> list[tuple[str, dict[str, Any]]]:
    rows = await conn.fetch(
        """SELECT s.id, r.body::text AS body FROM reports r JOIN sessions s ON s.id = r.session_id
           WHERE s.user_id = $1 ORDER BY s.created_at, s.id""",
        user,
    )
    return [(r["id"], json.loads(r["body"])) for r in rows]


def mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 2)


async def test_progress_follows_the_stored_reports(server: RunningServer) -> None:
    user, other = f"pia-{uuid.uuid4().hex[:6]}", f"quinn-{uuid.uuid4().hex[:6]}"
    database_url = server.settings.database_url or ""
    conn = await asyncpg.connect(database_url)
    try:
        ids = [
            await store_session(
                conn, user, T0 + dt.timedelta(days=i), report_body(s, f"q{i}", (i, 6))
            )
            for i, s in enumerate(SCORES)
        ]
        await store_session(conn, user, T0 + dt.timedelta(days=20), None)  # no report yet
        await store_session(conn, other, T0, report_body([4.0] * 5, "q9", (6, 6)))
    finally:
        await conn.close()

    async with httpx.AsyncClient(base_url=server.http_url) as http:
        progress = await get_progress(http, bearer(server, user))
        assert progress["user_id"] == user and progress["sessions"] == len(SCORES)
        (coding,) = progress["tracks"]
        assert coding["track"] == "coding" and coding["sessions"] == len(SCORES)
        by_name = {d["name"]: d for d in coding["dimensions"]}
        assert list(by_name) == DIMENSIONS
        for index, name in enumerate(DIMENSIONS):
            scores = [s[index] for s in SCORES if s[index] is not None]
            dimension = by_name[name]
            assert [p["score"] for p in dimension["series"]] == scores
            trend = dimension["trend"]
            assert trend["recent_mean"] == mean([float(s) for s in scores[-3:] if s is not None])
            assert trend["previous_mean"] == mean(
                [float(s) for s in scores[:-3][-3:] if s is not None]
            )
        first = by_name[DIMENSIONS[0]]
        assert first["series"][0] == {
            "date": "2026-11-02T09:00:00Z",
            "session_id": ids[0],
            "question_id": "q0",
            "score": 1.0,
        }
        assert first["trend"]["direction"] == "up" and first["trend"]["change"] == 1.5
        assert (coding["best"], coding["weakest"]) == (DIMENSIONS[2], DIMENSIONS[4])
        assert [h["rate"] for h in coding["hidden_tests"]] == [
            round(i / 6, 4) for i in range(len(SCORES))
        ]
        assert [h["session_id"] for h in coding["hidden_tests"]] == ids

        # The same figures from the stored reports, read directly.
        conn = await asyncpg.connect(database_url)
        try:
            stored = await stored_reports(conn, user)
        finally:
            await conn.close()
        assert [sid for sid, _ in stored] == ids
        for name, dimension in by_name.items():
            expected = [
                (sid, d["score"])
                for sid, body in stored
                for d in body["dimensions"]
                if d["name"] == name and d["score"] is not None
            ]
            assert [(p["session_id"], p["score"]) for p in dimension["series"]] == expected

        # A real interview: its report compares each dimension with the last three stored.
        async with open_client(server.ws_url(), token=server.token(user)) as c:
            await c.request(SessionStart(id="new", track="coding"))
            await c.request(CandidateMessage(id="m1", text="I'd use a hash map of seen values."))
            await c.request(CodeUpdate(id="c1", language="python", source="def f():\n    pass\n"))
            await c.request(SessionEnd(id="end"))
            frames = await read_until(c, lambda f: isinstance(f, ReportReady), timeout=90)
        ready = next(f for f in frames if isinstance(f, ReportReady))
        conn = await asyncpg.connect(database_url)
        try:
            stored = await stored_reports(conn, user)
        finally:
            await conn.close()
        new_id, new_body = stored[-1]
        assert new_body["overall"] == ready.overall
        since = new_body["since_previous"]
        assert since["sessions"] == 3
        for index, entry in enumerate(since["dimensions"]):
            assert entry["name"] == DIMENSIONS[index]
            before = [v for v in (s[index] for s in SCORES[-3:]) if v is not None]
            assert entry["previous_scores"] == before
            assert entry["previous_mean"] == mean(before)
            if entry["score"] is not None:
                assert entry["change"] == round(entry["score"] - mean(before), 2)

        again = await get_progress(http, bearer(server, user))
        assert again["sessions"] == len(SCORES) + 1
        real_question = new_body["question_id"]
        assert again["questions"] == {
            **{f"q{i}": None for i in range(len(SCORES))},  # not in the bank
            real_question: server.app.state.resources.sessions.catalog.get(
                real_question
            ).public.title,
        }
        assert isinstance(again["questions"][real_question], str)
        assert again["tracks"][0]["overall"][-1]["session_id"] == new_id

        # The export carries the same progress.
        exported = (await http.get("/v1/me/export", headers=bearer(server, user))).json()
        assert exported["progress"]["tracks"] == again["tracks"]

        # A deleted session leaves the progress with its report.
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("DELETE FROM sessions WHERE id = $1", ids[-1])
        finally:
            await conn.close()
        after = await get_progress(http, bearer(server, user))
        assert after["sessions"] == len(SCORES)
        series = after["tracks"][0]["dimensions"][0]["series"]
        assert ids[-1] not in [p["session_id"] for p in series]

        # Erasure: nothing left to show, and the other user's progress is untouched.
        assert (await http.delete("/v1/me", headers=bearer(server, user))).status_code == 204
        later = {"Authorization": f"Bearer {later_token(user)}"}
        assert await get_progress(http, later) == {
            "user_id": user,
            "sessions": 0,
            "tracks": [],
            "questions": {},
        }
        theirs = await get_progress(http, bearer(server, other))
        assert theirs["sessions"] == 1
