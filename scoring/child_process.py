"""One code run's child process: started, fed, drained within bounds, and killed with
everything it started.

:func:`run_child` starts the command :mod:`scoring.sandbox_harness` builds (inside
bubblewrap when the host isolates, :mod:`scoring.sandbox`; inside the run's cgroup when it
has one), writes the payload to its stdin, reads its stdout (a bounded tail) and its result
pipe (bounded), and waits for it at most the wall-clock limit. Whatever happens, including
cancellation: the child's whole process group is killed (bwrap's death takes its PID
namespace with it), without isolation every process of the run's sandbox uid is swept, and
every pipe it opened is closed. It never judges the output (:mod:`scoring.run_results`
does). The caller (:mod:`scoring.code_runner`) owns the uid slot, the working folder and
the cgroup.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from typing import Any, Final

from scoring.cgroups import RunCgroup
from scoring.run_results import ChildOutput, RunLimits
from scoring.sandbox import SandboxSupport, bwrap_command, runtime_paths, sandbox_python
from scoring.sandbox_harness import harness_command as _harness_command
from scoring.seccomp_filter import filter_program, program_fd

__all__ = ["run_child"]

_KILL_GRACE_S: Final = 0.5


async def run_child(
    config: dict[str, Any],
    payload: bytes,
    limits: RunLimits,
    support: SandboxSupport,
    uid: int | None,
    node: str | None,
    group: RunCgroup | None,
) -> tuple[ChildOutput, int | None, bool]:
    """Run the child; return its output, its exit code (None when the parent killed
    it; a signal as a negative number) and whether the wall clock ran out."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    config["result_fd"] = write_fd
    command = _harness_command(config, sandbox_python())
    pass_fds = [write_fd]
    program = filter_program()[0] if support.isolated and support.seccomp else None
    if program is not None:
        pass_fds.append(program_fd(program))
    if support.isolated:
        binds, hidden = runtime_paths(node)
        command = bwrap_command(
            support,
            command,
            binds=binds,
            hidden=hidden,
            workdir_bytes=limits.workdir_bytes,
            seccomp_fd=pass_fds[1] if program is not None else None,
        )
        if group is not None:
            command = group.enter_command(command)
    try:
        transport, protocol = await loop.subprocess_exec(
            lambda: _ExitAwareProtocol(loop),
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            pass_fds=tuple(pass_fds),
            env={},
            cwd="/" if support.isolated else config["workdir"],
            start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        for fd in pass_fds:
            os.close(fd)
    proc = asyncio.subprocess.Process(transport, protocol, loop)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    output = ChildOutput()
    tail_bytes = limits.stdout_tail_chars * 4
    results = asyncio.StreamReader()

    def kill_group() -> None:
        # The whole session: bwrap (whose death takes its PID namespace with it), or
        # without isolation the harness and what it started in its group.
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
        if transport.get_returncode() is None or not support.isolated:
            kill_group()
        await protocol.exited.wait()
        if uid is not None and not support.isolated:
            await asyncio.to_thread(_kill_uid, uid)
        if tasks:
            # Our pipes reach EOF once every process holding them is gone; one that
            # escaped the group (possible only without isolation) is not waited for.
            _, pending = await asyncio.wait(tasks, timeout=_KILL_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if watching:
            loop.remove_reader(read_fd)
        os.close(read_fd)
        transport.close()
    killed = timed_out or output.output_exceeded or output.results_exceeded
    returncode = transport.get_returncode()
    if support.isolated and returncode is not None and 128 < returncode < 128 + 65:
        returncode = 128 - returncode  # bwrap reports a child killed by signal N as 128+N
    return output, None if killed else returncode, timed_out


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
    """The real uid of a live process, from ``/proc/<pid>/status``: None for a zombie whose
    threads are all gone (a leader that exited while another thread runs is still live)."""
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    if fields.get("State", "").startswith("Z") and int(fields.get("Threads", "1") or 1) <= 1:
        return None
    return int(fields["Uid"].split()[0]) if "Uid" in fields else None
