"""tests/leak_guard.py: a test that leaves a socket open in a reference cycle gets the error
at its own teardown; without the guard, the error lands elsewhere (here: not on it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_LEAKY = """
import asyncio
import socket


async def test_leaks():
    ours, other = socket.socketpair()
    _, writer = await asyncio.open_connection(sock=ours)
    other.close()
    cycle = [writer]
    cycle.append(cycle)  # only the garbage collector frees the writer and its socket


def test_next():
    assert True
"""

_INI = """[pytest]
filterwarnings = error
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""


def _run(folder: Path, *plugins: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins, str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + done.stderr


def test_a_leak_is_an_error_at_the_teardown_of_the_test_that_made_it(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(_LEAKY)
    (tmp_path / "pytest.ini").write_text(_INI)
    guarded = _run(tmp_path, "-p", "tests.leak_guard")
    assert "ERROR at teardown of test_leaks" in guarded, guarded[-3000:]
    assert "1 error" in guarded and "2 passed" in guarded, guarded[-3000:]
    unguarded = _run(tmp_path)
    assert "ERROR at teardown of test_leaks" not in unguarded, unguarded[-3000:]
