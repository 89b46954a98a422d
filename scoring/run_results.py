"""What a code run produced, judged: the result types and the parent's verdict.

The child (the harness in its sandbox) sends one JSON record per test on its results pipe;
:func:`judge` turns those records, the exit status and what the parent saw (timeouts,
output limits, the cgroup's out-of-memory kills) into a :class:`RunResult`. Expected values
never leave the parent: a forged record can only claim a return value. Every text that goes
into a result (the output's tail, messages) is cleaned of what cannot be stored or streamed:
U+0000 and lone surrogates become U+FFFD (:func:`protocol.storable.storable`), and invalid
UTF-8 in the output is replaced.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeAlias

import msgspec

from protocol.storable import storable as clean_text
from scoring.compare import CompareMode, values_match

__all__ = [
    "ChildOutput",
    "RunLimits",
    "RunResult",
    "RunStatus",
    "TestCase",
    "TestOutcome",
    "judge",
    "not_run",
]

RunStatus: TypeAlias = Literal["passed", "failed", "error", "timeout"]
_MESSAGE_CHARS: Final = 300
_VALUE_CHARS: Final = 120


class TestCase(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """One test: call the function with ``args`` (JSON values), expect ``expected``.
    ``tags`` name the kinds of edge case it covers (:mod:`scoring.edge_cases`; the question
    bank requires them on hidden tests); they never reach the code under test."""

    __test__: ClassVar[bool] = False  # not a pytest class

    name: str
    args: tuple[Any, ...]
    expected: Any
    tags: tuple[str, ...] = ()


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


@dataclass
class ChildOutput:
    """What the parent read from the child."""

    stdout_tail: bytes = b""
    stdout_total: int = 0
    results: bytearray = field(default_factory=bytearray)
    output_exceeded: bool = False
    results_exceeded: bool = False
    out_of_memory: bool = False


def judge(
    tests: Sequence[TestCase],
    compare: CompareMode,
    tolerance: float,
    limits: RunLimits,
    output: ChildOutput,
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
    elif output.out_of_memory:
        status, error = "error", "memory limit exceeded (all of the run's processes together)"
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
    cleaned = tuple(
        o if o.message is None else TestOutcome(o.name, o.passed, clean_text(o.message))
        for o in outcomes
    )
    return RunResult(
        status, cleaned, clean_text(tail), duration_ms, None if error is None else clean_text(error)
    )


def not_run(tests: Sequence[TestCase], error: str, reason: str) -> RunResult:
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
