"""The languages the code runner accepts, and what each needs from the sandbox.

Python always runs (the server's own interpreter). JavaScript runs under Node.js where
``node`` is on the server's ``PATH`` (found with :func:`shutil.which` on every call, so
:func:`supported_languages` follows the host); :mod:`scoring.js_harness` is its harness.

What Node needs that Python does not, as measured with Node 20.20 on x86-64 Linux:

- Address space. V8 reserves a 512 MiB code range at start-up, the binary maps 100 MiB
  and each thread reserves an 8 MiB stack: a bare ``node --v8-pool-size=1`` has 687 MiB
  of virtual memory at start and 718 MiB once libuv's thread pool runs, for about 40 MiB
  really used. Under ``RLIMIT_AS`` of 600 MB it aborts at start ("Failed to reserve
  virtual memory for CodeRange"); at 800 MB it starts, but a growing array fails on the
  young generation ("Committing semi space failed") before its heap limit. So Node's
  ``RLIMIT_AS`` is the run's ``memory_bytes`` plus :data:`NODE_ADDRESS_SPACE_BYTES`
  (768 MiB; 1 GiB in all by default): still a hard bound, and the one on memory outside
  the JavaScript heap (``Buffer``, typed arrays: about ``memory_bytes`` in all, then
  allocations fail). The heap itself is bounded by
  ``--max-old-space-size``, half of ``memory_bytes`` (128 MiB by default); a program that
  fills it is stopped by V8 ("JavaScript heap out of memory", then ``abort``), which the
  runner reports as the memory limit. ``--jitless`` would cut the reservation to about
  230 MiB but makes code several times slower and disables WebAssembly: not used.
  WebAssembly memories cannot be allocated under this bound (a ``RangeError``).
- Threads. ``RLIMIT_NPROC`` counts threads. With ``--v8-pool-size=1`` Node runs 4
  threads, and 8 once libuv's thread pool has started (the harness starts it before any
  candidate code, so processes the candidate starts cannot make Node itself fail): the
  limit is ``max_processes`` plus :data:`NODE_THREADS`, so the candidate can start
  ``max_processes`` single-threaded children (a shell, ``sleep``) and a fork bomb gets
  ``EAGAIN``. Another ``node`` started by the candidate needs at least 4 threads and
  mostly cannot start.
- The stack. ``RLIMIT_STACK`` is 8 MiB, above V8's own bound (``--stack-size``, 984 KiB
  by default, kept), so deep recursion is a ``RangeError`` the test reports, never a
  crash.
- Everything else as for Python: the same uid, namespaces, ``no_new_privs``, CPU, file
  size and open-file limits, working folder and empty environment (so ``NODE_OPTIONS``
  and every other ``NODE_*`` variable are unset). :func:`node_flags` lists the options.

Without a sandbox uid (a server that is not root), ``RLIMIT_NPROC`` counts every thread
of the server's user; for Node the limit is then the threads that user has when the run
starts plus the allowance above, so that Node can start. As for Python, that mode does
not isolate the candidate from the server's user.
"""

from __future__ import annotations

import keyword
import re
import shutil
from typing import Final, Literal, TypeAlias

__all__ = [
    "LANGUAGES",
    "NODE_ADDRESS_SPACE_BYTES",
    "NODE_STACK_BYTES",
    "NODE_THREADS",
    "Language",
    "camel_case",
    "function_names",
    "node_flags",
    "node_path",
    "normalize_language",
    "supported_languages",
]

Language: TypeAlias = Literal["python", "javascript"]
LANGUAGES: Final[tuple[Language, ...]] = ("python", "javascript")
_ALIASES: Final[dict[str, Language]] = {
    "python": "python",
    "javascript": "javascript",
    "js": "javascript",
}

_MIB: Final = 1024 * 1024
NODE_ADDRESS_SPACE_BYTES: Final = 768 * _MIB
NODE_THREADS: Final = 8
NODE_STACK_BYTES: Final = 8 * _MIB
_MIN_HEAP_MIB: Final = 16

_JS_IDENTIFIER: Final = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_JS_RESERVED: Final = frozenset((
    "arguments", "await", "break", "case", "catch", "class", "const", "continue", "debugger",
    "default", "delete", "do", "else", "enum", "eval", "export", "extends", "false", "finally",
    "for", "function", "if", "implements", "import", "in", "instanceof", "interface", "let",
    "new", "null", "package", "private", "protected", "public", "return", "static", "super",
    "switch", "this", "throw", "true", "try", "typeof", "var", "void", "while", "with", "yield",
))  # fmt: skip


def normalize_language(language: str) -> Language:
    """The canonical name of ``language`` (``"js"`` is ``"javascript"``); :class:`ValueError`
    for a name the runner does not know."""
    found = _ALIASES.get(language) if isinstance(language, str) else None
    if found is None:
        raise ValueError(
            f"unknown language {language!r}: expected one of python, javascript (or js)"
        )
    return found


def node_path() -> str | None:
    """The ``node`` executable on the server's ``PATH``, or None."""
    return shutil.which("node")


def supported_languages() -> tuple[Language, ...]:
    """The languages this host can run: Python always, JavaScript where ``node`` is found."""
    return LANGUAGES if node_path() is not None else ("python",)


def camel_case(name: str) -> str:
    """``two_sum`` → ``twoSum``; leading underscores stay, ``add`` is unchanged."""
    stripped = name.lstrip("_")
    head, *rest = stripped.split("_")
    return name[: len(name) - len(stripped)] + head + "".join(p[:1].upper() + p[1:] for p in rest)


def function_names(function_name: str, language: Language) -> tuple[str, ...]:
    """The names the candidate's function may have, in the order they are looked up.

    Python: the question's ``function_name``. JavaScript: that name and its camelCase form
    (once where they are the same). :class:`ValueError` for a name that is not an
    identifier of the language.
    """
    if language == "python":
        if not function_name.isidentifier() or keyword.iskeyword(function_name):
            raise ValueError(f"{function_name!r} is not a Python identifier")
        return (function_name,)
    names = tuple(dict.fromkeys((function_name, camel_case(function_name))))
    for name in names:
        if not _JS_IDENTIFIER.fullmatch(name) or name in _JS_RESERVED:
            raise ValueError(f"{function_name!r} is not a JavaScript identifier")
    return names


def node_flags(memory_bytes: int) -> list[str]:
    """Node's options for one run (before ``-e`` and the harness)."""
    heap_mib = max(_MIN_HEAP_MIB, memory_bytes // 2 // _MIB)
    return [
        f"--max-old-space-size={heap_mib}",
        "--v8-pool-size=1",
        # Hygiene, not a boundary (the candidate has `vm` anyway): no eval or new Function,
        # no native addons, no warnings in the candidate's output.
        "--disallow-code-generation-from-strings",
        "--no-addons",
        "--no-warnings",
    ]
