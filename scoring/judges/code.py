"""The code judge: deterministic evidence from test results.

Two inputs: the ``code.result`` of a visible-test run (an event, so in the transcript), and
the hidden-test result of a code version (:class:`HiddenTestResult`, which the server runs
at the end of the session and which is never an event: only its counts may reach the
candidate, so notes here carry counts, never hidden test names, arguments or messages).

Visible runs (:func:`label_run`); only the first run of each code version counts, so
pressing "run" twice on the same code says nothing new:

- passed on the first run of the session: ``code_passes_tests`` + (1.0).
- passed after a failing run: ``code_passes_tests`` + (0.75), and ``fixes_bugs_independently``
  + (0.75) the first time the code goes from failing to passing, unless an interviewer turn
  between the failing run and this one nudged the candidate (a hint or leading question,
  the cue list of :func:`scoring.judges.cues.is_nudge`): a fix after a hint is not
  independent.
- passed again after an earlier pass: ``code_passes_tests`` + (0.5).
- failed after an earlier version passed: a regression, ``code_fails_tests`` - (1.0).
- failed otherwise: ``code_fails_tests`` - (0.5 + 0.5 * the share of tests failed).
- each failed test named like an edge case (empty, single, zero, duplicate, negative, equal,
  impossible, touching, unsorted, nested, ...): ``misses_edge_case`` - (0.75), once per test.
- ``error`` (does not compile, crashes, memory): ``syntax_or_runtime_errors`` - (1.0); a run
  the sandbox could not start says nothing about the code and gives no evidence.
- ``timeout``: ``code_fails_tests`` - (0.75).

Hidden tests (:func:`label_hidden`), pass rate ``r``:

- ``r == 1``: ``passes_hidden_tests`` + (1.0) and ``code_passes_tests`` + (1.0).
- ``r < 1``: ``fails_hidden_tests`` - (0.5 for ``r >= 0.75``, 0.75 for ``r >= 0.5``, else
  1.0) and ``code_fails_tests`` - (``1 - r``, at least 0.25): hidden failures are bugs as
  much as missed edge cases. ``error`` and ``timeout`` count as ``r = 0``.

Evidence cites the ``code.result`` event (visible) or the ``code.snapshot`` of the version
that ran (hidden). Pure functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from protocol.messages import TestOutcome as TestOutcomeMessage
from scoring.code_runner import RunResult
from scoring.evidence import Evidence
from scoring.judges.cues import is_nudge
from scoring.rubric import Polarity
from scoring.transcript import Run, RunStatus, Transcript

__all__ = ["CODE_JUDGE_SIGNALS", "HiddenTestResult", "label_hidden", "label_run"]

IMPL = "implementation"
TEST = "testing_and_edge_cases"

_EDGE_TEST_NAME: Final = re.compile(
    r"empty|single|zero|one_|lone|duplicate|negative|equal|impossible|no_|touching|unsorted|"
    r"nested|only_|large|overflow|all_same|boundary|edge",
    re.IGNORECASE,
)
_SANDBOX_FAILURE: Final = re.compile(r"sandbox", re.IGNORECASE)

CODE_JUDGE_SIGNALS: Final = frozenset(
    {
        "code_passes_tests",
        "code_fails_tests",
        "syntax_or_runtime_errors",
        "fixes_bugs_independently",
        "misses_edge_case",
        "passes_hidden_tests",
        "fails_hidden_tests",
    }
)
"""The signals this judge labels from test results; a conversation judge leaves them alone,
so no test result counts twice."""


@dataclass(frozen=True, slots=True)
class HiddenTestResult:
    """The hidden tests' outcome for code ``version`` (whose ``code.snapshot`` is
    ``snapshot_seq``): counts and the run's status only."""

    version: int
    snapshot_seq: int
    status: RunStatus
    passed: int
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.passed <= self.total or self.snapshot_seq < 1:
            raise ValueError("HiddenTestResult: need 0 <= passed <= total and snapshot_seq >= 1")

    @classmethod
    def from_run(cls, version: int, snapshot_seq: int, result: RunResult) -> HiddenTestResult:
        """From the code runner's result of the question's hidden tests."""
        return cls(version, snapshot_seq, result.status, result.passed_count, len(result.tests))

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, int | str]:
        """What may reach the candidate: counts and status."""
        return {
            "version": self.version,
            "status": self.status,
            "passed": self.passed,
            "total": self.total,
        }


def _first_run_of_version(transcript: Transcript, run: Run) -> bool:
    return not any(r.version == run.version and r.seq < run.seq for r in transcript.runs)


