"""The ``mentara`` command line: ``serve``, ``runner``, ``token``, ``migrate``, ``load``,
``bench`` and ``chaos``.

``serve`` is the whole stack in one command: it starts the embedded Postgres and Redis that the
environment leaves without a URL, applies the migrations, binds the port, says in one line what
it runs on, runs the uvicorn workers (all sharing one Redis and one Postgres), and on exit stops
what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import shutil
import signal
import sys
from collections.abc import Sequence

from server.config import ConfigError, Settings, load_settings
from server.embedded import EmbeddedStack, embedded_jwt_secret, start_embedded


def _jwt_secret(settings: Settings) -> str | None:
    """The configured secret; in embedded mode, the one kept in the data folder."""
    if settings.jwt_secret:
        return settings.jwt_secret
    if settings.jwks_url and (settings.database_url and settings.redis_url):
        return None
    if settings.database_url and settings.redis_url:
        raise ConfigError(
            "set MENTARA_JWT_SECRET (or MENTARA_JWKS_URL) when using external servers"
        )
    return embedded_jwt_secret(settings.data_dir)


def _interviewer_mode() -> str:
    return (
        "claude"
        if os.environ.get("ANTHROPIC_API_KEY")
        else "offline interviewer (no ANTHROPIC_API_KEY)"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    workers = args.workers or settings.workers
    secret = _jwt_secret(settings)
    stack = start_embedded(settings)
    metrics_dir = settings.data_dir / "metrics" / str(os.getpid())
    try:
        env = {"DATABASE_URL": stack.database_url, "REDIS_URL": stack.redis_url}
        if secret:
            env["MENTARA_JWT_SECRET"] = secret
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        os.environ.update(env)  # workers are spawned with this environment
        settings = load_settings()

        from server.db import migrate_url

        asyncio.run(migrate_url(stack.database_url))
        _run_uvicorn(settings, host, port, workers, stack)
    finally:
        stack.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _run_uvicorn(
    settings: Settings, host: str, port: int, workers: int, stack: EmbeddedStack
) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from server.asgi_server import bind_socket, uvicorn_config
    from server.interviewer.factory import describe_provider
    from server.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    sock = bind_socket(host, port)
    real_port = sock.getsockname()[1]
    config = uvicorn_config(
        settings, "server.app:create_app_from_env", factory=True, workers=workers, log_config=None
    )
    code_runs = (
        f"code runs at {settings.runner_url}"
        if settings.runner_url
        else f"code runs in-process; {_describe_sandbox(settings)}"
    )
    print(
        f"mentara: serving http://{host}:{real_port} with {workers} worker(s) on "
        f"{stack.describe()}; {describe_provider(settings)}; {code_runs}",
        flush=True,
    )
    # uvicorn re-raises the signal that stopped it once it has shut down gracefully; with a
    # Python-level handler in place that becomes an exception, so the caller's ``finally``
    # still stops the embedded servers.
    previous = {sig: signal.signal(sig, _stop_requested) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run(sockets=[sock])
    except StopRequested:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _describe_sandbox(settings: Settings) -> str:
    """The code sandbox in one phrase for the start-up line (probed with a real run)."""
    from scoring.sandbox import SANDBOX_UNSAFE
    from scoring.sandbox_probe import detect_sandbox_support

    support = asyncio.run(detect_sandbox_support(settings.sandbox == SANDBOX_UNSAFE))
    if support.isolated:
        return f"code sandbox: {support.detail}"
    if support.unsafe:
        return f"code sandbox: UNSAFE, candidate code runs WITHOUT isolation ({support.detail})"
    return f"code sandbox: UNAVAILABLE, code.run is refused ({support.detail})"


class StopRequested(Exception):
    """SIGINT or SIGTERM reached ``serve`` after the workers shut down."""


def _stop_requested(signum: int, frame: object) -> None:
    raise StopRequested(signal.Signals(signum).name)


def cmd_runner(args: argparse.Namespace) -> int:
    """``mentara runner``: first re-executes itself without any server secret in its
    environment (:func:`server.runner_service.reexec_without_secrets`), then serves."""
    from server.logs import configure_logging
    from server.runner_service import ListenAddress, reexec_without_secrets, serve_runner

    reexec_without_secrets()
    settings = load_settings()
    if settings.runner_token is None:
        raise ConfigError("set MENTARA_RUNNER_TOKEN (the secret the servers present)")
    try:
        address = ListenAddress.parse(args.listen)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    configure_logging(settings.log_level, settings.log_format)
    runs = args.runs or settings.code_runs
    token = settings.runner_token
    unsafe = settings.sandbox == "unsafe-no-isolation"
    served = serve_runner(
        address, token, max_concurrent=runs, io_timeout_s=args.io_timeout, allow_unsafe=unsafe
    )
    asyncio.run(served)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from server.dev_tokens import mint_dev_token

    settings = load_settings()
    secret = _jwt_secret(settings)
    if secret is None:
        raise ConfigError(
            "no MENTARA_JWT_SECRET: production tokens come from the identity provider"
        )
    token = mint_dev_token(
        secret,
        args.user,
        admin=args.admin,
        ttl_s=args.ttl,
        role_claim=settings.role_claim,
        admin_role=settings.admin_role,
    )
    print(token)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from server.db import migrate_url

    settings = load_settings()
    stack = start_embedded(settings)
    try:
        applied = asyncio.run(migrate_url(stack.database_url))
    finally:
        stack.stop()
    print("mentara: applied " + (", ".join(applied) if applied else "nothing; schema is current"))
    return 0


def missing_extra(extra: str, modules: tuple[str, ...]) -> str | None:
    """Why a command that needs the ``extra`` cannot run here (None: it can). The runtime
    (``requirements.lock``, the Docker image) leaves the load harness and the benchmark out:
    they are imported only by their own subcommands, and only from a checkout with their
    locks installed."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return (
                f"{exc.name or module} is not installed: this command needs the {extra!r} extra "
                f"(pip install -r requirements-{extra}.lock in a checkout; "
                "`python3 dev.py serve` or `python3 dev.py test` installs it into .venv)"
            )
    return None


