"""The caller's data (PROTOCOL.md §7): ``GET /v1/me/export`` and ``DELETE /v1/me``, against
real servers, Postgres and Redis. Deletion ends live sessions with ``session.ended
{deleted}`` and 4004 on every worker, including a socket on a worker that does not own the
session; afterwards nothing of the user is left in Postgres or Redis and another user's data
is untouched."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from protocol.client import InterviewClient, ServerErrorReply, open_client
from protocol.errors import CloseCode
from protocol.messages import (
    CandidateMessage,
    CodeUpdate,
    Error,
    InterviewerTurnEnd,
    ReportReady,
    Resumed,
    ServerFrame,
    SessionEnd,
    SessionEnded,
    SessionEvent,
    SessionResume,
    SessionStart,
    SessionStarted,
    Watch,
)
from server.config import Settings
from server.dev_tokens import mint_dev_token
from server.hub.redis_client import connect as connect_redis
from tests.interview_support import assert_gap_free, events, read_until
from tests.support import (
    TEST_SECRET,
    RunningServer,
    Services,
    later_token,
    running_server,
    serve_env,
    serving,
    wait_ready,
)

SECRET = "rc-test-secret"
SESSION_TABLES = (
    "session_events",
    "client_inputs",
    "transcript_turns",
    "code_snapshots",
    "reports",
)
USER_TABLES = (
    "push_tokens",
    "push_outbox",
    "subscriptions",
    "subscription_events",
    "interview_usage",
    "quota_grants",
)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.with_(
        offline_tokens_per_s=400.0, coalesce_ms=5.0, revenuecat_webhook_secret=SECRET
    )


@pytest.fixture
async def server(fast: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(fast) as running:
        yield running


def bearer(server: RunningServer, user: str, *, later: bool = False) -> dict[str, str]:
    """``later``: a token issued after a deletion happening now (``iat`` a second on)."""
    return {"Authorization": f"Bearer {later_token(user) if later else server.token(user)}"}


async def start(client: InterviewClient, start_id: str = "start") -> tuple[str, list[ServerFrame]]:
    frames: list[ServerFrame] = [await client.request(SessionStart(id=start_id, track="coding"))]
    frames += await read_until(client, lambda f: isinstance(f, InterviewerTurnEnd), timeout=30)
    started = next(e for e in events(frames) if isinstance(e, SessionStarted))
    return started.session_id, frames


async def full_interview(server: RunningServer, user: str, said: str) -> str:
    """A whole session for ``user``: a message, code, the end and the report."""
    async with open_client(server.ws_url(), token=server.token(user)) as c:
        session_id, _ = await start(c)
        await c.request(CandidateMessage(id="m1", text=said))
        await c.request(CodeUpdate(id="c1", language="python", source=f"# {said}\n"))
        await c.request(SessionEnd(id="end"))
        await read_until(c, lambda f: isinstance(f, ReportReady), timeout=90)
    return session_id


async def rc_event(http: httpx.AsyncClient, user: str, **fields: Any) -> httpx.Response:
    event = {
        "id": uuid.uuid4().hex,
        "type": "INITIAL_PURCHASE",
        "app_user_id": user,
        "product_id": "mentara_pro_monthly",
        "entitlement_ids": ["pro"],
        "event_timestamp_ms": 1_700_000_000_000,
        "expiration_at_ms": 4_000_000_000_000,
        **fields,
    }
    return await http.post(
        "/v1/webhooks/revenuecat",
        json={"api_version": "1.0", "event": event},
        headers={"Authorization": SECRET},
    )


async def export(
    http: httpx.AsyncClient, server: RunningServer, user: str, *, later: bool = False
) -> dict[str, Any]:
    response = await http.get("/v1/me/export", headers=bearer(server, user, later=later))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    data = json.loads(response.content)
    assert isinstance(data, dict)
    return data


async def leftovers(
    database_url: str, redis_url: str, prefix: str, user: str, sids: list[str]
) -> list[str]:
    """Every row and key still holding ``user``'s data or their sessions'."""
    found: list[str] = []
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1", user):
            found.append("sessions")
        for table in SESSION_TABLES:
            n = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE session_id = ANY($1::text[])", sids
            )
            if n:
                found.append(table)
        for table in USER_TABLES:
            if await conn.fetchval(f"SELECT count(*) FROM {table} WHERE user_id = $1", user):
                found.append(table)
    finally:
        await conn.close()
    redis = connect_redis(redis_url)  # one Redis or a cluster (every node scanned)
    try:
        for sid in sids:
            found += [k.decode() async for k in redis.scan_iter(f"{prefix}{{s:{sid}}}:*")]
    finally:
        await redis.aclose()
    return found


async def ended_then_closed(client: InterviewClient) -> tuple[SessionEnded, list[ServerFrame]]:
    """Read until the socket closes; the last session event must be session.ended{deleted}."""
    frames: list[ServerFrame] = []
    async for event in client.events(timeout=15):
        frames.append(event)
    assert client.close_code == CloseCode.SESSION_NOT_FOUND, client.close_code
    last = events(frames)[-1]
    assert isinstance(last, SessionEnded) and last.reason == "deleted", last
    return last, frames


async def test_export_has_everything_of_the_caller_and_nothing_of_anyone_else(
    server: RunningServer,
) -> None:
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for user, token in [(alice, "alice-device"), (bob, "bob-device")]:
            registered = await http.post(
                "/v1/me/push-tokens", json={"token": token}, headers=bearer(server, user)
            )
            assert registered.status_code == 201
        alice_session = await full_interview(server, alice, "I would use a hash map for alice.")
        bob_session = await full_interview(server, bob, "Bob's private answer.")
        assert (await rc_event(http, alice)).json()["status"] == "applied"
        assert (await rc_event(http, bob, product_id="bob_plan")).json()["status"] == "applied"

        unauthenticated = await http.get("/v1/me/export")
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["error"]["code"] == "unauthorized"

        response = await http.get("/v1/me/export", headers=bearer(server, alice))
        assert response.status_code == 200
        raw = response.text
        data = await export(http, server, alice)

    assert bob not in raw and bob_session not in raw and "Bob's private" not in raw
    assert "bob-device" not in raw and "bob_plan" not in raw
    assert data["user_id"] == alice
    assert [t["token"] for t in data["push_tokens"]] == ["alice-device"]
    assert [n["payload"]["session_id"] for n in data["push_notifications"]] == [alice_session]
    assert data["subscription"]["status"] == "active"
    assert data["subscription"]["entitlement_ids"] == ["pro"]
    assert [e["type"] for e in data["subscription_events"]] == ["INITIAL_PURCHASE"]
    [usage] = data["interview_usage"]
    assert (usage["used"], usage["granted"]) == (1, 0) and data["quota_grants"] == []
    [track] = data["progress"]["tracks"]
    assert track["overall"][0]["session_id"] == alice_session

    [session] = data["sessions"]
    assert session["id"] == alice_session
    assert session["status"] == "ended" and session["end_reason"] == "candidate_ended"
    assert session["question"] is None or isinstance(session["question"], dict)
    seqs = [e["seq"] for e in session["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    types = {e["type"] for e in session["events"]}
    assert {"session.started", "candidate.message", "code.snapshot", "session.ended"} <= types
    assert "report.ready" in types
    assert any(
        t["role"] == "candidate" and t["text"] == "I would use a hash map for alice."
        for t in session["transcript"]
    )
    assert any(t["role"] == "interviewer" for t in session["transcript"])
    assert [c["source"] for c in session["code_snapshots"]] == [
        "# I would use a hash map for alice.\n"
    ]
    assert {"start", "m1", "c1", "end"} >= {i["input_id"] for i in session["client_inputs"]}
    assert {"m1", "c1"} <= {i["input_id"] for i in session["client_inputs"]}
    assert isinstance(session["report"], dict) and session["report"]

    # Leave no queued notifications behind for other tests' outbox drainers.
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for user in (alice, bob):
            assert (await http.delete("/v1/me", headers=bearer(server, user))).status_code == 204


async def test_export_pages_through_many_sessions_and_events(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small pages, so the session and event paging is exercised across page boundaries."""
    from server import account_data

    monkeypatch.setattr(account_data, "SESSION_PAGE", 2)
    monkeypatch.setattr(account_data, "EVENT_PAGE", 3)
    user = f"many-{uuid.uuid4().hex[:6]}"
    started: list[str] = []
    async with open_client(server.ws_url(), token=server.token(user)) as c:
        for i in range(5):
            session_id, _ = await start(c, f"start-{i}")
            started.append(session_id)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        data = await export(http, server, user)
    assert sorted(s["id"] for s in data["sessions"]) == sorted(started)
    for session in data["sessions"]:
        seqs = [e["seq"] for e in session["events"]]
        assert seqs and seqs == list(range(1, len(seqs) + 1))


