"""The isolation of one code run: bubblewrap's command line, the host probe, the uid pool.

Every run of candidate code is one ``bwrap`` (Debian's ``bubblewrap``, the sandbox Flatpak
uses) around the harness (:mod:`scoring.sandbox_harness`). Bubblewrap, not code of ours,
sets up the namespaces and mounts:

- its own PID namespace (``--unshare-pid``): the run sees only its own processes in its own
  ``/proc``; when the harness exits or the runner kills ``bwrap``, the namespace's init dies
  and the kernel kills every process left in it (``--die-with-parent`` covers a dead server);
- its own mount namespace showing only the runtime, read-only: ``/usr`` (and the merged-usr
  links), the interpreter's prefix and Node's, each with every ``site-packages`` and the
  project's own folder hidden under an empty ``tmpfs``; a fresh ``/proc``, a minimal ``/dev``,
  and two small private ``tmpfs`` (the working folder ``/work`` and ``/tmp``). No ``/etc``
  but the dynamic linker's cache, no ``/home``, ``/root``, ``/run``, ``/var``, no checkout,
  data folder or question bank, no host unix socket;
- its own network namespace with no interface up (no network, not even loopback), IPC and
  UTS namespaces, an empty environment, a new terminal session, ``no_new_privs``.

Who the code runs as. A server running as root starts ``bwrap`` as root with every
capability dropped but ``CAP_SETUID``/``CAP_SETGID``, and the harness switches to a uid of
its own (one of 255 per server process, rotated; :class:`UidSlots`) before anything else:
the host sees an unprivileged uid, ``RLIMIT_NPROC`` counts only that run's processes. A
server that is not root (the shipped container, ``mentara runner``) starts ``bwrap`` in a new
user namespace (``--unshare-user``, ``--disable-userns`` where bubblewrap has it): the code
runs as the server's uid outside but cannot reach the server's processes (another PID
namespace) nor its files (not mounted), and ``RLIMIT_NPROC`` counts per user namespace, so
again only the run's processes.

:func:`probe_bwrap` runs a real sandbox once and checks each promise from inside (a PID
namespace, no network, the uid switch); a host that cannot do all of it is
``isolated=False`` and the runner refuses to run code (:class:`SandboxUnavailable`) unless
the deployment opted into running without isolation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import site
import sys
import sysconfig
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from scoring.seccomp_filter import program_fd

__all__ = [
    "SANDBOX_UNSAFE",
    "WORKDIR",
    "SandboxSupport",
    "SandboxUnavailable",
    "UidSlots",
    "bwrap_command",
    "probe_bwrap",
    "runtime_paths",
    "sandbox_python",
]

SANDBOX_UNSAFE: Final = "unsafe-no-isolation"
"""The value of ``MENTARA_SANDBOX`` that lets code run without isolation (a developer's laptop
without bubblewrap): limits and an empty environment only."""

WORKDIR: Final = "/work"
"""The run's private, writable working folder inside the sandbox."""

_TMP_BYTES: Final = 1 << 20
# Sandbox uids: a block of 256 per server process (pid_max is at most 2**22), far above any
# real account, so two workers on one host never share a uid.
_UID_BASE: Final = 1_000_000_000
SLOTS_PER_PROCESS: Final = 256
PROBE_SLOT: Final = SLOTS_PER_PROCESS - 1
_USERNS_UID: Final = 1000  # the candidate's uid inside a user namespace (non-root servers)
_PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent


class SandboxUnavailable(Exception):
    """Code cannot run safely on this host now: the isolation could not be set up and the
    deployment did not opt into running without it. ``str()`` is safe to show."""


