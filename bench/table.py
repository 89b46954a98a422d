"""The benchmark's one table: a row per run, then one line per goal with its verdict.

:func:`format_table` is what ``mentara bench`` prints and writes to ``table.txt``;
:func:`render` lays out any rows of cells with right-aligned numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.results import LAG_P99_LIMIT_MS, BenchResult, StreamRun

__all__ = [
    "COLUMNS",
    "GOAL_EVENTS_PER_CPU_S",
    "GOAL_IDLE_KIB",
    "GOAL_OVER_BARE",
    "GOAL_OVER_SOCKETIO",
    "GOAL_SESSIONS",
    "format_table",
    "render",
]

GOAL_SESSIONS = 1000
GOAL_EVENTS_PER_CPU_S = 12_500
GOAL_IDLE_KIB = 30.0
GOAL_OVER_SOCKETIO = 3.0
GOAL_OVER_BARE = 0.5
"""Within 2x of the bare floor: at least half its events per CPU-second."""
GOAL_CLAUDE_OVER_OFFLINE = 0.8
"""The Claude path costs about what the offline path costs: >= 0.8x its events per CPU-s."""

COLUMNS = (
    "workload",
    "system",
    "S",
    "events/s",
    "server CPU s/s",
    "app/redis/pg",
    "machine",
    "events/CPU-s",
    "lag p50",
    "p99",
    "max",
    "gaps",
    "dups",
    "errors",
    "server RSS",
    "LLM API",
    "verdict",
)
_LEFT = {"workload", "system", "app/redis/pg", "verdict"}


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MiB"


def _verdict(run: StreamRun) -> str:
    if not run.clean:
        s = run.stats
        parts = []
        if s.active_at_window < run.sessions:
            parts.append(f"{s.active_at_window}/{run.sessions} streaming")
        if s.gaps or s.dups:
            parts.append("gaps/dups")
        if s.error_count:
            top = ", ".join(f"{k} {v}" for k, v in s.errors.most_common(2))
            parts.append(f"errors: {top}")
        if not s.window_events:
            parts.append("no events")
        return "FAIL " + "; ".join(parts)
    if run.p99_ms >= LAG_P99_LIMIT_MS:
        return f"FAIL p99 >= {LAG_P99_LIMIT_MS:.0f} ms"
    return "pass"


def _stream_row(run: StreamRun, verdict: str | None = None) -> list[str]:
    lag = run.stats.lag.summary()
    w = run.window_s or 1.0
    split = "/".join(
        f"{run.cpu_s(g) / w:.2f}" if g in run.usage else "-"
        for g in ("server", "redis", "postgres")
    )
    return [
        run.label,
        run.system,
        str(run.sessions),
        _n(run.events_per_s),
        f"{run.server_cpu_s / w:.2f}",
        split,
        f"{run.machine_busy_cores:.2f}",
        _n(run.events_per_cpu_s),
        _ms(lag.p50),
        _ms(lag.p99),
        _ms(lag.max),
        str(run.stats.gaps),
        str(run.stats.dups),
        str(run.stats.error_count),
        _mib(run.usage["server"].rss) if "server" in run.usage else "-",
        f"{run.cpu_s('llm-api') / w:.2f}" if "llm-api" in run.usage else "-",
        verdict if verdict is not None else _verdict(run),
    ]


def render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            c.ljust(widths[i]) if header[i] in _LEFT else c.rjust(widths[i])
            for i, c in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def format_table(result: BenchResult) -> str:
    rows = [_stream_row(run) for run in result.ladder]
    rows += [_stream_row(run) for run in result.claude_ladder]
    eff = result.efficiency
    if eff is not None:
        goal = eff.events_per_cpu_s >= GOAL_EVENTS_PER_CPU_S
        rows.append(
            _stream_row(eff, f"goal >= {GOAL_EVENTS_PER_CPU_S:,}/CPU-s: {_met(goal)}")
            if eff.label == "efficiency"
            else [
                "efficiency",
                "mentara",
                str(eff.sessions),
                "",
                "",
                "",
                "",
                _n(eff.events_per_cpu_s),
            ]
            + [""] * 8
            + [f"= streaming S={eff.sessions}; goal >= {GOAL_EVENTS_PER_CPU_S:,}: {_met(goal)}"]
        )
    claude = result.claude_efficiency
    if claude is not None:
        if claude.label == "claude-efficiency":
            rows.append(_stream_row(claude))
        else:
            rows.append(
                ["claude-efficiency", claude.system, str(claude.sessions)]
                + [""] * 4
                + [_n(claude.events_per_cpu_s)]
                + [""] * 8
                + [f"= claude-streaming S={claude.sessions}"]
            )
    rows += [_stream_row(peer) for peer in result.peers]
    idle = result.idle
    if idle is not None:
        kib = idle.bytes_per_socket / 1024
        state = "" if idle.clean else f"; {idle.open_at_release}/{idle.sockets} held"
        rows.append(
            ["idle", "mentara (1 worker)", str(idle.connected)]
            + [""] * 10
            + [str(sum(idle.errors.values())), _mib(idle.rss_after), "-"]
            + [f"{kib:.1f} KiB/socket (goal <= {GOAL_IDLE_KIB:.0f}){state}"]
        )
    lines = [render(COLUMNS, rows), ""]
    lines += _goal_lines(result)
    lines.append(
        "server CPU: the server's process tree, Redis and Postgres, read from the OS (the client "
        "is not counted, nor on the Claude path the fake Messages API, whose cores are the LLM "
        "API column); machine: every process on the machine, ours or not, in cores.\n"
        "One run on a shared 2-core machine: compare the figures within the run."
    )
    return "\n".join(lines)


def _goal_lines(result: BenchResult) -> list[str]:
    lines = []
    if result.ladder:
        best = result.largest_passing
        tried = ", ".join(str(r.sessions) for r in result.ladder)
        lines.append(
            f"streaming: largest S with p99 < {LAG_P99_LIMIT_MS:.0f} ms and a clean stream: "
            f"{best or 'none'} (tried {tried}); goal S >= {GOAL_SESSIONS:,}: "
            f"{_met(best >= GOAL_SESSIONS)}"
        )
    if result.claude_ladder:
        best = result.largest_passing_claude
        tried = ", ".join(str(r.sessions) for r in result.claude_ladder)
        lines.append(
            f"claude-streaming: largest S with p99 < {LAG_P99_LIMIT_MS:.0f} ms and a clean "
            f"stream: {best or 'none'} (tried {tried})"
        )
    ratio = result.claude_over_offline
    claude = result.claude_efficiency
    if ratio is not None and claude is not None:
        ok = ratio >= GOAL_CLAUDE_OVER_OFFLINE and claude.p99_ms < LAG_P99_LIMIT_MS
        lines.append(
            f"claude path: {ratio:.2f}x the offline path's events per server CPU-second at "
            f"S={claude.sessions} (p99 {_ms(claude.p99_ms)} ms); goal >= "
            f"{GOAL_CLAUDE_OVER_OFFLINE:g}x with p99 < {LAG_P99_LIMIT_MS:.0f} ms: {_met(ok)}"
        )
    eff = result.efficiency
    if eff is not None:
        lines.append(
            f"efficiency: {_n(eff.events_per_cpu_s)} events per server CPU-second at "
            f"S={eff.sessions}; goal >= {GOAL_EVENTS_PER_CPU_S:,}: "
            f"{_met(eff.events_per_cpu_s >= GOAL_EVENTS_PER_CPU_S)}"
        )
    for system, goal, text in (
        (
            "python-socketio",
            GOAL_OVER_SOCKETIO,
            f">= {GOAL_OVER_SOCKETIO:g}x at equal or better p99",
        ),
        ("websockets", GOAL_OVER_BARE, "within 2x of the bare floor"),
    ):
        ratio, peer = result.ratio(system), result.peer(system)
        if ratio is None or peer is None or eff is None:
            continue
        ok = ratio >= goal
        if system == "python-socketio":
            ok = ok and eff.p99_ms <= peer.p99_ms
        lines.append(
            f"vs {system}: {ratio:.2f}x its events per CPU-second; p99 {_ms(eff.p99_ms)} ms "
            f"vs {_ms(peer.p99_ms)} ms; goal {text}: {_met(ok)}"
        )
    if result.idle is not None:
        kib = result.idle.bytes_per_socket / 1024
        lines.append(
            f"idle: {kib:.1f} KiB of server memory per authenticated idle socket "
            f"({result.idle.connected:,} sockets, heartbeat every {result.idle.heartbeat_s:g} s); "
            f"goal <= {GOAL_IDLE_KIB:.0f} KiB: {_met(kib <= GOAL_IDLE_KIB and result.idle.clean)}"
        )
    lines += [f"could not run: {f}" for f in result.failures]
    return lines
