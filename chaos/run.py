"""One chaos run, start to verdict: build the hosts, start the stack and the candidates, let
the nemesis loose for the run's duration, wait for the candidates to end and verify, give
the servers time to write every report, stop them, check, and remove everything.

:func:`run_chaos` always removes what it built (network namespaces, every process in them),
whatever fails, and first removes what a crashed earlier run left (``remove_stale``).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from chaos.checker import Verdict, check, format_table, observe
from chaos.nemesis import FAULTS, Nemesis
from chaos.netns import Network, NetworkError, available, remove_stale
from chaos.redis_nodes import TOPOLOGIES
from chaos.stack import SERVERS, Stack, StackSettings

__all__ = ["ChaosConfig", "ChaosResult", "run_chaos"]

WARM_UP_S = 6.0
"""Before the first fault: the candidates have started their sessions."""
QUIET_TAIL_S = 8.0
"""After the last fault: the system settles before the candidates end their sessions."""
REPORT_WAIT_S = 45.0
"""How long ended sessions may take to get their reports (a dead owner's is written by
another worker after ``MENTARA_REPORT_RETRY_S``)."""


@dataclass(frozen=True)
class ChaosConfig:
    duration_s: float = 90.0
    sessions_per_host: int = 4
    lease_ms: int = 1500
    faults: tuple[str, ...] | None = None
    """Which faults (default: all, then their combinations)."""
    unfenced_append: bool = False
    """TEST ONLY: the servers' append skips the fence (the checker must catch it)."""
    work_dir: Path | None = None
    """Where the run's folder goes (default: a temporary folder, removed unless kept)."""
    keep: bool = False
    """Keep the run's folder (logs, records, Postgres data) afterwards."""
    seed: int = 1
    redis_topology: str = "cluster"
    """``cluster`` (3 masters, 3 replicas: chaos.redis_nodes) or ``single``."""


@dataclass
class ChaosResult:
    faults: Counter[str]
    verdict: Verdict
    sessions: int
    ended: int
    load_exit_codes: dict[str, int | None]
    run_dir: Path
    table: str = field(default="")

    @property
    def ok(self) -> bool:
        """No violation, and every candidate process ran to its end (exit 0, 1 or 3: it
        verified what it could; its stream errors are counted in the verdict)."""
        return self.verdict.total_violations == 0 and all(
            code in (0, 1, 3) for code in self.load_exit_codes.values()
        )


def run_chaos(config: ChaosConfig, say: Callable[[str], None] = print) -> ChaosResult:
    """Run once; raises NetworkError when namespaces cannot be built here."""
    if (why := available()) is not None:
        raise NetworkError(why)
    for name in config.faults or ():
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
    if config.redis_topology not in TOPOLOGIES:
        raise ValueError(f"unknown Redis topology {config.redis_topology!r}")
    stale = remove_stale()
    if stale:
        say(f"mentara chaos: removed {len(stale)} namespaces an earlier run left: {stale}")
    base = config.work_dir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    network = Network.new()
    run_dir = Path(tempfile.mkdtemp(prefix=f"{network.prefix}-", dir=base)).resolve()
    # A unix socket's path is at most 107 bytes: the sockets get a short folder of their own.
    socket_dir = Path(tempfile.mkdtemp(prefix=f"{network.prefix}-"))
    settings = StackSettings(
        lease_ms=config.lease_ms,
        sessions_per_host=config.sessions_per_host,
        duration_s=config.duration_s,
        unfenced_append=config.unfenced_append,
        redis_topology=config.redis_topology,
    )
    stack = Stack(network, run_dir, settings, socket_dir)
    nemesis = Nemesis(stack, say=say)
    try:
        say(f"mentara chaos: building hosts {network.prefix}-* in {run_dir}")
        stack.start()
        started = time.monotonic()
        stack.start_candidates(seed=config.seed)
        time.sleep(WARM_UP_S)
        faults = nemesis.run(
            started + config.duration_s - QUIET_TAIL_S,
            list(config.faults) if config.faults else None,
        )
        left = started + config.duration_s + settings.grace_s + 60 - time.monotonic()
        codes = stack.wait_candidates(timeout=max(10.0, left))
        say(f"mentara chaos: candidates done, exit codes {codes}; waiting for reports")
        sessions, ended = asyncio.run(_wait_for_reports(stack.database_url, REPORT_WAIT_S))
        stack.stop_servers()
        observations = asyncio.run(
            observe(
                stack.database_url,
                stack.records,
                [stack.load_out(h) / "results.json" for h in SERVERS],
                {h: stack.server_log(h) for h in SERVERS},
            )
        )
        verdict = check(observations)
    finally:
        try:
            nemesis.undo()
        finally:
            network.destroy()
            shutil.rmtree(socket_dir, ignore_errors=True)
    result = ChaosResult(faults, verdict, sessions, ended, codes, run_dir)
    result.table = format_table(faults, verdict, sessions) + (
        f"\n\n  redis               {_topology(config.redis_topology)}"
        f"\n  sessions ended      {ended} of {sessions}"
        f"\n  candidate processes exit codes {codes} (0 clean, 1 stream errors, 3 sessions lost)"
    )
    if not config.keep and config.work_dir is None:
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _topology(name: str) -> str:
    return "cluster, 3 masters + 3 replicas" if name == "cluster" else "one Redis"


async def _wait_for_reports(database_url: str, timeout: float) -> tuple[int, int]:
    """Wait until every ended session has its report (or ``timeout``); returns (sessions,
    ended sessions)."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            row = await conn.fetchrow(
                """SELECT count(*) AS sessions,
                          count(*) FILTER (WHERE s.status = 'ended') AS ended,
                          count(*) FILTER (WHERE s.status = 'ended' AND s.end_reason <> 'deleted'
                                           AND r.session_id IS NULL) AS waiting
                     FROM sessions s LEFT JOIN reports r ON r.session_id = s.id"""
            )
            assert row is not None
            if row["waiting"] == 0 or time.monotonic() > deadline:
                return int(row["sessions"]), int(row["ended"])
            await asyncio.sleep(1.0)
    finally:
        await conn.close()
