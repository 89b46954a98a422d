"""The sandboxed code runner: runs a candidate's function, in Python or JavaScript, against
test cases.

:meth:`CodeRunner.run_tests` (or :func:`run_tests`) starts one child per run: bubblewrap
(:mod:`scoring.sandbox` says what it isolates and how) around a bare Python interpreter
(``python -I -S -B -u``) running the harness (:mod:`scoring.sandbox_harness`), which sets
the resource limits, switches uid when the server is root, and runs the function, or, for
JavaScript, replaces itself with Node (:mod:`scoring.languages`, :mod:`scoring.js_harness`).
The source and the tests' *arguments* go to the child on stdin; one JSON record per test
comes back on a separate pipe; expected values never enter the child (the parent judges,
:mod:`scoring.run_results`). The coroutine does not block the event loop and is safe to
cancel (the child and everything it started are killed, everything is cleaned up).

Limits in force on every run: CPU seconds, address space, processes, file size, open files
and no core files per process (``setrlimit``), a wall-clock timeout, bounded output and
results, a private ``tmpfs`` working folder of ``workdir_bytes``. Where a root server can
make cgroups (:mod:`scoring.cgroups`), each run also gets its own: memory and processes
across all of the run's processes, and at most one CPU. :attr:`SandboxSupport.detail` says
which hold on this host.

Fail closed: when bubblewrap is missing or does not isolate (:func:`detect_sandbox_support`
probes once per process), :meth:`CodeRunner.run_tests` raises :class:`SandboxUnavailable`,
unless the runner was made with ``allow_unsafe=True`` (``MENTARA_SANDBOX=unsafe-no-isolation``,
a developer's laptop): then code runs with the limits and an empty environment only, as the
server's user (as root: as a sandbox uid, its processes swept after the run).

What a malicious candidate can and cannot do. Candidate code runs in the harness's own
interpreter, so it can do whatever the harness can: write to the result pipe, exit early,
replace builtins, read the tests' arguments (hidden ones included: do not echo a hidden
run's ``stdout_tail`` to the candidate). It cannot make a wrong answer pass (a forged record
only claims a return value), cannot exceed the limits, and cannot outlive the run or see
anything of the host but the read-only runtime. Imports: only the standard-library modules
the harness loads before running candidate code (:data:`PRELOADED_MODULES`). JavaScript code
can ``require`` Node's built-in modules: what they reach is the sandbox, no more.

Statuses: ``passed`` every test passed; ``failed`` the code ran and some test failed;
``error`` the code did not compile, crashed or exited outside a test, hit the memory or
output limit, or the sandbox could not start it; ``timeout`` the wall-clock or CPU limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from typing import Any, Final

from scoring.cgroups import CgroupRoot, RunCgroup
from scoring.compare import COMPARE_MODES, CompareMode, values_match
from scoring.js_harness import JS_HARNESS_SOURCE
from scoring.languages import (
    LANGUAGES,
    NODE_ADDRESS_SPACE_BYTES,
    NODE_STACK_BYTES,
    NODE_THREADS,
    Language,
    function_names,
    node_flags,
    node_path,
    normalize_language,
    supported_languages,
)
from scoring.run_results import (
    ChildOutput,
    RunLimits,
    RunResult,
    RunStatus,
    TestCase,
    TestOutcome,
    judge,
    not_run,
)
from scoring.sandbox import (
    PROBE_SLOT,
    SANDBOX_UNSAFE,
    WORKDIR,
    SandboxSupport,
    SandboxUnavailable,
    UidSlots,
    bwrap_command,
    find_bwrap,
    probe_bwrap,
    runtime_paths,
    sandbox_python,
)
from scoring.sandbox_harness import harness_command as _harness_command
from scoring.seccomp_filter import filter_program, program_fd

__all__ = [
    "COMPARE_MODES",
    "DEFAULT_MAX_CONCURRENT",
    "LANGUAGES",
    "PRELOADED_MODULES",
    "SANDBOX_UNSAFE",
    "CodeRunner",
    "CompareMode",
    "Language",
    "RunLimits",
    "RunResult",
    "RunStatus",
    "SandboxSupport",
    "SandboxUnavailable",
    "TestCase",
    "TestOutcome",
    "default_runner",
    "detect_sandbox_support",
    "run_tests",
    "supported_languages",
    "values_match",
]

DEFAULT_MAX_CONCURRENT: Final = 2
DEFAULT_LIMITS: Final = RunLimits()
PRELOADED_MODULES: Final[tuple[str, ...]] = (
    "__future__", "abc", "array", "bisect", "cmath", "collections", "collections.abc",
    "contextlib", "copy", "dataclasses", "datetime", "decimal", "enum", "fractions",
    "functools", "graphlib", "heapq", "io", "itertools", "json", "math", "numbers",
    "operator", "queue", "random", "re", "statistics", "string", "struct", "textwrap",
    "threading", "time", "typing", "unicodedata",
)  # fmt: skip

_NET_MODULES: Final = ("socket", "encodings.idna")  # getaddrinfo encodes host names
_KILL_GRACE_S: Final = 0.5
# What a cgroup allows beyond the run's own bounds: the interpreter and harness (Python), or
# V8's heap and code space (Node); bwrap's two processes and the harness for pids.
_CGROUP_MEMORY_EXTRA: Final = 64 << 20
_CGROUP_NODE_MEMORY_EXTRA: Final = 256 << 20
_CGROUP_PIDS_EXTRA: Final = 3

_supports: dict[bool, SandboxSupport] = {}
_cgroup_root: CgroupRoot | None = None
_group_names = itertools.count(1)


async def detect_sandbox_support(allow_unsafe: bool = False) -> SandboxSupport:
    """What this host gives a run, probed once per process (cached) with a real sandbox.

    ``allow_unsafe`` only marks a host without isolation as allowed to run code anyway. Never
    raises; a probe that broke down (a timeout under load) is not cached and is retried on the
    next call.
    """
    global _cgroup_root
    cached = _supports.get(allow_unsafe)
    if cached is not None:
        return cached
    as_root = os.geteuid() == 0
    bwrap = find_bwrap() if sys.platform == "linux" else None
    conclusive = True
    cgroup: str | None = None
    disable_userns = False
    program, seccomp_detail = filter_program()
    if bwrap is None:
        isolated, detail = False, "bubblewrap (bwrap) is not installed"
    else:
        isolated, disable_userns, detail = await probe_bwrap(
            bwrap, as_root, UidSlots.uid(PROBE_SLOT), program
        )
        conclusive = "did not start" not in detail
        if isolated:
            detail += f"; {seccomp_detail}"
        if isolated and as_root:
            _cgroup_root, cgroup_detail = await asyncio.to_thread(CgroupRoot.detect)
            cgroup = None if _cgroup_root is None else _cgroup_root.version
            detail += f"; {cgroup_detail}"
        elif isolated:
            detail += "; no cgroups (not root): limits are per process"
    if not isolated:
        detail = f"code cannot run isolated: {detail}"
        if allow_unsafe:
            detail += f"; running it WITHOUT isolation ({SANDBOX_UNSAFE})"
    support = SandboxSupport(
        isolated, as_root, cgroup, allow_unsafe, detail, bwrap, disable_userns, program is not None
    )
    if conclusive:
        _supports[allow_unsafe] = support
    return support


class CodeRunner:
    """Runs candidate code, at most ``max_concurrent`` children at a time.

    One runner belongs to one event loop. ``support`` overrides the probed isolation (tests
    use it); by default :func:`detect_sandbox_support` decides, with ``allow_unsafe``.
    """

    def __init__(
        self,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        *,
        support: SandboxSupport | None = None,
        allow_unsafe: bool = False,
    ) -> None:
        if not 1 <= max_concurrent < PROBE_SLOT:
            raise ValueError(f"max_concurrent must be 1 to {PROBE_SLOT - 1}")
        self._max_concurrent = max_concurrent
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._support = support
        self._allow_unsafe = allow_unsafe
        self._active = 0

    @property
    def max_concurrent(self) -> int:
        return self._max_concurrent

    @property
    def active_runs(self) -> int:
        """Children running now (at most ``max_concurrent``)."""
        return self._active

    async def support(self) -> SandboxSupport:
        """The isolation this runner's runs get."""
        return self._support or await detect_sandbox_support(self._allow_unsafe)

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
        """Run ``function_name`` from ``source`` on each test, in order, in one child.

        ``language``: ``"python"``, ``"javascript"`` or ``"js"``. In JavaScript the
        function may also be named in camelCase (``two_sum`` or ``twoSum``). Waits for a
        free slot first. Raises :class:`SandboxUnavailable` when the code cannot run isolated
        (and the runner does not allow it unisolated), :class:`ValueError` for an unknown
        ``language`` or ``compare`` mode, a ``function_name`` that is not an identifier, or
        test arguments that are not JSON values; everything the candidate's code does is
        reported in the result, and so is a language this host cannot run (an ``error``;
        see :func:`supported_languages`). ``message`` of a failed test shows expected and
        actual values: show it to the candidate for visible tests only. Safe to cancel.
        """
        lang = normalize_language(language)
        if compare not in COMPARE_MODES:
            raise ValueError(f"unknown compare mode {compare!r}")
        names = function_names(function_name, lang)
        try:
            arguments = [json.dumps(list(t.args), allow_nan=False) for t in tests]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"test arguments must be JSON values: {exc}") from None
        node = None
        if lang == "javascript":
            node = node_path()
            if node is None:
                error = "JavaScript is not available on this server (no node)"
                return not_run(tests, error, "JavaScript is not available on this server")
            node = _resolved(node)  # the sandbox binds the real file, not a link to it
            request: dict[str, Any] = {"names": names, "value_limit": limits.value_bytes}
        else:
            request = {"function_name": function_name}
        payload = json.dumps({"source": source, "tests": arguments, **request}).encode()
        support = await self.support()
        if not support.can_run:
            raise SandboxUnavailable(f"the code sandbox is unavailable: {support.detail}")
        async with self._semaphore:
            self._active += 1
            try:
                return await self._run(payload, node, tests, compare, tolerance, limits, support)
            finally:
                self._active -= 1

    async def _run(
        self,
        payload: bytes,
        node: str | None,
        tests: Sequence[TestCase],
        compare: CompareMode,
        tolerance: float,
        limits: RunLimits,
        support: SandboxSupport,
    ) -> RunResult:
        """One child: bubblewrap around Python's harness, which execs ``node`` when given."""
        isolated = support.isolated
        slot = _uid_slots.acquire() if support.as_root else None
        uid = None if slot is None else UidSlots.uid(slot)
        host_workdir = None if isolated else tempfile.mkdtemp(prefix="mentara-run-")
        group: RunCgroup | None = None
        try:
            if host_workdir is not None and uid is not None:
                os.chown(host_workdir, uid, uid)
            nproc = limits.max_processes + (0 if support.as_root or not isolated else 1)
            config: dict[str, Any] = {
                "workdir": WORKDIR if isolated else host_workdir,
                "uid": uid,
                # Sockets exist, so a connection fails for the right reason: no network.
                "preload": PRELOADED_MODULES + _NET_MODULES if node is None else (),
                "limits": {
                    "cpu": limits.cpu_seconds,
                    "memory": limits.memory_bytes,
                    "nproc": nproc,
                    "fsize": limits.file_size_bytes,
                    "nofile": limits.open_files,
                    "value": limits.value_bytes,
                },
            }
            if node is not None:
                config["exec"] = [node, *node_flags(limits.memory_bytes), "-e", JS_HARNESS_SOURCE]
                config["limits"] |= {
                    "memory": limits.memory_bytes + NODE_ADDRESS_SPACE_BYTES,
                    "nproc": nproc + NODE_THREADS,
                    "nproc_shared": uid is None and not isolated,
                    "stack": NODE_STACK_BYTES,
                }
            if isolated and support.cgroup is not None and _cgroup_root is not None:
                group = await asyncio.to_thread(
                    _cgroup_root.make, f"mentara-run-{os.getpid()}-{next(_group_names)}"
                )
                extra = _CGROUP_MEMORY_EXTRA if node is None else _CGROUP_NODE_MEMORY_EXTRA
                pids = limits.max_processes + _CGROUP_PIDS_EXTRA
                pids += NODE_THREADS if node is not None else 0
                group.limit(memory_bytes=limits.memory_bytes + extra, max_pids=pids)
            started = time.monotonic()
            output, returncode, timed_out = await self._spawn(
                config, payload, limits, support, uid, node, group
            )
            duration_ms = round((time.monotonic() - started) * 1000)
            if group is not None:
                output.out_of_memory = group.out_of_memory()
        finally:
            if group is not None:
                await asyncio.to_thread(group.remove)
            if host_workdir is not None:
                await asyncio.to_thread(shutil.rmtree, host_workdir, True)
            if slot is not None:
                _uid_slots.release(slot)
        return judge(
            tests, compare, tolerance, limits, output, returncode, timed_out, duration_ms, node
        )

    async def _spawn(
        self,
        config: dict[str, Any],
        payload: bytes,
        limits: RunLimits,
        support: SandboxSupport,
        uid: int | None,
        node: str | None,
        group: RunCgroup | None,
    ) -> tuple[ChildOutput, int | None, bool]:
        """Run the child; return its output, its exit code (None when the parent killed
        it; a signal as a negative number) and whether the wall clock ran out."""
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        config["result_fd"] = write_fd
        command = _harness_command(config, sandbox_python())
        pass_fds = [write_fd]
        program = filter_program()[0] if support.isolated and support.seccomp else None
        if program is not None:
            pass_fds.append(program_fd(program))
        if support.isolated:
            binds, hidden = runtime_paths(node)
            command = bwrap_command(
                support,
                command,
                binds=binds,
                hidden=hidden,
                workdir_bytes=limits.workdir_bytes,
                seccomp_fd=pass_fds[1] if program is not None else None,
            )
            if group is not None:
                command = group.enter_command(command)
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _ExitAwareProtocol(loop),
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=tuple(pass_fds),
                env={},
                cwd="/" if support.isolated else config["workdir"],
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            for fd in pass_fds:
                os.close(fd)
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout
        output = ChildOutput()
        tail_bytes = limits.stdout_tail_chars * 4
        results = asyncio.StreamReader()

        def kill_group() -> None:
            # The whole session: bwrap (whose death takes its PID namespace with it), or
            # without isolation the harness and what it started in its group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

        async def feed() -> None:
            try:
                stdin.write(payload)
                await stdin.drain()
            except ConnectionError:
                pass  # the child exited without reading its input; its result says why
            finally:
                stdin.close()

        async def pump_stdout() -> None:
            while chunk := await stdout.read(65536):
                output.stdout_total += len(chunk)
                output.stdout_tail = (output.stdout_tail + chunk)[-tail_bytes:]
                if output.stdout_total > limits.output_bytes:
                    output.output_exceeded = True
                    kill_group()
                    return

        async def pump_results() -> None:
            while chunk := await results.read(65536):
                if len(output.results) + len(chunk) > limits.result_bytes:
                    output.results_exceeded = True
                    kill_group()
                    return
                output.results += chunk

        tasks: list[asyncio.Task[None]] = []
        timed_out = False
        watching = False
        try:
            # The results pipe is read with add_reader on its raw fd, which this function
            # alone owns and closes once. (uvloop's connect_read_pipe closes the fd through
            # libuv and again through the file object: a double close that can close another
            # thread's descriptor, MagicStack/uvloop#763.)
            os.set_blocking(read_fd, False)
            loop.add_reader(read_fd, _read_into, read_fd, results, loop)
            watching = True
            tasks = [
                asyncio.create_task(feed()),
                asyncio.create_task(pump_stdout()),
                asyncio.create_task(pump_results()),
            ]
            try:
                async with asyncio.timeout(limits.wall_seconds):
                    await protocol.exited.wait()
            except TimeoutError:
                timed_out = True
        finally:
            if transport.get_returncode() is None or not support.isolated:
                kill_group()
            await protocol.exited.wait()
            if uid is not None and not support.isolated:
                await asyncio.to_thread(_kill_uid, uid)
            if tasks:
                # Our pipes reach EOF once every process holding them is gone; one that
                # escaped the group (possible only without isolation) is not waited for.
                _, pending = await asyncio.wait(tasks, timeout=_KILL_GRACE_S)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            if watching:
                loop.remove_reader(read_fd)
            os.close(read_fd)
            transport.close()
        killed = timed_out or output.output_exceeded or output.results_exceeded
        returncode = transport.get_returncode()
        if support.isolated and returncode is not None and 128 < returncode < 128 + 65:
            returncode = 128 - returncode  # bwrap reports a child killed by signal N as 128+N
        return output, None if killed else returncode, timed_out


