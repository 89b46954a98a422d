"""``mentara bench``: run the standard workloads against fresh servers and print one table.

``server/cli.py`` hands everything after ``bench`` to :func:`main`. The run's folder
(``--out``) gets ``results.json`` (every figure), ``table.txt``, the servers' logs and the
py-spy profile. Exit status: 0 when every workload ran (whatever the verdicts), 1 when one
could not run, 2 for bad options.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "config_from_args", "machine_info", "main"]


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("session counts must be at least 1")
    return sizes


def _workloads(text: str) -> tuple[str, ...]:
    from bench.config import CLAUDE_WORKLOADS, WORKLOADS

    names: tuple[str, ...] = ()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        names += CLAUDE_WORKLOADS if part == "claude" else (part,)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(WORKLOADS)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mentara bench",
        description="Run the standard workloads (streaming ladder, efficiency, peers, idle "
        "sockets) against freshly started servers on 127.0.0.1 and print one table.",
    )
    p.add_argument(
        "--quick", action="store_true", help="small versions of every workload (< 2 min)"
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="results folder (default bench-results/bench-<time>)",
    )
    p.add_argument(
        "--services",
        choices=("auto", "local", "embedded"),
        default="auto",
        help="Postgres and Redis: this machine's on 127.0.0.1 when they answer (auto), "
        "only those (local), or embedded ones (default auto)",
    )
    p.add_argument(
        "--ladder", type=_sizes, metavar="S,S,...", help="session counts of the streaming ladder"
    )
    p.add_argument(
        "--fixed-sessions", type=int, metavar="S", help="S of the efficiency and peer runs"
    )
    p.add_argument("--idle-sockets", type=int, metavar="N", help="idle sockets (default 10000)")
    p.add_argument("--window", type=float, metavar="SECONDS", help="measurement window of each run")
    p.add_argument(
        "--think", type=float, metavar="SECONDS", help="listener's pause before answering a turn"
    )
    p.add_argument(
        "--client-processes", type=int, metavar="P", help="client processes per streaming run"
    )
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profile run")
    p.add_argument(
        "--workloads",
        type=_workloads,
        metavar="W,W,...",
        help="which workloads to run, of streaming, efficiency, peers, profile, idle, "
        "claude-streaming, claude-efficiency, claude-profile (claude: those three) (default all)",
    )
    return p


def config_from_args(args: argparse.Namespace, out_dir: Path) -> Any:
    from bench.config import BenchConfig

    config = BenchConfig(out_dir=out_dir)
    if args.quick:
        config = replace(
            config,
            ladder=(20, 50),
            fixed_sessions=50,
            idle_sockets=500,
            idle_client_processes=2,
            window_s=5.0,
            settle_s=1.5,
            idle_hold_heartbeats=1.5,
            ladder_budget_s=60.0,
            profile=False,
        )
    changes: dict[str, Any] = {}
    if args.ladder:
        changes["ladder"] = args.ladder
    if args.fixed_sessions:
        changes["fixed_sessions"] = args.fixed_sessions
    if args.idle_sockets:
        changes["idle_sockets"] = args.idle_sockets
    if args.window:
        changes["window_s"] = args.window
    if args.think is not None:
        changes["think_s"] = args.think
    if args.client_processes:
        changes["client_processes"] = args.client_processes
    if args.no_profile:
        changes["profile"] = False
    if args.workloads:
        changes["workloads"] = args.workloads
    return replace(config, **changes)


def _git_commit() -> str:
    """The checkout's commit, with ``+dirty`` when the server's code has uncommitted edits."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "server", "scoring", "protocol"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return ""
    return head + ("+dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """The machine as the docs describe it: cores, CPU model, memory, load, and the commit
    of the server's code being measured."""
    import psutil

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_bytes": psutil.virtual_memory().total,
        "loadavg": list(os.getloadavg()),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "commit": _git_commit(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir: Path = (args.out or Path("bench-results") / f"bench-{stamp}").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    config = config_from_args(args, out_dir)

    from bench.services import open_services
    from bench.suite import run_all
    from bench.table import format_table

    def say(line: str) -> None:
        print(line, flush=True)

    started = time.monotonic()
    machine = machine_info()
    say(
        f"mentara bench: {machine['nproc']} cores ({machine['cpu_model']}), load "
        f"{machine['loadavg'][0]:.2f}, commit {machine['commit'] or '?'}; results in {out_dir}"
    )
    services = open_services(args.services, out_dir / "data")
    say(f"mentara bench: {services.describe()}")
    try:
        result = run_all(services, config, say=say)
    finally:
        services.close()
    machine["loadavg_end"] = list(os.getloadavg())
    machine["services"] = services.mode
    machine["elapsed_s"] = round(time.monotonic() - started, 1)
    result.machine = machine
    table = format_table(result)
    (out_dir / "results.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    (out_dir / "table.txt").write_text(table + "\n")
    say("")
    say(table)
    say(f"\nmentara bench: wrote {out_dir / 'results.json'} and {out_dir / 'table.txt'} "
        f"in {machine['elapsed_s']:.0f}s")  # fmt: skip
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
