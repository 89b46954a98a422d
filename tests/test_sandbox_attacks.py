"""Hostile candidates against the code sandbox, checked from outside the run.

Each attack is what issue #10 reproduced against the old runner: reading the server's
secrets (its environment, its data folder, the question bank's hidden tests), leaving
processes behind (``setsid`` children, a process whose main thread exits with a raw
``exit`` syscall while another thread lives), and reaching another candidate's run. They run
in Python and JavaScript, as root (this test process is the "server") and as an unprivileged
user the test creates (a driver process of that user runs the code; this process checks
it with ``ps`` and canary files), and once end to end through a real ``mentara serve``.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scoring.code_runner import RunLimits, TestCase, run_tests
from scoring.sandbox_probe import detect_sandbox_support

ROOT = Path(__file__).resolve().parent.parent
QUESTION_FILE = ROOT / "scoring" / "questions" / "two-sum.toml"
FAST = RunLimits(cpu_seconds=2, wall_seconds=5)
# Room for the leftovers to start at all (the default process limit stops them first).
ROOMY = RunLimits(cpu_seconds=2, wall_seconds=5, max_processes=16)
ONE = [TestCase(name="one", args=(1,), expected=2)]


def _ps_lines(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,user,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def _snoop_python(paths: list[str]) -> str:
    """Candidate code that prints every file and environment it can reach."""
    return textwrap.dedent(
        f"""
        import os

        def f(x):
            found = []
            for pid in os.listdir("/proc"):
                for name in ("environ", "cmdline"):
                    try:
                        with open(f"/proc/{{pid}}/{{name}}", "rb") as src:
                            found.append(src.read(8192).decode("latin-1")[:200])
                    except OSError:
                        pass
            for path in {paths!r}:
                try:
                    with open(path, "rb") as src:
                        found.append(src.read(4096).decode("latin-1"))
                except OSError as exc:
                    found.append(f"{{path}}: {{type(exc).__name__}}")
            print("\\n".join(found))
            return x + 1
        """
    )


def _snoop_js(paths: list[str]) -> str:
    return textwrap.dedent(
        f"""
        const fs = require("fs");
        function f(x) {{
          const found = [];
          for (const pid of fs.readdirSync("/proc")) {{
            for (const name of ["environ", "cmdline"]) {{
              try {{ found.push(fs.readFileSync(`/proc/${{pid}}/${{name}}`, "latin1").slice(0, 200)); }}
              catch (error) {{}}
            }}
          }}
          for (const path of {json.dumps(paths)}) {{
            try {{ found.push(fs.readFileSync(path, "latin1").slice(0, 4096)); }}
            catch (error) {{ found.push(path + ": " + error.code); }}
          }}
          console.log(found.join("\\n"));
          return x + 1;
        }}
        """
    )


def _leaver_python(marker: str) -> str:
    """Candidate code that leaves two processes behind: a ``setsid`` sleeper, and a full
    interpreter (``execv`` of the runtime) whose main thread exits by a raw syscall while
    another thread sleeps. Each leftover proves it runs by creating a file in the run's
    ``/tmp`` (the survivor only after its main thread is gone); the function returns
    ``x + 1`` only once both files are there, so a leftover that never started fails the
    test instead of passing it."""
    sleeper = f"import time; open('/tmp/{marker}-sleeper', 'w').close(); time.sleep(60)"
    survivor = (
        "import ctypes, threading, time\n"
        "def live():\n"
        "    time.sleep(0.3)\n"
        f"    open('/tmp/{marker}-survivor', 'w').close()\n"
        "    time.sleep(60)\n"
        "threading.Thread(target=live).start()\n"
        "ctypes.CDLL(None).syscall(60, 0)\n"
    )
    return textwrap.dedent(
        f"""
        import os, sys, time

        def f(x):
            for argv in (
                [sys.executable, "-c", {sleeper!r}, "{marker}"],
                [sys.executable, "-c", {survivor!r}, "{marker}"],
            ):
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        os.execv(argv[0], argv)
                    os._exit(0)
            wanted = {{"{marker}-sleeper", "{marker}-survivor"}}
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if wanted <= set(os.listdir("/tmp")):
                    return x + 1
                time.sleep(0.05)
            return sorted(set(os.listdir("/tmp")) & wanted)
        """
    )


def _leaver_js(marker: str) -> str:
    return textwrap.dedent(
        f"""
        const fs = require("fs");
        const {{ spawn }} = require("child_process");
        function f(x) {{
          const child = spawn("/bin/sh", ["-c", "touch /tmp/{marker}; sleep 60; echo {marker}"],
                              {{ detached: true, stdio: "ignore" }});
          child.unref();
          const nap = new Int32Array(new SharedArrayBuffer(4));
          for (let i = 0; i < 60 && !fs.existsSync("/tmp/{marker}"); i++) Atomics.wait(nap, 0, 0, 50);
          return fs.existsSync("/tmp/{marker}") ? x + 1 : "the leftover never started";
        }}
        """
    )


@pytest.mark.parametrize("language", ["python", "javascript"])
async def test_a_run_reads_no_secret_of_the_server(
    language: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary_env = f"env-canary-{secrets.token_hex(8)}"
    canary_file = f"file-canary-{secrets.token_hex(8)}"
    monkeypatch.setenv("MENTARA_JWT_SECRET", canary_env)
    data = tmp_path / "data"
    data.mkdir()
    (data / "jwt-secret").write_text(canary_file)
    question_marker = "def two_sum"  # the reference solution in the question bank
    assert question_marker in QUESTION_FILE.read_text()
    paths = [str(data / "jwt-secret"), str(QUESTION_FILE), "/etc/shadow", "/etc/hostname"]
    code = _snoop_python(paths) if language == "python" else _snoop_js(paths)
    result = await run_tests(code, "f", ONE, language=language, limits=FAST)
    assert result.status == "passed", result
    seen = result.stdout_tail
    assert "ENOENT" in seen or "FileNotFoundError" in seen, seen  # it did try
    for canary in (canary_env, canary_file, question_marker):
        assert canary not in seen, f"{canary!r} leaked to candidate code:\n{seen}"


@pytest.mark.parametrize("language", ["python", "javascript"])
async def test_no_process_of_a_run_outlives_it(language: str) -> None:
    marker = f"mentara-leftover-{secrets.token_hex(6)}"
    code = _leaver_python(marker) if language == "python" else _leaver_js(marker)
    result = await run_tests(code, "f", ONE, language=language, limits=ROOMY)
    assert result.status == "passed", result
    await asyncio.sleep(1.0)
    assert _ps_lines(marker) == [], "processes outlived their run"


_ATTACKER = textwrap.dedent(
    """
    import os, time

    def f(x):
        seen = set()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) in (1, os.getpid()):  # 1: bwrap
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as src:
                        if b"sandbox_main" in src.read():
                            seen.add(int(pid))
                            os.kill(int(pid), 9)
                except OSError:
                    pass
            time.sleep(0.01)
        return sorted(seen)
    """
)
_VICTIM = "import time\ndef f(x):\n    time.sleep(1.0)\n    return x + 1\n"


async def test_a_second_candidates_run_is_out_of_reach() -> None:
    attacked, victimized = await asyncio.gather(
        run_tests(_ATTACKER, "f", [TestCase(name="scan", args=(0,), expected=[])], limits=FAST),
        run_tests(_VICTIM, "f", ONE, limits=FAST),
    )
    assert victimized.status == "passed", victimized
    assert attacked.status == "passed", attacked  # it saw no other run at all


_DRIVER = """
import asyncio, json, sys
from scoring.code_runner import RunLimits, TestCase, run_tests
from scoring.sandbox_probe import detect_sandbox_support

