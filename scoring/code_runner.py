"""The sandboxed code runner: runs a candidate's function, in Python or JavaScript, against
test cases.

:func:`run_tests` (or :meth:`CodeRunner.run_tests`) starts one child Python process per run
(``python -I -S -B -u``: isolated mode, no site-packages, no bytecode writes, unbuffered
output), sends it the source and the tests' *arguments* on stdin as JSON, and reads one
JSON record per test from a separate pipe. The child never sees the expected values: the
parent compares each returned value with the expected one (:mod:`scoring.compare`). The
coroutine does not block the event loop, and cancelling it is safe (the child is killed
and everything cleaned up). ``language="javascript"`` (or ``"js"``) runs the same child,
which sets up the same sandbox and then replaces itself with Node (:mod:`scoring.languages`
says what Node needs, :mod:`scoring.js_harness` what its harness does); where ``node`` is
not installed, such a run is an ``error`` and :func:`supported_languages` leaves it out.

What the sandbox does, in the child, before any candidate code runs (the harness is
:func:`scoring.sandbox_harness.sandbox_main`):

- Resource limits: CPU seconds (``RLIMIT_CPU``), address space (``RLIMIT_AS``), processes
  (``RLIMIT_NPROC``), file size (``RLIMIT_FSIZE``), open files, no core files; the parent
  enforces a wall-clock timeout and kills the whole process group.
- An empty environment and a fresh working folder, removed afterwards; stdin is
  ``/dev/null`` (Python) or at its end (Node) once the harness has read its input.
- When the server runs as root (detected once by :func:`detect_sandbox_support`):
  a network namespace with no interface up (no network at all, not even loopback), a
  private mount namespace where the working folder, ``/tmp``, ``/var/tmp``, ``/dev/shm``
  and ``/run/lock`` are small private ``tmpfs`` mounts, and then a switch to an unused,
  unprivileged uid (one of 255 per server process, rotated; no supplementary groups,
  ``no_new_privs``), so the process limit counts only this run's processes, the server's
  files and ``/proc/<pid>/environ`` are out of reach, and every leftover process of that
  uid is killed after the run. Any of these that the host refuses is left out (the probe says
  which, in :attr:`SandboxSupport.detail`); a run never silently loses a feature the
  probe reported as working: if set-up fails, the run is an ``error``. Candidate code
  never runs as root: as root without a working uid switch, every run is an ``error``.
- Without root, the child runs as the server's own user: limits, empty environment and
  working folder still apply, but there is no network isolation, the file system is as
  readable and writable as it is for the server, and same-user processes (the server's
  ``/proc/<pid>/environ``, ptrace) are reachable. Do not rely on that mode with secrets.

What it does not do, even as root: there is no PID namespace (the host's process list and
command lines are visible in ``/proc``) and no seccomp filter; world-readable files stay
readable; without the mount namespace, ``/tmp`` and ``/dev/shm`` stay writable (each file
bounded by the file-size limit) and are not cleaned. CPU and memory limits are per
process, so one run can use up to ``max_processes`` times each. For Node, the address-space
and process limits are raised by what V8 itself needs (:mod:`scoring.languages`), and the
JavaScript heap is bounded by V8.

What a malicious candidate can and cannot do. Candidate code runs in the harness's own
interpreter, so it can do whatever the harness can: write to the result pipe, exit early,
replace builtins, read the tests' arguments (hidden ones included: do not echo a hidden
run's ``stdout_tail`` to the candidate). It cannot make a wrong answer pass: expected
values never enter the child, a forged record only claims a return value (which the
function could have returned itself), and a missing or malformed record fails its test.
It cannot exceed the limits above, print more than :attr:`RunLimits.output_bytes`, or
outlive the run. Imports: only the standard-library modules the harness loads before
switching user (:data:`PRELOADED_MODULES`) are importable by default. JavaScript code can
``require`` Node's built-in modules (``child_process``, ``net``, ``fs``, ...): what they
can reach is what the sandbox above allows, no more (no network in the namespace, no write
outside the private folders as another uid, the process limit on children).

Statuses: ``passed`` every test passed; ``failed`` the code ran and some test failed;
``error`` the code did not compile, crashed or exited outside a test, hit the memory or
output limit, or the sandbox could not be set up; ``timeout`` the wall-clock or CPU limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeAlias

import msgspec

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
from scoring.sandbox_harness import harness_command as _harness_command

__all__ = [
    "COMPARE_MODES",
    "DEFAULT_MAX_CONCURRENT",
    "LANGUAGES",
    "PRELOADED_MODULES",
    "CodeRunner",
    "CompareMode",
    "Language",
    "RunLimits",
    "RunResult",
    "RunStatus",
    "SandboxSupport",
    "TestCase",
    "TestOutcome",
    "default_runner",
    "detect_sandbox_support",
    "run_tests",
    "supported_languages",
    "values_match",
]

RunStatus: TypeAlias = Literal["passed", "failed", "error", "timeout"]
DEFAULT_MAX_CONCURRENT: Final = 2
PRELOADED_MODULES: Final[tuple[str, ...]] = (
    "__future__", "abc", "array", "bisect", "cmath", "collections", "collections.abc",
    "contextlib", "copy", "dataclasses", "datetime", "decimal", "enum", "fractions",
    "functools", "graphlib", "heapq", "io", "itertools", "json", "math", "numbers",
    "operator", "queue", "random", "re", "statistics", "string", "struct", "textwrap",
    "threading", "time", "typing", "unicodedata",
)  # fmt: skip

_MESSAGE_CHARS: Final = 300
_VALUE_CHARS: Final = 120
_KILL_GRACE_S: Final = 0.5
# Sandbox uids: a block of 256 per server process (pid_max is at most 2**22), far above
# any real account, so two workers on one host never share a uid.
_UID_BASE: Final = 1_000_000_000
_SLOTS_PER_PROCESS: Final = 256
_PROBE_SLOT: Final = _SLOTS_PER_PROCESS - 1


class TestCase(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One test: call the function with ``args`` (JSON values), expect ``expected``."""

    __test__: ClassVar[bool] = False  # not a pytest class

    name: str
    args: tuple[Any, ...]
    expected: Any


