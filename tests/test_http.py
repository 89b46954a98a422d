"""HTTP: health, readiness, metrics, and JSON errors as PROTOCOL.md §7."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from server.config import Settings
from server.embedded import EmbeddedRedis
from tests.support import RunningServer, running_server


async def test_health_and_metrics(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        health = await http.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = await http.get("/readyz")
        assert ready.json() == {
            "status": "ready",
            "postgres": "ok",
            "redis": "ok",
            "sandbox": "isolated",
        }
        metrics = await http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "mentara_sockets_open" in metrics.text


async def test_errors_are_json(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        missing = await http.get("/no/such/thing")
        assert missing.status_code == 404
        assert missing.json() == {"error": {"code": "not_found", "message": "Not Found"}}
        wrong_method = await http.delete("/healthz")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["code"] == "not_found"
        bad_token = await http.get("/v1/sessions", headers={"Authorization": "Bearer nope"})
        assert bad_token.status_code == 401
        assert bad_token.json()["error"]["code"] == "unauthorized"


async def test_readyz_is_503_while_redis_is_down(settings: Settings, tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path / "redis", persistent=False)
    redis.start()
    try:
        async with (
            running_server(settings.with_(redis_url=redis.url)) as server,
            httpx.AsyncClient(base_url=server.http_url) as http,
        ):
            assert (await http.get("/readyz")).status_code == 200
            redis.stop()
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            body = ready.json()
            assert body["error"]["code"] == "internal"
            assert "redis" in body["error"]["message"]
            assert (await http.get("/healthz")).status_code == 200  # alive, just not ready
            redis.start()
            for _ in range(50):
                if (await http.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("not ready again after Redis came back")
    finally:
        redis.stop()
