"""The partition suite: three server hosts, a Redis Cluster (3 masters, 3 replicas on three
hosts) and Postgres on network-namespace hosts, candidates on every server host, a nemesis,
and the checker (chaos/, docs/reliability.md).

Marked ``chaos``: it runs in the local-services pass (root and ``ip netns`` needed; without
them it fails, unless ``MENTARA_SKIP_CHAOS=1`` says to skip it) and is deselected in
embedded mode. Each run prints its table to the terminal, so CI's log shows it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.nemesis import FAULTS
from chaos.netns import Network, NetworkError, available, remove_stale
from chaos.run import ChaosConfig, ChaosResult, run_chaos
from chaos.stack import Stack

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(420)]

SKIP_ENV = "MENTARA_SKIP_CHAOS"


@pytest.fixture(autouse=True)
def _namespaces_here() -> None:
    why = available()
    if why is None:
        return
    message = f"the chaos suite needs root and iproute2 network namespaces: {why}"
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(message)
    pytest.fail(f"{message} (set {SKIP_ENV}=1 to skip it instead)", pytrace=False)


def _namespaces() -> set[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}


def _ours() -> set[str]:
    """The namespaces a network of this process would be named by."""
    return {n for n in _namespaces() if n.startswith(f"mc{os.getpid():x}x")}


def _show(capsys: pytest.CaptureFixture[str], result: ChaosResult) -> None:
    with capsys.disabled():
        print("\n" + result.table, flush=True)


def test_every_fault_alone_then_combined_keeps_every_promise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_chaos(
        ChaosConfig(duration_s=95, sessions_per_host=3, work_dir=tmp_path),
        say=lambda line: None,
    )
    _show(capsys, result)
    assert "redis               cluster" in result.table
    assert set(result.faults) == set(FAULTS), result.faults  # each fault at least once
    assert sum(result.faults.values()) > len(FAULTS)  # and some of them combined
    # A killed master's replica won an election; the killed node came back as a replica.
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*/logs/redis-*.log"))
    assert "Failover election won" in logs
    assert "Reconfiguring myself as a replica" in logs
    # Most sessions started (a start may meet a fault: its retryable error ends that candidate).
    assert result.sessions >= 6 and result.verdict.client_events > 1000
    assert result.ended == result.sessions, result.table
    assert result.ok, result.table
    assert not _ours(), "the run left namespaces behind"


def test_the_checker_catches_two_owners_when_the_fence_is_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the append's fence check removed (a test-only switch), a frozen or cut-off owner
    appends after its successor: the checker must report it. A run can go by without a stale
    append landing (the keeper may stop the old owner first), so up to three runs. Its run
    folder is deep on purpose: the unix sockets must not live there (107 bytes at most)."""
    deep = tmp_path / ("a-run-folder-deeper-than-a-unix-socket-path-may-be-" * 2)
    for attempt in range(3):
        result = run_chaos(
            ChaosConfig(
                duration_s=45,
                sessions_per_host=4,
                faults=("freeze_owner", "redis_partition"),
                unfenced_append=True,
                work_dir=deep / str(attempt),
                seed=attempt + 1,
            ),
            say=lambda line: None,
        )
        _show(capsys, result)
        if result.verdict.violations["one_owner_at_a_time"]:
            break
    assert result.verdict.violations["one_owner_at_a_time"] > 0, result.table
    assert not result.ok


def test_a_failed_run_removes_what_it_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: Stack, seed: int = 1) -> None:
        raise RuntimeError("the candidates could not start")

    monkeypatch.setattr(Stack, "start_candidates", fail)
    with pytest.raises(RuntimeError, match="could not start"):
        run_chaos(ChaosConfig(duration_s=30, work_dir=tmp_path), say=lambda line: None)
    assert not _ours()
    # Postgres, Redis, the proxy and the servers had started: none of them is left.
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True
    ).stdout.split()
    assert not leftover, leftover


def test_a_half_built_network_is_removed_and_stale_ones_too(tmp_path: Path) -> None:
    network = Network.new()
    with pytest.raises(NetworkError):
        network.build(["a", "a"])  # the second namespace of that name cannot be made
    sleeper = network.spawn("a", ["sleep", "600"], env=dict(os.environ), log=tmp_path / "log")
    assert _ours()
    network.destroy()
    assert not _ours()
    assert sleeper.poll() is not None

    # A run that died without cleaning up: its namespace and the process in it.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = f"mc{dead.pid:x}x00-s1"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        orphan = subprocess.Popen(["ip", "netns", "exec", stale, "sleep", "600"])
        assert stale in _namespaces()
        assert stale in remove_stale()
        assert stale not in _namespaces()
        assert orphan.wait(timeout=10) != 0  # killed
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True)
