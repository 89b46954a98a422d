"""No import circle among the project's modules: data flows one way.

Every ``import`` and ``from ... import`` counts, those under ``if TYPE_CHECKING:`` and inside
functions too (a circle hidden from the interpreter is still a circle in the design). The
finder is tested on a tree with a circle deliberately added, so this test can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocol", "scoring", "server", "loadtest", "bench", "chaos")


def module_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """{module: the project modules it imports}, from the source, without importing it."""
    files: dict[str, Path] = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {dep for dep in found if dep in files and dep != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_project_has_no_import_circle() -> None:
    graph = module_graph(ROOT, PACKAGES)
    assert len(graph) > 100  # the whole project was read
    assert cycles(graph) == []


def test_a_circle_added_on_purpose_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import C\n"
    )
    (package / "c.py").write_text("def f():\n    import pkg.a\n")
    (package / "d.py").write_text("import pkg.a\n")
    assert cycles(module_graph(tmp_path, ("pkg",))) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_only_the_socket_layer_chooses_close_codes() -> None:
    # The session layer raises (MentaraError carries its close code); the socket closes.
    for package in ("server/sessions", "server/hub", "server/interviewer", "server/judging"):
        for path in (ROOT / package).rglob("*.py"):
            assert "CloseCode" not in path.read_text(), path.relative_to(ROOT)


def test_the_redis_layer_is_below_the_session_layer() -> None:
    graph = module_graph(ROOT, PACKAGES)
    upward = {
        (module, dep)
        for module, deps in graph.items()
        if module.startswith("server.hub")
        for dep in deps
        if dep.startswith("server.sessions")
    }
    assert upward == set()
