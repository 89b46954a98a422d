#!/usr/bin/env python3
"""One entry point for a fresh machine: it needs nothing but ``python3``.

    python3 dev.py serve [mentara serve options]   # set up .venv, then serve the whole stack
    python3 dev.py test  [pytest options]          # set up .venv, then lint, type-check and test

Both create ``.venv/`` in the checkout from the pinned locks and install this project into
it, so ``.venv/bin/mentara`` exists afterwards: ``serve`` the runtime (``requirements.lock``)
and what a development machine runs besides (embedded mode, ``mentara load``, ``mentara
bench``: ``requirements-{embedded,load,bench}.lock``); ``test`` adds ``requirements-dev.lock``.
The venv is rebuilt only when one of those locks or ``pyproject.toml`` changes (a hash stamp
inside the venv records what it was built from).

Environment for ``test``:
    MENTARA_TEST_SERVICES=embedded|local   embedded (default): the suite starts its own Postgres
                                           and Redis; local: it uses DATABASE_URL and REDIS_URL
                                           (default 127.0.0.1:5432 and 127.0.0.1:6379) and runs
                                           only the tests that meet them, and the Redis
                                           Cluster and partition suites (tests/ci_passes.py)
    MENTARA_SKIP_LINT=1                    skip ruff and mypy (CI runs them once, not per mode)
    MENTARA_COVERAGE=1                     measure the coverage of protocol/ and scoring/ and
                                           fail below the floors in pyproject.toml
                                           ([tool.mentara.coverage-floors]; CI's first pass)
    MENTARA_CHROMIUM=/path/to/chromium     the browser the inspector's browser test drives
                                           (default: chromium on PATH; when there is none,
                                           ``test`` installs Debian's package if it runs as
                                           root where apt-get exists)
    MENTARA_SKIP_BROWSER_TESTS=1           skip that test instead of failing without a browser
    MENTARA_SKIP_CHAOS=1                   skip the partition suite (tests/test_chaos.py, run with
                                           MENTARA_TEST_SERVICES=local only; it needs root and
                                           `ip netns`) instead of failing without them
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".mentara-stamp"

#: What ``serve`` installs: the runtime first, then embedded mode, the load harness and the
#: benchmark (the Docker image installs the first alone).
RUN_LOCKS = (
    "requirements.lock",
    "requirements-embedded.lock",
    "requirements-load.lock",
    "requirements-bench.lock",
)
#: What ``test`` adds.
DEV_LOCK = "requirements-dev.lock"


def locks(with_dev: bool) -> tuple[str, ...]:
    return RUN_LOCKS + ((DEV_LOCK,) if with_dev else ())


def _fingerprint(with_dev: bool) -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", *locks(with_dev)):
        digest.update(name.encode())
        digest.update((ROOT / name).read_bytes())
    return ("dev:" if with_dev else "run:") + digest.hexdigest()


def _run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True)


def ensure_venv(with_dev: bool) -> None:
    """Create or refresh .venv so it matches the locks; a no-op when it already does."""
    wanted = _fingerprint(with_dev)
    have = STAMP.read_text().strip() if STAMP.exists() else ""
    # A dev venv also satisfies a plain run; a run venv must be extended for tests.
    if have == wanted or (not with_dev and have == _fingerprint(True)):
        return
    if not PY.exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print("dev.py: installing pinned dependencies into .venv", flush=True)
    pip = (PY, "-m", "pip", "install", "--disable-pip-version-check", "-q")
    # One resolution for every lock: a package pinned differently in two locks is an error,
    # not a silent replacement.
    _run(*pip, *(arg for name in locks(with_dev) for arg in ("-r", ROOT / name)))
    _run(*pip, "--no-deps", "--no-build-isolation", "-e", ROOT)
    STAMP.write_text(wanted + "\n")


def ensure_test_tools(env: dict[str, str]) -> None:
    """System tools the tests use: Chromium (the inspector's browser test; Playwright cannot
    download its own browser here), strace (the code runner's descriptor test),
    bubblewrap (the code sandbox itself) and redis-server (the Redis Cluster tests start
    six nodes of it). Those
    missing are installed from Debian's packages when this runs as root where apt-get exists;
    otherwise (or if that fails) the browser test fails saying what to do, and the strace
    test is skipped."""
    wanted = []
    if not (
        env.get("MENTARA_SKIP_BROWSER_TESTS") == "1"
        or env.get("MENTARA_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    ):
        wanted.append("chromium")
    if not shutil.which("strace"):
        wanted.append("strace")
    if not _has_bwrap():
        wanted.append("bubblewrap")
    if not shutil.which("redis-server"):
        wanted.append("redis-server")  # the Redis Cluster tests start real cluster nodes
    _apt_install(wanted, env)


def _has_bwrap() -> bool:
    return bool(shutil.which("bwrap") or shutil.which("bwrap", path="/usr/bin:/bin"))


def ensure_sandbox_tool(env: dict[str, str]) -> None:
    """Bubblewrap, which isolates every run of candidate code: installed from Debian's
    package when missing and this runs as root where apt-get exists; otherwise the server
    says at start-up that code cannot run (or the README says how to install it)."""
    if not _has_bwrap():
        _apt_install(["bubblewrap"], env)


def _apt_install(wanted: list[str], env: dict[str, str]) -> None:
    if not wanted:
        return
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"dev.py: not installed here: {', '.join(wanted)} (see the README)", flush=True)
        return
    print(f"dev.py: installing Debian's {', '.join(wanted)}", flush=True)
    apt_env = {**env, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *wanted]):
        if subprocess.run(step, env=apt_env, stdout=subprocess.DEVNULL).returncode != 0:
            print("dev.py: the install failed; the tests that need it will say so", flush=True)
            return


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv(with_dev=command == "test")
    env = dict(os.environ)
    if command == "serve":
        ensure_sandbox_tool(env)
        os.execve(BIN / "mentara", [str(BIN / "mentara"), "serve", *rest], env)
    if env.get("MENTARA_SKIP_LINT") != "1":
        for step in (
            (PY, "-m", "ruff", "check", "."),
            (PY, "-m", "ruff", "format", "--check", "."),
            (PY, "-m", "mypy"),
        ):
            print("dev.py:", " ".join(str(s) for s in step[1:]), flush=True)
            if subprocess.run([str(s) for s in step], cwd=ROOT).returncode != 0:
                return 1
    ensure_test_tools(env)
    os.chdir(ROOT)
    # Temporary folders (the embedded Postgres and Redis among them) under the checkout: a
    # test run elsewhere on the machine can then never prune this run's folders under /tmp.
    # One folder per services mode: CI runs the two modes side by side, and pytest empties
    # its folder at the start.
    temp = ROOT / ".pytest-tmp"
    temp.mkdir(exist_ok=True)
    mode = env.get("MENTARA_TEST_SERVICES") or "embedded"
    basetemp = ["--basetemp", str(temp / mode)]
    pytest = ["-m", "pytest", *basetemp, *rest]
    if env.get("MENTARA_COVERAGE") == "1":
        return _test_with_coverage(pytest, env)
    os.execve(PY, [str(PY), *pytest], env)
    return 0  # not reached


def _test_with_coverage(pytest: list[str], env: dict[str, str]) -> int:
    """The suite under coverage.py (configured in pyproject.toml), then each package's share
    of lines run checked against its floor in ``[tool.mentara.coverage-floors]``."""
    coverage = [str(PY), "-m", "coverage"]
    code = subprocess.run([*coverage, "run", *pytest], env=env).returncode
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for package, floor in config["tool"]["mentara"]["coverage-floors"].items():
        report = [*coverage, "report", f"--include={package}/*"]
        total = subprocess.run([*report, "--format=total"], capture_output=True, text=True)
        measured = float(total.stdout) if total.returncode == 0 else 0.0
        below = measured < floor
        verdict = "BELOW its floor" if below else "floor"
        print(f"dev.py: coverage of {package}/: {measured}% of lines ({verdict} {floor}%)")
        if below:
            subprocess.run(report)  # the files and lines not run
            code = code or 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
