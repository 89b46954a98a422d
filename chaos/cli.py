"""``mentara chaos``: the partition harness for as long as an operator wants.

``server/cli.py`` hands everything after ``chaos`` to :func:`main`. Exit codes: 0 no
violation, 1 violations (or a candidate process that did not finish), 2 bad options or no
namespaces here (needs root and iproute2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from chaos.nemesis import FAULTS

    p = argparse.ArgumentParser(
        prog="mentara chaos",
        description="Run the servers on network-namespace hosts under the load harness while a "
        "nemesis injects faults, then check every invariant (docs/reliability.md). Root only.",
    )
    p.add_argument("--duration", type=float, default=120.0, metavar="S",
                   help="seconds of load and faults (default 120)")  # fmt: skip
    p.add_argument("--sessions-per-host", type=int, default=4, metavar="N",
                   help="candidates on each of the 3 server hosts (default 4)")  # fmt: skip
    p.add_argument("--lease-ms", type=int, default=1500,
                   help="the servers' lease (default 1500; faults last a few leases)")  # fmt: skip
    p.add_argument("--faults", metavar="A,B",
                   help=f"only these faults (default all: {','.join(FAULTS)})")  # fmt: skip
    p.add_argument("--work-dir", type=Path, metavar="DIR",
                   help="where the run's folder goes; it is kept (default: a temporary folder, "
                   "removed)")  # fmt: skip
    p.add_argument("--seed", type=int, default=1, help="the candidates' seed (default 1)")
    p.add_argument("--redis", choices=("cluster", "single"), default="cluster",
                   help="Redis Cluster of 3 masters and 3 replicas (default), or one Redis")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from chaos.netns import NetworkError
    from chaos.run import ChaosConfig, run_chaos

    if args.duration < 30:
        print("mentara chaos: --duration must be at least 30 s", file=sys.stderr)
        return 2
    faults = tuple(f for f in args.faults.split(",") if f) if args.faults else None
    config = ChaosConfig(
        duration_s=args.duration,
        sessions_per_host=max(1, args.sessions_per_host),
        lease_ms=max(300, args.lease_ms),
        faults=faults,
        work_dir=args.work_dir,
        seed=args.seed,
        redis_topology=args.redis,
    )
    try:
        result = run_chaos(config, say=lambda line: print(line, flush=True))
    except (NetworkError, ValueError) as exc:
        print(f"mentara chaos: {exc}", file=sys.stderr)
        return 2
    print(result.table, flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