_uid_slots = UidSlots()


def _resolved(path: str) -> str:
    return os.path.realpath(path)


def _read_into(fd: int, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
    """``add_reader`` callback: what the pipe holds now into ``reader``; EOF (or a read
    error) ends the reader and the watch. The fd stays open: its owner closes it."""
    try:
        chunk = os.read(fd, 65536)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        chunk = b""
    if chunk:
        reader.feed_data(chunk)
    else:
        loop.remove_reader(fd)
        reader.feed_eof()


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Sets ``exited`` when the child exits, even while other processes hold its pipes
    (``Process.wait`` on Python 3.11 also waits for the pipes to close)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=1 << 16, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


def _kill_uid(uid: int) -> None:
    """SIGKILL every live process of ``uid`` until none is left (bounded rounds).

    Race-free against pid reuse: a pidfd pins the process before its uid is checked.
    """
    for _ in range(50):
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                pidfd = os.pidfd_open(int(name))
            except OSError:
                continue
            try:
                if _proc_uid(name) == uid:
                    found = True
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):  # never let cleanup mask the kill
                    os.close(pidfd)
        if not found:
            return
        time.sleep(0.01)


def _proc_uid(pid: str) -> int | None:
    """The real uid of a live process, from ``/proc/<pid>/status``: None for a zombie whose
    threads are all gone (a leader that exited while another thread runs is still live)."""
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    if fields.get("State", "").startswith("Z") and int(fields.get("Threads", "1") or 1) <= 1:
        return None
    return int(fields["Uid"].split()[0]) if "Uid" in fields else None


_default_runners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CodeRunner] = (
    weakref.WeakKeyDictionary()
)


def default_runner() -> CodeRunner:
    """The running loop's shared runner (``DEFAULT_MAX_CONCURRENT`` runs at a time)."""
    loop = asyncio.get_running_loop()
    runner = _default_runners.get(loop)
    if runner is None:
        runner = _default_runners[loop] = CodeRunner()
    return runner


async def run_tests(
    source: str,
    function_name: str,
    tests: Sequence[TestCase],
    *,
    language: str = "python",
    compare: CompareMode = "exact",
    tolerance: float = 1e-6,
    limits: RunLimits = DEFAULT_LIMITS,
) -> RunResult:
    """:meth:`CodeRunner.run_tests` on :func:`default_runner`."""
    return await default_runner().run_tests(
        source,
        function_name,
        tests,
        language=language,
        compare=compare,
        tolerance=tolerance,
        limits=limits,
    )
