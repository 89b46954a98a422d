"""The whole benchmark: the workloads of :mod:`bench.workloads` in order, on both paths.

:func:`run_all`: the ladder of S, the efficiency run at a fixed S, the peers at that S, the
profile, the idle run; the ladder, efficiency and profile again on the Claude path
(``claude-*``). A workload that fails to run is recorded in ``BenchResult.failures`` and the
others still run.
"""

from __future__ import annotations

import time
from typing import Any

from bench import profiling
from bench.config import BenchConfig
from bench.results import BenchResult, StreamRun
from bench.services import Services
from bench.workloads import Say, System, idle, stream

__all__ = ["run_all"]


def _ladder(
    system: System,
    into: list[StreamRun],
    result: BenchResult,
    services: Services,
    config: BenchConfig,
    say: Say,
) -> None:
    """Streaming runs of growing S, up to the first that fails or the time budget."""
    started = time.monotonic()
    name = "claude-streaming" if system == "mentara-claude" else "streaming"
    for sessions in config.ladder:
        if time.monotonic() - started > config.ladder_budget_s:
            result.failures.append(f"{name}: time budget spent before S={sessions}")
            return
        try:
            run = stream(system, sessions, services, config, label=name, say=say)
        except Exception as exc:
            result.failures.append(f"{name} S={sessions}: {exc}")
            say(f"bench: {name} S={sessions} could not run: {exc}")
            return
        into.append(run)
        if not run.passes:
            return


def _efficiency(
    system: System,
    ladder: list[StreamRun],
    result: BenchResult,
    services: Services,
    config: BenchConfig,
    say: Say,
) -> StreamRun | None:
    """The run at the fixed S: the ladder's step of that S, else a run of its own."""
    fixed = config.fixed_sessions
    reuse = next((r for r in ladder if r.sessions == fixed), None)
    if reuse is not None:
        return reuse
    name = "claude-efficiency" if system == "mentara-claude" else "efficiency"
    try:
        return stream(system, fixed, services, config, label=name, say=say)
    except Exception as exc:
        result.failures.append(f"{name}: {exc}")
        say(f"bench: {name} could not run: {exc}")
        return None


def _profile(
    system: System, result: BenchResult, services: Services, config: BenchConfig, say: Say
) -> dict[str, Any] | None:
    """A run at the fixed S with py-spy on its busiest worker, summarized."""
    name = "claude-profile" if system == "mentara-claude" else "profile"
    raw = config.out_dir / f"{name}-mentara-worker.txt"
    try:
        run = stream(
            system, config.fixed_sessions, services, config, label=name, profile_to=raw, say=say
        )
        summary = profiling.summarize(raw, duration_s=config.window_s, rate=config.profile_rate)
        return summary | {"run": run.to_dict()}
    except Exception as exc:
        result.failures.append(f"{name}: {exc}")
        return None


def run_all(services: Services, config: BenchConfig, *, say: Say = print) -> BenchResult:
    """The whole benchmark (see the module docstring); a workload that fails to run is
    recorded in ``failures`` and the others still run. The two paths' runs alternate (ladder,
    ladder, efficiency, efficiency, ...) so that each pair meets the same machine."""
    result = BenchResult(settings=config.public())
    wanted = set(config.workloads)
    if "streaming" in wanted:
        _ladder("mentara", result.ladder, result, services, config, say)
    if "claude-streaming" in wanted:
        _ladder("mentara-claude", result.claude_ladder, result, services, config, say)
    if "efficiency" in wanted:
        result.efficiency = _efficiency("mentara", result.ladder, result, services, config, say)
    if "claude-efficiency" in wanted:
        result.claude_efficiency = _efficiency(
            "mentara-claude", result.claude_ladder, result, services, config, say
        )
    if "peers" in wanted:
        for peer in ("python-socketio", "websockets"):
            try:
                result.peers.append(
                    stream(peer, config.fixed_sessions, services, config, label="peer", say=say)
                )
            except Exception as exc:
                result.failures.append(f"peer {peer}: {exc}")
                say(f"bench: peer {peer} could not run: {exc}")
    if config.profile and profiling.available():
        if "profile" in wanted:
            result.profile = _profile("mentara", result, services, config, say)
        if "claude-profile" in wanted:
            result.claude_profile = _profile("mentara-claude", result, services, config, say)
    if "idle" in wanted:
        try:
            result.idle = idle(services, config, say=say)
        except Exception as exc:
            result.failures.append(f"idle: {exc}")
            say(f"bench: idle could not run: {exc}")
    return result
