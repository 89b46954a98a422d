"""``mentara runner``: the code runner as a service of its own, so that candidate code never
runs in a process (or a container) that holds the server's secrets.

The servers reach it through :class:`server.remote_runner.RemoteCodeRunner` (setting
``MENTARA_RUNNER_URL``) over TCP or a unix socket, with the wire of
:mod:`server.runner_wire`. Each connection: a hello with the shared token, one request, one
reply, closed.

Contract (every peer is treated as hostile until its token matched):

- The token is compared in constant time (:func:`hmac.compare_digest`). A wrong one gets
  ``refused {unauthorized}`` and the connection is closed; the request frame is never read.
- Sizes: the hello and the request are bounded (:mod:`server.runner_wire`); a larger length
  prefix gets ``refused {too_large}`` before any of the body is read.
- Time: the hello and the request must each arrive within ``io_timeout_s``; a reply that
  cannot be written within it is dropped with the connection.
- Connections: at most ``max_connections`` at once (running or waiting for a run slot);
  one more gets ``refused {busy}`` at once. Runs: at most ``max_concurrent`` at a time
  (the code runner's own bound); the others wait in the runner's queue.
- A client that goes away while its run waits or runs cancels that run (the code runner
  kills its processes), so abandoned runs do not hold slots.
- ``SandboxUnavailable`` from the code runner is its own reply (``sandbox_unavailable``), and
  a ``ValueError`` (arguments the runner refuses) is ``invalid``; any other exception is
  logged and the connection closed without a reply (the client reports the runner broken).

:func:`runner_environment` is the environment the process runs with: ``mentara runner``
re-executes itself with it, so ``/proc/<pid>/environ`` of the runner holds no server secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from scoring.code_runner import CodeRunner
from scoring.sandbox_probe import detect_sandbox_support
from server.config import RUNNER_TOKEN_MIN_CHARS
from server.runner_wire import (
    MAX_HELLO_BYTES,
    MAX_REQUEST_BYTES,
    FrameTooLarge,
    InvalidRun,
    Ping,
    Pong,
    RefusalCode,
    Refused,
    Reply,
    RunReply,
    RunRequest,
    RunsTests,
    SandboxDown,
    SandboxUnavailable,
    decode_hello,
    decode_request,
    encode_frame,
    read_frame,
)

log = logging.getLogger("mentara.runner")

_LINGER_S: Final = 1.0
_LINGER_BYTES: Final = 1024 * 1024

# What the runner's environment may keep: the basics of a process, and MENTARA_* settings
# that cannot hold a secret. Everything else (DATABASE_URL, REDIS_URL, ANTHROPIC_*, cloud
# credentials, ...) goes.
_KEEP: Final = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
    "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING",
    "VIRTUAL_ENV", "MENTARA_RUNNER_TOKEN",
})  # fmt: skip
_SECRET_WORDS: Final = ("SECRET", "TOKEN", "KEY", "PASSWORD", "URL", "DSN", "CREDENTIAL")


def runner_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without anything a runner does not need: the process basics in ``_KEEP``,
    ``LC_*``, and ``MENTARA_*`` settings whose names do not suggest a secret or a URL
    (which may carry credentials); ``MENTARA_RUNNER_TOKEN`` is kept, it is the runner's own."""
    kept = {}
    for name, value in env.items():
        basic = name in _KEEP or name.startswith("LC_")
        setting = name.startswith("MENTARA_") and not any(w in name for w in _SECRET_WORDS)
        if basic or setting:
            kept[name] = value
    return kept


@dataclass(frozen=True)
class ListenAddress:
    """``HOST:PORT`` (TCP) or a unix socket path (anything with a ``/``)."""

    host: str | None = None
    port: int | None = None
    path: Path | None = None

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        if "/" in text:
            return cls(path=Path(text))
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"--listen wants HOST:PORT or a socket path, got {text!r}")
        return cls(host=host.strip("[]"), port=int(port))