async def test_delete_ends_live_sockets_and_erases_everything(
    server: RunningServer, fast: Settings
) -> None:
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    finished = await full_interview(server, alice, "An answer to erase.")
    bob_session = await full_interview(server, bob, "Bob stays.")
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        await http.post("/v1/me/push-tokens", json={"token": "t1"}, headers=bearer(server, alice))
        await rc_event(http, alice)
        grant = await http.post(
            f"/v1/admin/users/{alice}/grants",
            json={"interviews": 1, "reason": "to be erased"},
            headers={"Authorization": f"Bearer {server.token('ops', admin=True)}"},
        )
        assert grant.status_code == 200, grant.text
        async with (
            open_client(server.ws_url(), token=server.token(alice)) as live,
            open_client(server.ws_url(), token=server.token(alice)) as reader,
            open_client(
                server.ws_url("/v1/admin/watch"), token=server.token("ops", admin=True)
            ) as admin,
        ):
            live_session, live_frames = await start(live, "live")
            await live.request(CandidateMessage(id="m", text="Still talking."))
            # A second socket re-reading the finished session (its owner may have let it go).
            await reader.send(SessionResume(session_id=finished, last_seq=0))
            assert isinstance(await reader.recv(), Resumed)
            await read_until(reader, lambda f: isinstance(f, ReportReady))
            await admin.send(Watch(session_id=live_session))
            assert isinstance(await admin.recv(), Resumed)

            old = bearer(server, alice)  # a token from before the deletion
            deleted = await http.delete("/v1/me", headers=old)
            assert deleted.status_code == 204, deleted.text

            ended, more = await ended_then_closed(live)
            stream = [e for e in events(live_frames + more)]
            assert_gap_free(stream)  # session.ended{deleted} is a real event: next seq
            await ended_then_closed(reader)
            admin_ended, _ = await ended_then_closed(admin)
            assert admin_ended.seq == ended.seq

        # Gone: not resumable, not listed, not exported.
        async with open_client(server.ws_url(), token=later_token(alice)) as again:
            for sid in (live_session, finished):
                with pytest.raises(ServerErrorReply) as refused:
                    await again.request(SessionResume(id=f"r-{sid}", session_id=sid, last_seq=0))
                assert refused.value.error.code == "not_found"
        assert (
            await http.get("/v1/sessions", headers=bearer(server, alice, later=True))
        ).json() == {"sessions": []}
        data = await export(http, server, alice, later=True)
        assert data["sessions"] == [] and data["push_tokens"] == []
        assert data["subscription"] is None and data["subscription_events"] == []
        assert (
            await http.get(
                f"/v1/sessions/{live_session}/report", headers=bearer(server, alice, later=True)
            )
        ).status_code == 404

        # Idempotent (with a token from after the deletion: older ones are refused now).
        assert (await http.delete("/v1/me", headers=old)).status_code == 401
        assert (
            await http.delete("/v1/me", headers=bearer(server, alice, later=True))
        ).status_code == 204
        assert (await http.delete("/v1/me")).status_code == 401

        # Bob is untouched.
        bob_data = await export(http, server, bob)
        assert [s["id"] for s in bob_data["sessions"]] == [bob_session]
        assert bob_data["sessions"][0]["events"]

    assert fast.database_url and fast.redis_url
    left = await leftovers(
        fast.database_url, fast.redis_url, fast.redis_prefix, alice, [live_session, finished]
    )
    assert left == []


