"""Which of CI's two passes runs a test: decided from its markers and the fixtures it requests.

CI (``.ci/run``) runs the suite twice: with ``MENTARA_TEST_SERVICES=embedded`` (the embedded
Postgres and Redis; lint, types and coverage), then ``=local`` (this machine's Postgres and
Redis). Only a test that meets the suite's Postgres or Redis can behave differently in the two;
every other test runs once:

- marker ``chaos``, ``redis_cluster`` or ``outage``: the local pass only (root, network
  namespaces, ``redis-server`` processes or proxies of its own; minutes);
- marker ``browser``: the embedded pass only (the pages do not depend on where Postgres and
  Redis run);
- a test whose fixture closure holds ``services`` (directly or through ``settings``,
  ``server``, ``redis``, ...), or marked ``services`` (one that reaches them another way):
  both passes;
- any other test (pure units, the sandbox, codecs, tests that start servers of their own):
  the embedded pass only, which is also what ``pytest`` with no environment runs.

A test given no pass at all (``browser`` and ``chaos`` together, say) is a collection error:
every collected test runs in at least one pass. In a pass the others' tests are deselected,
never skipped, and one line says how many and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

EMBEDDED = "embedded"
LOCAL = "local"
PASSES = (EMBEDDED, LOCAL)

#: The session fixture every test that meets the suite's Postgres or Redis depends on.
SERVICES_FIXTURE = "services"
#: Markers that pin a test to one pass, each with the pass it pins to.
PINNED = {"chaos": LOCAL, "redis_cluster": LOCAL, "outage": LOCAL, "browser": EMBEDDED}


def passes_for(markers: Iterable[str], fixtures: Iterable[str]) -> tuple[frozenset[str], str]:
    """The passes that run a test with these marker names and this fixture closure, and why
    (a few words for the summary line). An empty set means the markers contradict."""
    marks = set(markers)
    pinned = {PINNED[name] for name in marks & PINNED.keys()}
    if pinned:
        names = "/".join(sorted(marks & PINNED.keys()))
        if len(pinned) > 1:
            return frozenset(), f"markers {names} pin it to both passes at once"
        return frozenset(pinned), f"marked {names}"
    if SERVICES_FIXTURE in marks or SERVICES_FIXTURE in set(fixtures):
        return frozenset(PASSES), "meets the suite's Postgres or Redis"
    return frozenset({EMBEDDED}), "without the suite's Postgres or Redis"


def summary(mode: str, selected: int, deselected_reasons: Iterable[str]) -> str:
    """The one line a pass prints: what it runs and what it leaves to the other pass."""
    reasons = Counter(deselected_reasons)
    total = sum(reasons.values())
    other = LOCAL if mode == EMBEDDED else EMBEDDED
    line = f"CI passes: the {mode} pass runs {selected} tests"
    if total:
        parts = ", ".join(f"{count} {why}" for why, count in reasons.most_common())
        line += f"; {total} deselected, run in the {other} pass only ({parts})"
    return line
