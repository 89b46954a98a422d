"""The child side of the code sandbox: the harness every run starts in.

:func:`sandbox_main` runs in a bare Python interpreter (``python -I -S -B -u -c``) from its
own source text (:data:`HARNESS_SOURCE`), so it imports only the standard library, and only
inside the function. It sets up the sandbox described in :mod:`scoring.code_runner`
(namespaces and private mounts as root, the uid switch, ``no_new_privs``, resource limits),
then either runs a Python candidate's function itself, or, for another language
(``config["exec"]``), replaces itself with that language's runtime (``execve``, with an empty
environment), which inherits every one of those settings. Results go to file descriptor 3,
a pipe only the parent reads; for an exec'd runtime, file descriptor 2 goes there too, so
that a runtime's own fatal messages (V8's "heap out of memory") reach the parent, not the
candidate's output.
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any, Final, NoReturn

__all__ = ["HARNESS_SOURCE", "harness_command", "sandbox_main"]


def harness_command(config: dict[str, Any], python: str | None = None) -> list[str]:
    """The command line of one sandboxed child with this configuration, run by ``python``
    (default: this interpreter)."""
    python = python or sys.executable
    return [python, "-I", "-S", "-B", "-u", "-c", HARNESS_SOURCE, json.dumps(config)]


def sandbox_main(config_text: str) -> None:
    """The child's harness. Runs in a bare interpreter from its own source text, so it
    imports only the standard library, and only inside this function.

    Order matters: ``no_new_privs``, (as root) the uid switch, limits, then (another
    language) the exec of its runtime, or (Python) the input, then the import lockdown, then
    candidate code. Namespaces and mounts are bubblewrap's (:mod:`scoring.sandbox`), set up
    before this starts; the harness holds no handle to anything the candidate could use
    beyond what the ``os`` module gives any program.
    """
    import builtins
    import json
    import os
    import resource
    import sys

    config = json.loads(config_text)
    for module in config.get("preload", ()):
        __import__(module)

    def set_no_new_privs() -> bool:
        """``prctl(PR_SET_NO_NEW_PRIVS)`` through a ctypes handle that dies with this call."""
        import ctypes

        return bool(ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) == 0)

    def drop_privileges(uid: int) -> None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid or os.getegid() != uid:
            raise OSError("could not switch user")

    result_fd = 3
    if config["result_fd"] != result_fd:
        os.dup2(config["result_fd"], result_fd)
        os.close(config["result_fd"])
    value_limit = int(config["limits"]["value"])

    def send(line: str) -> None:
        data = (line + "\n").encode()
        while data:
            data = data[os.write(result_fd, data) :]

    def emit(record: dict[str, object]) -> None:
        send(json.dumps(record))

    def fatal(message: str) -> NoReturn:
        emit({"fatal": True, "message": message})
        os._exit(0)

    def tasks_of(owner: int) -> int:
        """Threads of every live process of ``owner``: what ``RLIMIT_NPROC`` counts."""
        count = 0
        for name in os.listdir("/proc"):
            try:
                with open(f"/proc/{name}/status") as status:
                    fields = dict(line.split(":", 1) for line in status if ":" in line)
                if int(fields["Uid"].split()[0]) == owner:
                    count += int(fields["Threads"])
            except (OSError, ValueError, KeyError):
                continue
        return count

    uid = config["uid"]
    workdir: str = config["workdir"]
    exec_argv: list[str] | None = config.get("exec")
    os.environ.clear()
    try:
        if not set_no_new_privs():
            raise OSError("could not set no_new_privs")
        if uid is not None:
            drop_privileges(uid)
        os.chdir(workdir)
        limits = config["limits"]
        cpu = int(limits["cpu"])
        nproc = int(limits["nproc"])
        if limits.get("nproc_shared"):
            # The server's own uid: its threads count too, so the bound is on top of them.
            nproc += tasks_of(os.getuid())
        for kind, value in (
            (resource.RLIMIT_CPU, (cpu, cpu + 1)),
            (resource.RLIMIT_AS, (limits["memory"],) * 2),
            (resource.RLIMIT_NPROC, (nproc,) * 2),
            (resource.RLIMIT_FSIZE, (limits["fsize"],) * 2),
            (resource.RLIMIT_NOFILE, (limits["nofile"],) * 2),
            (resource.RLIMIT_CORE, (0, 0)),
        ):
            resource.setrlimit(kind, value)
        if "stack" in limits:
            hard = resource.getrlimit(resource.RLIMIT_STACK)[1]
            stack = int(limits["stack"])
            if hard != resource.RLIM_INFINITY:
                stack = min(stack, hard)
            resource.setrlimit(resource.RLIMIT_STACK, (stack, stack))
        if exec_argv is not None:
            # The runtime reads the input from stdin itself and reports on fd 3; its own
            # fatal messages go to fd 2, which goes to the results pipe as well.
            os.dup2(result_fd, 2)
            try:
                os.execve(exec_argv[0], exec_argv, {})
            except OSError as exc:
                raise OSError(
                    exc.errno, f"could not start {exec_argv[0]}: {exc.strerror}"
                ) from None
        payload = json.loads(sys.stdin.buffer.read())
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    except (OSError, ValueError) as exc:
        fatal(f"sandbox setup failed: {exc}")
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]
    del set_no_new_privs, drop_privileges, config
    # Only what is already loaded (and built-in modules) can be imported from here on, so
    # the set of importable modules is the same whether or not the stdlib is readable.
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if getattr(finder, "__name__", "") in ("BuiltinImporter", "FrozenImporter")
    ]
    sys.argv = ["solution.py"]
    emit({"ready": True})

    def describe(exc: BaseException) -> str:
        line = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<solution>":
                line = tb.tb_lineno
            tb = tb.tb_next
        if isinstance(exc, SyntaxError):
            line = exc.lineno
            text = exc.msg
        else:
            try:
                text = str(exc)
            except Exception:
                text = ""
        text = text if len(text) <= 200 else text[:199] + "…"
        name = type(exc).__name__
        where = f" (line {line})" if line else ""
        return f"{name}: {text}{where}" if text else f"{name}{where}"

    def plain(value: object, depth: int = 0) -> object:
        if depth > 100:
            raise ValueError("nested too deeply")
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, list | tuple):
            return [plain(v, depth + 1) for v in value]
        if isinstance(value, set | frozenset):
            items = [plain(v, depth + 1) for v in value]
            return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
        if isinstance(value, dict):
            return {str(k): plain(v, depth + 1) for k, v in value.items()}
        raise TypeError(f"returned a {type(value).__name__}, which is not a plain value")

    namespace: dict[str, object] = {"__name__": "solution", "__builtins__": builtins}
    try:
        code = compile(payload["source"], "<solution>", "exec", dont_inherit=True)
    except MemoryError:
        fatal("MemoryError: memory limit exceeded")
    except (SyntaxError, ValueError, RecursionError) as exc:
        fatal(describe(exc))
    try:
        exec(code, namespace)
    except MemoryError:
        fatal("MemoryError: memory limit exceeded")
    except BaseException as exc:
        fatal(describe(exc))
    function_name = payload["function_name"]
    function = namespace.get(function_name)
    solution_class = namespace.get("Solution")
    if function is None and isinstance(solution_class, type):
        with_method = getattr(solution_class, function_name, None)
        if with_method is not None:
            try:
                function = getattr(solution_class(), function_name)
            except BaseException as exc:
                fatal(describe(exc))
    if function is None:
        fatal(f"NameError: function '{function_name}' is not defined")
    if not callable(function):
        fatal(f"TypeError: '{function_name}' is not a function")
    assert callable(function)
    harness_pid = os.getpid()
    for index, args_text in enumerate(payload["tests"]):
        try:
            value = function(*json.loads(args_text))
            if os.getpid() != harness_pid:
                os._exit(0)  # a child the candidate forked returned into the harness
            text = json.dumps(plain(value))
            if len(text) > value_limit:
                emit({"i": index, "ok": False, "error": "return value too large"})
            else:
                send(f'{{"i": {index}, "ok": true, "value": {text}}}')
        except MemoryError:
            fatal("MemoryError: memory limit exceeded")
        except BaseException as exc:
            if os.getpid() != harness_pid:
                os._exit(0)
            emit({"i": index, "ok": False, "error": describe(exc)})
    sys.stdout.flush()
    emit({"done": True})
    os._exit(0)


HARNESS_SOURCE: Final = (
    "from __future__ import annotations\n"
    + inspect.getsource(sandbox_main)
    + "\nimport sys\nsandbox_main(sys.argv[1])\n"
)
