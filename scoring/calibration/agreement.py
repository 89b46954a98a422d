"""How well a judge orders the calibration sessions: pairwise ordering accuracy.

For each dimension (and the overall score), every pair of sessions at different levels
(strong over middling, strong over weak, middling over weak: 27 pairs with 3 sessions per
level) counts as *ordered* when the higher-level session scores strictly higher, a *tie*
when they score the same, and *unobserved* when either session has no score for it.
``accuracy`` is ordered pairs over the pairs where both were observed. ``margin`` is the
smallest gap between adjacent levels (the lowest score of a level minus the highest of the
level below); positive means the levels do not overlap at all. Pure.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scoring.calibration import LEVELS, CalibrationSession, Level
from scoring.report import build_report
from scoring.scorer import ScoringState, replay

__all__ = [
    "CalibrationFigures",
    "LevelAgreement",
    "SessionScores",
    "figures_of",
    "score_calibration",
]

OVERALL = "overall"


@dataclass(frozen=True, slots=True)
class SessionScores:
    """One replayed session: final score per dimension (None: not observed) and overall."""

    id: str
    level: Level
    scores: dict[str, float | None]
    overall: float
    band_label: str


@dataclass(frozen=True, slots=True)
class LevelAgreement:
    """Pairwise ordering of one dimension (or ``overall``) across the levels."""

    dimension: str
    pairs: int
    ordered: int
    ties: int
    unobserved: int
    margin: float | None

    @property
    def accuracy(self) -> float | None:
        comparable = self.pairs - self.unobserved
        return self.ordered / comparable if comparable else None


@dataclass(frozen=True, slots=True)
class CalibrationFigures:
    sessions: tuple[SessionScores, ...]
    agreement: tuple[LevelAgreement, ...]

    def markdown(self) -> str:
        """Two tables: agreement per dimension, and every session's scores."""
        lines = [
            "| dimension | ordered pairs | accuracy | ties | smallest gap between levels |",
            "|---|---|---|---|---|",
        ]
        for a in self.agreement:
            accuracy = "n/a" if a.accuracy is None else f"{a.accuracy:.0%}"
            margin = "n/a" if a.margin is None else f"{a.margin:+.2f}"
            lines.append(
                f"| {a.dimension} | {a.ordered}/{a.pairs - a.unobserved} | {accuracy} "
                f"| {a.ties} | {margin} |"
            )
        dimensions = [a.dimension for a in self.agreement if a.dimension != OVERALL]
        lines += [
            "",
            "| session | level | " + " | ".join(dimensions) + " | overall |",
            "|---|---|" + "---|" * (len(dimensions) + 1),
        ]
        for s in self.sessions:
            cells = ["-" if s.scores[d] is None else f"{s.scores[d]:.2f}" for d in dimensions]
            lines.append(
                f"| {s.id} | {s.level} | "
                + " | ".join(cells)
                + f" | {s.overall:.2f} ({s.band_label}) |"
            )
        return "\n".join(lines)


def _agreement(name: str, sessions: Sequence[SessionScores]) -> LevelAgreement:
    def value(s: SessionScores) -> float | None:
        return s.overall if name == OVERALL else s.scores[name]

    rank = {level: i for i, level in enumerate(LEVELS)}
    pairs = ordered = ties = unobserved = 0
    for high in sessions:
        for low in sessions:
            if rank[high.level] <= rank[low.level]:
                continue
            pairs += 1
            a, b = value(high), value(low)
            if a is None or b is None:
                unobserved += 1
            elif a > b:
                ordered += 1
            elif a == b:
                ties += 1
    gaps: list[float] = []
    for lower, upper in itertools.pairwise(LEVELS):
        ups = [v for s in sessions if s.level == upper and (v := value(s)) is not None]
        downs = [v for s in sessions if s.level == lower and (v := value(s)) is not None]
        if ups and downs:
            gaps.append(min(ups) - max(downs))
    margin = round(min(gaps), 3) if gaps else None
    return LevelAgreement(name, pairs, ordered, ties, unobserved, margin)


def score_calibration(sessions: Iterable[CalibrationSession]) -> CalibrationFigures:
    """Replay every session through the offline judges and measure the ordering."""
    replayed = []
    for session in sessions:
        state, _ = replay(session.question, session.events, hidden=session.hidden)
        replayed.append((session, state))
    return figures_of(replayed)


def figures_of(replayed: Iterable[tuple[CalibrationSession, ScoringState]]) -> CalibrationFigures:
    """The figures of sessions already replayed (by any judge): each session with its final
    scoring state. Sessions are listed strong first, then by id. Pure."""
    scored: list[SessionScores] = []
    dimensions: tuple[str, ...] = ()
    for session, state in replayed:
        report = build_report(state.book, question_id=session.question.id, hidden=session.hidden)
        dimensions = state.book.rubric.dimension_names
        scored.append(
            SessionScores(
                session.id,
                session.level,
                dict(state.book.scores),
                report.overall,
                report.band_label,
            )
        )
    order = {level: i for i, level in enumerate(reversed(LEVELS))}
    scored.sort(key=lambda s: (order[s.level], s.id))
    agreement = tuple(_agreement(d, scored) for d in (*dimensions, OVERALL))
    return CalibrationFigures(tuple(scored), agreement)
