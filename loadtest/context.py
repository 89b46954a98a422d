"""What the candidates of one worker process share: settings, clocks, metrics, HTTP client.

Single-threaded: everything here is used from one event loop, so plain counters suffice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtest.config import LoadConfig
from loadtest.integrity import IntegrityIssue
from loadtest.metrics import MetricSet
from loadtest.record import Recorder

__all__ = ["MAX_ISSUE_DETAILS", "WorkerContext"]

MAX_ISSUE_DETAILS = 200
"""Integrity issues kept with their details per worker; all of them are counted."""
HTTP_CONCURRENCY = 16
"""Transcript fetches at once per worker (the end of a run fetches one per session)."""


@dataclass
class WorkerContext:
    """Shared state of one worker's candidates.

    ``t0_wall`` is the run's common start (Unix seconds, the same in every process);
    ``t0_loop`` the same instant on this event loop's clock, which schedules everything.
    """

    config: LoadConfig
    worker_id: int
    t0_wall: float
    t0_loop: float
    http: httpx.AsyncClient
    metrics: MetricSet = field(default_factory=MetricSet)
    issues: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    """Anomalies that are not integrity errors, with details (the first ones only)."""
    active: int = 0
    recorder: Recorder = field(default_factory=lambda: Recorder(None, "", 0))
    """Writes what the candidates saw when the run records (``--record``)."""
    http_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(HTTP_CONCURRENCY)
    )

    def second(self) -> int:
        """Whole seconds since the run's start: the key of the per-second series."""
        return max(0, int(time.time() - self.t0_wall))

    def record_issues(self, issues: Iterable[IntegrityIssue], user_id: str) -> None:
        """Count each issue under ``integrity.<kind>``; keep the first ones' details."""
        for issue in issues:
            self.metrics.count(f"integrity.{issue.kind}")
            if len(self.issues) < MAX_ISSUE_DETAILS:
                self.issues.append(
                    {
                        **issue.as_dict(),
                        "user_id": user_id,
                        "t_s": round(time.time() - self.t0_wall, 3),
                    }
                )

    def observe_anomaly(self, kind: str, detail: str, session_id: str | None, user_id: str) -> None:
        """Count ``anomaly.<kind>`` and keep the first ones' details."""
        self.metrics.count(f"anomaly.{kind}")
        if len(self.observations) < MAX_ISSUE_DETAILS:
            self.observations.append(
                {
                    "kind": kind,
                    "detail": detail,
                    "session_id": session_id,
                    "user_id": user_id,
                    "t_s": round(time.time() - self.t0_wall, 3),
                }
            )

    @property
    def integrity_errors(self) -> int:
        return self.metrics.total("integrity.")