async def main():
    support = await detect_sandbox_support()
    limits = RunLimits(cpu_seconds=2, wall_seconds=5, max_processes=16)
    runs = json.loads(sys.stdin.read())  # [[code, language, test name, args, expected], ...]
    results = await asyncio.gather(*(
        run_tests(code, "f", [TestCase(name=name, args=tuple(args), expected=expected)],
                  language=language, limits=limits)
        for code, language, name, args, expected in runs
    ))
    print(json.dumps({"state": support.state, "seccomp": support.seccomp, "results": [
        {"status": r.status, "tail": r.stdout_tail, "error": r.error} for r in results
    ]}))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def unprivileged() -> Iterator[tuple[str, Path]]:
    """A user created for this test, and a folder it can read holding the runner's code.

    This project's interpreter may sit where other users cannot read (root's home), so the
    driver runs on Debian's ``/usr/bin/python3`` with copies of the packages the runner needs
    in a folder under the system's temporary folder (the checkout may be private too).
    """
    if os.geteuid() != 0:
        yield pwd.getpwuid(os.geteuid()).pw_name, ROOT
        return
    name = "mentara-sbx"
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
    check = ["/usr/bin/python3", "-c", "import sys; print(tuple(sys.version_info[:2]))"]
    version = subprocess.run(check, capture_output=True, text=True)
    assert version.stdout.strip() == str(tuple(sys.version_info[:2])), (
        "the unprivileged test needs Debian's python3 of this interpreter's version"
    )
    folder = Path(tempfile.mkdtemp(prefix="mentara-sbx-"))
    try:
        for package in ("scoring", "protocol"):
            shutil.copytree(ROOT / package, folder / package)
        import msgpack
        import msgspec
        import pyseccomp

        for module in (msgspec, msgpack):
            shutil.copytree(Path(str(module.__file__)).parent, folder / module.__name__)
        shutil.copy(str(pyseccomp.__file__), folder / "pyseccomp.py")
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield name, folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _as_user(
    user: str, folder: Path, runs: list[list[object]], env: dict[str, str]
) -> dict[str, Any]:
    """Run ``runs`` at once in a driver process of ``user``; what its runner reported."""
    entry = pwd.getpwnam(user)
    proc = subprocess.run(
        ["/usr/bin/python3" if os.geteuid() == 0 else sys.executable, "-c", _DRIVER],
        input=json.dumps(runs),
        capture_output=True,
        text=True,
        timeout=60,
        user=entry.pw_uid if os.geteuid() == 0 else None,
        group=entry.pw_gid if os.geteuid() == 0 else None,
        extra_groups=[] if os.geteuid() == 0 else None,
        cwd=entry.pw_dir if os.geteuid() == 0 else None,
        env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin", "HOME": entry.pw_dir, **env},
    )
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_as_an_unprivileged_server_the_sandbox_holds(
    language: str, unprivileged: tuple[str, Path]
) -> None:
    user, folder = unprivileged
    home = Path(pwd.getpwnam(user).pw_dir)
    canary_env = f"env-canary-{secrets.token_hex(8)}"
    canary_file = f"file-canary-{secrets.token_hex(8)}"
    secret = home / f"secret-{secrets.token_hex(4)}"
    secret.write_text(canary_file)
    shutil.chown(secret, user, user)
    secret.chmod(0o600)
    try:
        paths = [str(secret), str(folder / "scoring" / "questions" / "two-sum.toml")]
        code = _snoop_python(paths) if language == "python" else _snoop_js(paths)
        one = [[code, language, "one", [1], 2]]
        found = _as_user(user, folder, one, {"MENTARA_JWT_SECRET": canary_env})
        assert found["state"] == "isolated", found
        assert found["seccomp"], found
        (result,) = found["results"]
        assert result["status"] == "passed", found
        for canary in (canary_env, canary_file, "def two_sum"):
            assert canary not in result["tail"], f"{canary!r} leaked:\n{result['tail']}"
        marker = f"mentara-leftover-{secrets.token_hex(6)}"
        code = _leaver_python(marker) if language == "python" else _leaver_js(marker)
        found = _as_user(user, folder, [[code, language, "one", [1], 2]], {})
        assert found["results"][0]["status"] == "passed", found
        time.sleep(1.0)
        assert _ps_lines(marker) == [], "processes outlived their run"
    finally:
        secret.unlink(missing_ok=True)


