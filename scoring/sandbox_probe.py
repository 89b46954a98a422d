"""What this host gives a code run, probed once per process: isolation, seccomp, cgroups.

:func:`detect_sandbox_support` runs a real sandbox once (:func:`scoring.sandbox.probe_bwrap`)
and caches a conclusive answer per ``allow_unsafe``; as root, where the sandbox isolates, it
also finds the cgroup root that runs get their cgroups under (:func:`cgroup_root`). Never
raises; a probe that broke down (a timeout under load) is not cached.
"""

from __future__ import annotations

import asyncio
import os
import sys

from scoring.cgroups import CgroupRoot
from scoring.sandbox import (
    PROBE_SLOT,
    SANDBOX_UNSAFE,
    SandboxSupport,
    UidSlots,
    find_bwrap,
    probe_bwrap,
)
from scoring.seccomp_filter import filter_program

__all__ = ["cgroup_root", "detect_sandbox_support"]

_supports: dict[bool, SandboxSupport] = {}
_cgroup_root: CgroupRoot | None = None


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


def cgroup_root() -> CgroupRoot | None:
    """Where runs get their own cgroups: found by :func:`detect_sandbox_support` as root on a
    host that isolates; ``None`` before that, or where cgroups are unavailable."""
    return _cgroup_root
