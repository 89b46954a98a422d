"""Test support: the services the suite runs against, and real servers on 127.0.0.1:0.

``MENTARA_TEST_SERVICES=embedded`` (default) starts the embedded Postgres and Redis once for
the run; ``local`` uses ``DATABASE_URL`` / ``REDIS_URL`` (default: this machine's servers on
127.0.0.1). Either way the run gets a database of its own, dropped at the end, and each server
a Redis key prefix of its own, so runs never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import uvicorn

from server.app import create_app
from server.asgi_server import bind_socket, uvicorn_config
from server.auth import mint_dev_token
from server.config import Settings

TEST_SECRET = "test-secret-" + "x" * 32


@dataclass
class Services:
    database_url: str
    redis_url: str
    mode: str


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def make_settings(services: Services, data_dir: Path, **overrides: object) -> Settings:
    base = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        data_dir=data_dir,
        jwt_secret=TEST_SECRET,
        redis_prefix=f"t{uuid.uuid4().hex[:10]}:",
        shutdown_grace_s=3.0,
        log_level="warning",
    )
    return base.with_(**overrides)


@dataclass
class RunningServer:
    settings: Settings
    port: int
    server: uvicorn.Server
    app: object = field(repr=False)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str = "/v1/interview") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def token(self, user: str = "alice", *, admin: bool = False, ttl_s: int = 3600) -> str:
        """A token for ``user`` that expires ``ttl_s`` from now (negative: already expired)."""
        now = None
        if ttl_s <= 0:
            now, ttl_s = time.time() + ttl_s - 60, 60
        return mint_dev_token(
            self.settings.jwt_secret or "",
            user,
            admin=admin,
            ttl_s=ttl_s,
            role_claim=self.settings.role_claim,
            admin_role=self.settings.admin_role,
            now=now,
        )


@contextlib.asynccontextmanager
async def running_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """A real uvicorn server with the real app on 127.0.0.1:0, in this event loop."""
    app = create_app(settings)
    config = uvicorn_config(settings, app, log_config=None, loop="asyncio")
    server = uvicorn.Server(config)
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task  # raises the start-up error
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)
        yield RunningServer(settings, port, server, app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()


def services_mode() -> str:
    return os.environ.get("MENTARA_TEST_SERVICES", "embedded")
