"""The sandboxed code runner: runs a candidate's function, in Python or JavaScript, against
test cases.

:meth:`CodeRunner.run_tests` (or :func:`run_tests`) starts one child per run: bubblewrap
(:mod:`scoring.sandbox` says what it isolates and how) around a bare Python interpreter
(``python -I -S -B -u``) running the harness (:mod:`scoring.sandbox_harness`), which sets
the resource limits, switches uid when the server is root, and runs the function, or, for
JavaScript, replaces itself with Node (:mod:`scoring.languages`, :mod:`scoring.js_harness`).
The source and the tests' *arguments* go to the child on stdin; one JSON record per test
comes back on a separate pipe; expected values never enter the child (the parent judges,
:mod:`scoring.run_results`). This module sets a run up (its limits, uid slot, working
folder and cgroup) and :mod:`scoring.child_process` runs the child. The coroutine does not
block the event loop and is safe to cancel (the child and everything it started are killed,
everything is cleaned up).

Limits in force on every run: CPU seconds, address space, processes, file size, open files
and no core files per process (``setrlimit``), a wall-clock timeout, bounded output and
results, a private ``tmpfs`` working folder of ``workdir_bytes``. Where a root server can
make cgroups (:mod:`scoring.cgroups`), each run also gets its own: memory and processes
across all of the run's processes, and at most one CPU. :attr:`SandboxSupport.detail` says
which hold on this host.

Fail closed: when bubblewrap is missing or does not isolate
(:func:`scoring.sandbox_probe.detect_sandbox_support` probes once per process), :meth:`CodeRunner.run_tests` raises :class:`SandboxUnavailable`,
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
import itertools
import json
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Sequence
from typing import Any, Final

from scoring.cgroups import RunCgroup
from scoring.child_process import run_child
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
    RunLimits,
    RunResult,
    RunStatus,
    TestCase,
    TestOutcome,
    judge,
    not_run,
)
from scoring.sandbox import PROBE_SLOT, WORKDIR, SandboxSupport, SandboxUnavailable, UidSlots
from scoring.sandbox_probe import cgroup_root, detect_sandbox_support

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
    "SandboxUnavailable",
    "TestCase",
    "TestOutcome",
    "default_runner",
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
# What a cgroup allows beyond the run's own bounds: the interpreter and harness (Python), or
# V8's heap and code space (Node); bwrap's two processes and the harness for pids.
_CGROUP_MEMORY_EXTRA: Final = 64 << 20
_CGROUP_NODE_MEMORY_EXTRA: Final = 256 << 20
_CGROUP_PIDS_EXTRA: Final = 3

_group_names = itertools.count(1)


class CodeRunner:
    """Runs candidate code, at most ``max_concurrent`` children at a time.

    One runner belongs to one event loop. ``support`` overrides the probed isolation (tests
    use it); by default :func:`scoring.sandbox_probe.detect_sandbox_support` decides, with
    ``allow_unsafe``.
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
            cgroups = cgroup_root()
            if isolated and support.cgroup is not None and cgroups is not None:
                group = await asyncio.to_thread(
                    cgroups.make, f"mentara-run-{os.getpid()}-{next(_group_names)}"
                )
                extra = _CGROUP_MEMORY_EXTRA if node is None else _CGROUP_NODE_MEMORY_EXTRA
                pids = limits.max_processes + _CGROUP_PIDS_EXTRA
                pids += NODE_THREADS if node is not None else 0
                group.limit(memory_bytes=limits.memory_bytes + extra, max_pids=pids)
            started = time.monotonic()
            output, returncode, timed_out = await run_child(
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


_uid_slots = UidSlots()


def _resolved(path: str) -> str:
    return os.path.realpath(path)


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
