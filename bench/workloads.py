"""The standard workloads, each against freshly started servers:

- :func:`stream`: one streaming run of a system (Mentara on the offline path, Mentara on the
  Claude path, the python-socketio peer or the bare websockets peer) with S listeners: start the server, spawn the client processes,
  ramp the sessions up, let them settle, then measure over a window the listeners' lag,
  seqs and errors, and the CPU and memory of the server's process tree, Redis and Postgres
  (the client's own CPU is reported apart); optionally py-spy records a worker meanwhile.
  The Claude path (``mentara-claude``) is the ``anthropic`` provider, the evidence judge and
  the summary writer streaming through the SDK from :mod:`bench.fake_claude`, started for
  the run in its own process; its CPU is reported apart too (``llm-api``), never as the
  server's.
- :func:`idle`: N authenticated idle sockets on one Mentara worker: its memory before and
  after, with the sockets held for several heartbeat intervals.

:func:`bench.suite.run_all` puts them together into the whole benchmark.

Timing is on one wall-clock timeline shared with the client processes (see
``bench.clients``). Every server is stopped in ``finally``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import httpx

from bench import profiling
from bench.clients import ClientKind, ClientPool, plan_clients
from bench.listener import ListenerStats
from bench.procstats import (
    Snapshot,
    machine_cpu,
    process_cpu_between,
    rss,
    snapshot,
    usage_between,
)
from bench.results import IdleRun, StreamRun
from bench.servers import (
    ServerProcess,
    start_bare_peer,
    start_fake_claude,
    start_mentara,
    start_socketio_peer,
)
from bench.services import Services, postgres_pids, redis_pids

__all__ = ["Say", "System", "idle", "stream"]

from bench.config import BenchConfig

System = Literal["mentara", "mentara-claude", "python-socketio", "websockets"]
_CLIENT_KIND: dict[System, ClientKind] = {
    "mentara": "mentara",
    "mentara-claude": "mentara",
    "python-socketio": "socketio",
    "websockets": "bare",
}
Say = Callable[[str], None]


def _start(
    system: System,
    services: Services,
    config: BenchConfig,
    name: str,
    claude_url: str | None = None,
) -> ServerProcess:
    log = config.out_dir / "logs" / f"{name}.log"
    match system:
        case "mentara" | "mentara-claude":
            return start_mentara(
                workers=config.workers,
                database_url=services.database_url,
                redis_url=services.redis_url,
                secret=config.secret,
                data_dir=config.out_dir / "data",
                log_path=log,
                tokens_per_s=config.tokens_per_s,
                coalesce_ms=config.coalesce_ms,
                claude_url=claude_url,
            )
        case "python-socketio":
            return start_socketio_peer(
                workers=config.workers,
                redis_url=services.redis_url,
                log_path=log,
                tokens_per_s=config.tokens_per_s,
                coalesce_ms=config.coalesce_ms,
            )
        case "websockets":
            return start_bare_peer(
                log_path=log, tokens_per_s=config.tokens_per_s, coalesce_ms=config.coalesce_ms
            )


def _groups(
    system: System,
    server: ServerProcess,
    services: Services,
    pool: ClientPool | None,
    llm_api: ServerProcess | None = None,
) -> dict[str, list[int]]:
    """The process groups to sample: what the system uses (the bare peer uses no Redis and
    python-socketio no Postgres), the fake Messages API of the Claude path, and the client
    processes."""
    groups: dict[str, list[int]] = {"server": server.pids()}
    if system != "websockets":
        groups["redis"] = redis_pids(services.redis_url)
    if system in ("mentara", "mentara-claude"):
        groups["postgres"] = postgres_pids(services)
    if llm_api is not None:
        groups["llm-api"] = llm_api.pids()
    if pool is not None:
        groups["client"] = pool.pids()
    return groups


def _sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        time.sleep(delay)


def stream(
    system: System,
    sessions: int,
    services: Services,
    config: BenchConfig,
    *,
    label: str = "streaming",
    profile_to: Path | None = None,
    say: Say = print,
) -> StreamRun:
    """One streaming run; see the module docstring. ``profile_to``: py-spy records one
    worker over the window into that file (raw collapsed stacks)."""
    name = f"{label}-{system}-{sessions}"
    llm_api: ServerProcess | None = None
    if system == "mentara-claude":
        llm_api = start_fake_claude(
            log_path=config.out_dir / "logs" / f"{name}-llm-api.log",
            tokens_per_s=config.claude_tokens_per_s,
            words_per_chunk=config.claude_words_per_chunk,
        )
    try:
        server = _start(
            system, services, config, name, llm_api.http_url if llm_api is not None else None
        )
    except BaseException:
        if llm_api is not None:
            llm_api.stop()
        raise
    try:
        before_idle = snapshot(_groups(system, server, services, None, llm_api), time.monotonic())
        t0 = time.time() + config.head_start_s
        ramp = config.ramp_s(sessions)
        window_start = t0 + ramp + config.settle_s
        window_end = window_start + config.window_s
        plans = plan_clients(
            _CLIENT_KIND[system],
            server.ws_url(),
            sessions,
            config.client_processes,
            t0=t0,
            ramp_s=ramp,
            window_start=window_start,
            window_end=window_end,
            stop_at=window_end + 0.5,
            think_s=config.think_s,
            token_secret=config.secret,
            tag=uuid.uuid4().hex[:6],
        )
        with ClientPool(plans) as pool:
            _sleep_until(t0)
            at_t0 = snapshot(_groups(system, server, services, None, llm_api), time.monotonic())
            _sleep_until(window_start)
            before = snapshot(_groups(system, server, services, pool, llm_api), time.monotonic())
            counters_before = _batching_counters(system, server)
            machine_before = machine_cpu(time.monotonic())
            recorder = None
            if profile_to is not None:
                recorder = profiling.record(
                    _busiest(server), profile_to, config.window_s, config.profile_rate
                )
            _sleep_until(window_end)
            machine_after = machine_cpu(time.monotonic())
            after = snapshot(_groups(system, server, services, pool, llm_api), time.monotonic())
            counters_after = _batching_counters(system, server)
            reports = pool.collect("final", timeout=config.window_s + 60)
            if recorder is not None:
                profiling.finish(recorder)
        stats = ListenerStats()
        for report in reports:
            stats.merge(ListenerStats.from_dict(report["stats"]))
        background = _rate(before_idle, at_t0, "redis")
        busy, steal = machine_before.cores_between(machine_after)
        run = StreamRun(
            system,
            sessions,
            config.window_s,
            stats,
            usage_between(before, after),
            label=label,
            redis_background_cpu_per_s=background,
            machine_busy_cores=busy,
            machine_steal_cores=steal,
            server_process_cpu_s=sorted(
                process_cpu_between(before, after, "server").values(), reverse=True
            ),
            batching=_batching(counters_before, counters_after, config.window_s),
            path="claude" if system == "mentara-claude" else "offline",
        )
    finally:
        server.stop()
        if llm_api is not None:
            llm_api.stop()
    say(_progress(run))
    return run


_BATCHING_COUNTERS = (
    "mentara_appends_total",
    "mentara_append_pipelines_total",
    "mentara_write_rows_total",
    "mentara_write_batches_total",
)


def _batching_counters(system: str, server: ServerProcess) -> dict[str, float]:
    """The batching counters of a Mentara server's ``/metrics`` (all workers); {} otherwise."""
    if system not in ("mentara", "mentara-claude"):
        return {}
    try:
        with httpx.Client(trust_env=False, timeout=5.0) as http:
            text = http.get(server.http_url + "/metrics").text
    except httpx.HTTPError:
        return {}
    values = dict.fromkeys(_BATCHING_COUNTERS, 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] += float(value)
    return values


