"""The seccomp filter every sandboxed run gets: system calls no solution needs, refused.

Built once per process with libseccomp (through ``pyseccomp``, a thin binding of its C API;
libseccomp is what Docker, systemd and Flatpak build their filters with) and handed to
bubblewrap (``--seccomp FD``), which loads it right before it starts the harness, after its
own set-up. The filter allows everything but:

- kernel surfaces an unprivileged process in its own namespaces does not need and that have
  been the way out of sandboxes before: ``ptrace`` and ``process_vm_*``, ``bpf``,
  ``perf_event_open``, ``userfaultfd``, ``keyctl`` and the key calls, ``io_uring_*``, module,
  ``kexec``, swap, quota and reboot calls, ``open_by_handle_at``, ``syslog``;
- new namespaces and mounts: ``unshare``, ``setns``, ``mount``, ``umount2``, ``pivot_root``,
  ``chroot``, and ``clone`` with ``CLONE_NEWUSER`` (``clone3``, whose flags a filter cannot
  read, answers ``ENOSYS`` so that the C library falls back to ``clone``).

Each refused call fails with ``EPERM`` (``ENOSYS`` for ``clone3``): a program sees an error,
not a crash. :func:`filter_program` returns the compiled program, or ``None`` and why when
libseccomp is not on the host (the run is isolated all the same; the start-up line says so).
"""

from __future__ import annotations

import errno
import os
import tempfile
from typing import Final

__all__ = ["DENIED_SYSCALLS", "filter_program", "program_fd"]

DENIED_SYSCALLS: Final[tuple[str, ...]] = (
    "ptrace", "process_vm_readv", "process_vm_writev", "bpf", "perf_event_open",
    "userfaultfd", "keyctl", "add_key", "request_key", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "swapon", "swapoff", "reboot", "acct", "quotactl",
    "open_by_handle_at", "name_to_handle_at", "syslog", "lookup_dcookie", "vhangup",
    "fanotify_init", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "fsopen", "fsmount", "fsconfig", "move_mount", "open_tree", "mount_setattr",
)  # fmt: skip
_CLONE_NEWUSER: Final = 0x10000000

_program: tuple[bytes | None, str] | None = None


def filter_program() -> tuple[bytes | None, str]:
    """The compiled BPF program and a one-line description (cached), or ``None`` and why."""
    global _program
    if _program is None:
        _program = _build()
    return _program


def _build() -> tuple[bytes | None, str]:
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # the binding loads libseccomp.so.2 on import
        return None, f"no seccomp filter (libseccomp: {type(exc).__name__})"
    try:
        rules = seccomp.SyscallFilter(seccomp.ALLOW)
        for name in DENIED_SYSCALLS:
            try:
                rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
            except (OSError, ValueError):
                continue  # a call this architecture or libseccomp does not know
        newuser = seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_NEWUSER, _CLONE_NEWUSER)
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", newuser)
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        with tempfile.TemporaryFile() as out:
            rules.export_bpf(out)
            out.seek(0)
            program = out.read()
    except (OSError, ValueError) as exc:
        return None, f"no seccomp filter ({exc})"
    if not program or len(program) > 60_000:  # must fit a pipe's buffer at once
        return None, "no seccomp filter (empty or oversized program)"
    return program, f"a seccomp filter refusing {len(DENIED_SYSCALLS) + 2} system calls"


def program_fd(program: bytes) -> int:
    """A pipe's read end holding ``program`` (bwrap reads it to the end); the caller closes it."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, program)
    finally:
        os.close(write_fd)
    return read_fd
