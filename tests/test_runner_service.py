"""``mentara runner``: a real runner process on 127.0.0.1:0, real servers that use it through
``MENTARA_RUNNER_URL``, and raw sockets that misbehave on its wire."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import struct
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from protocol.client import ServerErrorReply, open_client
from protocol.messages import CodeResult, CodeRun, CodeUpdate, SessionStart
from scoring.code_runner import RunResult, TestCase
from server.config import Settings
from server.remote_runner import RemoteCodeRunner, RunnerUnavailable
from server.runner_service import ListenAddress, RunnerService
from server.runner_wire import (
    Hello,
    Ping,
    Refused,
    SandboxUnavailable,
    decode_reply,
    encode_frame,
)
from tests.interview_support import read_until, turn_ended
from tests.support import MENTARA, RunningServer, running_server

TOKEN = "runner-token-" + "r" * 24
CANARY = "canary-7f3a9c"
_LISTENING = re.compile(r"runner listening on tcp://127\.0\.0\.1:(\d+)")
ADD_ONE = "def add_one(x):\n    return x + 1\n"
ADD_ONE_TESTS = [TestCase(name="one", args=(1,), expected=2)]


@contextmanager
def runner_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``mentara runner --listen 127.0.0.1:0`` as a real process, started with server secrets
    (canaries) in its environment as a careless operator would; yields it and its port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MENTARA_", "DATABASE_"))}
    env.update(
        MENTARA_RUNNER_TOKEN=TOKEN,
        MENTARA_LOG_LEVEL="warning",
        MENTARA_JWT_SECRET=CANARY,
        MENTARA_REVENUECAT_WEBHOOK_SECRET=CANARY,
        DATABASE_URL=f"postgresql://postgres:{CANARY}@127.0.0.1/x",
        ANTHROPIC_API_KEY=CANARY,
    )
    proc = subprocess.Popen(
        [*MENTARA, "runner", "--listen", "127.0.0.1:0", "--io-timeout", "1", *args],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader: threading.Thread | None = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if match := _LISTENING.search(line):
                break
        else:
            raise AssertionError("the runner exited before listening:\n" + "".join(lines))
        stdout = proc.stdout
        reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
        reader.start()
        yield proc, int(match.group(1))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if reader is not None:
            reader.join(timeout=5)
        if proc.stdout and (reader is None or not reader.is_alive()):
            proc.stdout.close()


@pytest.fixture
def runner() -> Iterator[tuple[subprocess.Popen[str], int]]:
    with runner_process() as running:
        yield running


@pytest.fixture
async def runner_server(
    runner: tuple[subprocess.Popen[str], int], settings: Settings
) -> AsyncIterator[RunningServer]:
    _, port = runner
    using = settings.with_(
        runner_url=f"tcp://127.0.0.1:{port}",
        runner_token=TOKEN,
        offline_tokens_per_s=2000.0,
        coalesce_ms=5.0,
    )
    async with running_server(using) as server:
        yield server


async def exchange(port: int, data: bytes, *, timeout: float = 5.0) -> tuple[object, bytes]:
    """Send raw bytes to the runner; return its one reply and whatever follows it (b"" when
    the runner closed the connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(timeout):
            (length,) = struct.unpack(">I", await reader.readexactly(4))
            reply = decode_reply(await reader.readexactly(length))
            rest = await reader.read()
        return reply, rest
    finally:
        writer.close()


def test_the_runner_environment_holds_no_server_secret(
    runner: tuple[subprocess.Popen[str], int],
) -> None:
    proc, _ = runner
    environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
    assert not [item for item in environ if CANARY.encode() in item]
    assert f"MENTARA_RUNNER_TOKEN={TOKEN}".encode() in environ


async def test_a_code_run_over_a_websocket_gets_its_result_from_the_runner(
    runner_server: RunningServer,
) -> None:
    server = runner_server
    used = server.app.state.resources.sessions.runner.runner
    assert isinstance(used, RemoteCodeRunner)
    question = server.app.state.resources.sessions.catalog.get("two-sum")
    async with open_client(server.ws_url(), token=server.token("remote-coder")) as c:
        await c.request(SessionStart(id="s", track="coding", question_id="two-sum"))
        await read_until(c, turn_ended(2))
        await c.request(CodeUpdate(id="v1", language="python", source="def two_sum(nums, target):\n    return []\n"))  # fmt: skip
        ack = await c.request(CodeRun(id="run-1"), timeout=30)
        [result] = [f for f in await read_until(c, lambda f: isinstance(f, CodeResult)) if isinstance(f, CodeResult)]  # fmt: skip
        assert (result.status, result.seq) == ("failed", ack.seq)
        await c.request(CodeUpdate(id="v2", language="python", source=question.source.reference_solution))  # fmt: skip
        await c.request(CodeRun(id="run-2"), timeout=30)
        [result] = [f for f in await read_until(c, lambda f: isinstance(f, CodeResult)) if isinstance(f, CodeResult)]  # fmt: skip
        assert result.status == "passed"
        assert result.tests and all(t.passed for t in result.tests)


async def test_a_wrong_token_is_refused_before_the_request_is_read(
    runner: tuple[subprocess.Popen[str], int],
) -> None:
    _, port = runner
    with pytest.raises(RunnerUnavailable, match="unauthorized"):
        await RemoteCodeRunner(f"tcp://127.0.0.1:{port}", "x" * len(TOKEN)).run_tests(
            ADD_ONE, "add_one", ADD_ONE_TESTS
        )
    # On the wire: the refusal, then the runner closes; the request frame is never read.
    body = encode_frame(Hello(token=TOKEN[:-1] + "s")) + encode_frame(Ping())
    reply, rest = await exchange(port, body)
    assert isinstance(reply, Refused)
    assert (reply.code, rest) == ("unauthorized", b"")
    good = RemoteCodeRunner(f"tcp://127.0.0.1:{port}", TOKEN)
    result = await good.run_tests(ADD_ONE, "add_one", ADD_ONE_TESTS)
    assert result.status == "passed", result


async def test_oversize_and_slow_requests_are_refused(
    runner: tuple[subprocess.Popen[str], int],
) -> None:
    _, port = runner
    # A request frame that claims 64 MiB: refused from its length alone.
    reply, rest = await exchange(
        port, encode_frame(Hello(token=TOKEN)) + struct.pack(">I", 64 << 20)
    )
    assert isinstance(reply, Refused)
    assert (reply.code, rest) == ("too_large", b"")
    # An unauthenticated peer cannot make the runner buffer more than a small hello.
    reply, rest = await exchange(port, struct.pack(">I", 1 << 20) + b"\0" * 4096)
    assert isinstance(reply, Refused)
    assert (reply.code, rest) == ("too_large", b"")
    # Garbage where a hello belongs.
    reply, _ = await exchange(port, struct.pack(">I", 3) + b"\x93\x01\x02")
    assert isinstance(reply, Refused)
    assert reply.code == "bad_request"
    # A peer that sends half a hello and stalls is dropped after the I/O timeout (1 s here).
    started = time.monotonic()
    reply, rest = await exchange(port, struct.pack(">I", 40) + b"\x81", timeout=5)
    assert isinstance(reply, Refused)
    assert (reply.code, rest) == ("timeout", b"")
    assert time.monotonic() - started < 4
    # A source too large for a request (the runner's bound is 8 MiB) is refused as a whole.
    with pytest.raises(RunnerUnavailable, match="too_large"):
        await RemoteCodeRunner(f"tcp://127.0.0.1:{port}", TOKEN).run_tests(
            ADD_ONE + "#" * (9 << 20), "add_one", ADD_ONE_TESTS
        )
    # And the runner still serves.
    assert await RemoteCodeRunner(f"tcp://127.0.0.1:{port}", TOKEN).ping()


async def test_the_runner_dying_gives_the_candidate_a_clear_error(
    runner: tuple[subprocess.Popen[str], int], runner_server: RunningServer
) -> None:
    proc, _ = runner
    server = runner_server
    async with open_client(server.ws_url(), token=server.token("orphan")) as c:
        await c.request(SessionStart(id="s", track="coding", question_id="two-sum"))
        await read_until(c, turn_ended(2))
        spin = "def two_sum(nums, target):\n    while True:\n        pass\n"
        await c.request(CodeUpdate(id="v1", language="python", source=spin))
        running = asyncio.ensure_future(c.request(CodeRun(id="run-1"), timeout=30))
        await asyncio.sleep(1.0)  # the run is in the runner now
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        started = time.monotonic()
        with pytest.raises(ServerErrorReply) as cut:
            await running
        assert time.monotonic() - started < 3, "the candidate waited for a dead runner"
        assert cut.value.error.code == "internal"
        assert cut.value.error.retryable
        assert "code runner is unavailable" in cut.value.error.message
        # A run while the runner is down: refused at once, with the same clear error.
        started = time.monotonic()
        with pytest.raises(ServerErrorReply) as down:
            await c.request(CodeRun(id="run-2"), timeout=30)
        assert time.monotonic() - started < 3
        assert "code runner is unavailable" in down.value.error.message
        # The session is still usable.
        await c.request(CodeUpdate(id="v2", language="python", source="def two_sum(nums, target):\n    return [0, 1]\n"))  # fmt: skip


class _StubRunner:
    """Stands in for the code runner inside an in-process service, for what a real one
    cannot be made to do on demand (refuse to isolate, run until cancelled)."""

    max_concurrent = 1

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.cancelled = asyncio.Event()

    async def run_tests(self, *args: object, **kwargs: object) -> RunResult:
        if self.behaviour == "no-sandbox":
            raise SandboxUnavailable("bwrap: setting up uid map: Permission denied")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        raise AssertionError("not cancelled")


async def _in_process_service(stub: _StubRunner) -> tuple[RunnerService, str]:
    service = RunnerService(TOKEN, runner=stub, io_timeout_s=2)
    url = await service.start(ListenAddress.parse("127.0.0.1:0"))
    return service, url


async def test_sandbox_unavailable_is_a_reply_of_its_own_that_the_client_raises_again() -> None:
    service, url = await _in_process_service(_StubRunner("no-sandbox"))
    try:
        with pytest.raises(SandboxUnavailable, match="uid map"):
            await RemoteCodeRunner(url, TOKEN).run_tests(ADD_ONE, "add_one", ADD_ONE_TESTS)
    finally:
        await service.close(grace_s=1)


async def test_a_client_that_goes_away_cancels_its_run() -> None:
    stub = _StubRunner("forever")
    service, url = await _in_process_service(stub)
    try:
        call = asyncio.ensure_future(
            RemoteCodeRunner(url, TOKEN).run_tests(ADD_ONE, "add_one", ADD_ONE_TESTS)
        )
        await asyncio.sleep(0.3)
        call.cancel()
        async with asyncio.timeout(5):
            await stub.cancelled.wait()
    finally:
        await service.close(grace_s=1)


def test_a_runner_url_needs_a_long_enough_token() -> None:
    from server.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="MENTARA_RUNNER_TOKEN"):
        load_settings({"MENTARA_RUNNER_URL": "tcp://runner:7000"})
    with pytest.raises(ConfigError, match="MENTARA_RUNNER_TOKEN"):
        load_settings({"MENTARA_RUNNER_URL": "tcp://runner:7000", "MENTARA_RUNNER_TOKEN": "short"})
    with pytest.raises(ConfigError, match="MENTARA_RUNNER_URL"):
        load_settings({"MENTARA_RUNNER_URL": "http://runner:7000", "MENTARA_RUNNER_TOKEN": TOKEN})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENTARA_")}
    done = subprocess.run([*MENTARA, "runner", "--listen", "127.0.0.1:0"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "MENTARA_RUNNER_TOKEN" in done.stderr
