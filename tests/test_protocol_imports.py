"""``protocol`` and ``scoring`` stay free of I/O libraries (STYLE.md, convention 1).

Each module is imported alone in a fresh interpreter, so what another test or module
imported cannot hide a dependency.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_PACKAGES = ("protocol", "scoring")
FORBIDDEN = ("redis", "asyncpg", "starlette", "uvicorn")
ALLOWED_WEBSOCKETS = {"protocol.client"}


def module_names() -> list[str]:
    names = []
    for package in PURE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join(parts))
    return names


def imported_after(module: str) -> set[str]:
    script = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def test_the_pure_packages_exist() -> None:
    assert {"protocol", "protocol.errors", "protocol.messages", "protocol.codec"} <= set(
        module_names()
    )


@pytest.mark.parametrize("module", module_names())
def test_module_imports_no_io_library(module: str) -> None:
    forbidden = FORBIDDEN if module in ALLOWED_WEBSOCKETS else (*FORBIDDEN, "websockets")
    loaded = imported_after(module)
    leaked = sorted(
        name for name in loaded for root in forbidden if name == root or name.startswith(root + ".")
    )
    assert not leaked, f"{module} imports {leaked}"
