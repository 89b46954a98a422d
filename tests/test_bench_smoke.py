"""A tiny run of the benchmark end to end: real servers as subprocesses (Mentara on two
workers, then the peers), real listener processes, CPU read from the OS, and the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import BenchConfig
from bench.results import BenchResult
from bench.services import Services as BenchServices
from bench.table import format_table
from bench.workloads import stream
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


@pytest.mark.timeout(120)
def test_the_claude_path_streams_through_the_sdk_from_an_api_of_its_own(
    services: Services, tmp_path: Path
) -> None:
    """The ``claude`` workload: the servers' interviewer is the anthropic provider, streaming
    from the fake Messages API in a process of its own, whose CPU is reported apart."""
    lines: list[str] = []
    config = _config(tmp_path, 3.0)
    run = stream("mentara-claude", 6, _services(services), config, label="claude-streaming",
                 say=lines.append)  # fmt: skip
    stats = run.stats
    assert stats.active_at_window == 6 and stats.gaps == 0 and stats.dups == 0, stats
    assert not stats.errors, stats
    assert stats.window_events > 30 and run.path == "claude"
    assert run.cpu_s("llm-api") > 0  # measured, and never counted as the server's
    assert run.server_cpu_s == sum(run.cpu_s(g) for g in ("server", "redis", "postgres"))
    server_log = (tmp_path / "logs" / "claude-streaming-mentara-claude-6.log").read_text()
    assert "interviewer: Claude" in server_log
    api_log = (tmp_path / "logs" / "claude-streaming-mentara-claude-6-llm-api.log").read_text()
    assert "fake messages api listening on http://127.0.0.1:" in api_log
    assert lines and lines[0].startswith("bench: claude-streaming mentara-claude")

    result = BenchResult(efficiency=run, claude_efficiency=run, claude_ladder=[run])
    table = format_table(result)
    assert "claude path: 1.00x the offline path's events per server CPU-second" in table
    row = next(r for r in table.splitlines() if r.startswith("claude-streaming"))
    assert f"{run.cpu_s('llm-api') / run.window_s:.2f}" in row.split()
