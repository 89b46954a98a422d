"""``mentara load``: the command line of the load harness.

``server/cli.py`` hands everything after ``load`` to :func:`main`, which parses it, finds
the token secret, runs the load and writes the results. Exit codes: 0 clean, 1 integrity
errors, 2 bad options, 3 the run could not vouch for the server (no session started, a
worker lost).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from loadtest.config import ConfigError, LoadConfig, SubprotocolChoice, parse_mix

__all__ = ["build_parser", "config_from_args", "main", "resolve_secret"]

EXIT_USAGE = 2

_EPILOG = """\
exit status: 0 no integrity error; 1 integrity errors (gap, duplicate, resume seam,
foreign event, malformed stream, transcript mismatch); 2 bad options; 3 the run could not
vouch for the server (no session started, or a worker process was lost).

The token secret: --token-secret, else MENTARA_JWT_SECRET, else the secret kept in the data
folder (MENTARA_DATA_DIR, default .mentara) by an embedded `mentara serve`.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mentara load",
        description="Play N virtual candidates against interview servers and check every "
        "stream they receive.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--url",
        action="append",
        required=True,
        metavar="WS_URL",
        help="server URL, e.g. ws://127.0.0.1:8000 (repeat for several; candidates "
        "are spread round-robin and resume on the next one)",
    )
    p.add_argument("--sessions", type=int, default=10, help="virtual candidates (default 10)")
    p.add_argument(
        "--duration",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds from the start until every candidate ends its session (default 60)",
    )
    p.add_argument(
        "--ramp-up",
        type=float,
        default=10.0,
        metavar="S",
        help="seconds over which the candidates start (default 10)",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        metavar="P",
        help="client processes (default: CPU count)",
    )
    p.add_argument(
        "--think-time",
        type=float,
        default=5.0,
        metavar="S",
        help="mean seconds before answering the interviewer (default 5)",
    )
    p.add_argument(
        "--code-every",
        type=float,
        default=8.0,
        metavar="S",
        help="mean seconds between code.update frames; 0: never (default 8)",
    )
    p.add_argument(
        "--run-every",
        type=float,
        default=45.0,
        metavar="S",
        help="mean seconds between code.run frames (coding track); 0: never (default 45)",
    )
    p.add_argument(
        "--resume-rate",
        type=float,
        default=0.0,
        metavar="R",
        help="socket drops + session.resume per minute per candidate (default 0)",
    )
    p.add_argument(
        "--mix",
        default="coding=0.7,system_design=0.2,behavioral=0.1",
        help="track weights (default coding=0.7,system_design=0.2,behavioral=0.1)",
    )
    p.add_argument(
        "--subprotocol",
        choices=("json", "msgpack", "mixed"),
        default="json",
        help="encoding; mixed alternates per candidate (default json)",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="results folder (default bench-results/load-<timestamp>/)",
    )
    p.add_argument(
        "--token-secret",
        metavar="SECRET",
        help="HS256 secret to mint candidates' tokens with (see below)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds after --duration for ending and verifying; then the run "
        "stops whatever happens (default 30)",
    )
    p.add_argument(
        "--progress-every",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between progress lines (default 2)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of every random choice (default 1)")
    p.add_argument(
        "--record",
        type=Path,
        metavar="DIR",
        help="write every event each candidate received and every ack, one JSON line each, "
        "under DIR (for a checker afterwards, e.g. mentara chaos)",
    )
    return p


def resolve_secret(explicit: str | None) -> str:
    """The token secret: ``explicit``, else ``MENTARA_JWT_SECRET``, else the data folder's
    ``jwt-secret`` file. Raises ConfigError when there is none (it never creates one: a
    secret the server does not know would only produce 4001s)."""
    if explicit:
        return explicit
    from server.config import load_settings

    settings = load_settings()
    if settings.jwt_secret:
        return settings.jwt_secret
    path = settings.data_dir / "jwt-secret"
    try:
        secret = path.read_text().strip()
    except OSError:
        secret = ""
    if not secret:
        raise ConfigError(
            f"--token-secret: none given, MENTARA_JWT_SECRET is unset and {path} does not exist"
        )
    return secret


def config_from_args(args: argparse.Namespace, secret: str) -> LoadConfig:
    """A validated LoadConfig from parsed options; raises ConfigError."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    subprotocol: SubprotocolChoice = args.subprotocol
    return LoadConfig(
        urls=tuple(args.url),
        token_secret=secret,
        sessions=args.sessions,
        duration_s=args.duration,
        ramp_up_s=args.ramp_up,
        processes=args.processes,
        think_time_s=args.think_time,
        code_every_s=args.code_every,
        run_every_s=args.run_every,
        resume_rate=args.resume_rate,
        mix=parse_mix(args.mix),
        subprotocol=subprotocol,
        out_dir=args.out or Path("bench-results") / f"load-{stamp}",
        grace_s=args.grace,
        progress_every_s=args.progress_every,
        seed=args.seed,
        run_id=uuid.uuid4().hex[:8],
        record_dir=args.record,
    ).validate()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args, resolve_secret(args.token_secret))
    except ConfigError as exc:
        print(f"mentara load: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from loadtest.report import format_table, write_results
    from loadtest.runner import run_in_process, run_processes

    print(
        f"mentara load: {config.sessions} candidates on {len(config.urls)} URL(s), "
        f"{config.processes} process(es), {config.duration_s:g}s + {config.grace_s:g}s grace; "
        f"results in {config.out_dir}",
        flush=True,
    )

    def say(line: str) -> None:
        print(line, flush=True)

    if config.processes == 1:
        result = asyncio.run(run_in_process(config, out=say))
    else:
        result = run_processes(config, out=say)
    print(format_table(result), flush=True)
    json_path, png_path = write_results(result, config.out_dir)
    print(f"mentara load: wrote {json_path} and {png_path}", flush=True)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