def label_run(transcript: Transcript, seq: int) -> list[Evidence]:
    """Evidence from the visible-test run ``seq`` (a ``code.result`` in ``transcript``),
    judged against the runs before it; empty for any other seq. Pure."""
    run = transcript.run_at(seq)
    if run is None or not _first_run_of_version(transcript, run):
        return []
    earlier = [r for r in transcript.runs if r.seq < run.seq and _counts(r)]
    ever_passed = [r for r in earlier if r.status == "passed"]
    last = earlier[-1] if earlier else None
    out: list[Evidence] = []

    def piece(dimension: str, signal: str, positive: bool, note: str, weight: float) -> None:
        polarity: Polarity = "positive" if positive else "negative"
        out.append(Evidence(dimension, signal, polarity, (run.seq,), note, weight, "code"))

    tests = f"{run.total} visible test{'s' if run.total != 1 else ''}"
    if run.status == "passed":
        if last is None:
            piece(IMPL, "code_passes_tests", True, f"first run passed all {tests}", 1.0)
        elif last.status != "passed":
            piece(IMPL, "code_passes_tests", True, f"v{run.version} passes all {tests}", 0.75)
            already_fixed = any(
                r.status != "passed" and any(p.seq > r.seq for p in ever_passed) for r in earlier
            )
            hinted = any(
                u.role == "interviewer" and last.seq < u.seq < run.seq and is_nudge(u.text)
                for u in transcript.utterances
            )
            if not already_fixed and not hinted:
                piece(
                    IMPL,
                    "fixes_bugs_independently",
                    True,
                    f"fixed the failing code: v{last.version} failed, v{run.version} passes",
                    0.75,
                )
        else:
            piece(IMPL, "code_passes_tests", True, f"v{run.version} still passes all {tests}", 0.5)
        return out
    if run.status == "error":
        if not _counts(run):
            return []
        detail = next((m for m in run.messages if m), "the code did not run")
        detail = detail.removeprefix("not run: ")
        piece(IMPL, "syntax_or_runtime_errors", False, f"v{run.version}: {detail}"[:160], 1.0)
        return out
    if run.status == "timeout":
        piece(
            IMPL, "code_fails_tests", False, f"v{run.version} timed out on the visible tests", 0.75
        )
        return out
    failed = run.total - run.passed
    if ever_passed:
        note = f"regression: v{run.version} fails {failed} of {tests} after v{ever_passed[-1].version} passed"
        piece(IMPL, "code_fails_tests", False, note, 1.0)
    else:
        share = failed / run.total if run.total else 1.0
        note = f"v{run.version} fails {failed} of {tests}"
        piece(IMPL, "code_fails_tests", False, note, round(0.5 + 0.5 * share, 3))
    missed_before = {name for r in earlier for name in r.failed_tests}
    for name in run.failed_tests:
        if _EDGE_TEST_NAME.search(name) and name not in missed_before:
            piece(TEST, "misses_edge_case", False, f"the edge case {name!r} fails", 0.75)
    return out


def _counts(run: Run) -> bool:
    """Whether a run says something about the code (not a sandbox that failed to start)."""
    if run.status != "error":
        return True
    return not (run.messages and all(_SANDBOX_FAILURE.search(m) for m in run.messages))


def label_hidden(hidden: HiddenTestResult) -> list[Evidence]:
    """Evidence from the hidden tests of one code version (counts only). Pure."""
    seqs = (hidden.snapshot_seq,)
    counts = f"{hidden.passed} of {hidden.total} hidden tests"

    def piece(dimension: str, signal: str, positive: bool, note: str, weight: float) -> Evidence:
        polarity: Polarity = "positive" if positive else "negative"
        return Evidence(dimension, signal, polarity, seqs, note, weight, "code")

    if hidden.status == "passed" and hidden.passed == hidden.total and hidden.total > 0:
        return [
            piece(
                TEST, "passes_hidden_tests", True, f"passed all {hidden.total} hidden tests", 1.0
            ),
            piece(IMPL, "code_passes_tests", True, f"passed all {hidden.total} hidden tests", 1.0),
        ]
    rate = hidden.rate if hidden.status in ("passed", "failed") else 0.0
    if hidden.status in ("passed", "failed"):
        note = f"passed {counts}"
    else:
        note = f"{'timed out on' if hidden.status == 'timeout' else 'crashed on'} the hidden tests"
    weight = 0.5 if rate >= 0.75 else 0.75 if rate >= 0.5 else 1.0
    return [
        piece(TEST, "fails_hidden_tests", False, note, weight),
        piece(IMPL, "code_fails_tests", False, note, max(0.25, round(1 - rate, 3))),
    ]


class _Outcome(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def passed(self) -> bool: ...
    @property
    def message(self) -> str | None: ...


def outcome_messages(outcomes: Iterable[_Outcome]) -> list[TestOutcomeMessage]:
    """Per-test outcomes as ``code.result.tests`` carries them (``message`` only on a failure
    that has one)."""
    return [
        TestOutcomeMessage(name=t.name, passed=t.passed, message=t.message)
        if t.message
        else TestOutcomeMessage(name=t.name, passed=t.passed)
        for t in outcomes
    ]
