"""The code sandbox through a real server: a hostile ``code.run`` over a WebSocket reads no
secret of a real ``mentara serve`` process and leaves the server healthy; a server whose
``bwrap`` does not isolate refuses ``code.run`` with ``sandbox_unavailable`` and keeps the
interview going."""

from __future__ import annotations

import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from protocol.client import ServerErrorReply, open_client
from protocol.messages import CodeResult, CodeRun, CodeUpdate, SessionStart
from scoring import sandbox_probe
from server.config import Settings
from server.dev_tokens import mint_dev_token
from tests.interview_support import read_until, turn_ended
from tests.support import TEST_SECRET, Services, running_server, serve_env, serving, wait_ready
from tests.test_sandbox_attacks import _snoop_python


async def test_a_hostile_run_reads_no_secret_of_a_real_server(
    services: Services, tmp_path: Path
) -> None:
    canary_env = f"env-canary-{secrets.token_hex(8)}"
    data = tmp_path / "data"
    data.mkdir()
    canary_file = f"file-canary-{secrets.token_hex(8)}"
    (data / "canary").write_text(canary_file)
    env = serve_env(services, data, f"sbx{secrets.token_hex(3)}:", MENTARA_CANARY=canary_env)
    with serving(env=env) as (proc, port):
        assert (await wait_ready(port)).json()["sandbox"] == "isolated"
        start_line = "".join(proc.output_lines)  # type: ignore[attr-defined]
        assert "code sandbox: bubblewrap isolates every run" in start_line
        token = mint_dev_token(TEST_SECRET, "mallory", ttl_s=600)
        paths = [str(data / "canary"), f"/proc/{proc.pid}/environ", str(Path.cwd())]
        source = _snoop_python(paths).replace("def f(x):", "def two_sum(nums, target):")
        source = source.replace("return x + 1", "return [0, 1]")
        async with open_client(f"ws://127.0.0.1:{port}/v1/interview", token=token) as c:
            await c.request(SessionStart(id="s", track="coding", question_id="two-sum"))
            await c.request(CodeUpdate(id="v1", language="python", source=source))
            await c.request(CodeRun(id="r1"))
            frames = await read_until(c, lambda f: isinstance(f, CodeResult))
            result = next(f for f in frames if isinstance(f, CodeResult))
        assert "FileNotFoundError" in result.stdout_tail, result.stdout_tail
        for canary in (canary_env, canary_file, TEST_SECRET):
            assert canary not in result.stdout_tail
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
        assert proc.poll() is None


@pytest.fixture
def broken_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A ``bwrap`` that runs nothing (a host where user namespaces are refused, say)."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    saved = dict(sandbox_probe._supports)
    sandbox_probe._supports.clear()
    monkeypatch.setattr(sandbox_probe, "find_bwrap", lambda: str(fake))
    try:
        yield
    finally:
        sandbox_probe._supports.clear()
        sandbox_probe._supports.update(saved)


async def test_without_isolation_code_run_is_refused_and_the_interview_goes_on(
    settings: Settings, broken_bwrap: None
) -> None:
    async with running_server(settings.with_(offline_tokens_per_s=2000.0)) as server:
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"{server.http_url}/readyz")
        assert ready.status_code == 200
        assert ready.json()["sandbox"] == "unavailable"
        async with open_client(server.ws_url(), token=server.token("dana")) as c:
            await c.request(SessionStart(id="s", track="coding", question_id="two-sum"))
            await read_until(c, turn_ended(1))
            source = "def two_sum(nums, target):\n    return [0, 1]\n"
            await c.request(CodeUpdate(id="v1", language="python", source=source))
            with pytest.raises(ServerErrorReply) as refused:
                await c.request(CodeRun(id="r1"))
            assert refused.value.error.code.value == "sandbox_unavailable"
            assert refused.value.error.retryable
            # The socket and the session go on.
            await c.request(CodeUpdate(id="v2", language="python", source=source + "\n"))


def _endpoints(services: Services) -> list[list[object]]:
    """Where this run's Postgres and Redis listen: ``["tcp", host, port]`` or
    ``["unix", path]`` (the embedded servers' sockets)."""
    found: list[list[object]] = []
    for url, default_port in ((services.database_url, 5432), (services.redis_url, 6379)):
        parts = urlsplit(url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        if parts.scheme == "unix":
            found.append(["unix", parts.path])
        elif socket_dir.startswith("/"):
            found.append(["unix", f"{socket_dir}/.s.PGSQL.{parts.port or default_port}"])
        else:
            found.append(["tcp", parts.hostname or "127.0.0.1", parts.port or default_port])
    return found


async def test_candidate_code_reaches_neither_redis_nor_postgres(
    services: Services, settings: Settings
) -> None:
    endpoints = _endpoints(services)
    source = f"""
import socket

def two_sum(nums, target):
    out = []
    for kind, *where in {endpoints!r}:
        family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(where[0] if kind == "unix" else (where[0], where[1]))
            out.append("connected")
        except OSError as exc:
            out.append("blocked")
        finally:
            s.close()
    print(out)
    return [0, 1]
"""
    async with (
        running_server(settings) as server,
        open_client(server.ws_url(), token=server.token("mallory-net")) as c,
    ):
        await c.request(SessionStart(id="s", track="coding", question_id="two-sum"))
        await c.request(CodeUpdate(id="v1", language="python", source=source))
        await c.request(CodeRun(id="r1"))
        frames = await read_until(c, lambda f: isinstance(f, CodeResult))
        result = next(f for f in frames if isinstance(f, CodeResult))
    lines = set(result.stdout_tail.strip().splitlines())  # one line per visible test
    assert lines == {str(["blocked"] * len(endpoints))}, result
