"""The calibration set: 9 stored coding sessions at known levels, replayed through the
offline judges, must come out ordered strong > middling > weak on every dimension and
overall. The figures are printed (run with ``-s``) and must match ``docs/scoring.md``."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from protocol.messages import CodeResult, CodeSnapshot
from scoring.calibration import (
    CALIBRATION_DIR,
    HELDOUT_DIR,
    LEVELS,
    CalibrationError,
    load_calibration_session,
    load_calibration_sessions,
)
from scoring.calibration.agreement import OVERALL, score_calibration
from scoring.code_runner import CodeRunner, TestCase
from scoring.judges.code import HiddenTestResult
from scoring.question_bank import CodingQuestion
from scoring.rubrics import rubric_for

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = load_calibration_sessions()
HELDOUT = load_calibration_sessions(HELDOUT_DIR)
FIGURES = score_calibration(SESSIONS)


def test_the_set_has_three_sessions_per_level_over_several_questions() -> None:
    assert len(SESSIONS) >= 9
    for level in LEVELS:
        assert sum(1 for s in SESSIONS if s.level == level) >= 3
    assert len({s.question.id for s in SESSIONS}) >= 4
    for session in SESSIONS:
        seqs = [e.seq for e in session.events]
        assert seqs == list(range(1, len(seqs) + 1)), session.id
        stamps = [e.ts for e in session.events]
        assert stamps == sorted(stamps), session.id
        assert session.hidden is not None and session.description


def test_the_offline_judges_order_every_dimension_and_the_overall(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with capsys.disabled():
        print("\n" + FIGURES.markdown())
    names = [a.dimension for a in FIGURES.agreement]
    assert names == [*rubric_for("coding").dimension_names, OVERALL]
    for agreement in FIGURES.agreement:
        assert agreement.unobserved == 0, f"{agreement.dimension} not observed everywhere"
        assert agreement.pairs == 27
        assert agreement.accuracy == 1.0, f"{agreement.dimension}: {agreement}"
        assert agreement.margin is not None and agreement.margin > 0


def test_overall_bands_match_the_levels() -> None:
    bands = {
        "strong": {"strong hire", "lean hire"},
        "middling": {"lean hire", "lean no hire"},
        "weak": {"lean no hire", "strong no hire"},
    }
    for session in FIGURES.sessions:
        assert session.band_label in bands[session.level], session


def test_the_documented_figures_are_the_current_ones() -> None:
    doc = (ROOT / "docs" / "scoring.md").read_text(encoding="utf-8")
    assert FIGURES.markdown() in doc, "regenerate with: python -m scoring.calibration"


async def test_stored_runs_and_hidden_counts_are_what_the_sandbox_gives() -> None:
    runner = CodeRunner(max_concurrent=4)
    Check = tuple[str, CodeResult | HiddenTestResult, str, tuple[TestCase, ...]]
    checks: list[Check] = []
    for session in (*SESSIONS, *HELDOUT):
        question = session.question
        assert isinstance(question, CodingQuestion)
        sources: dict[int, str] = {}
        for event in session.events:
            if isinstance(event, CodeSnapshot):
                sources[event.version] = event.source
            elif isinstance(event, CodeResult):
                checks.append((session.id, event, sources[event.version], question.visible_tests))
        assert session.hidden is not None
        checks.append(
            (session.id, session.hidden, sources[session.hidden.version], question.hidden_tests)
        )

    async def check(item: Check) -> None:
        session_id, stored, source, tests = item
        session = next(s for s in (*SESSIONS, *HELDOUT) if s.id == session_id)
        q = session.question
        assert isinstance(q, CodingQuestion)
        result = await runner.run_tests(
            source,
            q.function_name,
            tests,
            compare=q.compare,
            tolerance=q.tolerance,
        )
        if isinstance(stored, CodeResult):
            assert stored.status == result.status, session_id
            assert [t.passed for t in stored.tests] == [t.passed for t in result.tests]
            assert [t.name for t in stored.tests] == [t.name for t in result.tests]
        else:
            assert (stored.status, stored.passed, stored.total) == (
                result.status,
                result.passed_count,
                len(result.tests),
            ), session_id

    await asyncio.gather(*(check(item) for item in checks))


def test_a_broken_file_is_named(tmp_path: Path) -> None:
    source = CALIBRATION_DIR / "strong-two-sum.toml"
    broken = tmp_path / "strong-two-sum.toml"
    shutil.copy(source, broken)
    broken.write_text(broken.read_text().replace("seq = 5\n", "seq = 6\n", 1))
    with pytest.raises(CalibrationError, match=r"strong-two-sum.toml: event seq 6, expected 5"):
        load_calibration_session(broken)
    renamed = tmp_path / "other.toml"
    shutil.copy(source, renamed)
    with pytest.raises(CalibrationError, match="file stem"):
        load_calibration_session(renamed)


def test_the_held_out_sessions_are_ordered_overall_and_documented(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Written after the rules were frozen: reported, not tuned against. Only the overall
    ordering is asserted; per-dimension misses are documented in docs/scoring.md."""
    heldout = score_calibration(HELDOUT)
    with capsys.disabled():
        print("\nheld out:\n" + heldout.markdown())
    assert {s.level for s in heldout.sessions} == set(LEVELS)
    overall = next(a for a in heldout.agreement if a.dimension == OVERALL)
    assert overall.accuracy == 1.0
    doc = (ROOT / "docs" / "scoring.md").read_text(encoding="utf-8")
    assert heldout.markdown() in doc, "regenerate with: python -m scoring.calibration"
