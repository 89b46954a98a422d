"""The `mentara` command line, run as a user runs it: real processes, real servers."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx

from server.auth import TokenVerifier
from server.auth_settings import AuthSettings
from server.embedded import EmbeddedRedis
from tests.support import MENTARA, TEST_SECRET, Services, serving, wait_ready


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "MENTARA_JWT_SECRET"}
    }
    env.update({"MENTARA_DATA_DIR": str(data_dir), "MENTARA_LOG_LEVEL": "warning"}, **extra)
    return env


def mentara(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([*MENTARA, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def test_token_is_signed_with_the_configured_secret(tmp_path: Path) -> None:
    token = mentara("token", "--user", "u-42", "--admin", "--ttl", "60",
                    env=_env(tmp_path, MENTARA_JWT_SECRET=TEST_SECRET))  # fmt: skip
    principal = await TokenVerifier(
        AuthSettings(jwt_secret=TEST_SECRET, jwks_url=None, issuer=None)
    ).verify(token)
    assert principal.user_id == "u-42"
    assert principal.is_admin
    assert principal.expires_at is not None


async def test_embedded_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = mentara("token", "--user", "bob", env=_env(tmp_path))
    second = mentara("token", "--user", "bob", env=_env(tmp_path))
    secret_file = tmp_path / "jwt-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    verifier = TokenVerifier(
        AuthSettings(jwt_secret=secret_file.read_text().strip(), jwks_url=None, issuer=None)
    )
    assert (
        (await verifier.verify(first)).user_id == (await verifier.verify(second)).user_id == "bob"
    )


def test_external_servers_without_a_secret_are_refused(tmp_path: Path, services: Services) -> None:
    env = _env(tmp_path, DATABASE_URL=services.database_url, REDIS_URL=services.redis_url)
    done = subprocess.run(
        [*MENTARA, "token", "--user", "x"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "MENTARA_JWT_SECRET" in done.stderr


async def test_two_workers_share_one_redis_and_postgres(tmp_path: Path, services: Services) -> None:
    from protocol.client import open_client

    env = _env(tmp_path, DATABASE_URL=services.database_url, REDIS_URL=services.redis_url,
               MENTARA_JWT_SECRET=TEST_SECRET, MENTARA_REDIS_PREFIX="cli2w:")  # fmt: skip
    with serving("--workers", "2", env=env) as (_proc, port):
        ready = await wait_ready(port)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ready",
            "postgres": "ok",
            "redis": "ok",
            "sandbox": "isolated",
        }
        token = mentara("token", "--user", "carol", env=env)
        for _ in range(8):
            async with open_client(f"ws://127.0.0.1:{port}/v1/interview", token=token) as client:
                assert client.welcome is not None
                assert client.welcome.user_id == "carol"
        # Every scrape, whichever worker answers it, counts the sockets of both workers.
        async with httpx.AsyncClient() as http:
            totals = set()
            for _ in range(6):
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                found = re.search(
                    r'^mentara_sockets_accepted_total\{endpoint="interview"\} (\S+)$', text, re.M
                )
                assert found, text[:2000]
                totals.add(float(found.group(1)))
        assert totals == {8.0}


async def test_embedded_stack_serves_stops_cleanly_and_keeps_its_data(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with serving(env=env) as (proc, port):
        ready = await wait_ready(port)
        assert ready.status_code == 200, ready.text
        redis_socket = EmbeddedRedis(tmp_path).socket_path
        assert redis_socket.exists()
    assert proc.returncode == 0
    assert not (tmp_path / "postgres" / "postmaster.pid").exists(), "postgres left running"
    assert not redis_socket.exists(), "redis left running"
    assert (tmp_path / "redis" / "appendonlydir").exists() or list(
        (tmp_path / "redis").glob("*.aof*")
    )
    # The next start reuses the data: the schema is already there.
    assert "schema is current" in mentara("migrate", env=env)