async def test_the_probe_reports_isolation_here() -> None:
    # No skip: on a host where bubblewrap cannot isolate, this says why.
    support = await detect_sandbox_support()
    assert support.isolated, support.detail


def test_as_an_unprivileged_server_a_second_run_is_out_of_reach(
    unprivileged: tuple[str, Path],
) -> None:
    user, folder = unprivileged
    runs: list[list[object]] = [
        [_ATTACKER, "python", "scan", [0], []],
        [_VICTIM, "python", "one", [1], 2],
    ]
    attacked, victimized = _as_user(user, folder, runs, {})["results"]
    assert victimized["status"] == "passed", victimized
    assert attacked["status"] == "passed", attacked  # it saw no other run at all


async def test_a_full_interpreter_inside_gets_no_new_namespace_nor_kernel_surface() -> None:
    # The harness blocks imports, but ``execv`` of the runtime gives a full interpreter with
    # ctypes: the seccomp filter still refuses these calls (EPERM = 1).
    probe = (
        "import ctypes, json; libc = ctypes.CDLL(None, use_errno=True); out = {}\n"
        'for name, call in (("unshare_user", lambda: libc.unshare(0x10000000)),\n'
        '                   ("unshare_mount", lambda: libc.unshare(0x00020000)),\n'
        '                   ("ptrace_traceme", lambda: libc.ptrace(0, 0, 0, 0)),\n'
        '                   ("bpf", lambda: libc.syscall(321, 0, 0, 0)),\n'
        '                   ("keyctl", lambda: libc.syscall(250, 0, 0, 0)),\n'
        '                   ("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))):\n'
        "    out[name] = [call(), ctypes.get_errno()]\n"
        "print(json.dumps(out))\n"
    )
    code = textwrap.dedent(
        f"""
        import json, os, sys

        def f(x):
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.dup2(write, 1)
                os.execv(sys.executable, [sys.executable, "-c", {probe!r}])
            os.close(write)
            data = b""
            while chunk := os.read(read, 4096):
                data += chunk
            os.waitpid(pid, 0)
            return json.loads(data)
        """
    )
    refused = [-1, 1]
    names = ("unshare_user", "unshare_mount", "ptrace_traceme", "bpf", "keyctl", "mount")
    expected = {name: refused for name in names}
    result = await run_tests(code, "f", [TestCase(name="calls", args=(0,), expected=expected)])
    assert result.status == "passed", result
