"""What each workload measured, as plain dataclasses that serialize to JSON.

- :class:`StreamRun`: one streaming run (a system, S sessions, one measurement window): the
  listeners' merged stats and the CPU and memory of each process group over the window.
- :class:`IdleRun`: the idle-sockets run: memory before and after, sockets held.
- :class:`BenchResult`: the whole benchmark: the streaming ladder, the efficiency run and
  the profile summary of each path (offline script, Claude through the SDK), the peers, the
  idle run, and the machine.

The verdicts (:meth:`StreamRun.clean`, :meth:`StreamRun.passes`) and ratios are computed
here, so the table, the JSON and the tests read the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.listener import ListenerStats
from bench.procstats import Usage

__all__ = [
    "LAG_P99_LIMIT_MS",
    "SERVER_GROUPS",
    "BenchResult",
    "IdleRun",
    "StreamRun",
]

LAG_P99_LIMIT_MS = 100.0
SERVER_GROUPS = ("server", "redis", "postgres")
"""The process groups charged to the system under test (the client and, on the Claude path,
the fake Messages API ``llm-api`` are not)."""


@dataclass
class StreamRun:
    system: str
    """``mentara`` (offline path), ``mentara-claude`` (Claude path), ``python-socketio`` or
    ``websockets``."""
    sessions: int
    window_s: float
    stats: ListenerStats
    usage: dict[str, Usage]
    label: str = "streaming"
    redis_background_cpu_per_s: float = 0.0
    """Redis's CPU rate before the clients started (other users of a shared Redis)."""
    machine_busy_cores: float = 0.0
    """The whole machine's CPU use in the window, in cores (every process, ours or not)."""
    machine_steal_cores: float = 0.0
    server_process_cpu_s: list[float] = field(default_factory=list)
    """CPU seconds of each server process in the window, largest first (worker balance)."""
    note: str = ""
    batching: dict[str, float] = field(default_factory=dict)
    """Mentara only: appends per Redis round trip and rows per Postgres batch in the window
    (from the servers' own ``/metrics``)."""
    path: str = "offline"
    """Where the interviewer's words come from: ``offline`` (the script) or ``claude``."""

    @property
    def events_per_s(self) -> float:
        return self.stats.window_events / self.window_s if self.window_s > 0 else 0.0

    def cpu_s(self, group: str) -> float:
        usage = self.usage.get(group)
        return usage.cpu_s if usage is not None else 0.0

    @property
    def server_cpu_s(self) -> float:
        """CPU seconds of every server-side process (app, Redis, Postgres) in the window."""
        return sum(self.cpu_s(g) for g in SERVER_GROUPS)

    @property
    def events_per_cpu_s(self) -> float:
        cpu = self.server_cpu_s
        return self.stats.window_events / cpu if cpu > 0 else 0.0

    @property
    def server_cpu_per_client_cpu(self) -> float:
        """The server's CPU over the load generator's in the same window (0 without it).
        The client does the same work per event whatever server it drives, so on a shared
        machine whose speed drifts between runs this ratio compares two commits' cost per
        event where events per CPU-second cannot (lower is cheaper; only between runs of one
        path and ``bench/`` code)."""
        client = self.cpu_s("client")
        return self.server_cpu_s / client if client > 0 else 0.0

    @property
    def p99_ms(self) -> float:
        return self.stats.lag.percentile(99)

    @property
    def clean(self) -> bool:
        """Every session streaming through the window; no gap, duplicate or error."""
        s = self.stats
        return (
            s.gaps == 0
            and s.dups == 0
            and s.error_count == 0
            and s.active_at_window == self.sessions
            and s.window_events > 0
        )

    @property
    def passes(self) -> bool:
        return self.clean and self.p99_ms < LAG_P99_LIMIT_MS

    def to_dict(self) -> dict[str, Any]:
        lag = self.stats.lag.summary()
        return {
            "label": self.label,
            "system": self.system,
            "sessions": self.sessions,
            "window_s": self.window_s,
            "events_in_window": self.stats.window_events,
            "events_per_s": self.events_per_s,
            "events_per_session_per_s": self.events_per_s / self.sessions if self.sessions else 0,
            "server_cpu_s": self.server_cpu_s,
            "server_cpu_per_s": self.server_cpu_s / self.window_s if self.window_s else 0,
            "events_per_cpu_s": self.events_per_cpu_s,
            "server_cpu_per_client_cpu": self.server_cpu_per_client_cpu,
            "cpu_s": {g: u.cpu_s for g, u in self.usage.items()},
            "rss_bytes": {g: u.rss for g, u in self.usage.items()},
            "processes": {g: u.processes for g, u in self.usage.items()},
            "lag_ms": lag.as_dict(),
            "gaps": self.stats.gaps,
            "dups": self.stats.dups,
            "errors": dict(self.stats.errors),
            "sessions_started": self.stats.started,
            "active_at_window": self.stats.active_at_window,
            "replies": self.stats.replies,
            "clean": self.clean,
            "passes": self.passes,
            "redis_background_cpu_per_s": self.redis_background_cpu_per_s,
            "machine_busy_cores": round(self.machine_busy_cores, 3),
            "machine_steal_cores": round(self.machine_steal_cores, 3),
            "llm_api_cpu_per_s": self.cpu_s("llm-api") / self.window_s if self.window_s else 0,
            "other_processes_cores": round(
                self.machine_busy_cores
                - (self.server_cpu_s + self.cpu_s("client") + self.cpu_s("llm-api"))
                / (self.window_s or 1.0),
                3,
            ),
            "server_process_cpu_per_s": [
                round(c / self.window_s, 3) for c in self.server_process_cpu_s
            ]
            if self.window_s
            else [],
            "note": self.note,
            "batching": self.batching,
            "path": self.path,
        }