async def test_delete_reaches_a_socket_on_another_worker(fast: Settings) -> None:
    """The session is owned by worker A; the laptop and an admin watch from worker B, and the
    DELETE is served by B: every socket, on both workers, gets session.ended{deleted}
    (the same event, appended by A) and 4004."""
    user = f"carol-{uuid.uuid4().hex[:6]}"
    async with (
        running_server(fast) as a,
        running_server(fast) as b,
        open_client(a.ws_url(), token=a.token(user)) as phone,
        open_client(b.ws_url(), token=b.token(user)) as laptop,
        open_client(b.ws_url("/v1/admin/watch"), token=b.token("ops", admin=True)) as admin,
        httpx.AsyncClient(base_url=b.http_url) as http,
    ):
        session_id, phone_frames = await start(phone)
        await laptop.send(SessionResume(session_id=session_id, last_seq=0))
        assert isinstance(await laptop.recv(), Resumed)
        await admin.send(Watch(session_id=session_id))
        assert isinstance(await admin.recv(), Resumed)
        # Input from B is forwarded to A, the owner: the session is live across workers.
        await laptop.request(CandidateMessage(id="from-b", text="Typed on the laptop."))

        deleted = await http.delete("/v1/me", headers=bearer(b, user))
        assert deleted.status_code == 204, deleted.text

        phone_end, phone_more = await ended_then_closed(phone)
        laptop_end, laptop_frames = await ended_then_closed(laptop)
        admin_end, _ = await ended_then_closed(admin)
        assert phone_end == laptop_end == admin_end  # one event, appended by the owner
        phone_stream: list[SessionEvent] = events(phone_frames + phone_more)
        laptop_stream = events(laptop_frames)
        assert_gap_free(phone_stream)
        assert_gap_free(laptop_stream)
        assert phone_stream == laptop_stream

        # Neither worker resumes it; A no longer owns it.
        for worker in (a, b):
            async with open_client(worker.ws_url(), token=later_token(user)) as c:
                await c.send(SessionResume(id="r", session_id=session_id, last_seq=0))
                reply = await c.recv()
                assert isinstance(reply, Error) and reply.code == "not_found"
        owner_a = a.app.state.resources.sessions
        assert session_id not in owner_a.owned
        assert (await export(http, b, user, later=True))["sessions"] == []

    assert fast.database_url and fast.redis_url
    assert (
        await leftovers(fast.database_url, fast.redis_url, fast.redis_prefix, user, [session_id])
        == []
    )