@dataclass(frozen=True, slots=True)
class TestOutcome:
    """One test's result; ``message`` says why it failed (None when it passed)."""

    __test__: ClassVar[bool] = False

    name: str
    passed: bool
    message: str | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """A run's outcome, shaped like ``code.result`` (PROTOCOL.md §4); ``error`` explains an
    ``error`` or ``timeout`` status in one line, safe to show to the candidate."""

    status: RunStatus
    tests: tuple[TestOutcome, ...]
    stdout_tail: str
    duration_ms: int
    error: str | None = None

    @property
    def passed_count(self) -> int:
        return sum(1 for t in self.tests if t.passed)


@dataclass(frozen=True, slots=True)
class RunLimits:
    """Limits of one run. ``cpu_seconds`` is whole seconds (the kernel's granularity)."""

    cpu_seconds: int = 3
    wall_seconds: float = 6.0
    memory_bytes: int = 256 * 1024 * 1024
    max_processes: int = 4
    file_size_bytes: int = 1024 * 1024
    open_files: int = 64
    workdir_bytes: int = 16 * 1024 * 1024
    output_bytes: int = 1024 * 1024
    stdout_tail_chars: int = 2000
    result_bytes: int = 8 * 1024 * 1024
    value_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) <= 0:
                raise ValueError(f"RunLimits.{name} must be positive")


@dataclass(frozen=True, slots=True)
class SandboxSupport:
    """Which isolation features the host allows; see the module docstring."""

    drop_privileges: bool
    network_namespace: bool
    mount_namespace: bool
    detail: str

    @classmethod
    def minimal(cls, detail: str) -> SandboxSupport:
        """Limits, empty environment and working folder only."""
        return cls(False, False, False, detail)


_support: SandboxSupport | None = None