@dataclass
class IdleRun:
    sockets: int
    """Sockets asked for."""
    connected: int
    open_at_release: int
    rss_before: int
    rss_after: int
    held_s: float
    heartbeat_s: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def bytes_per_socket(self) -> float:
        return (self.rss_after - self.rss_before) / self.connected if self.connected else 0.0

    @property
    def clean(self) -> bool:
        return self.connected == self.sockets == self.open_at_release and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "sockets": self.sockets,
            "connected": self.connected,
            "open_at_release": self.open_at_release,
            "rss_before": self.rss_before,
            "rss_after": self.rss_after,
            "bytes_per_socket": self.bytes_per_socket,
            "kib_per_socket": self.bytes_per_socket / 1024,
            "held_s": self.held_s,
            "heartbeat_s": self.heartbeat_s,
            "errors": self.errors,
            "clean": self.clean,
        }


@dataclass
class BenchResult:
    ladder: list[StreamRun] = field(default_factory=list)
    efficiency: StreamRun | None = None
    peers: list[StreamRun] = field(default_factory=list)
    idle: IdleRun | None = None
    profile: dict[str, Any] | None = None
    claude_ladder: list[StreamRun] = field(default_factory=list)
    claude_efficiency: StreamRun | None = None
    claude_profile: dict[str, Any] | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    """Workloads that could not run, with why."""

    @property
    def largest_passing(self) -> int:
        """The largest S of the ladder that passed, with every smaller step passing too."""
        return _largest_passing(self.ladder)

    @property
    def largest_passing_claude(self) -> int:
        """:attr:`largest_passing` of the Claude path's ladder."""
        return _largest_passing(self.claude_ladder)

    @property
    def claude_over_offline(self) -> float | None:
        """The Claude path's events per server CPU-second over the offline path's."""
        a, b = self.claude_efficiency, self.efficiency
        if a is None or b is None or b.events_per_cpu_s <= 0:
            return None
        return a.events_per_cpu_s / b.events_per_cpu_s

    def peer(self, system: str) -> StreamRun | None:
        return next((p for p in self.peers if p.system == system), None)

    def ratio(self, system: str) -> float | None:
        """Mentara's events per CPU-second over the peer's, at the same S."""
        peer = self.peer(system)
        if self.efficiency is None or peer is None or peer.events_per_cpu_s <= 0:
            return None
        return self.efficiency.events_per_cpu_s / peer.events_per_cpu_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "settings": self.settings,
            "ladder": [r.to_dict() for r in self.ladder],
            "largest_passing_sessions": self.largest_passing,
            "efficiency": self.efficiency.to_dict() if self.efficiency else None,
            "peers": [p.to_dict() for p in self.peers],
            "claude_ladder": [r.to_dict() for r in self.claude_ladder],
            "largest_passing_sessions_claude": self.largest_passing_claude,
            "claude_efficiency": self.claude_efficiency.to_dict()
            if self.claude_efficiency
            else None,
            "claude_profile": self.claude_profile,
            "ratios": {
                "mentara_over_python_socketio": self.ratio("python-socketio"),
                "mentara_over_websockets": self.ratio("websockets"),
                "claude_over_offline": self.claude_over_offline,
            },
            "idle": self.idle.to_dict() if self.idle else None,
            "profile": self.profile,
            "failures": self.failures,
        }


def _largest_passing(ladder: list[StreamRun]) -> int:
    best = 0
    for run in sorted(ladder, key=lambda r: r.sessions):
        if not run.passes:
            break
        best = run.sessions
    return best
