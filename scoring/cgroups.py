"""One control group per code run, where the host lets a root server make them.

Resource limits (``setrlimit``) bound each process of a run on its own; a cgroup bounds all
of a run's processes together: memory (``memory.max`` / ``memory.limit_in_bytes``),
processes and threads (``pids.max``), and CPU (one core: ``cpu.max`` /
``cpu.cfs_quota_us``). :class:`CgroupRoot` finds where runs' groups can go: on cgroup v2,
under the server's own group when its ``cgroup.subtree_control`` has the three controllers;
on cgroup v1, under the server's own group in each of the ``memory``, ``pids`` and ``cpu``
hierarchies. The server's processes stay where they were.

A run's process joins its groups before it execs anything (:meth:`RunCgroup.enter_command`
wraps the command in ``/bin/sh``, which writes its own pid into each group and then execs),
so everything the run starts is counted from its first instruction. :meth:`RunCgroup.remove`
kills what is left and removes the groups; it is idempotent and never raises.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["CgroupRoot", "RunCgroup"]

_FS: Final = Path("/sys/fs/cgroup")
_V1_CONTROLLERS: Final = ("memory", "pids", "cpu")
_CPU_PERIOD_US: Final = 100_000


def _own_paths() -> dict[str, str]:
    """``/proc/self/cgroup`` as {controller or "" for v2: path}."""
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                found[name] = path
    return found


@dataclass(frozen=True, slots=True)
class CgroupRoot:
    """Where runs' groups are made: one parent folder per hierarchy (one on v2)."""

    version: str
    parents: tuple[Path, ...]

    @classmethod
    def detect(cls) -> tuple[CgroupRoot | None, str]:
        """The usable root, or None and why not. Needs root and a writable hierarchy."""
        if os.geteuid() != 0:
            return None, "no cgroups (not root)"
        own = _own_paths()
        if (_FS / "cgroup.controllers").exists():
            parent = _FS / own.get("", "/").lstrip("/")
            try:
                enabled = (parent / "cgroup.subtree_control").read_text().split()
            except OSError:
                return None, "no cgroups (cgroup v2 not readable)"
            if not {"memory", "pids", "cpu"} <= set(enabled):
                return None, "no cgroups (cgroup v2: memory, pids, cpu not delegated here)"
            root = cls("v2", (parent,))
        elif all((_FS / c / "cgroup.procs").exists() for c in _V1_CONTROLLERS):
            parents = tuple(_FS / c / own.get(c, "/").lstrip("/") for c in _V1_CONTROLLERS)
            root = cls("v1", parents)
        else:
            return None, "no cgroups (no memory, pids and cpu hierarchies)"
        # A name of its own per probe: two first runs at once may probe side by side.
        probe = root.make(f"mentara-probe-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            probe.limit(memory_bytes=64 << 20, max_pids=8)
        except OSError as exc:
            return None, f"no cgroups ({root.version}: {exc.strerror or exc})"
        finally:
            probe.remove()
        return root, f"cgroup {root.version}: memory, processes and one CPU per run"

    def make(self, name: str) -> RunCgroup:
        """Create the run's groups (raises ``OSError`` when the host refuses)."""
        group = RunCgroup(self.version, tuple(parent / name for parent in self.parents))
        try:
            for path in group.paths:
                path.mkdir(exist_ok=True)
        except OSError:
            group.remove()
            raise
        return group


@dataclass(slots=True)
class RunCgroup:
    """One run's groups (one folder on v2, one per controller on v1)."""

    version: str
    paths: tuple[Path, ...]
    removed: bool = field(default=False)

    def limit(self, *, memory_bytes: int, max_pids: int) -> None:
        """Bound the run's memory, processes and CPU (one core)."""
        quota = str(_CPU_PERIOD_US)
        if self.version == "v2":
            (path,) = self.paths
            _write(path / "memory.max", str(memory_bytes))
            with contextlib.suppress(OSError):  # not every kernel has it
                _write(path / "memory.swap.max", "0")
            _write(path / "pids.max", str(max_pids))
            _write(path / "cpu.max", f"{quota} {_CPU_PERIOD_US}")
            return
        memory, pids, cpu = self.paths
        _write(memory / "memory.limit_in_bytes", str(memory_bytes))
        _write(pids / "pids.max", str(max_pids))
        _write(cpu / "cpu.cfs_period_us", str(_CPU_PERIOD_US))
        _write(cpu / "cpu.cfs_quota_us", quota)

    def enter_command(self, command: list[str]) -> list[str]:
        """``command`` wrapped so that its process joins every group before it starts."""
        joins = "; ".join(f"echo $$ > {shlex.quote(str(p / 'cgroup.procs'))}" for p in self.paths)
        return ["/bin/sh", "-c", f'{joins} && exec "$@"', "mentara-run", *command]

    def out_of_memory(self) -> bool:
        """Whether the kernel killed a process of the run for the group's memory limit."""
        try:
            if self.version == "v2":
                events = (self.paths[0] / "memory.events").read_text()
                return any(
                    line.split()[0] == "oom_kill" and int(line.split()[1]) > 0
                    for line in events.splitlines()
                )
            control = (self.paths[0] / "memory.oom_control").read_text()
            return any(
                line.split()[0] == "oom_kill" and int(line.split()[1]) > 0
                for line in control.splitlines()
            )
        except (OSError, ValueError, IndexError):
            return False

    def remove(self) -> None:
        """Kill whatever is left in the groups and remove them (bounded retries)."""
        if self.removed:
            return
        self.removed = True
        for _ in range(100):
            pids = self._pids()
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            for path in self.paths:
                with contextlib.suppress(OSError):  # gone already, or not empty yet
                    path.rmdir()
            if not any(path.exists() for path in self.paths):
                return
            time.sleep(0.01)

    def _pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.paths:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(x) for x in (path / "cgroup.procs").read_text().split())
        return found


def _write(path: Path, value: str) -> None:
    with open(path, "w") as file:
        file.write(value)
