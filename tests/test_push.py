"""Report-ready push notifications: registration over HTTP, the outbox, the webhook sender
against a real receiver on loopback (failures retried)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.push import OutboxDrainer, WebhookPushSender, enqueue_report_ready
from tests.support import RunningServer, serving_asgi


class Receiver:
    """A push relay on 127.0.0.1:0 that fails its first ``failures`` requests with 500."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[dict[str, Any]] = []
        self.port = 0

    async def handle(self, request: Request) -> Response:
        if self.failures > 0:
            self.failures -= 1
            return JSONResponse({"error": "try later"}, status_code=500)
        self.received.append(await request.json())
        return JSONResponse({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver(failures=1)
    app = Starlette(routes=[Route("/push", state.handle, methods=["POST"])])
    async with serving_asgi(app) as port:
        state.port = port
        yield state


async def test_an_oversized_push_token_body_is_refused_unread(server: RunningServer) -> None:
    """413 ``too_large`` as soon as the body is known to be over the bound: declared by
    Content-Length, or while a chunked body streams in (never buffered whole)."""
    headers = {"Authorization": f"Bearer {server.token('big')}"}

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b"x" * 1024

    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for content in (b"x" * 10_000, chunks()):
            refused = await http.post("/v1/me/push-tokens", content=content, headers=headers)
            assert refused.status_code == 413
            assert refused.json()["error"]["code"] == "too_large"


async def test_register_then_notify_each_device_with_retries(
    server: RunningServer, receiver: Receiver
) -> None:
    headers = {"Authorization": f"Bearer {server.token('pat')}"}
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for token, platform in [("apns-1", "ios"), ("fcm-1", "android")]:
            created = await http.post(
                "/v1/me/push-tokens", json={"token": token, "platform": platform}, headers=headers
            )
            assert created.status_code == 201
        bad = await http.post(
            "/v1/me/push-tokens", json={"token": "x", "platform": "pager"}, headers=headers
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_field"
        assert (await http.post("/v1/me/push-tokens", json={"token": "x"})).status_code == 401

    pool = await asyncpg.create_pool(server.settings.database_url, min_size=1, max_size=2)
    sender = WebhookPushSender(f"http://127.0.0.1:{receiver.port}/push")
    try:
        async with pool.acquire() as conn, conn.transaction():
            queued = await enqueue_report_ready(
                conn, "pat", {"type": "report.ready", "session_id": "s1"}
            )
        assert queued == 2
        drainer = OutboxDrainer(pool, sender)
        await drainer.drain_once()  # the first delivery fails (500) and is rescheduled
        assert drainer.failed == 1
        await pool.execute("UPDATE push_outbox SET next_try_at = now() WHERE sent_at IS NULL")
        await drainer.drain_once()
        assert drainer.sent == 2
        pending = await pool.fetchval(
            "SELECT count(*) FROM push_outbox WHERE user_id = 'pat' AND sent_at IS NULL"
        )
        assert pending == 0
    finally:
        await sender.aclose()
        await pool.close()
    assert sorted(r["token"] for r in receiver.received) == ["apns-1", "fcm-1"]
    assert all(r["payload"]["session_id"] == "s1" for r in receiver.received)