def _batching(
    before: dict[str, float], after: dict[str, float], window_s: float
) -> dict[str, float]:
    if not before or not after or window_s <= 0:
        return {}
    d = {k: after[k] - before[k] for k in _BATCHING_COUNTERS}
    return {
        "appends_per_pipeline": d["mentara_appends_total"]
        / max(1.0, d["mentara_append_pipelines_total"]),
        "rows_per_write_batch": d["mentara_write_rows_total"]
        / max(1.0, d["mentara_write_batches_total"]),
        "pipelines_per_s": d["mentara_append_pipelines_total"] / window_s,
        "write_batches_per_s": d["mentara_write_batches_total"] / window_s,
    }


def _busiest(server: ServerProcess) -> int:
    """The worker that has used the most CPU so far (the one to profile)."""
    workers = server.worker_pids()
    shot = snapshot({"w": workers}, time.monotonic())
    samples = sorted(shot.groups["w"].values(), key=lambda s: s.cpu_s, reverse=True)
    return samples[0].pid if samples else workers[0]


def _rate(before: Snapshot, after: Snapshot, group: str) -> float:
    usage = usage_between(before, after).get(group)
    elapsed = after.at - before.at
    return usage.cpu_s / elapsed if usage is not None and elapsed > 0 else 0.0


