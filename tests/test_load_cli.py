"""``mentara load`` as a user runs it: the subcommand, its options, worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.config import ConfigError, http_base, interview_url, parse_mix
from server.config import Settings
from tests.support import TEST_SECRET, running_server

LOAD = [sys.executable, "-m", "server.cli", "load"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MENTARA_JWT_SECRET"}
    env.update(extra)
    return env


def test_help_lists_the_options() -> None:
    done = subprocess.run([*LOAD, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for option in (
        "--url",
        "--sessions",
        "--duration",
        "--ramp-up",
        "--processes",
        "--think-time",
        "--code-every",
        "--run-every",
        "--resume-rate",
        "--mix",
        "--subprotocol",
        "--out",
        "--token-secret",
    ):
        assert option in done.stdout
    assert "exit status" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://127.0.0.1:1"], "--url"),
        (["--url", "ws://127.0.0.1:1", "--mix", "coding=1,chess=1"], "unknown track"),
        (["--url", "ws://127.0.0.1:1", "--sessions", "0"], "--sessions"),
        (["--url", "ws://127.0.0.1:1", "--token-secret", "short"], "32 bytes"),
    ],
)
def test_bad_options_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    env = _env(MENTARA_DATA_DIR=str(tmp_path), MENTARA_JWT_SECRET=TEST_SECRET)
    done = subprocess.run([*LOAD, *args], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr


def test_without_any_secret_it_says_where_it_looked(tmp_path: Path) -> None:
    env = _env(MENTARA_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [*LOAD, "--url", "ws://127.0.0.1:1"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 2
    assert "MENTARA_JWT_SECRET" in done.stderr and "jwt-secret" in done.stderr


def test_parsers() -> None:
    assert parse_mix("coding=3, behavioral=1") == (("coding", 0.75), ("behavioral", 0.25))
    with pytest.raises(ConfigError, match="given twice"):
        parse_mix("coding=1,coding=2")
    with pytest.raises(ConfigError, match="more than 0"):
        parse_mix("coding=0")
    assert interview_url("ws://127.0.0.1:8000") == "ws://127.0.0.1:8000/v1/interview"
    assert interview_url("ws://localhost:8000/x") == "ws://localhost:8000/x"
    assert http_base("wss://127.0.0.1:8443/v1/interview") == "https://127.0.0.1:8443"


async def test_a_run_over_two_worker_processes(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "results"
    async with running_server(settings.with_(offline_tokens_per_s=400.0)) as server:
        proc = await asyncio.create_subprocess_exec(
            *LOAD,
            "--url",
            f"ws://127.0.0.1:{server.port}",
            "--sessions",
            "4",
            "--duration",
            "3",
            "--ramp-up",
            "0.5",
            "--processes",
            "2",
            "--think-time",
            "0.3",
            "--code-every",
            "1",
            "--run-every",
            "0",
            "--grace",
            "10",
            "--progress-every",
            "1",
            "--subprotocol",
            "msgpack",
            "--out",
            str(out),
            env=_env(MENTARA_JWT_SECRET=TEST_SECRET),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        stdout, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = stdout.decode()
    assert proc.returncode == 0, text
    assert "load: t=" in text
    assert "event delivery lag" in text
    assert "result              OK" in text
    data = json.loads((out / "results.json").read_text())
    assert data["counters"]["sessions.completed"] == 4
    assert [w["state"] for w in data["workers"]] == ["done", "done"]
    assert data["config"]["subprotocol"] == "msgpack"
    assert (out / "load.png").stat().st_size > 10_000