class RunnerService:
    """Serves run requests (see the module docstring) on one listening socket."""

    def __init__(
        self,
        token: str,
        *,
        runner: RunsTests | None = None,
        max_concurrent: int = 2,
        max_connections: int = 64,
        io_timeout_s: float = 10.0,
        allow_unsafe: bool = False,
    ) -> None:
        if len(token) < RUNNER_TOKEN_MIN_CHARS:
            raise ValueError(
                f"the runner token must have at least {RUNNER_TOKEN_MIN_CHARS} characters"
            )
        self._token = token.encode()
        self._runner: RunsTests = runner or CodeRunner(
            max_concurrent=max_concurrent, allow_unsafe=allow_unsafe
        )
        self._max_connections = max_connections
        self._io_timeout_s = io_timeout_s
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self, address: ListenAddress) -> str:
        """Listen on ``address``; return the URL clients use (``tcp://host:port`` with the
        port really bound, or ``unix:///path``)."""
        if address.path is not None:
            address.path.unlink(missing_ok=True)
            self._server = await asyncio.start_unix_server(self._accept, path=str(address.path))
            address.path.chmod(0o660)  # the token is the check; the file mode a second one
            return f"unix://{address.path}"
        self._server = await asyncio.start_server(self._accept, address.host, address.port)
        port = self._server.sockets[0].getsockname()[1]
        return f"tcp://{address.host}:{port}"

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop accepting; give connections in progress ``grace_s`` to finish, then cancel
        them (their runs are killed)."""
        if self._server is not None:
            self._server.close()
        pending = set(self._connections)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            if len(self._connections) >= self._max_connections:
                await self._reply(writer, Refused(code="busy", message="too many connections"))
                return
            self._connections.add(task)
            await self._serve(reader, writer)
        except Exception:
            log.exception("runner connection failed")
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), self._io_timeout_s)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self._io_timeout_s):
                hello = decode_hello(await read_frame(reader, MAX_HELLO_BYTES))
                if not hmac.compare_digest(hello.token.encode(), self._token):
                    await self._refuse(reader, writer, "unauthorized", "wrong runner token")
                    return
                request = decode_request(await read_frame(reader, MAX_REQUEST_BYTES))
        except FrameTooLarge as exc:
            await self._refuse(reader, writer, "too_large", str(exc))
            return
        except TimeoutError:
            await self._refuse(reader, writer, "timeout", "the request did not arrive in time")
            return
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            await self._refuse(reader, writer, "bad_request", str(exc)[:300])
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the peer went away mid-frame
        match request:
            case Ping():
                await self._reply(writer, Pong(sandbox=(await detect_sandbox_support()).detail))
            case RunRequest():
                reply = await self._run_unless_abandoned(request, reader)
                if reply is not None:
                    await self._reply(writer, reply)

    async def _run_unless_abandoned(
        self, request: RunRequest, reader: asyncio.StreamReader
    ) -> Reply | None:
        """The run's reply; None when the client closed the connection first (the run is
        then cancelled)."""
        run = asyncio.ensure_future(self._run(request))
        gone = asyncio.ensure_future(reader.read(1))  # the client sends nothing more: EOF
        try:
            await asyncio.wait({run, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (run, gone):
                if not task.done():
                    task.cancel()
            await asyncio.gather(run, gone, return_exceptions=True)
        if run.cancelled():
            log.info("runner: client went away; run cancelled")
            return None
        return run.result()

    async def _run(self, request: RunRequest) -> Reply:
        try:
            result = await self._runner.run_tests(
                request.source,
                request.function_name,
                request.tests,
                language=request.language,
                compare=request.compare,
                tolerance=request.tolerance,
                limits=request.limits,
            )
        except SandboxUnavailable as exc:
            return SandboxDown(detail=str(exc))
        except ValueError as exc:
            return InvalidRun(message=str(exc))
        return RunReply(result=result)

    async def _refuse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        code: RefusalCode,
        message: str,
    ) -> None:
        """Reply ``refused``, then linger briefly: closing with unread input would reset the
        connection, and a reset can destroy the reply before the client reads it. What the
        client still sends is discarded, at most ``_LINGER_BYTES`` for ``_LINGER_S``."""
        log.warning("runner: refused a request (%s): %s", code, message)
        await self._reply(writer, Refused(code=code, message=message))
        with contextlib.suppress(OSError, TimeoutError):
            writer.write_eof()
            async with asyncio.timeout(_LINGER_S):
                discarded = 0
                while discarded < _LINGER_BYTES and (chunk := await reader.read(65536)):
                    discarded += len(chunk)

    async def _reply(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            writer.write(encode_frame(reply))
            await asyncio.wait_for(writer.drain(), self._io_timeout_s)


async def serve_runner(
    address: ListenAddress,
    token: str,
    *,
    max_concurrent: int,
    io_timeout_s: float = 10.0,
    allow_unsafe: bool = False,
) -> None:
    """Run the service until SIGTERM or SIGINT; print one start-up line saying where it
    listens and what isolation the code runner has (``allow_unsafe``: MENTARA_SANDBOX)."""
    service = RunnerService(
        token, max_concurrent=max_concurrent, io_timeout_s=io_timeout_s, allow_unsafe=allow_unsafe
    )
    url = await service.start(address)
    support = await detect_sandbox_support(allow_unsafe)
    print(
        f"mentara: runner listening on {url} ({max_concurrent} run(s) at once); "
        f"sandbox: {support.detail}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await service.close()
        if address.path is not None:
            address.path.unlink(missing_ok=True)


def reexec_without_secrets() -> None:
    """Replace this process with itself under :func:`runner_environment` when the current
    environment holds anything more (``/proc/<pid>/environ`` keeps the environment a
    process was started with, whatever ``os.environ`` says later). Returns when it is clean."""
    import sys

    clean = runner_environment(os.environ)
    if clean == dict(os.environ):
        return
    dropped = sorted(set(os.environ) - set(clean))
    print(f"mentara: runner drops from its environment: {', '.join(dropped)}", flush=True)
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], clean)