def _progress(run: StreamRun) -> str:
    s = run.stats
    return (
        f"bench: {run.label:<10} {run.system:<16} S={run.sessions:<5} "
        f"{run.events_per_s:8.0f} ev/s  cpu {run.server_cpu_s / run.window_s:4.2f} s/s  "
        f"{run.events_per_cpu_s:7.0f} ev/cpu-s  server/client cpu "
        f"{run.server_cpu_per_client_cpu:5.2f}  p99 {run.p99_ms:7.1f} ms  busiest "
        f"{(run.server_process_cpu_s or [0.0])[0] / run.window_s:4.2f}  machine "
        f"{run.machine_busy_cores:4.2f}+{run.machine_steal_cores:4.2f}st  "
        f"active {s.active_at_window}/{run.sessions} gaps {s.gaps} dups {s.dups} "
        f"errors {s.error_count}{' ' + str(dict(s.errors)) if s.errors else ''}  "
        f"{'PASS' if run.passes else 'FAIL'}"
        + (
            f"  appends/pipeline {run.batching['appends_per_pipeline']:.1f}"
            f" rows/pg-batch {run.batching['rows_per_write_batch']:.1f}"
            if run.batching
            else ""
        )
    )


def idle(services: Services, config: BenchConfig, *, say: Say = print) -> IdleRun:
    """N authenticated idle sockets on one Mentara worker; see the module docstring."""
    server = start_mentara(
        workers=1,
        database_url=services.database_url,
        redis_url=services.redis_url,
        secret=config.secret,
        data_dir=config.out_dir / "data",
        log_path=config.out_dir / "logs" / f"idle-mentara-{config.idle_sockets}.log",
        extra_env={"MENTARA_HEARTBEAT_S": f"{config.heartbeat_s:g}"},
    )
    try:
        time.sleep(1.0)
        before = snapshot({"server": server.pids()}, time.monotonic())
        t0 = time.time() + config.head_start_s
        plans = plan_clients(
            "idle",
            server.ws_url(),
            config.idle_sockets,
            config.idle_client_processes,
            t0=t0,
            ramp_s=0.0,
            window_start=t0,
            window_end=t0,
            stop_at=t0 + 600.0,
            token_secret=config.secret,
            tag=uuid.uuid4().hex[:6],
        )
        with ClientPool(plans) as pool:
            pool.collect("ready", timeout=300.0)
            held_from = time.monotonic()
            time.sleep(config.heartbeat_s * config.idle_hold_heartbeats)
            after = snapshot({"server": server.pids()}, time.monotonic())
            held = time.monotonic() - held_from
            pool.release.set()
            finals = pool.collect("final", timeout=60.0)
    finally:
        server.stop()
    errors: dict[str, int] = {}
    for report in finals:  # a final report's errors include its ready report's
        for key, n in report["errors"].items():
            errors[key] = errors.get(key, 0) + int(n)
    run = IdleRun(
        sockets=config.idle_sockets,
        connected=sum(int(r["connected"]) for r in finals),
        open_at_release=sum(int(r["open_at_release"]) for r in finals),
        rss_before=rss(before, "server"),
        rss_after=rss(after, "server"),
        held_s=held,
        heartbeat_s=config.heartbeat_s,
        errors=errors,
    )
    say(
        f"bench: idle       mentara          N={run.connected:<5} "
        f"RSS {run.rss_before / 2**20:.1f} -> {run.rss_after / 2**20:.1f} MiB  "
        f"{run.bytes_per_socket / 1024:.1f} KiB/socket  held {held:.1f}s  "
        f"open {run.open_at_release}/{run.sockets}  errors {errors or 0}"
    )
    return run
