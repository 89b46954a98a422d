"""Shared checks for the code-runner tests: the sandbox leaves nothing behind."""

from __future__ import annotations

import os

# The block of sandbox uids that belongs to this process (see scoring.code_runner).
SANDBOX_UIDS = range(
    1_000_000_000 + (os.getpid() % (1 << 22)) * 256,
    1_000_000_000 + (os.getpid() % (1 << 22) + 1) * 256,
)


def sandbox_processes() -> list[int]:
    """Live processes owned by a sandbox uid (there must be none between runs)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        if "Z" not in fields["State"] and int(fields["Uid"].split()[0]) in SANDBOX_UIDS:
            found.append(int(name))
    return found


def gone(path: str) -> bool:
    return not os.path.exists(path)
