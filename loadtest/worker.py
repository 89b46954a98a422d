"""One client worker: an event loop playing its share of the candidates.

Runs inside a spawned process (:func:`worker_process`) or, for tests and ``--processes 1``,
in the caller's event loop (:func:`run_worker`). Either way it reports through ``emit`` with
small dicts, never with per-sample lists:

- ``{"type": "progress", "worker", "active", "started", "events", "integrity", "errors",
  "lag_ms": <histogram dict>}`` about once a second (cumulative figures);
- ``{"type": "final", "worker", "metrics": <MetricSet dict>, "issues": [...],
  "observations": [...]}`` once, at the end (also after the hard stop);
- ``{"type": "crash", "worker", "error"}`` from a process whose loop died.

Contract: :func:`run_worker` returns by ``t0 + duration + grace`` (plus the time to close
sockets): at that hard stop the candidates still running are cancelled and counted as
``sessions.unfinished``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Any

import httpx

from loadtest.candidate import VirtualCandidate
from loadtest.candidate_state import Phase
from loadtest.config import LoadConfig
from loadtest.context import WorkerContext
from loadtest.record import Recorder

__all__ = ["Emit", "WorkerPlan", "plan_workers", "run_worker", "worker_process"]

Emit = Callable[[dict[str, Any]], None]
TICK_S = 1.0


@dataclass(frozen=True)
class WorkerPlan:
    """What one worker plays: candidate numbers ``indices`` of the run starting at
    ``t0_wall`` (Unix seconds, common to every worker)."""

    worker_id: int
    config: LoadConfig
    indices: tuple[int, ...]
    t0_wall: float


def plan_workers(config: LoadConfig, t0_wall: float) -> list[WorkerPlan]:
    """Deal the candidates round-robin over ``min(processes, sessions)`` workers."""
    count = max(1, min(config.processes, config.sessions))
    return [
        WorkerPlan(w, config, tuple(range(w, config.sessions, count)), t0_wall)
        for w in range(count)
    ]


async def run_worker(plan: WorkerPlan, emit: Emit) -> None:
    """Play ``plan``'s candidates to the end; emit progress, then the final summary."""
    config = plan.config
    loop = asyncio.get_running_loop()
    t0_loop = loop.time() + (plan.t0_wall - time.time())
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=16)
    async with httpx.AsyncClient(trust_env=False, limits=limits) as http:
        ctx = WorkerContext(config, plan.worker_id, plan.t0_wall, t0_loop, http)
        ctx.recorder = Recorder(config.record_dir, config.run_id, plan.worker_id)
        candidates = [VirtualCandidate(i, ctx) for i in plan.indices]
        end_at = t0_loop + config.duration_s
        ticker = asyncio.create_task(_tick(ctx, emit), name="load-progress")
        tasks = [
            asyncio.create_task(
                c.run(t0_loop + config.ramp_up_s * c.index / config.sessions, end_at),
                name=f"load-candidate-{c.index}",
            )
            for c in candidates
        ]
        try:
            done, running = await asyncio.wait(
                tasks, timeout=t0_loop + config.deadline_s - loop.time()
            )
            if running:
                ctx.metrics.count("harness.hard_stop")
                for task in running:
                    task.cancel()
                await asyncio.wait(running, timeout=10.0)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    ctx.metrics.count("harness.fault.task")
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            ctx.recorder.close()
        for candidate in candidates:
            if candidate.phase not in (Phase.DONE, Phase.FAILED):
                ctx.metrics.count("sessions.unfinished")
        _sample(ctx)
        emit(_progress(ctx))
        emit(
            {
                "type": "final",
                "worker": plan.worker_id,
                "metrics": ctx.metrics.to_dict(),
                "issues": ctx.issues,
                "observations": ctx.observations,
            }
        )


async def _tick(ctx: WorkerContext, emit: Emit) -> None:
    while True:
        await asyncio.sleep(TICK_S)
        _sample(ctx)
        emit(_progress(ctx))


def _sample(ctx: WorkerContext) -> None:
    ctx.metrics.active_per_s[ctx.second()] = ctx.active


def _progress(ctx: WorkerContext) -> dict[str, Any]:
    metrics = ctx.metrics
    lag = metrics.histograms.get("lag_ms")
    return {
        "type": "progress",
        "worker": ctx.worker_id,
        "active": ctx.active,
        "started": metrics.counters["sessions.started"],
        "events": metrics.counters["events.live"] + metrics.counters["events.replayed"],
        "integrity": ctx.integrity_errors,
        "errors": metrics.total("error."),
        "lag_ms": lag.to_dict() if lag is not None else None,
    }


def worker_process(plan: WorkerPlan, queue: Queue[dict[str, Any]]) -> None:
    """Entry point of a spawned worker process: run the plan on a fresh loop (uvloop where
    installed), reporting on ``queue``."""
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
            asyncio.run(run_worker(plan, queue.put))
        else:
            uvloop.run(run_worker(plan, queue.put))
    except BaseException:
        queue.put({"type": "crash", "worker": plan.worker_id, "error": traceback.format_exc()})
        raise