@dataclass(frozen=True, slots=True)
class SandboxSupport:
    """What the host gives a run; see the module docstring.

    ``isolated``: bubblewrap works with every namespace above (and, as root, the uid switch).
    ``unsafe``: the deployment opted into running code without isolation.
    ``cgroup``: ``"v1"``/``"v2"`` when each run also gets its own cgroup (memory, processes,
    CPU across all of a run's processes), else ``None``. ``detail``: one line for the
    start-up log and ``/readyz``.
    """

    isolated: bool
    as_root: bool
    cgroup: str | None
    unsafe: bool
    detail: str
    bwrap: str | None = None
    disable_userns: bool = False
    seccomp: bool = False

    @classmethod
    def without_isolation(cls, detail: str, *, unsafe: bool) -> SandboxSupport:
        """No isolation: runs only when ``unsafe`` (limits, an empty environment and, as
        root, a uid switch)."""
        return cls(False, os.geteuid() == 0, None, unsafe, detail)

    @property
    def can_run(self) -> bool:
        return self.isolated or self.unsafe

    @property
    def state(self) -> str:
        """``isolated``, ``unsafe`` (opted out) or ``unavailable``."""
        if self.isolated:
            return "isolated"
        return "unsafe" if self.unsafe else "unavailable"


class UidSlots:
    """Process-wide pool of sandbox uids (root servers), one per running child, handed out
    round-robin so a uid is reused as late as possible."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: set[int] = set()
        self._next = 0

    def acquire(self) -> int:
        with self._lock:
            for step in range(PROBE_SLOT):
                slot = (self._next + step) % PROBE_SLOT
                if slot not in self._used:
                    self._used.add(slot)
                    self._next = (slot + 1) % PROBE_SLOT
                    return slot
        raise RuntimeError("no free sandbox uid slot")

    def release(self, slot: int) -> None:
        with self._lock:
            self._used.discard(slot)

    @staticmethod
    def uid(slot: int) -> int:
        return _UID_BASE + (os.getpid() % (1 << 22)) * SLOTS_PER_PROCESS + slot


def sandbox_python() -> str:
    """The base interpreter (not a virtual environment's copy, which lives in the checkout)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def runtime_paths(node: str | None) -> tuple[list[str], list[str]]:
    """The host folders a run needs read-only, and the folders under them to hide.

    Binds: the interpreter's prefix and Node's (``/usr`` is always bound). Hidden: every
    ``site-packages``/``dist-packages`` folder and the project's own folder that lies under a
    bound one (the server's code, its dependencies and the question bank)."""
    binds: list[str] = []
    exe = sandbox_python()
    for prefix in (os.path.realpath(sys.base_prefix), os.path.dirname(os.path.dirname(exe))):
        if not _under(prefix, ["/usr"]) and prefix not in binds:
            binds.append(prefix)
    if node is not None:
        node_prefix = os.path.dirname(os.path.dirname(os.path.realpath(node)))
        if not _under(node_prefix, ["/usr", *binds]):
            binds.append(node_prefix)
    candidates: set[str] = set()
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars)
        candidates.update(paths[k] for k in ("purelib", "platlib"))
    with contextlib.suppress(AttributeError):
        candidates.update(site.getsitepackages())
    candidates.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    candidates.add(str(_PROJECT_ROOT))
    roots = ["/usr", *binds]
    real = {os.path.realpath(p) for p in candidates if p}
    hidden = sorted(p for p in real if os.path.isdir(p) and _under(p, roots))
    return binds, hidden


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def bwrap_command(
    support: SandboxSupport,
    command: list[str],
    *,
    binds: list[str],
    hidden: list[str],
    workdir_bytes: int,
    seccomp_fd: int | None = None,
) -> list[str]:
    """The ``bwrap`` command line that runs ``command`` isolated as described above, with
    the seccomp program that ``seccomp_fd`` holds (:mod:`scoring.seccomp_filter`)."""
    assert support.bwrap is not None
    argv = [support.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    argv += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    argv += ["--hostname", "sandbox"]
    if support.as_root:
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user", "--uid", str(_USERNS_UID), "--gid", str(_USERNS_UID)]
        if support.disable_userns:
            argv += ["--disable-userns"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in sorted(os.listdir("/")):
        top = "/" + name
        if name in {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}:
            if os.path.islink(top):
                argv += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                argv += ["--ro-bind", top, top]
    argv += ["--perms", "0755", "--dir", "/etc"]
    argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    made: set[str] = {"/", "/usr", "/etc"}
    for path in binds:
        for parent in reversed(Path(path).parents):
            if str(parent) not in made and not _under(str(parent), ["/usr"]):
                made.add(str(parent))
                argv += ["--perms", "0755", "--dir", str(parent)]
        argv += ["--ro-bind", path, path]
    for path in hidden:
        argv += ["--perms", "0755", "--tmpfs", path, "--remount-ro", path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--perms", "1777", "--size", str(_TMP_BYTES), "--tmpfs", "/tmp"]
    argv += ["--perms", "1777", "--size", str(workdir_bytes), "--tmpfs", WORKDIR]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += ["--chdir", WORKDIR, "--", *command]
    return argv


_PROBE_SOURCE: Final = r"""
import json, os, socket, sys
found = {"pid": os.getpid(), "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
try:
    socket.create_connection(("127.0.0.1", 9), timeout=1).close()
    found["net"] = "connected"
except OSError as exc:
    found["net"] = "none" if exc.errno in (101, 99) else "refused"
with open("/proc/net/dev") as dev:
    found["ifaces"] = [l.split(":")[0].strip() for l in dev.readlines()[2:]]
found["visible"] = sorted(os.listdir("/"))
with open("/proc/self/status") as status:
    found["seccomp"] = [l.split()[1] for l in status if l.startswith("Seccomp:")]
uid = int(sys.argv[1])
if uid >= 0:
    try:
        os.setgroups([]); os.setgid(uid); os.setuid(uid)
        found["uid"] = os.getuid()
    except OSError as exc:
        found["uid_error"] = exc.strerror
else:
    found["uid"] = os.getuid()
print(json.dumps(found))
"""


async def probe_bwrap(
    bwrap: str, as_root: bool, uid: int, seccomp: bytes | None
) -> tuple[bool, bool, str]:
    """Run one real sandbox (with the ``seccomp`` program, if any) and check it from inside.
    Returns ``(isolated, disable_userns, detail)``; never raises."""
    notes: list[str] = []
    for disable_userns in (True, False) if not as_root else (False,):
        support = SandboxSupport(True, as_root, None, False, "", bwrap, disable_userns)
        binds, hidden = runtime_paths(None)
        command = [
            sandbox_python(),
            "-I",
            "-S",
            "-B",
            "-c",
            _PROBE_SOURCE,
            str(uid if as_root else -1),
        ]
        seccomp_fd = None if seccomp is None else program_fd(seccomp)
        argv = bwrap_command(
            support, command, binds=binds, hidden=hidden, workdir_bytes=1 << 20,
            seccomp_fd=seccomp_fd,
        )  # fmt: skip
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={},
                start_new_session=True,
                pass_fds=() if seccomp_fd is None else (seccomp_fd,),
            )
            try:
                async with asyncio.timeout(10):
                    out, err = await proc.communicate()
            finally:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        except (OSError, TimeoutError) as exc:
            return False, False, f"bubblewrap did not start: {type(exc).__name__}: {exc}"
        finally:
            if seccomp_fd is not None:
                os.close(seccomp_fd)
        if proc.returncode != 0:
            message = err.decode(errors="replace").strip().splitlines()
            notes.append(f"bubblewrap failed: {message[-1] if message else proc.returncode}")
            continue
        try:
            found = json.loads(out)
        except ValueError:
            return False, False, "bubblewrap's probe printed no result"
        problems = []
        if found.get("procs") not in ([1, 2], [2]) or found.get("pid") != 2:
            problems.append(f"no PID namespace (saw {found.get('procs')})")
        if found.get("net") == "connected" or any(i != "lo" for i in found.get("ifaces", [])):
            problems.append("the network is reachable")
        if seccomp is not None and found.get("seccomp") != ["2"]:
            problems.append("the seccomp filter is not in force")
        if as_root and found.get("uid") != uid:
            problems.append(f"no uid switch ({found.get('uid_error', 'unknown')})")
        if problems:
            return False, False, "bubblewrap runs but does not isolate: " + "; ".join(problems)
        return True, disable_userns, "bubblewrap isolates every run"
    return False, False, "; ".join(notes) or "bubblewrap failed"


def find_bwrap() -> str | None:
    """``bwrap`` on the server's ``PATH`` or in ``/usr/bin``."""
    return shutil.which("bwrap") or shutil.which("bwrap", path="/usr/bin:/bin")
