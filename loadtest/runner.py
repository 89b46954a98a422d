"""Runs a load test: candidates spread over worker processes, progress while it runs, and
the merged result at the end.

- :func:`run_processes` spawns ``processes`` workers (``multiprocessing`` with ``spawn``),
  reads their reports from one queue, prints a progress line every ``progress_every_s``, and
  stops by itself: a worker that has not reported its final summary by
  ``duration + grace + STOP_MARGIN_S`` is terminated and counted as lost.
- :func:`run_in_process` plays every candidate on the caller's event loop (tests, and
  ``--processes 1``), with the same reports and the same result.

The result's verdict: :attr:`RunResult.exit_code` is 1 when any integrity error was seen,
3 when the run could not vouch for the server (no session started, or a worker crashed or
was lost), else 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue as queue_module
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loadtest.config import LoadConfig
from loadtest.metrics import Histogram, MetricSet
from loadtest.worker import WorkerPlan, plan_workers, run_worker, worker_process

__all__ = [
    "EXIT_INTEGRITY",
    "EXIT_OK",
    "EXIT_UNVERIFIED",
    "Progress",
    "RunResult",
    "run_in_process",
    "run_processes",
]

EXIT_OK = 0
EXIT_INTEGRITY = 1
EXIT_UNVERIFIED = 3
STOP_MARGIN_S = 20.0
"""Beyond duration + grace: time for workers to start, close sockets and report."""
SPAWN_HEAD_START_S = 1.5
"""The run's t0 is this far after the spawn, so the workers have imported by then."""
_LOST_AFTER_EXIT_S = 2.0

Print = Callable[[str], None]


@dataclass
class WorkerStatus:
    worker_id: int
    candidates: int
    state: str = "running"
    """``running``, ``done``, ``crashed`` or ``lost``."""
    error: str | None = None


@dataclass
class RunResult:
    """Everything a run measured, merged over its workers."""

    config: LoadConfig
    started_at: float
    """The run's t0, Unix seconds."""
    elapsed_s: float
    metrics: MetricSet
    issues: list[dict[str, Any]]
    """Integrity errors with details (the first ones of each worker; all are counted)."""
    observations: list[dict[str, Any]]
    """Anomalies that are not integrity errors (``anomaly.*`` counters), with details."""
    workers: list[WorkerStatus]

    @property
    def integrity_errors(self) -> int:
        return self.metrics.total("integrity.")

    @property
    def unverified(self) -> bool:
        return self.metrics.counters["sessions.started"] == 0 or any(
            w.state != "done" for w in self.workers
        )

    @property
    def exit_code(self) -> int:
        if self.integrity_errors:
            return EXIT_INTEGRITY
        if self.unverified:
            return EXIT_UNVERIFIED
        return EXIT_OK


@dataclass
class Progress:
    """The latest progress report of each worker, and the one-line view of all of them."""

    t0_wall: float
    latest: dict[int, dict[str, Any]] = field(default_factory=dict)
    _last_events: int = 0
    _last_time: float = 0.0

    def update(self, report: dict[str, Any]) -> None:
        self.latest[int(report["worker"])] = report

    def line(self, now: float) -> str:
        """``t=12s active=180 started=200 ev/s=5230 p99-lag=14.2ms integrity=0 errors=0``."""
        reports = list(self.latest.values())
        events = sum(int(r["events"]) for r in reports)
        interval = now - self._last_time if self._last_time else now - self.t0_wall
        rate = (events - self._last_events) / interval if interval > 0 else 0.0
        self._last_events, self._last_time = events, now
        lag = Histogram()
        for r in reports:
            if r.get("lag_ms"):
                lag.merge(Histogram.from_dict(r["lag_ms"]))
        return (
            f"load: t={max(0.0, now - self.t0_wall):5.0f}s "
            f"active={sum(int(r['active']) for r in reports)} "
            f"started={sum(int(r['started']) for r in reports)} "
            f"ev/s={rate:.0f} p99-lag={lag.percentile(99):.1f}ms "
            f"integrity={sum(int(r['integrity']) for r in reports)} "
            f"errors={sum(int(r['errors']) for r in reports)}"
        )


