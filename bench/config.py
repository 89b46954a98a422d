"""What one benchmark run is asked to do: the workloads and their settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CLAUDE_WORKLOADS", "SPAWN_HEAD_START_S", "WORKLOADS", "BenchConfig"]

WORKLOADS = (
    "streaming",
    "efficiency",
    "peers",
    "profile",
    "idle",
    "claude-streaming",
    "claude-efficiency",
    "claude-profile",
)
CLAUDE_WORKLOADS = ("claude-streaming", "claude-efficiency", "claude-profile")
"""What ``--workloads claude`` stands for: the Claude path's ladder, efficiency and profile."""
SPAWN_HEAD_START_S = 2.5
"""The clients' timeline starts this long after they are spawned (imports take ~1 s)."""


@dataclass(frozen=True)
class BenchConfig:
    out_dir: Path
    ladder: tuple[int, ...] = (50, 75, 100, 150, 200, 250, 500, 1000, 1500, 2000)
    fixed_sessions: int = 100
    idle_sockets: int = 10_000
    workers: int = 2
    client_processes: int = 2
    idle_client_processes: int = 4
    window_s: float = 20.0
    settle_s: float = 4.0
    ramp_rate: float = 100.0
    """Sessions started per second during the ramp."""
    think_s: float = 0.2
    tokens_per_s: float = 40.0
    claude_tokens_per_s: float = 70.0
    """The fake Messages API's pace on the Claude path (a word counts as a token)."""
    claude_words_per_chunk: int = 3
    coalesce_ms: float = 30.0
    heartbeat_s: float = 2.0
    idle_hold_heartbeats: float = 3.0
    ladder_budget_s: float = 900.0
    """No ladder step starts after this many seconds of ladder."""
    profile: bool = True
    profile_rate: int = 100
    workloads: tuple[str, ...] = WORKLOADS
    head_start_s: float = SPAWN_HEAD_START_S
    """Seconds from spawning the client processes to the start of their timeline."""
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48), repr=False)

    def ramp_s(self, sessions: int) -> float:
        return min(20.0, max(1.0, sessions / self.ramp_rate))

    def public(self) -> dict[str, Any]:
        return {
            "ladder": list(self.ladder),
            "fixed_sessions": self.fixed_sessions,
            "idle_sockets": self.idle_sockets,
            "workers": self.workers,
            "client_processes": self.client_processes,
            "idle_client_processes": self.idle_client_processes,
            "window_s": self.window_s,
            "settle_s": self.settle_s,
            "ramp_rate": self.ramp_rate,
            "think_s": self.think_s,
            "tokens_per_s": self.tokens_per_s,
            "claude_tokens_per_s": self.claude_tokens_per_s,
            "claude_words_per_chunk": self.claude_words_per_chunk,
            "coalesce_ms": self.coalesce_ms,
            "heartbeat_s": self.heartbeat_s,
            "idle_hold_heartbeats": self.idle_hold_heartbeats,
            "ladder_budget_s": self.ladder_budget_s,
            "profile": self.profile,
            "head_start_s": self.head_start_s,
            "workloads": list(self.workloads),
        }
