"""CPU seconds and memory of groups of processes, read from the operating system (psutil).

A :class:`Snapshot` holds, for each named group (``server``, ``redis``, ``postgres``,
``client``), the CPU time (user + system) and resident memory of every process in it at one
moment. :func:`usage_between` turns two snapshots into the CPU seconds each group spent
between them and its memory at the end.

Contracts:

- A process is known by ``(pid, create_time)``, so a reused pid never mixes two processes.
- CPU between two snapshots: for a process in both, the difference; for a process only in
  the later one (it started in between), all of its CPU time; a process only in the earlier
  one (it ended in between) adds nothing, since its last seconds cannot be read any more.
- A pid that vanishes or cannot be read while sampling is skipped, never an error.
- A process listed in two groups is counted in the first one only (groups are ordered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import psutil

__all__ = [
    "MachineCpu",
    "ProcSample",
    "Snapshot",
    "Usage",
    "machine_cpu",
    "process_cpu_between",
    "rss",
    "snapshot",
    "tree_pids",
    "usage_between",
]

ProcKey = tuple[int, float]
"""``(pid, create_time)``."""


@dataclass(frozen=True)
class ProcSample:
    pid: int
    create_time: float
    cpu_s: float
    rss: int

    @property
    def key(self) -> ProcKey:
        return (self.pid, self.create_time)


@dataclass(frozen=True)
class Snapshot:
    """Per group, the samples of its processes at one moment (``at``: a monotonic time)."""

    at: float
    groups: Mapping[str, Mapping[ProcKey, ProcSample]] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    """What one group used between two snapshots."""

    cpu_s: float
    """CPU seconds (user + system) spent in the interval."""
    rss: int
    """Resident memory, bytes, summed over the group's processes at the later snapshot."""
    processes: int
    """Processes in the group at the later snapshot."""


def tree_pids(root: int) -> list[int]:
    """``root`` and all of its descendants; ``[]`` when ``root`` is gone."""
    try:
        proc = psutil.Process(root)
        return [root, *(child.pid for child in proc.children(recursive=True))]
    except psutil.Error:
        return []


def sample(pid: int) -> ProcSample | None:
    """One process's CPU time and RSS now; ``None`` if it is gone or unreadable."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            times = proc.cpu_times()
            rss = proc.memory_info().rss
            created = proc.create_time()
    except psutil.Error:
        return None
    return ProcSample(pid, created, times.user + times.system, rss)


def snapshot(groups: Mapping[str, Iterable[int]], at: float) -> Snapshot:
    """Sample every pid of every group (see the module contract on duplicates)."""
    seen: set[int] = set()
    taken: dict[str, dict[ProcKey, ProcSample]] = {}
    for name, pids in groups.items():
        samples: dict[ProcKey, ProcSample] = {}
        for pid in pids:
            if pid in seen:
                continue
            seen.add(pid)
            found = sample(pid)
            if found is not None:
                samples[found.key] = found
        taken[name] = samples
    return Snapshot(at, taken)


def usage_between(before: Snapshot, after: Snapshot) -> dict[str, Usage]:
    """CPU seconds per group between the snapshots, and memory at ``after``."""
    result: dict[str, Usage] = {}
    for name, now in after.groups.items():
        then = before.groups.get(name, {})
        cpu = 0.0
        for key, proc in now.items():
            earlier = then.get(key)
            cpu += proc.cpu_s - (earlier.cpu_s if earlier is not None else 0.0)
        result[name] = Usage(max(0.0, cpu), sum(p.rss for p in now.values()), len(now))
    return result


def process_cpu_between(before: Snapshot, after: Snapshot, group: str) -> dict[int, float]:
    """CPU seconds of each process of a group between the snapshots, by pid (the rules of
    :func:`usage_between`)."""
    then = before.groups.get(group, {})
    result = {}
    for key, proc in after.groups.get(group, {}).items():
        earlier = then.get(key)
        result[proc.pid] = max(0.0, proc.cpu_s - (earlier.cpu_s if earlier is not None else 0.0))
    return result


def rss(shot: Snapshot, group: str) -> int:
    """Resident memory of a group at a snapshot, bytes (0 for an unknown group)."""
    return sum(p.rss for p in shot.groups.get(group, {}).values())


@dataclass(frozen=True)
class MachineCpu:
    """The whole machine's CPU counters (seconds summed over all cores) at one moment."""

    at: float
    busy_s: float
    """user + nice + system + irq + softirq: what every process (ours or not) ran."""
    steal_s: float
    """Time the hypervisor gave this VM's runnable cores to someone else."""

    def cores_between(self, later: MachineCpu) -> tuple[float, float]:
        """``(busy, steal)`` in cores (seconds per second) from this sample to ``later``."""
        elapsed = later.at - self.at
        if elapsed <= 0:
            return 0.0, 0.0
        return (later.busy_s - self.busy_s) / elapsed, (later.steal_s - self.steal_s) / elapsed


def machine_cpu(at: float) -> MachineCpu:
    times = psutil.cpu_times()
    busy = times.user + times.nice + times.system
    busy += getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)
    return MachineCpu(at, busy, getattr(times, "steal", 0.0))
