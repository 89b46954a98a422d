"""The sandboxed code runner: statuses, limits, isolation and the concurrency bound.

Each attack runs for real in the sandbox. Where the host cannot provide a feature (no root,
no namespaces), the test asserts that the probe reported it unavailable instead of
skipping, so a missing feature is visible in the results rather than hidden as a skip.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scoring.code_runner import (
    DEFAULT_MAX_CONCURRENT,
    CodeRunner,
    CompareMode,
    RunLimits,
    RunResult,
    SandboxSupport,
    SandboxUnavailable,
    TestCase,
    default_runner,
    run_tests,
    values_match,
)
from scoring.sandbox_probe import detect_sandbox_support
from tests.sandbox_support import gone, sandbox_processes

FAST = RunLimits(cpu_seconds=1, wall_seconds=2.5)
ADD_TESTS = [
    TestCase(name="small", args=(1, 2), expected=3),
    TestCase(name="zeros", args=(0, 0), expected=0),
    TestCase(name="negative", args=(-5, 2), expected=-3),
]


def source(text: str) -> str:
    return textwrap.dedent(text).lstrip()


async def run(
    code: str, tests: list[TestCase] | None = None, *, limits: RunLimits | None = None
) -> RunResult:
    limits = limits or RunLimits()
    return await run_tests(
        source(code), "add", ADD_TESTS if tests is None else tests, limits=limits
    )


async def host_still_works() -> None:
    result = await run("def add(a, b):\n    return a + b\n", limits=FAST)
    assert result.status == "passed", result
    assert sandbox_processes() == []


async def test_a_correct_solution_passes_and_its_output_is_captured() -> None:
    result = await run(
        """
        def add(a, b):
            print("adding", a, b)
            return a + b
        """
    )
    assert result.status == "passed"
    assert [t.name for t in result.tests] == ["small", "zeros", "negative"]
    assert all(t.passed and t.message is None for t in result.tests)
    assert result.stdout_tail == "adding 1 2\nadding 0 0\nadding -5 2\n"
    assert result.error is None
    assert 0 < result.duration_ms < 5000


async def test_a_wrong_answer_fails_with_expected_and_actual_values() -> None:
    result = await run("def add(a, b):\n    return a - b\n")
    assert result.status == "failed"
    assert result.tests[0].message == "expected 3, got -1"
    assert result.tests[1].passed  # 0 - 0 == 0 + 0
    assert result.passed_count == 1


async def test_an_exception_fails_its_test_only_and_names_the_line() -> None:
    result = await run(
        """
        def add(a, b):
            if a == 0:
                return 1 // a
            return a + b
        """
    )
    assert result.status == "failed"
    assert [t.passed for t in result.tests] == [True, False, True]
    assert (
        result.tests[1].message == "ZeroDivisionError: integer division or modulo by zero (line 3)"
    )


async def test_messages_leak_no_host_paths_or_harness_internals() -> None:
    result = await run("def add(a, b):\n    return open('/nonexistent/x').read()\n")
    for outcome in result.tests:
        assert outcome.message is not None
        assert "_sandbox_main" not in outcome.message and "<string>" not in outcome.message
        assert outcome.message.startswith("FileNotFoundError")
    result = await run("def add(a, b):\n    raise KeyError('k')\n")
    assert result.tests[0].message == "KeyError: 'k' (line 2)"


@pytest.mark.parametrize(
    ("code", "error_start"),
    [
        ("def add(a, b)\n    return a + b\n", "SyntaxError: expected ':' (line 1)"),
        ("raise RuntimeError('at import')\ndef add(a, b):\n    return 0\n", "RuntimeError"),
        ("def subtract(a, b):\n    return a - b\n", "NameError: function 'add' is not defined"),
        ("add = 42\n", "TypeError: 'add' is not a function"),
        ("import numpy\ndef add(a, b):\n    return 0\n", "ModuleNotFoundError"),
        ("import os\ndef add(a, b):\n    os._exit(0)\n", "the program exited before all tests ran"),
    ],
    ids=["syntax", "crash-at-import", "missing-function", "not-callable", "no-numpy", "exit"],
)
async def test_code_that_cannot_run_is_an_error(code: str, error_start: str) -> None:
    result = await run(code, limits=FAST)
    assert result.status == "error"
    assert result.error is not None and result.error.startswith(error_start), result.error
    assert not any(t.passed for t in result.tests)
    assert all(t.message and t.message.startswith("not run") for t in result.tests)


async def test_a_leetcode_style_solution_class_works() -> None:
    result = await run("class Solution:\n    def add(self, a, b):\n        return a + b\n")
    assert result.status == "passed"


async def test_the_preloaded_standard_library_is_importable() -> None:
    result = await run(
        """
        from __future__ import annotations
        import bisect, collections, functools, heapq, itertools, math, re
        from typing import List

        def add(a: int, b: int) -> int:
            return sum(heapq.nsmallest(2, collections.Counter({a: 1, b: 1}).elements())) if a != b else a + b
        """
    )
    assert result.status == "passed", result


async def test_an_infinite_loop_times_out_within_the_cpu_bound() -> None:
    started = time.monotonic()
    result = await run("def add(a, b):\n    while True:\n        pass\n", limits=FAST)
    elapsed = time.monotonic() - started
    assert result.status == "timeout"
    assert result.error == "time limit exceeded"
    assert result.tests[0].message == "time limit exceeded"
    assert result.tests[1].message == "not run: time limit exceeded"
    assert elapsed < FAST.wall_seconds + 1.5
    await host_still_works()


async def test_sleeping_forever_hits_the_wall_clock_limit() -> None:
    limits = RunLimits(cpu_seconds=5, wall_seconds=1.0)
    started = time.monotonic()
    result = await run("import time\ndef add(a, b):\n    time.sleep(3600)\n", limits=limits)
    assert result.status == "timeout"
    assert 1.0 <= time.monotonic() - started < 2.5
    await host_still_works()


async def test_output_printed_before_a_timeout_is_kept() -> None:
    code = "def add(a, b):\n    print('working on', a)\n    while True:\n        pass\n"
    result = await run(code, limits=FAST)
    assert result.status == "timeout"
    assert result.stdout_tail == "working on 1\n"


@pytest.mark.parametrize(
    "code",
    [
        "def add(a, b):\n    block = bytearray(1 << 31)\n    return len(block)\n",
        "def add(a, b):\n    hog = []\n    while True:\n        hog.append(' ' * (1 << 20))\n",
    ],
    ids=["one-big-block", "growing-list"],
)
async def test_a_memory_bomb_is_an_error_and_the_host_is_fine(code: str) -> None:
    result = await run(code, limits=FAST)
    assert result.status in ("error", "timeout")
    if result.status == "error":
        assert result.error == "MemoryError: memory limit exceeded"
    await host_still_works()


async def test_a_fork_bomb_is_contained() -> None:
    support = await detect_sandbox_support()
    code = """
        import os

        def add(a, b):
            while True:
                os.fork()
        """
    started = time.monotonic()
    result = await run(code, limits=FAST)
    assert result.status != "passed"
    assert time.monotonic() - started < FAST.wall_seconds + 1.5
    if support.isolated or support.as_root:
        # The process limit stopped it: the fork itself failed.
        assert result.status == "failed"
        assert result.tests[0].message is not None
        assert result.tests[0].message.startswith("BlockingIOError")
    await host_still_works()


async def test_a_fork_bomb_that_keeps_retrying_is_killed_with_all_its_children() -> None:
    code = """
        import os, time

        def add(a, b):
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.01)
        """
    started = time.monotonic()
    result = await run(code, limits=FAST)
    assert result.status == "timeout"
    assert time.monotonic() - started < FAST.wall_seconds + 1.5
    await host_still_works()


async def test_forked_children_left_behind_are_killed() -> None:
    code = """
        import os, time

        def add(a, b):
            if os.fork() == 0:
                time.sleep(3600)
            return a + b
        """
    result = await run(code, limits=FAST)
    assert result.status == "passed"
    assert result.duration_ms < 2000
    await host_still_works()


async def test_writing_a_huge_file_is_stopped_at_the_file_size_limit() -> None:
    limits = RunLimits(cpu_seconds=2, wall_seconds=4, file_size_bytes=256 * 1024)
    code = """
        import os

        def add(a, b):
            try:
                with open("big.bin", "wb") as out:
                    for _ in range(1024):
                        out.write(b"x" * (1 << 20))
            except OSError as exc:
                return ["stopped", type(exc).__name__, os.path.getsize("big.bin")]
            return ["written", "", os.path.getsize("big.bin")]
        """
    tests = [TestCase(name="big", args=(0, 0), expected=["stopped", "OSError", 256 * 1024])]
    result = await run(code, tests, limits=limits)
    assert result.status == "passed", result.tests


async def test_the_working_folder_is_fresh_private_and_removed_afterwards() -> None:
    code = """
        import os

        def add(a, b):
            return [os.getcwd(), os.listdir("."), oct(os.stat(".").st_mode & 0o777)]
        """
    result = await run(code, [TestCase(name="cwd", args=(0, 0), expected=[])])
    message = result.tests[0].message
    assert message is not None
    # A tmpfs of its own in the run's mount namespace: nothing of it exists on the host.
    assert message.endswith('got ["/work", [], "0o777"]'), message


async def test_the_environment_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENTARA_JWT_SECRET", "host-secret-value")
    code = """
        import os

        def add(a, b):
            leaked = [k for k, v in os.environ.items() if "SECRET" in k or "host-secret" in v]
            return [leaked, sorted(k for k in os.environ if k != "LC_CTYPE")]
        """
    result = await run(code, [TestCase(name="env", args=(0, 0), expected=[[], []])])
    assert result.status == "passed", result.tests


async def test_the_servers_environment_and_files_are_out_of_reach() -> None:
    support = await detect_sandbox_support()
    if not (support.isolated or support.as_root):
        assert os.geteuid() != 0, "as root the probe must be able to switch user"
        assert "drop" not in support.detail.split(";")[0]
        return
    code = f"""
        import os

        def add(a, b):
            outcomes = []
            for attempt in (
                lambda: open("/proc/{os.getpid()}/environ", "rb").read(),
                lambda: open("{os.getcwd()}/mentara-sandbox-escape", "w").write("x"),
                lambda: open("/etc/mentara-sandbox-escape", "w").write("x"),
                lambda: os.kill({os.getpid()}, 0),
            ):
                try:
                    attempt()
                    outcomes.append("allowed")
                except (PermissionError, FileNotFoundError, ProcessLookupError):
                    # Not found: the path lies under a folder the sandbox replaced with a
                    # private one (a checkout under /tmp, say); out of reach all the same.
                    outcomes.append("denied")
            return outcomes
        """
    tests = [TestCase(name="reach", args=(0, 0), expected=["denied"] * 4)]
    result = await run(code, tests)
    assert result.status == "passed", result.tests
    assert gone("mentara-sandbox-escape")


async def test_shared_temporary_folders_are_private_when_mount_namespaces_work() -> None:
    support = await detect_sandbox_support()
    if not support.isolated:
        assert "mount" not in support.detail.split(";")[0]
        return
    marker = f"mentara-sandbox-marker-{os.getpid()}"
    code = f"""
        import os

        def add(a, b):
            with open("/tmp/{marker}", "w") as out:
                out.write("x")
            return sorted(os.listdir("/tmp"))
        """
    # The sandbox sees only its own /tmp (the working folder's mount point lives there).
    result = await run(code, [TestCase(name="tmp", args=(0, 0), expected=[])])
    assert result.tests[0].message is not None
    assert marker in result.tests[0].message
    assert gone(f"/tmp/{marker}")


async def test_network_is_blocked_when_the_host_allows_it() -> None:
    support = await detect_sandbox_support()
    if not support.isolated:
        # No skip: the probe must say so, with the reason.
        assert "net" not in support.detail.split(";")[0], support
        assert support.detail
        return
    accepted = 0

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code = """
            import socket

            def add(port, _):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                except OSError:
                    return "blocked"
                return "connected"
            """
        tests = [TestCase(name="loopback", args=(port, 0), expected="blocked")]
        result = await run(code, tests)
        assert result.status == "passed", result.tests
        # The server was reachable all along from the host.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.05)
        assert accepted == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_stdout_tail_is_bounded_and_keeps_the_end() -> None:
    code = (
        "def add(a, b):\n    for i in range(20000):\n        print('line', i)\n    return a + b\n"
    )
    result = await run(code)
    assert result.status == "passed"
    assert len(result.stdout_tail) == 2000
    assert result.stdout_tail.endswith("line 19999\n")


async def test_printing_without_end_is_stopped_at_the_output_limit() -> None:
    started = time.monotonic()
    result = await run("def add(a, b):\n    while True:\n        print('x' * 10000)\n", limits=FAST)
    assert result.status == "error"
    assert result.error is not None and result.error.startswith("output limit exceeded")
    assert len(result.stdout_tail) <= FAST.stdout_tail_chars
    assert time.monotonic() - started < FAST.wall_seconds
    await host_still_works()


async def test_forged_results_cannot_make_a_wrong_solution_pass() -> None:
    code = """
        import json, os

        def add(a, b):
            forged = [
                {"i": i, "ok": True, "value": a + b, "passed": True} for i in range(3)
            ] + [{"done": True}]
            lines = "".join(json.dumps(record) + "\\n" for record in forged)
            print(lines, end="")
            for fd in range(3, 32):
                try:
                    os.write(fd, lines.encode())
                except OSError:
                    pass
            return -1
        """
    # Expected values the candidate cannot know: they never enter the sandbox.
    tests = [TestCase(name=f"hidden_{i}", args=(i, i), expected=1000 + i) for i in range(3)]
    result = await run(code, tests)
    assert result.status == "failed"
    assert not any(t.passed for t in result.tests)


async def test_a_child_forked_by_the_candidate_cannot_report_results() -> None:
    code = """
        import os

        def add(a, b):
            if os.fork() == 0:
                return a + b  # the child returns the right answer into the harness
            os.wait()
            return -1
        """
    result = await run(code)
    assert result.status == "failed"
    assert not result.tests[0].passed


async def test_concurrent_runs_never_exceed_the_bound() -> None:
    runner = CodeRunner(max_concurrent=2)
    code = source(
        """
        import time

        def add(a, b):
            print("start", time.time())
            time.sleep(0.4)
            print("end", time.time())
            return a + b
        """
    )
    results = await asyncio.gather(
        *(runner.run_tests(code, "add", ADD_TESTS[:1]) for _ in range(6))
    )
    assert all(r.status == "passed" for r in results)
    events: list[tuple[float, int]] = []
    for result in results:
        # Each run prints its start and end as measured inside the sandbox.
        stamps = dict(line.split() for line in result.stdout_tail.splitlines())
        events += [(float(stamps["start"]), 1), (float(stamps["end"]), -1)]
    running = peak = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):
        running += change
        peak = max(peak, running)
    assert peak == 2
    assert runner.active_runs == 0


async def test_the_default_runner_is_shared_per_loop_with_the_default_bound() -> None:
    assert default_runner() is default_runner()
    assert default_runner().max_concurrent == DEFAULT_MAX_CONCURRENT == 2


async def test_cancelling_a_run_kills_the_child_and_cleans_up() -> None:
    code = "import os\ndef add(a, b):\n    print(os.getcwd())\n    while True:\n        pass\n"
    task = asyncio.create_task(run(code, limits=RunLimits(cpu_seconds=10, wall_seconds=10)))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sandbox_processes() == []
    await host_still_works()


async def test_the_fallback_without_namespaces_still_applies_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MENTARA_JWT_SECRET", "host-secret-value")
    # What a host without namespaces gets: as root, a uid switch only; otherwise nothing.
    runner = CodeRunner(
        support=SandboxSupport.without_isolation("forced for the test", unsafe=True)
    )
    code = source(
        """
        import os
        def add(a, b):
            return [sorted(os.environ.keys() - {'LC_CTYPE'}), os.getuid() == 0]
        """
    )
    tests = [TestCase(name="env", args=(0, 0), expected=[[], False])]
    result = await runner.run_tests(code, "add", tests)
    assert result.status == "passed", result.tests
    spin = "def add(a, b):\n    while True:\n        pass\n"
    result = await runner.run_tests(spin, "add", ADD_TESTS, limits=FAST)
    assert result.status == "timeout"
    await host_still_works()


async def test_candidate_code_never_runs_as_root() -> None:
    code = "import os\ndef add(a, b):\n    return [os.getuid() == 0, os.geteuid() == 0]\n"
    tests = [TestCase(name="uid", args=(0, 0), expected=[False, False])]
    for support in (
        await detect_sandbox_support(),
        SandboxSupport.without_isolation("forced for the test", unsafe=True),
    ):
        result = await CodeRunner(support=support).run_tests(code, "add", tests)
        assert result.status == "passed", (support, result)


async def test_without_isolation_code_does_not_run_unless_opted_in() -> None:
    runner = CodeRunner(support=SandboxSupport.without_isolation("forced", unsafe=False))
    with pytest.raises(SandboxUnavailable, match="forced"):
        await runner.run_tests("def add(a, b):\n    return a + b\n", "add", ADD_TESTS)


async def test_invalid_calls_raise() -> None:
    with pytest.raises(ValueError, match="compare mode"):
        await run_tests("", "add", ADD_TESTS, compare="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="identifier"):
        await run_tests("", "not a name", ADD_TESTS)
    with pytest.raises(ValueError, match="JSON"):
        await run_tests("", "add", [TestCase(name="x", args=(object(),), expected=1)])
    with pytest.raises(ValueError, match="positive"):
        RunLimits(cpu_seconds=0)


@pytest.mark.parametrize(
    ("expected", "got", "compare", "matches"),
    [
        (3, 3, "exact", True),
        (3, 3.0, "exact", True),
        (1, True, "exact", False),
        (False, 0, "exact", False),
        ([1, 2], [2, 1], "exact", False),
        ([1, 2], [2, 1], "unordered", True),
        ([1, 1, 2], [1, 2, 2], "unordered", False),
        ([[1, 2], [3]], [[3], [2, 1]], "unordered", False),
        ([[1, 2], [3]], [[3], [2, 1]], "sorted", True),
        ([0.1, 0.2], [0.1000000001, 0.2], "float", True),
        ([0.1, 0.2], [0.11, 0.2], "float", False),
        ({"a": [1]}, {"a": [1]}, "exact", True),
        ("x", ["x"], "unordered", False),
    ],
)
def test_values_match(expected: object, got: object, compare: CompareMode, matches: bool) -> None:
    assert values_match(expected, got, compare) is matches


_UVLOOP_RUNS = """
import asyncio, uvloop
from scoring.code_runner import CodeRunner, RunLimits
from scoring.question_bank import load_question_bank

async def main():
    q = load_question_bank().get("two-sum")
    runner = CodeRunner(max_concurrent=2)
    code = "def two_sum(nums, target):\\n    return [0, 1]\\n"
    for _ in range(3):
        await asyncio.gather(*(
            runner.run_tests(code, q.function_name, q.visible_tests, language="python",
                             compare=q.compare, tolerance=q.tolerance, limits=RunLimits())
            for _ in range(2)
        ))
    print("ran")

uvloop.run(main())
"""


def test_code_runs_under_uvloop_close_each_descriptor_once(tmp_path: Path) -> None:
    """The server's loop is uvloop. A descriptor closed twice is a descriptor of some other
    thread or connection closed once the number is reused (uvloop's connect_read_pipe did
    this to the results pipe, MagicStack/uvloop#763): strace the runs and find no close()
    answered EBADF."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (apt install strace)")
    script = tmp_path / "runs.py"
    script.write_text(_UVLOOP_RUNS)
    trace = tmp_path / "close.trace"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=close", "-o", str(trace), sys.executable, str(script)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "ran" in done.stdout, done.stderr[-2000:]
    double_closes = [line for line in trace.read_text().splitlines() if "EBADF" in line]
    assert double_closes == []
