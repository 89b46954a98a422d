"""Prometheus metrics, correct across worker processes.

``mentara serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker imports this module, so
every worker writes its samples to files there and :func:`render_metrics` aggregates all live
workers (prometheus-client's multiprocess mode). Without the variable (tests that run the app
in-process) the default registry is used. Gauges sum over live processes.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

SOCKETS_OPEN = Gauge(
    "mentara_sockets_open", "WebSockets open now", ["endpoint"], multiprocess_mode="livesum"
)
SOCKETS_ACCEPTED = Counter("mentara_sockets_accepted_total", "WebSockets accepted", ["endpoint"])
SOCKET_CLOSES = Counter(
    "mentara_socket_closes_total", "WebSockets closed by the server, by close code", ["code"]
)
FRAMES_IN = Counter("mentara_frames_received_total", "Client frames received, by type", ["type"])
FRAME_ERRORS = Counter("mentara_frame_errors_total", "error frames sent, by error code", ["code"])
AUTH_FAILURES = Counter("mentara_auth_failures_total", "Rejected authentications", ["endpoint"])
HTTP_REQUESTS = Counter(
    "mentara_http_requests_total", "HTTP requests, by route and status", ["route", "status"]
)
FRAME_HANDLE_SECONDS = Histogram(
    "mentara_frame_handle_seconds",
    "Time to handle one client frame",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)


RESUMES = Counter(
    "mentara_resumes_total",
    "Resumes and watches, by where the replay came from: memory (this worker's recent "
    "events), redis (the history stream), postgres, or snapshot",
    ["source"],
)
GAP_FILLS = Counter("mentara_gap_fills_total", "Seq gaps on the live channel filled from history")
SLOW_CONSUMER_CLOSES = Counter(
    "mentara_slow_consumer_closes_total", "Sockets closed with 4003 for falling behind"
)
LEASE_TAKEOVERS = Counter("mentara_lease_takeovers_total", "Sessions taken over from a gone owner")
REDIS_PIPELINES = Counter(
    "mentara_append_pipelines_total", "Redis round trips carrying session appends"
)
REDIS_APPENDS = Counter("mentara_appends_total", "Session events appended in Redis")
REDIS_REDIRECTS = Counter(
    "mentara_append_redirects_total",
    "Appends a Redis Cluster node redirected (a slot moving or failing over), by reply",
    ["kind"],
)
PG_WRITE_BATCHES = Counter(
    "mentara_write_batches_total", "Write-behind batches committed to Postgres"
)
PG_WRITE_ROWS = Counter("mentara_write_rows_total", "Rows the write-behind committed")
REPORTS_RECOVERED = Counter(
    "mentara_reports_recovered_total",
    "Reports written for ended sessions left without one (their worker died or gave up)",
)
DELIVERY_LAG = Histogram(
    "mentara_publish_to_deliver_seconds",
    "From an event's append (its ts) to its arrival through pub/sub on a worker",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


def observe_delivery_lag(ts_ms: int) -> None:
    DELIVERY_LAG.observe(max(0.0, time.time() - ts_ms / 1000))


def render_metrics() -> tuple[bytes, str]:
    """The Prometheus text exposition of this process, or of all workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
