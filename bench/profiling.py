"""py-spy profiles of a server worker, and what is hot in them.

:func:`record` starts ``py-spy record --nonblocking --format raw`` on a pid for a duration
(the worker is not paused, so the profile barely perturbs what it measures);
:func:`summarize` reads the collapsed stacks it wrote and returns the hot spots:

- ``self``: functions by the share of samples in which they were the innermost frame;
- ``inclusive``: functions by the share of samples in which they were on the stack;
- ``files``: source files by self share (a coarse view: which module burns the CPU).

Shares are of the samples taken while the thread was running (py-spy skips idle samples),
and ``active_share`` is those samples over all the sampling instants of the duration: about
the share of one core the worker used.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["available", "finish", "parse_collapsed", "record", "summarize"]

_LINE = re.compile(r":\d+\)$")


def _binary() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def available() -> bool:
    return _binary() is not None


def record(pid: int, out: Path, duration_s: float, rate: int = 100) -> subprocess.Popen[bytes]:
    """Start recording ``pid`` into ``out`` (raw collapsed stacks); see :func:`finish`."""
    binary = _binary()
    if binary is None:
        raise RuntimeError("py-spy is not installed")
    out.parent.mkdir(parents=True, exist_ok=True)
    log = open(out.with_suffix(".log"), "wb")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [
                binary, "record", "--pid", str(pid), "--duration", str(max(1, round(duration_s))),
                "--rate", str(rate), "--format", "raw", "--nonblocking", "-o", str(out),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    finally:
        log.close()
    return proc


def finish(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Wait for the recording to be written (kill it after ``timeout``)."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _frame(frame: str) -> str:
    """``func (path/file.py:123)`` → ``func (path/file.py)``: lines of one function merge."""
    return _LINE.sub(")", frame.strip())


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    """Collapsed stacks (``frame;frame;... count`` per line, outermost first)."""
    stacks = []
    for line in text.splitlines():
        stack, sep, count = line.rpartition(" ")
        if not sep or not count.isdigit():
            continue
        stacks.append(([_frame(f) for f in stack.split(";") if f], int(count)))
    return stacks


def _file(frame: str) -> str:
    start = frame.rfind("(")
    return frame[start + 1 : -1] if start >= 0 else frame


def summarize(
    raw: Path, top: int = 20, duration_s: float | None = None, rate: int | None = None
) -> dict[str, Any]:
    """The hot spots of a raw profile; see the module docstring."""
    stacks = parse_collapsed(raw.read_text(errors="replace"))
    total = sum(n for _, n in stacks)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    files: Counter[str] = Counter()
    for frames, n in stacks:
        if not frames:
            continue
        own[frames[-1]] += n
        files[_file(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n

    def shares(counter: Counter[str]) -> list[list[Any]]:
        return (
            [[name, round(n / total, 4)] for name, n in counter.most_common(top)] if total else []
        )

    summary: dict[str, Any] = {
        "file": str(raw),
        "samples": total,
        "self": shares(own),
        "inclusive": shares(inclusive),
        "files": shares(files),
    }
    if duration_s and rate:
        summary["active_share"] = round(total / (duration_s * rate), 3)
    return summary