async def detect_sandbox_support() -> SandboxSupport:
    """Probe once per process (cached) which isolation the host allows.

    Runs the harness in probe mode as a child: as root it tries a network namespace, a
    mount namespace with a tmpfs, and a switch of uid. Never raises; a failed probe
    reports the feature unavailable with the reason in ``detail``.
    """
    global _support
    if _support is not None:
        return _support
    support, conclusive = await _probe()
    if conclusive:  # a probe that broke down (a timeout under load, say) is retried later
        _support = support
    return support


async def _probe() -> tuple[SandboxSupport, bool]:
    if sys.platform != "linux":
        return SandboxSupport.minimal(f"no isolation beyond limits on {sys.platform}"), True
    if os.geteuid() != 0:
        detail = "not root: code runs as the server's user, without network or mount namespaces"
        return SandboxSupport.minimal(detail), True
    workdir = tempfile.mkdtemp(prefix="mentara-probe-")
    config = {"probe": True, "workdir": workdir, "uid": _UidSlots.uid(_PROBE_SLOT)}
    try:
        proc = await asyncio.create_subprocess_exec(
            *_harness_command(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env={},
            cwd=workdir,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(10):
                out, _ = await proc.communicate()
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        found = json.loads(out)
        support = SandboxSupport(
            drop_privileges=bool(found["drop"]),
            network_namespace=bool(found["net"]),
            mount_namespace=bool(found["mount"]),
            detail=str(found["detail"]),
        )
        return support, True
    except (OSError, ValueError, KeyError, TypeError, TimeoutError) as exc:
        return SandboxSupport.minimal(f"sandbox probe failed: {type(exc).__name__}"), False
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _UidSlots:
    """Process-wide pool of sandbox uids, one per running child, handed out round-robin:
    processes killed after a run stay zombies until the host's init reaps them, and they
    still count toward their uid's process limit, so a uid is reused as late as possible."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: set[int] = set()
        self._next = 0

    def acquire(self) -> int:
        with self._lock:
            for step in range(_PROBE_SLOT):
                slot = (self._next + step) % _PROBE_SLOT
                if slot not in self._used:
                    self._used.add(slot)
                    self._next = (slot + 1) % _PROBE_SLOT
                    return slot
        raise RuntimeError("no free sandbox uid slot")

    def release(self, slot: int) -> None:
        with self._lock:
            self._used.discard(slot)

    @staticmethod
    def uid(slot: int) -> int:
        return _UID_BASE + (os.getpid() % (1 << 22)) * _SLOTS_PER_PROCESS + slot


_uid_slots = _UidSlots()


@dataclass
class _ChildOutput:
    stdout_tail: bytes = b""
    stdout_total: int = 0
    results: bytearray = field(default_factory=bytearray)
    output_exceeded: bool = False
    results_exceeded: bool = False


class CodeRunner:
    """Runs candidate code, at most ``max_concurrent`` children at a time.

    One runner belongs to one event loop. ``support`` overrides the probed isolation (tests
    use it to exercise the fallback); by default :func:`detect_sandbox_support` decides.
    """

    def __init__(
        self, max_concurrent: int = DEFAULT_MAX_CONCURRENT, *, support: SandboxSupport | None = None
    ) -> None:
        if not 1 <= max_concurrent < _SLOTS_PER_PROCESS:
            raise ValueError(f"max_concurrent must be 1 to {_SLOTS_PER_PROCESS - 1}")
        self._max_concurrent = max_concurrent
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._support = support
        self._active = 0

    @property
    def max_concurrent(self) -> int:
        return self._max_concurrent

    @property
    def active_runs(self) -> int:
        """Children running now (at most ``max_concurrent``)."""
        return self._active

    async def run_tests(
        self,
        source: str,
        function_name: str,
        tests: Sequence[TestCase],
        *,
        language: str = "python",
        compare: CompareMode = "exact",
        tolerance: float = 1e-6,
        limits: RunLimits = RunLimits(),
    ) -> RunResult:
        """Run ``function_name`` from ``source`` on each test, in order, in one child.

        ``language``: ``"python"``, ``"javascript"`` or ``"js"``. In JavaScript the
        function may also be named in camelCase (``two_sum`` or ``twoSum``). Waits for a
        free slot first. Raises :class:`ValueError` for an unknown ``language`` or
        ``compare`` mode, a ``function_name`` that is not an identifier, or test arguments
        that are not JSON values; everything the candidate's code does is reported in the
        result, and so is a language this host cannot run (an ``error``; see
        :func:`supported_languages`). ``message`` of a failed test shows expected and
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
                return _not_run(tests, error, "JavaScript is not available on this server")
            request: dict[str, Any] = {"names": names, "value_limit": limits.value_bytes}
        else:
            request = {"function_name": function_name}
        payload = json.dumps({"source": source, "tests": arguments, **request}).encode()
        support = self._support or await detect_sandbox_support()
        if os.geteuid() == 0 and not support.drop_privileges:
            error = f"the code sandbox is unavailable ({support.detail})"
            return _not_run(tests, error, "sandbox unavailable")
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
        """One child: Python's harness, which execs ``node`` when it is given."""
        slot = _uid_slots.acquire() if support.drop_privileges else None
        uid = None if slot is None else _UidSlots.uid(slot)
        workdir = tempfile.mkdtemp(prefix="mentara-run-")
        try:
            if uid is not None and not support.mount_namespace:
                os.chown(workdir, uid, uid)
            config: dict[str, Any] = {
                "workdir": workdir,
                "uid": uid,
                "net": support.network_namespace,
                "mount": support.mount_namespace,
                "preload": PRELOADED_MODULES if node is None else (),
                "limits": {
                    "cpu": limits.cpu_seconds,
                    "memory": limits.memory_bytes,
                    "nproc": limits.max_processes,
                    "fsize": limits.file_size_bytes,
                    "nofile": limits.open_files,
                    "workdir": limits.workdir_bytes,
                    "value": limits.value_bytes,
                },
            }
            if node is not None:
                config["exec"] = [node, *node_flags(limits.memory_bytes), "-e", JS_HARNESS_SOURCE]
                config["limits"] |= {
                    "memory": limits.memory_bytes + NODE_ADDRESS_SPACE_BYTES,
                    "nproc": limits.max_processes + NODE_THREADS,
                    "nproc_shared": uid is None,
                    "stack": NODE_STACK_BYTES,
                }
            started = time.monotonic()
            output, returncode, timed_out = await self._spawn(config, payload, limits, uid)
            duration_ms = round((time.monotonic() - started) * 1000)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            if slot is not None:
                _uid_slots.release(slot)
        return _judge(
            tests, compare, tolerance, limits, output, returncode, timed_out, duration_ms, node
        )

    async def _spawn(
        self, config: dict[str, Any], payload: bytes, limits: RunLimits, uid: int | None
    ) -> tuple[_ChildOutput, int | None, bool]:
        """Run the harness; return its output, its exit code (None when the parent killed
        it) and whether the wall clock ran out."""
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        config["result_fd"] = write_fd
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _ExitAwareProtocol(loop),
                *_harness_command(config),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=(write_fd,),
                env={},
                cwd=config["workdir"],
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        proc = asyncio.subprocess.Process(transport, protocol, loop)
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout
        output = _ChildOutput()
        tail_bytes = limits.stdout_tail_chars * 4
        results = asyncio.StreamReader()

        def kill_group() -> None:
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
            # Once the harness has exited and been reaped, its group id could in theory be
            # reused; with a sandbox uid the sweep below is exact, so killpg is not needed.
            if uid is None or transport.get_returncode() is None:
                kill_group()
            await protocol.exited.wait()
            if uid is not None:
                await asyncio.to_thread(_kill_uid, uid)
            if tasks:
                # Our pipes reach EOF once every process holding them is gone; one that
                # escaped the group (possible only without a sandbox uid) is not waited for.
                _, pending = await asyncio.wait(tasks, timeout=_KILL_GRACE_S)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            if watching:
                loop.remove_reader(read_fd)
            os.close(read_fd)
            transport.close()
        killed = timed_out or output.output_exceeded or output.results_exceeded
        return output, None if killed else transport.get_returncode(), timed_out


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
    """The real uid of a live, non-zombie process, from ``/proc/<pid>/status``."""
    uid = None
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("State:") and "Z" in line.split()[1]:
                return None
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                break
    return uid


def _judge(
    tests: Sequence[TestCase],
    compare: CompareMode,
    tolerance: float,
    limits: RunLimits,
    output: _ChildOutput,
    returncode: int | None,
    timed_out: bool,
    duration_ms: int,
    node: str | None = None,
) -> RunResult:
    records: dict[int, dict[str, Any]] = {}
    fatal: str | None = None
    ready = done = out_of_memory = False
    for line in bytes(output.results).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            # Node's fd 2 comes here too: V8 says "out of memory" before it aborts.
            out_of_memory = out_of_memory or (node is not None and b"out of memory" in line)
            continue
        if not isinstance(record, dict):
            continue
        if record.get("ready") is True:
            ready = True
        elif record.get("done") is True:
            done = True
        elif record.get("fatal") is True and fatal is None:
            fatal = _clip(str(record.get("message", "")), _MESSAGE_CHARS)
        elif isinstance(record.get("i"), int) and record["i"] not in records:
            records[record["i"]] = record

    status: RunStatus
    error: str | None = None
    signum = -returncode if returncode is not None and returncode < 0 else None
    if timed_out or signum == signal.SIGXCPU:
        status, error = "timeout", "time limit exceeded"
    elif output.output_exceeded:
        status, error = "error", f"output limit exceeded ({limits.output_bytes} bytes)"
    elif output.results_exceeded:
        status, error = "error", "return values too large"
    elif fatal is not None:
        status, error = "error", fatal
    elif out_of_memory and signum in (signal.SIGABRT, signal.SIGTRAP):
        status, error = "error", "memory limit exceeded (JavaScript heap out of memory)"
    elif signum == signal.SIGKILL and duration_ms >= limits.cpu_seconds * 900:
        status, error = "timeout", "time limit exceeded"
    elif signum is not None:
        status, error = "error", f"the program crashed ({_signal_name(signum)})"
    elif not ready:
        status, error = "error", "the sandbox could not start the program"
    elif not done:
        status, error = "error", f"the program exited before all tests ran (code {returncode})"
    else:
        status = "passed"

    outcomes: list[TestOutcome] = []
    first_missing = True
    for index, test in enumerate(tests):
        record = records.get(index)
        if record is None:
            if status == "timeout" and first_missing:
                message = "time limit exceeded"
            else:
                message = f"not run: {error}" if error else "no result"
            first_missing = False
            outcomes.append(TestOutcome(test.name, False, message))
        elif record.get("ok") is True and "value" in record:
            got = record["value"]
            if values_match(test.expected, got, compare, tolerance):
                outcomes.append(TestOutcome(test.name, True))
            else:
                order = " (in any order)" if compare in ("unordered", "sorted") else ""
                message = f"expected {_show(test.expected)}{order}, got {_show(got)}"
                outcomes.append(TestOutcome(test.name, False, message))
        elif record.get("ok") is True and isinstance(record.get("shown"), str):
            # A JavaScript value with no JSON form (undefined, NaN, a class instance...).
            shown = _clip(record["shown"], _VALUE_CHARS)
            message = f"expected {_show(test.expected)}, got {shown} (not a JSON value)"
            outcomes.append(TestOutcome(test.name, False, message))
        else:
            message = _clip(str(record.get("error") or "failed"), _MESSAGE_CHARS)
            outcomes.append(TestOutcome(test.name, False, message))
    if status == "passed" and not all(o.passed for o in outcomes):
        status = "failed"
    tail = output.stdout_tail.decode("utf-8", "replace")[-limits.stdout_tail_chars :]
    return RunResult(status, tuple(outcomes), tail, duration_ms, error)


def _not_run(tests: Sequence[TestCase], error: str, reason: str) -> RunResult:
    """The result of a run that could not start: every test ``not run``."""
    outcomes = tuple(TestOutcome(t.name, False, f"not run: {reason}") for t in tests)
    return RunResult("error", outcomes, "", 0, error)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return _clip(text, _VALUE_CHARS)


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
    limits: RunLimits = RunLimits(),
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
