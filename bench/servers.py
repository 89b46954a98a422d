"""The servers under test, each a fresh subprocess on 127.0.0.1 with a port of its own.

- :func:`start_mentara`: ``mentara serve --port 0 --workers N`` against the run's Postgres
  and Redis, with a fresh Redis key prefix, the offline interviewer and the given pacing;
- :func:`start_socketio_peer`, :func:`start_bare_peer`: the peers (``bench.peers``);
- :func:`start_fake_claude`: the stand-in Messages API the Claude path streams from
  (``bench.fake_claude``), a process of its own so that its CPU is never the server's.

Each process runs in a session of its own (so that stopping it reaches its workers), with
its open-file limit raised, and writes its output to a log file in the run's folder.
:meth:`ServerProcess.stop` sends SIGTERM to that process group, then SIGKILL after a grace
period; it is idempotent.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench.peers.serve import raise_fd_limit
from bench.procstats import tree_pids

__all__ = [
    "ServerProcess",
    "ServerStartError",
    "start_bare_peer",
    "start_fake_claude",
    "start_mentara",
    "start_socketio_peer",
]

_SERVING = re.compile(rb"(?:serving|listening on) http://127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 90.0


class ServerStartError(RuntimeError):
    """A server exited or did not listen in time; the message ends with its log's tail."""


@dataclass
class ServerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def ws_url(self, path: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server's process and all of its descendants."""
        return tree_pids(self.proc.pid)

    def worker_pids(self) -> list[int]:
        """The processes that serve sockets: the spawned workers, or the process itself
        when it has none (multiprocessing's resource tracker is not a worker)."""
        workers = []
        for pid in self.pids()[1:]:
            with contextlib.suppress(psutil.Error):
                cmdline = " ".join(psutil.Process(pid).cmdline())
                if "resource_tracker" not in cmdline:
                    workers.append(pid)
        return workers or [self.proc.pid]

    def stop(self, grace_s: float = 20.0) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _spawn(name: str, cmd: list[str], env: Mapping[str, str], log_path: Path) -> ServerProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    raise_fd_limit()  # inherited by the server and its workers
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(name, proc, 0, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = _SERVING.search(log_path.read_bytes())
        if found:
            server.port = int(found.group(1))
            return server
        if proc.poll() is not None:
            raise ServerStartError(f"{name} exited with {proc.returncode}:\n{server.log_tail()}")
        time.sleep(0.05)
    server.stop()
    raise ServerStartError(
        f"{name} did not listen within {START_TIMEOUT_S:g}s:\n{server.log_tail()}"
    )


def _wait_http(server: ServerProcess, path: str, ok: set[int], answers: int) -> None:
    """Poll ``path`` until ``answers`` replies in a row had a status in ``ok``."""
    deadline = time.monotonic() + START_TIMEOUT_S
    streak = 0
    with httpx.Client(trust_env=False, timeout=5.0) as http:
        while streak < answers:
            if time.monotonic() > deadline or server.proc.poll() is not None:
                server.stop()
                raise ServerStartError(f"{server.name} not ready:\n{server.log_tail()}")
            try:
                streak = streak + 1 if http.get(server.http_url + path).status_code in ok else 0
            except httpx.HTTPError:
                streak = 0
            time.sleep(0.1)


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MENTARA_", "BENCH_"))}
    env.pop("ANTHROPIC_API_KEY", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_mentara(
    *,
    workers: int,
    database_url: str,
    redis_url: str,
    secret: str,
    data_dir: Path,
    log_path: Path,
    tokens_per_s: float = 40.0,
    coalesce_ms: float = 30.0,
    claude_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> ServerProcess:
    """``mentara serve --port 0 --workers N``, ready (``/readyz`` answered 200): the offline
    interviewer, or with ``claude_url`` the ``anthropic`` provider (interviewer, judge and
    summary through the SDK) against the Messages API there."""
    env = _base_env()
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MENTARA_JWT_SECRET": secret,
            "MENTARA_REDIS_PREFIX": f"bench{uuid.uuid4().hex[:10]}:",
            "MENTARA_DATA_DIR": str(data_dir),
            "MENTARA_LLM_PROVIDER": "offline",
            "MENTARA_OFFLINE_TOKENS_PER_S": f"{tokens_per_s:g}",
            "MENTARA_COALESCE_MS": f"{coalesce_ms:g}",
            "MENTARA_LOG_LEVEL": "warning",
            "MENTARA_SHUTDOWN_GRACE_S": "3",
            # The bench measures serving, not plans: no candidate runs out of interviews.
            "MENTARA_FREE_INTERVIEWS_PER_MONTH": "1000000",
        }
    )
    if claude_url is not None:
        env.update(
            {
                "MENTARA_LLM_PROVIDER": "anthropic",
                "ANTHROPIC_BASE_URL": claude_url,
                "ANTHROPIC_API_KEY": "bench-key",
            }
        )
    env.update(extra_env or {})
    cmd = [sys.executable, "-m", "server.cli", "serve", "--port", "0", "--workers", str(workers)]
    server = _spawn("mentara", cmd, env, log_path)
    _wait_http(server, "/readyz", {200}, answers=2 * workers)
    return server


def start_socketio_peer(
    *, workers: int, redis_url: str, log_path: Path, tokens_per_s: float, coalesce_ms: float
) -> ServerProcess:
    """The python-socketio peer with N uvicorn workers and a fresh Redis channel."""
    cmd = [
        sys.executable, "-m", "bench.peers.socketio_peer",
        "--port", "0", "--workers", str(workers), "--redis-url", redis_url,
        "--channel", f"bench-socketio-{uuid.uuid4().hex[:10]}",
        "--tokens-per-s", f"{tokens_per_s:g}", "--coalesce-ms", f"{coalesce_ms:g}",
    ]  # fmt: skip
    server = _spawn("python-socketio", cmd, _base_env(), log_path)
    _wait_http(server, "/socket.io/", {200, 400}, answers=2 * workers)
    return server


def start_bare_peer(*, log_path: Path, tokens_per_s: float, coalesce_ms: float) -> ServerProcess:
    """The bare ``websockets`` peer, one process."""
    cmd = [
        sys.executable, "-m", "bench.peers.bare_peer", "--port", "0",
        "--tokens-per-s", f"{tokens_per_s:g}", "--coalesce-ms", f"{coalesce_ms:g}",
    ]  # fmt: skip
    server = _spawn("websockets", cmd, _base_env(), log_path)
    _wait_http(server, "/", {400, 426}, answers=1)
    return server


def start_fake_claude(
    *, log_path: Path, tokens_per_s: float, words_per_chunk: int
) -> ServerProcess:
    """``python -m bench.fake_claude``: the Messages API of the Claude path, on its own port."""
    cmd = [
        sys.executable, "-m", "bench.fake_claude", "--port", "0",
        "--tokens-per-s", f"{tokens_per_s:g}", "--words-per-chunk", str(words_per_chunk),
    ]  # fmt: skip
    return _spawn("fake-claude", cmd, _base_env(), log_path)