async def test_a_worker_that_does_not_confirm_blocks_the_deletion(server: RunningServer) -> None:
    """A subscriber on the erase channel that never answers stands for a hung worker: the
    DELETE answers 503 and deletes nothing; once it is gone, the repeat succeeds, with the
    same token (a failed deletion refuses no token)."""
    user = f"dave-{uuid.uuid4().hex[:6]}"
    resources = server.app.state.resources
    resources.sessions.eraser.timeout_s = 0.5
    assert server.settings.redis_url
    silent = aioredis.from_url(server.settings.redis_url).pubsub()
    async with (
        open_client(server.ws_url(), token=server.token(user)) as c,
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
        session_id, _ = await start(c)
        await silent.subscribe(resources.sessions.eraser.channel)
        headers = bearer(server, user)
        try:
            refused = await http.delete("/v1/me", headers=headers)
        finally:
            await silent.aclose()  # type: ignore[no-untyped-call]
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "internal"
        assert [s["id"] for s in (await export(http, server, user))["sessions"]] == [session_id]

        assert (await http.delete("/v1/me", headers=headers)).status_code == 204
        await ended_then_closed(c)
        assert (await export(http, server, user, later=True))["sessions"] == []


async def test_delete_across_the_workers_of_mentara_serve(
    services: Services, tmp_path: Path
) -> None:
    """``mentara serve --workers 2``: six sockets on one session spread over both worker
    processes (the kernel picks), and the DELETE lands on either; all end and close 4004."""
    env = serve_env(
        services, tmp_path, f"er{uuid.uuid4().hex[:8]}:", MENTARA_OFFLINE_TOKENS_PER_S="200"
    )
    user = f"erin-{uuid.uuid4().hex[:6]}"
    token = mint_dev_token(TEST_SECRET, user)
    with serving("--workers", "2", env=env) as (_proc, port):
        assert (await wait_ready(port)).status_code == 200
        url = f"ws://127.0.0.1:{port}/v1/interview"
        clients = [await InterviewClient.connect(url, token=token) for _ in range(6)]
        try:
            session_id, _ = await start(clients[0])
            for other in clients[1:]:
                await other.send(SessionResume(session_id=session_id, last_seq=0))
                assert isinstance(await other.recv(), Resumed)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                headers = {"Authorization": f"Bearer {token}"}
                assert (await http.delete("/v1/me", headers=headers)).status_code == 204
                ends = [(await ended_then_closed(c))[0] for c in clients]
                assert len({e.seq for e in ends}) == 1
                assert (await http.get("/v1/me/export", headers=headers)).status_code == 401
                later = {"Authorization": f"Bearer {later_token(user)}"}
                exported = await http.get("/v1/me/export", headers=later)
                assert exported.json()["sessions"] == []
        finally:
            for c in clients:
                await c.close()
