"""The server's side of ``mentara runner``: :class:`RemoteCodeRunner` runs code there, with
the same ``run_tests`` as :class:`scoring.code_runner.CodeRunner`.

:func:`make_code_runner` picks one from the settings: with ``MENTARA_RUNNER_URL`` unset,
code runs in the server's own process as before; set, every run goes to the runner.

Contract of :meth:`RemoteCodeRunner.run_tests`:

- It returns the runner's :class:`~scoring.code_runner.RunResult`, or raises what
  ``CodeRunner.run_tests`` raises (``ValueError`` for arguments the runner refuses, and
  ``SandboxUnavailable`` when the runner cannot isolate the code), or
  :class:`RunnerUnavailable` (a retryable ``MentaraError`` whose message the candidate may
  see) when the runner cannot be reached, refuses the request, breaks the connection or does
  not answer in time (and for a request above the runner's size bound, which is not sent).
  It never hangs: connecting is bounded by ``connect_timeout_s``, the
  whole exchange by the run's ``wall_seconds`` plus ``queue_timeout_s`` (time the run may
  wait for a slot in the runner) plus a margin.
- At most ``max_concurrent`` exchanges of this runner at once; more wait here.
- Safe to cancel: the connection is closed, and the runner cancels the run when it sees that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import msgspec

from scoring.code_runner import (
    DEFAULT_LIMITS,
    CodeRunner,
    CompareMode,
    RunLimits,
    RunResult,
    TestCase,
)
from scoring.sandbox import SANDBOX_UNSAFE
from server.config import ConfigError, Settings
from server.errors import ServiceUnavailable
from server.runner_wire import (
    MAX_REPLY_BYTES,
    MAX_REQUEST_BYTES,
    FrameTooLarge,
    Hello,
    InvalidRun,
    Ping,
    Pong,
    Refused,
    Reply,
    Request,
    RunReply,
    RunRequest,
    RunsTests,
    SandboxDown,
    SandboxUnavailable,
    decode_reply,
    encode_frame,
    read_frame,
)

log = logging.getLogger("mentara.runner")

_REPLY_MARGIN_S: Final = 5.0


class RunnerUnavailable(ServiceUnavailable):
    """The code runner service could not run the code (down, refusing, broken, silent)."""

    def __init__(self, reason: str) -> None:
        super().__init__("the code runner is unavailable right now; try again in a moment")
        self.reason = reason  # for the logs, never sent to the client

    def __str__(self) -> str:
        return f"{self.message} ({self.reason})"


@dataclass(frozen=True)
class RunnerAddress:
    """Where a runner listens: ``tcp://HOST:PORT`` or ``unix:///path``."""

    host: str | None = None
    port: int | None = None
    path: str | None = None

    @classmethod
    def parse(cls, url: str) -> RunnerAddress:
        """Raises ``ValueError`` naming what is wrong with ``url``."""
        parts = urlsplit(url)
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError("a unix:// runner URL needs a socket path (unix:///run/r.sock)")
            return cls(path=parts.path)
        if parts.scheme == "tcp":
            if not parts.hostname or parts.port is None:
                raise ValueError("a tcp:// runner URL needs a host and a port (tcp://runner:7000)")
            return cls(host=parts.hostname, port=parts.port)
        raise ValueError(f"runner URL must start with tcp:// or unix://, got {parts.scheme!r}")

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.path is not None:
            return await asyncio.open_unix_connection(self.path)
        return await asyncio.open_connection(self.host, self.port)


