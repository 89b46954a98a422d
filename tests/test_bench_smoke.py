"""A tiny run of the benchmark end to end: real servers as subprocesses (Mentara on two
workers, then the peers), real listener processes, CPU read from the OS, and the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.results import BenchResult
from bench.services import Services as BenchServices
from bench.table import format_table
from bench.workloads import BenchConfig, stream
from tests.support import Services


def _config(tmp_path: Path, window_s: float, workers: int = 2) -> BenchConfig:
    return BenchConfig(
        workers=workers,
        out_dir=tmp_path,
        window_s=window_s,
        settle_s=1.0,
        ramp_rate=20.0,
        head_start_s=1.5,
        client_processes=1,
        profile=False,
    )


def _services(services: Services) -> BenchServices:
    # The suite's database stands in for the run's own; it is not dropped here.
    return BenchServices(
        services.database_url, services.database_url, services.redis_url, services.mode
    )


@pytest.mark.timeout(90)
def test_a_tiny_streaming_run_fills_the_table(services: Services, tmp_path: Path) -> None:
    lines: list[str] = []
    run = stream("mentara", 10, _services(services), _config(tmp_path, 3.0), say=lines.append)
    stats = run.stats
    assert stats.active_at_window == 10 and stats.started == 10, stats
    assert stats.gaps == 0 and stats.dups == 0 and not stats.errors, stats
    assert stats.window_events > 100 and stats.lag.count == stats.window_events
    assert run.cpu_s("server") > 0 and run.cpu_s("redis") > 0 and run.cpu_s("postgres") >= 0
    assert run.usage["server"].processes >= 3  # the supervisor and two workers
    assert run.usage["postgres"].processes >= 2  # the postmaster, WAL writer, backends
    assert run.usage["client"].cpu_s > 0  # measured, and kept apart
    assert run.events_per_cpu_s > 0
    assert lines and lines[0].startswith("bench: streaming  mentara")

    table = format_table(BenchResult(ladder=[run], efficiency=run))
    rows = table.splitlines()[2:4]
    assert rows[0].split()[:3] == ["streaming", "mentara", "10"]
    assert rows[1].split()[:3] == ["efficiency", "mentara", "10"]
    assert "largest S with p99 < 100 ms" in table


@pytest.mark.timeout(90)
def test_both_peers_stream_to_the_same_listener(services: Services, tmp_path: Path) -> None:
    for system in ("websockets", "python-socketio"):
        run = stream(
            system,
            4,
            _services(services),
            _config(tmp_path, 1.5, 1),
            label="peer",
            say=lambda _: None,
        )
        stats = run.stats
        assert stats.active_at_window == 4 and not stats.errors, (system, stats)
        assert stats.gaps == 0 and stats.dups == 0 and stats.window_events > 10, (system, stats)
        assert run.cpu_s("server") > 0
        assert ("redis" in run.usage) == (system == "python-socketio")
        assert "postgres" not in run.usage
