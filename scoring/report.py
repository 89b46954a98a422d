"""The report: final scores, an overall band, strengths and weaknesses quoting evidence.

:func:`build_report` is pure: from the final :class:`~scoring.evidence.ScoreBook`, the
hidden-test counts and an optional written summary (Claude's, from the server) it builds a
:class:`Report`; without a written summary it writes one from the ledger
(:func:`ledger_summary`), so a report never lacks one.

Rules:

- Each dimension reports its final score (``None``: not observed), its band (1 to 4, the
  rubric's rounding) with the band's label and description, and its evidence count.
- ``overall`` is the mean of the observed dimensions' scores, rounded to 2 decimals; with no
  dimension observed it is the bottom of the scale (1.0): an interview that showed nothing
  is not a hire. Its band uses the same rounding as a dimension's.
- A strength is an observed dimension scoring 2.5 or more, a weakness one below 2.5 (a
  dimension is at most one of the two; strengths best first, weaknesses worst first). Each
  quotes up to :data:`MAX_QUOTES` pieces of its evidence of the matching polarity (heaviest
  first, then earliest), each with its note and the seqs of the events that show it. The
  fold guarantees such evidence exists: a score can only reach 2.5 or more through positive
  evidence, or fall below it through negative evidence.
- Hidden tests appear as counts only.
- ``since_previous`` (an addition; None when not computed) compares each dimension with the
  user's previous reports of the track (:func:`scoring.progress.since_previous`).
- ``evidence`` is the whole ledger in the order applied (``Evidence.to_dict`` each), so the
  stored report is also what :meth:`ScoreBook.from_ledger
  <scoring.evidence.ScoreBook.from_ledger>` needs to refold the scores (evidence from
  Claude cannot be recomputed). Notes are candidate-safe: hidden tests appear as counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from scoring.evidence import NEUTRAL, Evidence, ScoreBook
from scoring.judges.code import HiddenTestResult
from scoring.rubric import BAND_LABELS, SCALE, Dimension

__all__ = [
    "MAX_QUOTES",
    "DimensionResult",
    "EvidenceQuote",
    "Finding",
    "Report",
    "build_report",
    "ledger_summary",
    "overall_band",
]

MAX_QUOTES: Final = 3


@dataclass(frozen=True, slots=True)
class EvidenceQuote:
    """One piece of evidence as the report quotes it."""

    signal_id: str
    polarity: str
    note: str
    seqs: tuple[int, ...]

    @classmethod
    def of(cls, evidence: Evidence) -> EvidenceQuote:
        return cls(evidence.signal_id, evidence.polarity, evidence.note, evidence.seqs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal_id": self.signal_id,
            "polarity": self.polarity,
            "note": self.note,
            "seqs": list(self.seqs),
        }


@dataclass(frozen=True, slots=True)
class DimensionResult:
    """A dimension's final score and band (``None`` when not observed)."""

    name: str
    title: str
    score: float | None
    band: int | None
    band_label: str | None
    band_description: str | None
    evidence_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "score": self.score,
            "band": self.band,
            "band_label": self.band_label,
            "band_description": self.band_description,
            "evidence_count": self.evidence_count,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """A strength or a weakness: a dimension, its score, and the evidence behind it."""

    dimension: str
    title: str
    score: float
    band_label: str
    evidence: tuple[EvidenceQuote, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "title": self.title,
            "score": self.score,
            "band_label": self.band_label,
            "evidence": [q.to_dict() for q in self.evidence],
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The end-of-session report. ``summary_source`` says who wrote ``summary``: ``ledger``
    (built here from the evidence) or ``written`` (passed in, e.g. by Claude)."""

    track: str
    question_id: str | None
    overall: float
    band: int
    band_label: str
    dimensions: tuple[DimensionResult, ...]
    strengths: tuple[Finding, ...]
    weaknesses: tuple[Finding, ...]
    summary: str
    summary_source: Literal["ledger", "written"]
    hidden_tests: dict[str, int | str] | None
    evidence: tuple[Evidence, ...]
    #: How this session compares with the user's previous ones, per dimension
    #: (:func:`scoring.progress.since_previous`); set by the server, None when not computed.
    since_previous: dict[str, Any] | None = None

    @property
    def evidence_count(self) -> int:
        return len(self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "question_id": self.question_id,
            "overall": self.overall,
            "band": self.band,
            "band_label": self.band_label,
            "dimensions": [d.to_dict() for d in self.dimensions],
            "strengths": [f.to_dict() for f in self.strengths],
            "weaknesses": [f.to_dict() for f in self.weaknesses],
            "summary": self.summary,
            "summary_source": self.summary_source,
            "hidden_tests": self.hidden_tests,
            "since_previous": self.since_previous,
            "evidence": [e.to_dict() for e in self.evidence],
        }

    def to_json(self) -> str:
        """The report as compact JSON (keys in a fixed order), for storage and the HTTP API."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


def overall_band(score: float) -> int:
    """The band (1 to 4) of an overall score, rounded as a dimension's band is."""
    low, high = SCALE
    return min(4, int(min(high, max(low, score)) + 0.5))


def _quotes(evidence: tuple[Evidence, ...], polarity: str) -> tuple[EvidenceQuote, ...]:
    matching = [(i, e) for i, e in enumerate(evidence) if e.polarity == polarity]
    matching.sort(key=lambda item: (-item[1].weight, item[0]))
    return tuple(EvidenceQuote.of(e) for _, e in matching[:MAX_QUOTES])


def _result(dimension: Dimension, book: ScoreBook) -> DimensionResult:
    score = book.score(dimension.name)
    count = len(book.evidence_for(dimension.name))
    if score is None:
        return DimensionResult(dimension.name, dimension.title, None, None, None, None, count)
    band = dimension.band(score)
    return DimensionResult(
        dimension.name, dimension.title, score, band.level, band.label, band.description, count
    )


def build_report(
    book: ScoreBook,
    *,
    question_id: str | None = None,
    hidden: HiddenTestResult | None = None,
    summary: str | None = None,
) -> Report:
    """The report of a finished session (see the module docstring). Pure."""
    rubric = book.rubric
    results = tuple(_result(d, book) for d in rubric.dimensions)
    observed = [r.score for r in results if r.score is not None]
    overall = round(sum(observed) / len(observed), 2) if observed else rubric.scale[0]
    band = overall_band(overall)
    strengths: list[Finding] = []
    weaknesses: list[Finding] = []
    for dimension, result in zip(rubric.dimensions, results, strict=True):
        if result.score is None or result.band_label is None:
            continue
        strong = result.score >= NEUTRAL
        quotes = _quotes(book.evidence_for(dimension.name), "positive" if strong else "negative")
        if not quotes:
            continue
        finding = Finding(dimension.name, dimension.title, result.score, result.band_label, quotes)
        (strengths if strong else weaknesses).append(finding)
    strengths.sort(key=lambda f: -f.score)
    weaknesses.sort(key=lambda f: f.score)
    hidden_counts = hidden.to_dict() if hidden is not None else None
    report = Report(
        track=rubric.track,
        question_id=question_id,
        overall=overall,
        band=band,
        band_label=BAND_LABELS[band - 1],
        dimensions=results,
        strengths=tuple(strengths),
        weaknesses=tuple(weaknesses),
        summary="",
        summary_source="ledger",
        hidden_tests=hidden_counts,
        evidence=book.ledger,
    )
    written = (summary or "").strip()
    if written:
        return _with_summary(report, written, "written")
    return _with_summary(report, ledger_summary(report), "ledger")


def _with_summary(report: Report, summary: str, source: Literal["ledger", "written"]) -> Report:
    return replace(report, summary=summary, summary_source=source)


def _seqs(seqs: tuple[int, ...]) -> str:
    return ", ".join(str(s) for s in seqs)


def ledger_summary(report: Report) -> str:
    """The offline summary: a few plain sentences built from the report's findings."""
    observed = [d for d in report.dimensions if d.score is not None]
    if not observed:
        return (
            "There was not enough in this interview to score: no dimension of the rubric "
            "was observed."
        )
    parts = [
        f"Overall {report.overall:.2f} of 4 ({report.band_label}), "
        f"from {report.evidence_count} pieces of evidence across {len(observed)} of "
        f"{len(report.dimensions)} dimensions."
    ]
    if report.strengths:
        best = report.strengths[0]
        quote = best.evidence[0]
        parts.append(
            f"Strongest: {best.title.lower()} ({best.score:.2f}), for example "
            f"\u201c{quote.note}\u201d (event {_seqs(quote.seqs)})."
        )
        others = [f.title.lower() for f in report.strengths[1:]]
        if others:
            parts.append("Also solid: " + ", ".join(others) + ".")
    if report.weaknesses:
        worst = report.weaknesses[0]
        quote = worst.evidence[0]
        parts.append(
            f"To work on first: {worst.title.lower()} ({worst.score:.2f}), for example "
            f"\u201c{quote.note}\u201d (event {_seqs(quote.seqs)})."
        )
        others = [f.title.lower() for f in report.weaknesses[1:]]
        if others:
            parts.append("Also below the bar: " + ", ".join(others) + ".")
    missing = [d.title.lower() for d in report.dimensions if d.score is None]
    if missing:
        parts.append("Not observed: " + ", ".join(missing) + ".")
    hidden = report.hidden_tests
    if hidden is not None:
        parts.append(f"Hidden tests: {hidden['passed']} of {hidden['total']} passed.")
    return " ".join(parts)
