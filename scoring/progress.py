"""A candidate's progress across interviews, derived only from their stored reports.

Pure functions over :class:`PastReport` (a stored report body with when its session started),
so the same reports always give the same figures, whichever worker computes them and however
often a report was recovered or replayed.

:func:`build_progress` (``GET /v1/me/progress``), per track, oldest session first:

- per rubric dimension, the ``series`` of final scores (``date``, ``session_id``,
  ``question_id``, ``score``; sessions where the dimension was not observed are left out), the
  ``latest`` score, the ``recent_mean`` (of the last :data:`TREND_WINDOW`), and the
  ``trend``: the mean of the last :data:`TREND_WINDOW` scores against the mean of the up to
  :data:`TREND_WINDOW` scores before them; with :data:`TREND_WINDOW` scores or fewer, all but
  the first against the first; None with fewer than two. ``direction`` is ``up``, ``down``
  or ``flat`` (a change under :data:`FLAT_BELOW`);
- ``best`` and ``weakest``: the dimensions with the highest and lowest mean of their last
  :data:`TREND_WINDOW` scores (ties: the rubric's order), None when nothing was observed;
- ``overall``: each session's overall score;
- ``hidden_tests``: each session that ran hidden tests, with ``passed``, ``total`` and
  ``rate`` (passed / total, None when there were none).

:func:`since_previous` (the ``since_previous`` field of a new report): per dimension, this
session's score against the mean of that dimension in the user's previous
:data:`TREND_WINDOW` reports of the same track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "FLAT_BELOW",
    "TREND_WINDOW",
    "PastReport",
    "build_progress",
    "since_previous",
    "trend",
]

TREND_WINDOW: Final = 3
FLAT_BELOW: Final = 0.05


@dataclass(frozen=True, slots=True)
class PastReport:
    """One stored report: its session, when the session started (ISO 8601), the body."""

    session_id: str
    date: str
    body: dict[str, Any]

    @property
    def track(self) -> str:
        return str(self.body.get("track", ""))

    @property
    def question_id(self) -> str | None:
        value = self.body.get("question_id")
        return None if value is None else str(value)

    def scores(self) -> dict[str, float]:
        """Observed dimensions' final scores, by dimension name."""
        found: dict[str, float] = {}
        for d in self.body.get("dimensions") or []:
            if isinstance(d, dict) and isinstance(d.get("score"), int | float):
                found[str(d["name"])] = float(d["score"])
        return found


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 2)


def trend(scores: Sequence[float]) -> dict[str, Any] | None:
    """The last :data:`TREND_WINDOW` scores against the ones before them (see the module
    docstring); None with fewer than two scores."""
    if len(scores) < 2:
        return None
    recent_n = len(scores) - 1 if len(scores) <= TREND_WINDOW else TREND_WINDOW
    recent = scores[-recent_n:]
    previous = scores[:-recent_n][-TREND_WINDOW:]
    recent_mean, previous_mean = _mean(recent), _mean(previous)
    change = round(recent_mean - previous_mean, 2)
    direction = "flat" if abs(change) < FLAT_BELOW else ("up" if change > 0 else "down")
    return {
        "recent_mean": recent_mean,
        "recent_sessions": len(recent),
        "previous_mean": previous_mean,
        "previous_sessions": len(previous),
        "change": change,
        "direction": direction,
    }


def _dimension_order(reports: Sequence[PastReport]) -> list[tuple[str, str]]:
    """(name, title) of every dimension the reports list, in the order they first appear."""
    seen: dict[str, str] = {}
    for r in reports:
        for d in r.body.get("dimensions") or []:
            if isinstance(d, dict) and "name" in d:
                seen.setdefault(str(d["name"]), str(d.get("title") or d["name"]))
    return list(seen.items())


def _track(track: str, reports: Sequence[PastReport]) -> dict[str, Any]:
    dimensions: list[dict[str, Any]] = []
    recent_means: list[tuple[float, int, str]] = []
    for index, (name, title) in enumerate(_dimension_order(reports)):
        observed = [(r, r.scores()[name]) for r in reports if name in r.scores()]
        series = [
            {"date": r.date, "session_id": r.session_id, "question_id": r.question_id, "score": v}
            for r, v in observed
        ]
        scores = [v for _, v in observed]
        if scores:
            recent_means.append((_mean(scores[-TREND_WINDOW:]), index, name))
        dimensions.append(
            {
                "name": name,
                "title": title,
                "series": series,
                "latest": scores[-1] if scores else None,
                "recent_mean": _mean(scores[-TREND_WINDOW:]) if scores else None,
                "trend": trend(scores),
            }
        )
    best = max(recent_means, key=lambda m: (m[0], -m[1]))[2] if recent_means else None
    weakest = min(recent_means, key=lambda m: (m[0], m[1]))[2] if recent_means else None
    hidden = []
    for r in reports:
        counts = r.body.get("hidden_tests")
        if isinstance(counts, dict) and isinstance(counts.get("total"), int):
            total, passed = int(counts["total"]), int(counts.get("passed") or 0)
            hidden.append(
                {
                    "date": r.date,
                    "session_id": r.session_id,
                    "question_id": r.question_id,
                    "passed": passed,
                    "total": total,
                    "rate": round(passed / total, 4) if total else None,
                }
            )
    return {
        "track": track,
        "sessions": len(reports),
        "dimensions": dimensions,
        "best": best,
        "weakest": weakest,
        "overall": [
            {
                "date": r.date,
                "session_id": r.session_id,
                "question_id": r.question_id,
                "overall": r.body.get("overall"),
            }
            for r in reports
        ],
        "hidden_tests": hidden,
    }


def build_progress(reports: Sequence[PastReport]) -> dict[str, Any]:
    """``{sessions, tracks: [...]}`` from ``reports``, oldest first (see the module
    docstring); tracks in the order of their first session."""
    by_track: dict[str, list[PastReport]] = {}
    for r in reports:
        by_track.setdefault(r.track, []).append(r)
    return {
        "sessions": len(reports),
        "tracks": [_track(track, rs) for track, rs in by_track.items()],
    }


def since_previous(current: dict[str, Any], previous: Sequence[PastReport]) -> dict[str, Any]:
    """What a new report (``current``, a report body) adds about the user's previous reports
    of its track (``previous``, oldest first; only the last :data:`TREND_WINDOW` count):
    ``{sessions, dimensions: [{name, score, previous_mean, previous_scores, change}]}``;
    ``change`` is None where this session or the previous ones did not observe it."""
    track = current.get("track")
    window = [r for r in previous if r.track == track][-TREND_WINDOW:]
    dimensions = []
    for d in current.get("dimensions") or []:
        name = str(d["name"])
        before = [r.scores()[name] for r in window if name in r.scores()]
        score = d.get("score")
        previous_mean = _mean(before) if before else None
        change = (
            round(float(score) - previous_mean, 2)
            if previous_mean is not None and isinstance(score, int | float)
            else None
        )
        dimensions.append(
            {
                "name": name,
                "score": score,
                "previous_mean": previous_mean,
                "previous_scores": before,
                "change": change,
            }
        )
    return {"sessions": len(window), "dimensions": dimensions}
