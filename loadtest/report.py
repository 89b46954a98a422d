"""What a run leaves behind: the percentile table, the JSON file and the PNG plot.

- :func:`format_table`: one row per latency metric (count, p50, p90, p99, max, in ms), then
  sessions, throughput, errors by code, closes by code and integrity errors by kind, and
  the verdict line.
- :func:`write_json`: everything, in one file (``results.json``): the settings without the
  secret, every histogram's summary and buckets, every counter, the per-second series, the
  integrity issues kept with details, the workers' states.
- :func:`write_plot`: ``load.png``: latency percentiles per second (delivery lag p50/p90/p99,
  first delta p99, ack p99) above throughput (live events per second, sessions active).
  matplotlib with the Agg backend (no display needed); imported only here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from loadtest.metrics import Histogram
from loadtest.runner import RunResult, events_per_second

__all__ = ["METRICS", "format_table", "timeseries", "write_json", "write_plot", "write_results"]

METRICS: tuple[tuple[str, str], ...] = (
    ("connect_ms", "connect + welcome"),
    ("first_delta_ms", "first delta after message"),
    ("lag_ms", "event delivery lag"),
    ("ack_ms", "ack latency"),
    ("code_run_ms", "code.run -> code.result"),
    ("resume_ms", "resume (connect -> replayed)"),
    ("end_ms", "session.end -> session.ended"),
)
"""The table's rows: histogram name, label."""

_VERDICT = {0: "OK", 1: "FAIL: integrity errors", 3: "UNVERIFIED: see sessions and workers"}


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _line(label: str, counts: dict[str, int]) -> str:
    body = ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "none"
    return f"{label:<20}{body}"


def format_table(result: RunResult) -> str:
    """The end-of-run table, as printed."""
    m = result.metrics
    c = m.counters
    rows = [f"{'metric (ms)':<32}{'count':>9}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}"]
    for name, label in METRICS:
        s = (m.histograms.get(name) or Histogram()).summary()
        rows.append(
            f"{label:<32}{s.count:>9}{_fmt(s.p50):>10}{_fmt(s.p90):>10}"
            f"{_fmt(s.p99):>10}{_fmt(s.max):>10}"
        )
    lost = m.by_prefix("sessions.lost.")
    rows += [
        "",
        f"{'sessions':<20}{result.config.sessions} planned, {c['sessions.started']} started, "
        f"{c['sessions.ended']} ended, {c['sessions.completed']} verified, "
        f"{sum(lost.values())} lost, {c['sessions.unfinished']} unfinished",
        f"{'events':<20}{c['events.live']} live, {c['events.replayed']} replayed; "
        f"{events_per_second(result):.0f} live events/s",
        f"{'resumes':<20}{c['resume.ok']} ok of {c['resume.planned']} planned and "
        f"{c['resume.after_close']} after a close; {c['resume.snapshot']} snapshots",
        f"{'transcripts':<20}{c['transcript.sessions_checked']} sessions, "
        f"{c['transcript.turns_verified']} turns verified, "
        f"{c['transcript.turns_unverified']} unverifiable",
        _line("sessions lost", lost),
        _line("errors by code", m.by_prefix("error.")),
        _line("closes by code", m.by_prefix("close.")),
        _line("anomalies", m.by_prefix("anomaly.")),
        _line("integrity errors", m.by_prefix("integrity.")),
        f"{'result':<20}{_VERDICT.get(result.exit_code, str(result.exit_code))} "
        f"({result.integrity_errors} integrity errors, {result.elapsed_s:.0f}s)",
    ]
    return "\n".join(rows)


def timeseries(result: RunResult) -> list[dict[str, Any]]:
    """Per second of the run: live events, sessions active, and latency percentiles."""
    m = result.metrics
    seconds = sorted(set(m.events_per_s) | set(m.active_per_s) | set(m.series))
    rows: list[dict[str, Any]] = []
    for second in seconds:
        row: dict[str, Any] = {
            "t": second,
            "events": m.events_per_s.get(second, 0),
            "active": m.active_per_s.get(second, 0),
        }
        for name, hist in sorted(m.series.get(second, {}).items()):
            row[name] = {
                "count": hist.count,
                "p50": hist.percentile(50),
                "p90": hist.percentile(90),
                "p99": hist.percentile(99),
                "max": hist.max,
            }
        rows.append(row)
    return rows


def write_json(result: RunResult, path: Path) -> None:
    m = result.metrics
    data = {
        "format": "mentara-load/1",
        "config": result.config.public(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.started_at)),
        "started_at_unix": result.started_at,
        "elapsed_s": round(result.elapsed_s, 3),
        "exit_code": result.exit_code,
        "integrity_errors": result.integrity_errors,
        "events_per_s": events_per_second(result),
        "summary": {name: hist.summary().as_dict() for name, hist in sorted(m.histograms.items())},
        "errors_by_code": m.by_prefix("error."),
        "closes_by_code": m.by_prefix("close."),
        "integrity_by_kind": m.by_prefix("integrity."),
        "counters": dict(sorted(m.counters.items())),
        "issues": result.issues,
        "observations": result.observations,
        "workers": [vars(w) for w in result.workers],
        "timeseries": timeseries(result),
        "histograms": {name: hist.to_dict() for name, hist in sorted(m.histograms.items())},
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def write_plot(result: RunResult, path: Path) -> None:
    """Latency percentiles and throughput per second, as a PNG (matplotlib, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = timeseries(result)
    t = [r["t"] for r in rows]

    def series(name: str, q: str) -> list[float]:
        return [r[name][q] if name in r else float("nan") for r in rows]

    fig = Figure(figsize=(11, 7), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for name, q, label, style in (
        ("lag_ms", "p50", "delivery lag p50", "-"),
        ("lag_ms", "p90", "delivery lag p90", "-"),
        ("lag_ms", "p99", "delivery lag p99", "-"),
        ("first_delta_ms", "p99", "first delta p99", "--"),
        ("ack_ms", "p99", "ack p99", ":"),
    ):
        top.plot(t, series(name, q), style, label=label, linewidth=1.2)
    top.set_yscale("symlog", linthresh=1.0)
    top.set_ylabel("ms (symlog)")
    top.set_title(
        f"mentara load: {result.config.sessions} sessions, {len(result.config.urls)} URL(s), "
        f"{result.integrity_errors} integrity errors"
    )
    top.grid(True, which="both", alpha=0.3)
    top.legend(loc="upper left", fontsize="small")
    bottom.plot(t, [r["events"] for r in rows], color="tab:blue", label="live events/s")
    bottom.set_ylabel("events / s")
    bottom.set_xlabel("seconds since start")
    bottom.grid(True, alpha=0.3)
    active = bottom.twinx()
    active.plot(t, [r["active"] for r in rows], color="tab:orange", label="sessions active")
    active.set_ylabel("sessions active")
    handles = bottom.get_legend_handles_labels()[0] + active.get_legend_handles_labels()[0]
    bottom.legend(handles=handles, loc="upper left", fontsize="small")
    fig.savefig(path)


def write_results(result: RunResult, out_dir: Path) -> tuple[Path, Path]:
    """Write ``results.json`` and ``load.png`` into ``out_dir`` (created); return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / "results.json", out_dir / "load.png"
    write_json(result, json_path)
    write_plot(result, png_path)
    return json_path, png_path