class _Collector:
    """Gathers the reports of every worker, wherever they run."""

    def __init__(self, plans: list[WorkerPlan], t0_wall: float) -> None:
        self.progress = Progress(t0_wall)
        self.status = {p.worker_id: WorkerStatus(p.worker_id, len(p.indices)) for p in plans}
        self.parts: list[MetricSet] = []
        self.issues: list[dict[str, Any]] = []
        self.observations: list[dict[str, Any]] = []

    def take(self, report: dict[str, Any]) -> None:
        worker = int(report["worker"])
        match report["type"]:
            case "progress":
                self.progress.update(report)
            case "final":
                self.parts.append(MetricSet.from_dict(report["metrics"]))
                self.issues += report["issues"]
                self.observations += report.get("observations", [])
                self.status[worker].state = "done"
            case "crash":
                self.status[worker].state = "crashed"
                self.status[worker].error = str(report["error"])[-4000:]

    @property
    def finished(self) -> bool:
        return all(s.state != "running" for s in self.status.values())

    def result(self, config: LoadConfig, t0_wall: float) -> RunResult:
        metrics = MetricSet.merged(self.parts)
        for status in self.status.values():
            if status.state != "done":
                metrics.count(f"harness.worker_{status.state}")
        return RunResult(
            config=config,
            started_at=t0_wall,
            elapsed_s=max(0.0, time.time() - t0_wall),
            metrics=metrics,
            issues=self.issues,
            observations=self.observations,
            workers=list(self.status.values()),
        )


async def run_in_process(config: LoadConfig, *, out: Print = print) -> RunResult:
    """Play the whole run on this event loop; see the module docstring."""
    t0_wall = time.time()
    plan = WorkerPlan(0, config, tuple(range(config.sessions)), t0_wall)
    collector = _Collector([plan], t0_wall)

    async def report_progress() -> None:
        while True:
            await asyncio.sleep(config.progress_every_s)
            out(collector.progress.line(time.time()))

    printer = asyncio.create_task(report_progress())
    try:
        await run_worker(plan, collector.take)
    except Exception as exc:
        collector.take({"type": "crash", "worker": 0, "error": repr(exc)})
    finally:
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer
    return collector.result(config, t0_wall)


def run_processes(config: LoadConfig, *, out: Print = print) -> RunResult:
    """Play the run over ``config.processes`` spawned workers; see the module docstring."""
    context = multiprocessing.get_context("spawn")
    reports: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    t0_wall = time.time() + SPAWN_HEAD_START_S
    plans = plan_workers(config, t0_wall)
    collector = _Collector(plans, t0_wall)
    processes = {
        p.worker_id: context.Process(
            target=worker_process,
            args=(p, reports),
            name=f"mentara-load-{p.worker_id}",
            daemon=True,
        )
        for p in plans
    }
    for process in processes.values():
        process.start()
    hard_stop = t0_wall + config.deadline_s + STOP_MARGIN_S
    next_line = t0_wall + config.progress_every_s
    exited_at: dict[int, float] = {}
    try:
        while not collector.finished:
            now = time.time()
            if now >= hard_stop:
                break
            if now >= next_line:
                out(collector.progress.line(now))
                next_line = now + config.progress_every_s
            try:
                collector.take(reports.get(timeout=min(0.25, max(0.01, next_line - now))))
                continue
            except queue_module.Empty:
                pass
            for worker_id, process in processes.items():
                status = collector.status[worker_id]
                if status.state == "running" and process.exitcode is not None:
                    first_seen = exited_at.setdefault(worker_id, now)
                    if now - first_seen > _LOST_AFTER_EXIT_S:
                        status.state = "lost"
                        status.error = f"exited with code {process.exitcode} without a summary"
    finally:
        _drain(reports, collector)
        for worker_id, process in processes.items():
            _stop(process)
            status = collector.status[worker_id]
            if status.state == "running":
                status.state = "lost"
                status.error = "no summary by the hard stop; terminated"
        reports.close()
        reports.join_thread()
    return collector.result(config, t0_wall)


def _drain(reports: multiprocessing.Queue[dict[str, Any]], collector: _Collector) -> None:
    deadline = time.time() + 1.0
    while time.time() < deadline:
        try:
            collector.take(reports.get(timeout=0.05))
        except queue_module.Empty:
            if collector.finished:
                return


def _stop(process: multiprocessing.process.BaseProcess) -> None:
    process.join(timeout=5.0)
    if process.exitcode is None:
        process.terminate()
        process.join(timeout=5.0)
    if process.exitcode is None:
        process.kill()
        process.join(timeout=5.0)


def events_per_second(result: RunResult) -> float:
    """Live events received per second over the run's active span."""
    seconds = [s for s, n in result.metrics.events_per_s.items() if n]
    if not seconds:
        return 0.0
    span = max(seconds) - min(seconds) + 1
    return sum(result.metrics.events_per_s.values()) / span
