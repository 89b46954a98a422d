"""CI's two passes together run every collected test (tests/ci_passes.py, tests/conftest.py).

The guard collects the real suite in both modes, as ``.ci/run`` does, in processes of their
own: the union of what the two passes select is the whole collection, and a test that meets
the suite's Postgres or Redis is selected by both.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ci_passes import EMBEDDED, LOCAL, passes_for, summary

ROOT = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"^(\d+)(?:/(\d+))? tests? collected")

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("markers", "fixtures", "passes"),
    [
        ((), (), {EMBEDDED}),
        ((), ("tmp_path", "services", "settings"), {EMBEDDED, LOCAL}),
        (("services",), ("tmp_path",), {EMBEDDED, LOCAL}),
        (("timeout",), ("services",), {EMBEDDED, LOCAL}),
        (("chaos",), ("services",), {LOCAL}),
        (("redis_cluster", "timeout"), (), {LOCAL}),
        (("outage",), ("services",), {LOCAL}),
        (("browser",), ("services",), {EMBEDDED}),
        (("browser", "chaos"), ("services",), set()),
    ],
)
def test_passes_follow_markers_then_fixtures(
    markers: tuple[str, ...], fixtures: tuple[str, ...], passes: set[str]
) -> None:
    assert passes_for(markers, fixtures)[0] == passes


def test_summary_says_what_runs_where() -> None:
    why = "without the suite's Postgres or Redis"
    line = summary(LOCAL, 7, [why, why, "marked browser"])
    assert line == (
        "CI passes: the local pass runs 7 tests; 3 deselected, run in the embedded pass only "
        f"(2 {why}, 1 marked browser)"
    )
    assert summary(EMBEDDED, 3, []) == "CI passes: the embedded pass runs 3 tests"


def _collect(modes: tuple[str, ...]) -> list[tuple[set[str], int, str]]:
    """Per mode (collected side by side): the node ids its pass selects, how many tests the
    suite has, and the pass's output."""
    procs = []
    for mode in modes:
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
        env["MENTARA_TEST_SERVICES"] = mode
        command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        procs.append(subprocess.Popen([*command, "tests"], cwd=ROOT, env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))  # fmt: skip
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=100)
        assert proc.returncode == 0, out
        lines = out.splitlines()
        ids = {line for line in lines if "::" in line and not line.startswith("CI passes")}
        counts = [m for line in lines if (m := _COLLECTED.match(line))]
        assert counts, out
        selected, total = counts[-1].group(1), counts[-1].group(2)
        assert int(selected) == len(ids), out
        results.append((ids, int(total or selected), out))
    return results


def test_every_test_runs_in_a_pass() -> None:
    (embedded, total, out_e), (local, total_l, out_l) = _collect((EMBEDDED, LOCAL))
    assert total == total_l
    assert len(embedded | local) == total, "tests that neither pass selects"
    assert f"CI passes: the embedded pass runs {len(embedded)} tests" in out_e
    assert f"CI passes: the local pass runs {len(local)} tests" in out_l
    assert "tests/test_migrations.py::" in "\n".join(embedded & local)
    assert not any(i.startswith("tests/test_protocol_codec.py::") for i in local)
    assert not any(i.startswith("tests/test_chaos.py::") for i in embedded)