def cmd_load(args: argparse.Namespace) -> int:
    if (why := missing_extra("load", ("loadtest.cli", "matplotlib"))) is not None:
        print(f"mentara load: {why}", file=sys.stderr)
        return 2
    from loadtest.cli import main as load_main

    return load_main(args.load_args)


def cmd_bench(args: argparse.Namespace) -> int:
    if (why := missing_extra("bench", ("bench.cli", "psutil", "socketio"))) is not None:
        print(f"mentara bench: {why}", file=sys.stderr)
        return 2
    from bench.cli import main as bench_main

    return bench_main(args.bench_args)


def cmd_chaos(args: argparse.Namespace) -> int:
    for extra, modules in (("load", ("loadtest.cli",)), ("embedded", ("pgserver",))):
        if (why := missing_extra(extra, modules)) is not None:
            print(f"mentara chaos: {why}", file=sys.stderr)
            return 2
    from chaos.cli import main as chaos_main

    return chaos_main(args.chaos_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mentara", description="Mentara interview server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="serve the whole stack (embedded Postgres/Redis by default)"
    )
    serve.add_argument("--host", help="address to bind (MENTARA_HOST)")
    serve.add_argument("--port", type=int, help="port to bind; 0 picks a free one (MENTARA_PORT)")
    serve.add_argument("--workers", type=int, help="worker processes (MENTARA_WORKERS)")
    serve.set_defaults(func=cmd_serve)
    runner = sub.add_parser(
        "runner", help="run candidate code for servers that set MENTARA_RUNNER_URL"
    )
    runner.add_argument(
        "--listen",
        default="127.0.0.1:7000",
        help="HOST:PORT (port 0 picks a free one) or a unix socket path (default 127.0.0.1:7000)",
    )
    runner.add_argument("--runs", type=int, help="runs at once (MENTARA_CODE_RUNS)")
    runner.add_argument(
        "--io-timeout",
        type=float,
        default=10.0,
        help="seconds a client has to send its request (default 10)",
    )
    runner.set_defaults(func=cmd_runner)
    token = sub.add_parser("token", help="print a development JWT signed with the local secret")
    token.add_argument("--user", required=True, help="the user id (sub claim)")
    token.add_argument("--admin", action="store_true", help="grant the admin role")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.set_defaults(func=cmd_token)
    migrate = sub.add_parser("migrate", help="apply the database migrations")
    migrate.set_defaults(func=cmd_migrate)
    # Everything after "load" goes to loadtest.cli, which parses it (its --help too): with "+"
    # as its only prefix character, this parser takes "--url ..." as plain arguments.
    load = sub.add_parser(
        "load", help="load-test servers with virtual candidates", add_help=False, prefix_chars="+"
    )
    load.add_argument("load_args", nargs=argparse.REMAINDER)
    load.set_defaults(func=cmd_load)
    bench = sub.add_parser(
        "bench", help="benchmark fresh servers and their peers", add_help=False, prefix_chars="+"
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)
    chaos = sub.add_parser(
        "chaos",
        help="partitions across network-namespace hosts under load, then a check (root)",
        add_help=False,
        prefix_chars="+",
    )
    chaos.add_argument("chaos_args", nargs=argparse.REMAINDER)
    chaos.set_defaults(func=cmd_chaos)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"mentara: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