class RemoteCodeRunner:
    """Runs candidate code in a ``mentara runner`` at ``url`` (see the module docstring)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        max_concurrent: int = 2,
        connect_timeout_s: float = 5.0,
        queue_timeout_s: float = 60.0,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.url = url
        self._address = RunnerAddress.parse(url)
        self._hello = encode_frame(Hello(token=token))
        self._max_concurrent = max_concurrent
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._connect_timeout_s = connect_timeout_s
        self._queue_timeout_s = queue_timeout_s

    @property
    def max_concurrent(self) -> int:
        return self._max_concurrent

    async def run_tests(
        self,
        source: str,
        function_name: str,
        tests: Sequence[TestCase],
        *,
        language: str = "python",
        compare: CompareMode = "exact",
        tolerance: float = 1e-6,
        limits: RunLimits = DEFAULT_LIMITS,
    ) -> RunResult:
        """``CodeRunner.run_tests``, in the runner; see the module docstring for what raises."""
        request = RunRequest(
            source=source,
            function_name=function_name,
            tests=tuple(tests),
            language=language,
            compare=compare,
            tolerance=tolerance,
            limits=limits,
        )
        budget = limits.wall_seconds + self._queue_timeout_s + _REPLY_MARGIN_S
        match await self._exchange(request, budget):
            case RunReply(result=result):
                return result
            case SandboxDown(detail=detail):
                raise SandboxUnavailable(detail)
            case InvalidRun(message=message):
                raise ValueError(message)
            case other:
                raise RunnerUnavailable(f"unexpected reply {type(other).__name__}")

    async def ping(self) -> str:
        """The runner's sandbox description; raises :class:`RunnerUnavailable`."""
        match await self._exchange(Ping(), self._connect_timeout_s + _REPLY_MARGIN_S):
            case Pong(sandbox=sandbox):
                return sandbox
            case other:
                raise RunnerUnavailable(f"unexpected reply {type(other).__name__}")

    async def _exchange(self, request: Request, budget_s: float) -> Reply:
        """One connection: hello and request out, one reply in. Refusals and every failure
        of the connection become :class:`RunnerUnavailable`."""
        frame = encode_frame(request)
        if len(frame) - 4 > MAX_REQUEST_BYTES:
            # The runner would refuse it from its length (too_large); not worth the upload.
            raise RunnerUnavailable(f"too_large: a request of {len(frame) - 4} bytes")
        async with self._semaphore:
            try:
                async with asyncio.timeout(self._connect_timeout_s):
                    reader, writer = await self._address.connect()
            except (OSError, TimeoutError) as exc:
                raise RunnerUnavailable(f"cannot connect to {self.url}: {exc!r}") from None
            try:
                async with asyncio.timeout(budget_s):
                    writer.write(self._hello + frame)
                    await writer.drain()
                    reply = decode_reply(await read_frame(reader, MAX_REPLY_BYTES))
            except TimeoutError:
                raise RunnerUnavailable(f"no reply from {self.url} in {budget_s:.0f} s") from None
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise RunnerUnavailable(f"connection to {self.url} broke: {exc!r}") from None
            except (FrameTooLarge, msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise RunnerUnavailable(f"bad reply from {self.url}: {exc}") from None
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    # Bounded: a runner that stopped reading must not hold the caller here.
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
        if isinstance(reply, Refused):
            log.error("code runner at %s refused a request: %s (%s)", self.url, reply.code,
                      reply.message)  # fmt: skip
            raise RunnerUnavailable(f"refused: {reply.code}: {reply.message}")
        return reply


def make_code_runner(settings: Settings) -> RunsTests:
    """A :class:`RemoteCodeRunner` when ``MENTARA_RUNNER_URL`` is set, else a
    :class:`~scoring.code_runner.CodeRunner` in this process; both run
    ``MENTARA_CODE_RUNS`` at a time."""
    if settings.runner_url is None:
        return CodeRunner(
            max_concurrent=settings.code_runs, allow_unsafe=settings.sandbox == SANDBOX_UNSAFE
        )
    if settings.runner_token is None:
        raise ConfigError("MENTARA_RUNNER_URL is set: set MENTARA_RUNNER_TOKEN too")
    return RemoteCodeRunner(
        settings.runner_url, settings.runner_token, max_concurrent=settings.code_runs
    )
