"""The system under test, on the hosts of a :class:`~chaos.netns.Network`: Postgres on
``pg``, Redis (a cluster on ``r1``…``r3`` by default, or one Redis on ``redis``:
:mod:`chaos.redis_nodes`), a ``mentara serve`` on each of ``s1``…``s3``, and candidates
from the load harness (``mentara load --record``) on every server host.

Everything it starts runs inside the network (spawned through :meth:`Network.spawn`, so
:meth:`Network.destroy` ends it); the harness itself reaches Postgres and Redis only through
their unix sockets in the run folder (a control channel no fault touches, as Jepsen's control
node). Postgres is a fresh cluster from the embedded binaries (``pgserver``), run as their
system user. The slow link host's traffic to every Redis node goes through
:mod:`chaos.delay_proxy`, which listens there on the nodes' own addresses.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaos.netns import Network
from chaos.redis_nodes import RedisNodes, make_redis

__all__ = ["SERVERS", "Stack", "StackError", "StackSettings"]

SERVERS = ("s1", "s2", "s3")
SERVER_PORT = 8000
PG_PORT = 5432
SLOW_LINK_HOST = "s3"
"""The server host whose link to Redis goes through the delay proxy (the slow_link fault)."""
_SERVING = re.compile(r"serving http://[\d.]+:(\d+)")


class StackError(RuntimeError):
    """Part of the stack did not start (its log says why)."""


@dataclass(frozen=True)
class StackSettings:
    lease_ms: int = 1500
    sessions_per_host: int = 4
    duration_s: float = 60.0
    ramp_up_s: float = 5.0
    grace_s: float = 60.0
    unfenced_append: bool = False
    """TEST ONLY: servers append without the fence check (MENTARA_TEST_UNFENCED_APPEND)."""
    redis_topology: str = "cluster"
    """``cluster`` (3 masters, 3 replicas) or ``single``."""


@dataclass
class Stack:
    network: Network
    run_dir: Path
    settings: StackSettings
    socket_dir: Path
    """Where Postgres's and Redis's unix sockets go: a short path of its own (a socket's path
    is at most 107 bytes, which a deep run folder can pass), removed by the caller."""
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    servers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    candidates: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    redis: RedisNodes = field(init=False)
    _log_offsets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.redis = make_redis(
            self.settings.redis_topology, self.network, self.run_dir / "redis", self.logs,
            _base_env(), self.socket_dir,
        )  # fmt: skip

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host's name: the servers', Redis's, ``pg``."""
        return (*SERVERS, *self.redis.hosts, "pg")

    # -- folders --------------------------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def records(self) -> Path:
        return self.run_dir / "records"

    @property
    def pg_socket_dir(self) -> Path:
        return self.socket_dir / "pg"

    @property
    def slow_link_control(self) -> Path:
        return self.run_dir / "slow-link.json"

    def server_log(self, host: str) -> Path:
        return self.logs / f"server-{host}.log"

    def load_out(self, host: str) -> Path:
        return self.run_dir / f"load-{host}"

    @property
    def database_url(self) -> str:
        """The harness's own way in: the unix socket."""
        return f"postgresql://postgres@/postgres?host={self.pg_socket_dir}&port={PG_PORT}"

    @property
    def redis_prefix(self) -> str:
        return f"{self.network.prefix}:"

    # -- starting -------------------------------------------------------------------------

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.records.mkdir(exist_ok=True)
        self.network.build(self.hosts)
        postgres = self.start_postgres()
        self.redis.start()
        self.slow_link_control.write_text("{}")
        redis_ips = [self.network.hosts[h].ip for h in self.redis.hosts]
        self.network.add_local(SLOW_LINK_HOST, redis_ips)
        self.network.spawn(
            SLOW_LINK_HOST,
            [sys.executable, "-m", "chaos.delay_proxy", str(self.slow_link_control),
             *self.redis.routes()],
            env=_base_env(), log=self.logs / "delay-proxy.log",
        )  # fmt: skip
        self._wait_postgres(postgres)
        for name in SERVERS:
            self.start_server(name)
        for name in SERVERS:
            self.wait_serving(name)

    def start_postgres(self) -> subprocess.Popen[bytes]:
        from pgserver._commands import POSTGRES_BIN_PATH

        user = _postgres_user(self.run_dir)
        pgdata = self.run_dir / "pg"
        pgdata.mkdir()
        self.socket_dir.chmod(0o755)
        self.pg_socket_dir.mkdir()
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            for path in (pgdata, self.pg_socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres",
             "--encoding=utf8"],
            user=user, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        # Trust: a throwaway cluster that only this run's hosts and this harness can reach.
        (pgdata / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 10.200.0.0/24 trust\n"
        )
        return self.network.spawn(
            "pg",
            [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-p", str(PG_PORT),
             "-c", f"listen_addresses={self.network.hosts['pg'].ip}",
             "-c", f"unix_socket_directories={self.pg_socket_dir}",
             "-c", "fsync=off", "-c", "max_connections=200"],
            env=_base_env(), log=self.logs / "postgres.log", user=user,
        )  # fmt: skip

    def _wait_postgres(self, postgres: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while not (self.pg_socket_dir / f".s.PGSQL.{PG_PORT}").exists():
            if postgres.poll() is not None or time.monotonic() > deadline:
                log = self.logs / "postgres.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise StackError(f"postgres did not start; {log} ends:\n{tail}")
            time.sleep(0.1)

    def server_env(self, host: str) -> dict[str, str]:
        """The same for every host: the slow link's host reaches the same addresses, through
        its proxy."""
        env = _base_env()
        env.update(
            DATABASE_URL=f"postgresql://postgres@{self.network.hosts['pg'].ip}:{PG_PORT}/postgres",
            REDIS_URL=self.redis.url(),
            MENTARA_JWT_SECRET=self.secret,
            MENTARA_REDIS_PREFIX=self.redis_prefix,
            MENTARA_DATA_DIR=str(self.run_dir / host),
            MENTARA_LOG_LEVEL="info",
            MENTARA_LOG_FORMAT="json",
            MENTARA_APPEND_AUDIT="1",
            MENTARA_LEASE_MS=str(self.settings.lease_ms),
            MENTARA_LLM_PROVIDER="offline",
            MENTARA_OFFLINE_TOKENS_PER_S="20",
            MENTARA_COALESCE_MS="30",
            MENTARA_REPORT_RETRY_S="5",
            MENTARA_HEARTBEAT_S="2",
            MENTARA_SHUTDOWN_GRACE_S="5",
            MENTARA_SESSION_STARTS_PER_MIN="1000",
            MENTARA_DB_POOL_MAX="10",
        )
        if self.settings.unfenced_append:
            env["MENTARA_TEST_UNFENCED_APPEND"] = "1"
        return env

    def start_server(self, host: str) -> None:
        ip = self.network.hosts[host].ip
        log = self.server_log(host)
        self._log_offsets[host] = log.stat().st_size if log.exists() else 0
        self.servers[host] = self.network.spawn(
            host,
            [sys.executable, "-m", "server.cli", "serve", "--host", ip, "--port", str(SERVER_PORT),
             "--workers", "1"],
            env=self.server_env(host), log=self.server_log(host),
        )  # fmt: skip

    def wait_serving(self, host: str, timeout: float = 90.0) -> None:
        log = self.server_log(host)
        deadline = time.monotonic() + timeout
        while True:
            with log.open("rb") as f:
                f.seek(self._log_offsets.get(host, 0))
                text = f.read().decode(errors="replace")
            if _SERVING.search(text):
                return
            proc = self.servers[host]
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StackError(f"server {host} did not start; see {log}:\n{text[-3000:]}")
            time.sleep(0.2)

    def kill_server(self, host: str) -> None:
        proc = self.servers[host]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGCONT)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def signal_server(self, host: str, sig: signal.Signals) -> None:
        proc = self.servers[host]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)

    def stop_servers(self) -> None:
        """SIGTERM (a graceful shutdown hands sessions over), then whatever is left is killed
        by the network's destroy."""
        for proc in self.servers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.servers.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    # -- candidates -----------------------------------------------------------------------

    def start_candidates(self, seed: int = 1) -> None:
        """``sessions_per_host`` candidates on every server host; each host lists the servers
        starting with a different one, and each candidate resumes on the next one when its
        socket drops (and at random, ``--resume-rate``, so sessions move between servers)."""
        s = self.settings
        urls = [f"ws://{self.network.hosts[h].ip}:{SERVER_PORT}" for h in SERVERS]
        for index, host in enumerate(SERVERS):
            ordered = urls[index:] + urls[:index]
            argv = [sys.executable, "-m", "server.cli", "load"]
            for url in ordered:
                argv += ["--url", url]
            argv += [
                "--sessions", str(s.sessions_per_host), "--duration", str(s.duration_s),
                "--ramp-up", str(s.ramp_up_s), "--processes", "1", "--think-time", "1",
                "--code-every", "3", "--run-every", "0", "--resume-rate", "4",
                "--grace", str(s.grace_s), "--progress-every", "10", "--seed", str(seed + index),
                "--token-secret", self.secret, "--record", str(self.records),
                "--out", str(self.load_out(host)),
            ]  # fmt: skip
            self.candidates[host] = self.network.spawn(
                host, argv, env=_base_env(), log=self.logs / f"load-{host}.log"
            )

    def wait_candidates(self, timeout: float) -> dict[str, int | None]:
        """Each host's load exit code (None: still running at ``timeout``, then killed)."""
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for host, proc in self.candidates.items():
            try:
                codes[host] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                codes[host] = None
        return codes


def _base_env() -> dict[str, str]:
    """This process's environment without anything that points at the machine's services."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MENTARA_", "DATABASE_URL", "REDIS_URL", "PG"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _postgres_user(run_dir: Path) -> str | None:
    """As root, the system user the embedded binaries run as (Postgres refuses root), with
    the binaries and the run folder made reachable to it; else None."""
    if os.geteuid() != 0:
        return None
    import stat

    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    user = "pgserver"
    ensure_user_exists(user)
    ensure_prefix_permissions(run_dir)
    run_dir.chmod(0o755)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | read)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    return user
