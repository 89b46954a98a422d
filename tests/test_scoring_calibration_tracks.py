"""The calibration sets of the talk-only tracks (system design, behavioral): 9 stored
sessions each, replayed through the offline judges, must come out ordered strong >
middling > weak on every dimension the judge observed in both sessions of a pair, and
overall; the figures must match ``docs/scoring.md``. The held-out sessions are reported,
and only their overall ordering is asserted (per-dimension misses are documented)."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.messages import Track
from scoring.calibration import LEVELS, TRACK_DIRS, heldout_dir, load_calibration_sessions
from scoring.calibration.agreement import OVERALL, score_calibration
from scoring.rubrics import rubric_for

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
TRACKS: tuple[Track, ...] = ("system_design", "behavioral")
BANDS = {
    "strong": {"strong hire", "lean hire"},
    "middling": {"lean hire", "lean no hire"},
    "weak": {"lean no hire", "strong no hire"},
}


@pytest.mark.parametrize("track", TRACKS)
def test_the_set_has_three_sessions_per_level_over_the_tracks_questions(track: Track) -> None:
    sessions = load_calibration_sessions(TRACK_DIRS[track])
    assert len(sessions) >= 9
    for level in LEVELS:
        assert sum(1 for s in sessions if s.level == level) >= 3
    assert len({s.question.id for s in sessions}) >= 2
    for session in sessions:
        assert session.question.track == track
        seqs = [e.seq for e in session.events]
        assert seqs == list(range(1, len(seqs) + 1)), session.id
        assert session.hidden is None and session.description


@pytest.mark.parametrize("track", TRACKS)
def test_the_offline_judge_orders_every_dimension_it_observes(
    track: Track, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = score_calibration(load_calibration_sessions(TRACK_DIRS[track]))
    with capsys.disabled():
        print(f"\n{track}:\n" + figures.markdown())
    names = [a.dimension for a in figures.agreement]
    assert names == [*rubric_for(track).dimension_names, OVERALL]
    for agreement in figures.agreement:
        # A dimension may go unobserved in one or two weak sessions (nothing was said about
        # it at all), never in most of them.
        assert agreement.unobserved <= 12, f"{agreement.dimension}: {agreement}"
        assert agreement.accuracy == 1.0, f"{agreement.dimension}: {agreement}"
        assert agreement.margin is not None and agreement.margin > 0, agreement
    for session in figures.sessions:
        assert session.band_label in BANDS[session.level], session
        if session.level != "weak":
            assert None not in session.scores.values(), session


@pytest.mark.parametrize("track", TRACKS)
def test_the_held_out_sessions_are_ordered_overall(track: Track) -> None:
    heldout = score_calibration(load_calibration_sessions(heldout_dir(track)))
    assert {s.level for s in heldout.sessions} == set(LEVELS)
    overall = next(a for a in heldout.agreement if a.dimension == OVERALL)
    assert overall.accuracy == 1.0


@pytest.mark.parametrize("track", TRACKS)
def test_the_documented_figures_are_the_current_ones(track: Track) -> None:
    doc = (ROOT / "docs" / "scoring.md").read_text(encoding="utf-8")
    for folder in (TRACK_DIRS[track], heldout_dir(track)):
        figures = score_calibration(load_calibration_sessions(folder))
        assert figures.markdown() in doc, "regenerate with: python -m scoring.calibration"
