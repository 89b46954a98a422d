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
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import uvicorn
from starlette.applications import Starlette

from server.app import create_app
from server.asgi_server import bind_socket, uvicorn_config
from server.config import Settings
from server.dev_tokens import mint_dev_token

TEST_SECRET = "test-secret-" + "x" * 32
#: The free plan's interviews a month on test servers (the product's default is 3).
TEST_FREE_INTERVIEWS = 10_000


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


@contextlib.asynccontextmanager
async def database_of_its_own(services: Services) -> AsyncIterator[Services]:
    """This run's servers with a fresh, empty database (dropped afterwards), for a test
    whose assertions cover every session in its database: a cluster-wide sweep, say, would
    otherwise also find the rows other tests left in the run's shared database."""
    name = f"mentara_own_{uuid.uuid4().hex[:12]}"
    await create_database(services.database_url, name)
    try:
        yield Services(
            with_database(services.database_url, name), services.redis_url, services.mode
        )
    finally:
        await drop_database(services.database_url, name)


def make_settings(services: Services, data_dir: Path, **overrides: object) -> Settings:
    base = Settings(
        database_url=services.database_url,
        redis_url=services.redis_url,
        data_dir=data_dir,
        jwt_secret=TEST_SECRET,
        redis_prefix=f"t{uuid.uuid4().hex[:10]}:",
        shutdown_grace_s=3.0,
        log_level="warning",
        # Tests start many sessions per user; the quota's own tests set the product's 3.
        free_interviews_per_month=TEST_FREE_INTERVIEWS,
    )
    return base.with_(**overrides)


@dataclass
class RunningServer:
    settings: Settings
    port: int
    server: uvicorn.Server
    app: Starlette = field(repr=False)

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


def later_token(user: str, secret: str = TEST_SECRET) -> str:
    """A token issued after a deletion happening now: its ``iat`` is a whole second later
    (tokens issued at or before a user's erasure are refused: ``server.account_erasures``)."""
    return mint_dev_token(secret, user, now=time.time() + 1.5)


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


MENTARA = [sys.executable, "-m", "server.cli"]
_LISTENING = re.compile(r"serving http://[\d.]+:(\d+) with (\d+) worker")


@contextmanager
def serving(*args: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``mentara serve --port 0`` as a real process; yields it and the port it listens on.

    Its output is read continuously (so the process never blocks on a full pipe) and kept in
    ``proc.output_lines`` for failure messages. Stopped with SIGTERM at the end (if alive).
    """
    proc = subprocess.Popen([*MENTARA, "serve", "--port", "0", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    lines: list[str] = []
    proc.output_lines = lines  # type: ignore[attr-defined]
    reader: threading.Thread | None = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if match := _LISTENING.search(line):
                break
        else:
            raise AssertionError("serve exited before listening:\n" + "".join(lines))
        stdout = proc.stdout
        reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
        reader.start()
        yield proc, int(match.group(1))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if reader is not None:
            reader.join(timeout=10)
        if proc.stdout and (reader is None or not reader.is_alive()):
            proc.stdout.close()


async def wait_ready(port: int, timeout: float = 60.0) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                response = await http.get(f"http://127.0.0.1:{port}/readyz")
                if response.status_code == 200 or loop.time() > deadline:
                    return response
            except httpx.TransportError:
                if loop.time() > deadline:
                    raise
            await asyncio.sleep(0.1)


def serve_env(services: Services, data_dir: Path, prefix: str, **settings: str) -> dict[str, str]:
    """The environment for ``mentara serve`` processes that form one cluster: this run's
    Postgres and Redis, a shared key prefix, the test secret, a slow offline interviewer
    (turns long enough to cut), then ``settings`` (``MENTARA_*`` names) on top."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MENTARA_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(
        DATABASE_URL=services.database_url,
        REDIS_URL=services.redis_url,
        MENTARA_JWT_SECRET=TEST_SECRET,
        MENTARA_REDIS_PREFIX=prefix,
        MENTARA_DATA_DIR=str(data_dir),
        MENTARA_LOG_LEVEL="warning",
        MENTARA_OFFLINE_TOKENS_PER_S="15",
        MENTARA_COALESCE_MS="10",
        MENTARA_FREE_INTERVIEWS_PER_MONTH=str(TEST_FREE_INTERVIEWS),
    )
    env.update(settings)
    return env


@contextlib.asynccontextmanager
async def serving_asgi(app: Any) -> AsyncIterator[int]:
    """Any ASGI app under uvicorn on 127.0.0.1:0 in this loop (a stand-in peer); yields the port."""
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
            await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()
