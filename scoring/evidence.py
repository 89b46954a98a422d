"""The evidence ledger: judges label evidence, and a pure fold turns evidence into scores.

A judge never sets a score. It labels :class:`Evidence` (a rubric signal, its polarity and
the ``seq`` of the session events that show it), and :meth:`ScoreBook.apply` folds each
piece into the dimension's score with a bounded step. The fold is deterministic: no clock,
no randomness, no I/O, so the same evidence in the same order always gives the same scores,
and a stored session replayed through the same judges gives the scores it had live.

The step rule (constants below; every number is on the rubric scale, 1.0 to 4.0):

- A dimension starts "not yet observed" (``None``). Its first piece of evidence starts it
  from the scale's midpoint, 2.5, by ``MAX_DELTA * weight`` toward the evidence's side: a
  positive first observation of weight 1 lands on 3.0 (the middle of band 3, lean hire), a
  negative one on 2.0 (the middle of band 2, lean no hire). The reported delta is measured
  from 2.5.
- Every later piece moves the score toward 4.0 (positive) or 1.0 (negative) by
  ``MAX_DELTA * weight * REPEAT_DECAY**k * min(1, distance / REACH)``: ``k`` counts earlier
  evidence of the same signal in this book (diminishing returns: the fifth "thinks aloud"
  counts far less than the first), and ``distance`` is how far the score still is from that
  end, so scores approach the ends of the scale without jumping there.
- So ``|delta| <= MAX_DELTA`` for every piece, and the score stays within the scale
  (clamped besides, against rounding). Scores and deltas are rounded to 3 decimals.
- The same signal with the same seqs counts once (judges may label a turn again).
- A piece that would move the score by less than 0.001 is kept in the ledger but produces
  no :class:`ScoreChange`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from protocol.messages import ScoreDelta
from scoring.rubric import SCALE, Polarity, Rubric
from scoring.rubrics import rubric_for

__all__ = [
    "FIRST_NEGATIVE",
    "FIRST_POSITIVE",
    "MAX_DELTA",
    "MAX_NOTE_CHARS",
    "NEUTRAL",
    "REACH",
    "REPEAT_DECAY",
    "Evidence",
    "EvidenceSource",
    "InvalidEvidence",
    "ScoreBook",
    "ScoreChange",
    "fold_evidence",
]

EvidenceSource: TypeAlias = Literal["code", "conversation"]

MAX_DELTA: Final = 0.5
"""The largest move one piece of evidence can make, either way."""
NEUTRAL: Final = (SCALE[0] + SCALE[1]) / 2
"""2.5: where a dimension's first observation starts from."""
FIRST_POSITIVE: Final = NEUTRAL + MAX_DELTA
FIRST_NEGATIVE: Final = NEUTRAL - MAX_DELTA
REPEAT_DECAY: Final = 0.6
"""Each earlier piece of the same signal shrinks the next one's step by this factor."""
REACH: Final = 1.5
"""Within this distance of the end it moves toward, a step shrinks in proportion."""
MAX_NOTE_CHARS: Final = 240
_MIN_STEP: Final = 0.001


class InvalidEvidence(ValueError):
    """Evidence that does not fit the rubric: an unknown signal, a signal filed under another
    dimension, a polarity that contradicts the signal's, no seqs, or a weight out of range."""


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One labelled observation: ``signal_id`` of ``dimension`` seen in the events ``seqs``.

    ``seqs`` are normalised to a sorted tuple without repeats and must not be empty (evidence
    always names the events that show it). ``weight`` in (0, 1] scales the step; ``note`` is
    a short, candidate-safe description (it becomes the ``score.delta`` reason and is quoted
    in the report); ``source`` says which judge labelled it.
    """

    dimension: str
    signal_id: str
    polarity: Polarity
    seqs: tuple[int, ...]
    note: str
    weight: float = 1.0
    source: EvidenceSource = "conversation"

    def __post_init__(self) -> None:
        seqs = tuple(sorted(set(self.seqs)))
        if not seqs:
            raise InvalidEvidence(f"{self.signal_id}: evidence must name at least one seq")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in seqs):
            raise InvalidEvidence(f"{self.signal_id}: seqs must be positive integers")
        if not (isinstance(self.weight, int | float) and 0 < self.weight <= 1):
            raise InvalidEvidence(f"{self.signal_id}: weight must be in (0, 1]")
        if self.polarity not in ("positive", "negative"):
            raise InvalidEvidence(f"{self.signal_id}: polarity must be positive or negative")
        if self.source not in ("code", "conversation"):
            raise InvalidEvidence(f"{self.signal_id}: source must be code or conversation")
        object.__setattr__(self, "seqs", seqs)
        object.__setattr__(self, "weight", float(self.weight))
        object.__setattr__(self, "note", _clip(self.note, MAX_NOTE_CHARS))

    @property
    def key(self) -> tuple[str, tuple[int, ...]]:
        """What makes two pieces the same observation: the signal and the events."""
        return (self.signal_id, self.seqs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for storing the ledger); :meth:`from_dict` reads it back."""
        return {
            "dimension": self.dimension,
            "signal_id": self.signal_id,
            "polarity": self.polarity,
            "seqs": list(self.seqs),
            "note": self.note,
            "weight": self.weight,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """The inverse of :meth:`to_dict`; :class:`InvalidEvidence` for a malformed dict."""
        try:
            return cls(
                dimension=str(data["dimension"]),
                signal_id=str(data["signal_id"]),
                polarity=data["polarity"],
                seqs=tuple(data["seqs"]),
                note=str(data["note"]),
                weight=data.get("weight", 1.0),
                source=data.get("source", "conversation"),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidEvidence(f"malformed evidence record: {exc}") from None


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """A dimension's score moved: what a ``score.delta`` event carries.

    ``delta`` is ``score`` minus the previous score (minus 2.5 for a first observation, see
    the module docstring); ``evidence_seqs`` are the seqs of the evidence that moved it.
    """

    dimension: str
    delta: float
    score: float
    reason: str
    evidence_seqs: tuple[int, ...]
    signal_id: str
    first_observation: bool = False

    def to_event(self) -> ScoreDelta:
        """The ``score.delta`` event, with ``seq`` and ``ts`` left 0 for the log to assign."""
        return ScoreDelta(
            dimension=self.dimension,
            delta=self.delta,
            score=self.score,
            reason=self.reason,
            evidence=list(self.evidence_seqs),
            seq=0,
            ts=0,
        )


def _round(value: float) -> float:
    return round(value, 3) + 0.0  # + 0.0 turns -0.0 into 0.0


@dataclass(frozen=True, slots=True)
class ScoreBook:
    """Immutable scoring state of one session: a score per dimension (``None`` until
    observed) and the ledger of every piece of evidence applied, in order.

    Build one with :meth:`empty` (or :meth:`for_track`), then :meth:`apply` evidence; each
    call returns a new book. :meth:`from_ledger` refolds a stored ledger.
    """

    rubric: Rubric
    scores: Mapping[str, float | None]
    ledger: tuple[Evidence, ...] = ()
    _seen: frozenset[tuple[str, tuple[int, ...]]] = field(default=frozenset(), repr=False)
    _signal_counts: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )

    @classmethod
    def empty(cls, rubric: Rubric) -> ScoreBook:
        """A book with every dimension of ``rubric`` not yet observed."""
        return cls(rubric, MappingProxyType(rubric.unobserved_scores()))

    @classmethod
    def for_track(cls, track: str) -> ScoreBook:
        """:meth:`empty` for the rubric of ``track`` (:class:`KeyError` for an unknown one)."""
        return cls.empty(rubric_for(track))

    @classmethod
    def from_ledger(cls, rubric: Rubric, ledger: Iterable[Evidence]) -> ScoreBook:
        """The book that applying ``ledger`` in order to an empty book gives."""
        book, _ = fold_evidence(rubric, ledger)
        return book

    def score(self, dimension: str) -> float | None:
        """The score of ``dimension`` (``None``: not yet observed); :class:`KeyError` if the
        rubric has no such dimension."""
        return self.scores[dimension]

    @property
    def observed(self) -> dict[str, float]:
        """The observed dimensions' scores, in rubric order."""
        return {d: s for d, s in self.scores.items() if s is not None}

    def evidence_for(self, dimension: str) -> tuple[Evidence, ...]:
        """The ledger entries of ``dimension``, in the order they were applied."""
        return tuple(e for e in self.ledger if e.dimension == dimension)

    def validate(self, evidence: Evidence) -> None:
        """Raise :class:`InvalidEvidence` unless ``evidence`` fits this book's rubric."""
        try:
            signal = self.rubric.signal(evidence.signal_id)
        except KeyError:
            raise InvalidEvidence(
                f"{self.rubric.track} has no signal {evidence.signal_id!r}"
            ) from None
        if signal.dimension != evidence.dimension:
            raise InvalidEvidence(
                f"signal {signal.id!r} belongs to {signal.dimension!r}, not {evidence.dimension!r}"
            )
        if signal.polarity != evidence.polarity:
            raise InvalidEvidence(f"signal {signal.id!r} is {signal.polarity}")

    def apply(self, evidence: Evidence) -> tuple[ScoreBook, ScoreChange | None]:
        """Fold one piece of evidence in: the new book, and the change it made (``None`` when
        it repeats an observation already applied, or moves the score by less than 0.001).

        Raises :class:`InvalidEvidence` when the evidence does not fit the rubric (the book
        is then unchanged). Pure: ``self`` is not modified.
        """
        self.validate(evidence)
        if evidence.key in self._seen:
            return self, None
        low, high = self.rubric.scale
        previous = self.scores[evidence.dimension]
        sign = 1.0 if evidence.polarity == "positive" else -1.0
        repeats = self._signal_counts.get(evidence.signal_id, 0)
        if previous is None:
            score = _round(NEUTRAL + sign * MAX_DELTA * evidence.weight)
            delta = _round(score - NEUTRAL)
        else:
            end = high if sign > 0 else low
            room = min(1.0, abs(end - previous) / REACH)
            step = MAX_DELTA * evidence.weight * REPEAT_DECAY**repeats * room
            score = _round(min(high, max(low, previous + sign * step)))
            delta = _round(score - previous)
        scores = dict(self.scores)
        counts = dict(self._signal_counts)
        counts[evidence.signal_id] = repeats + 1
        moved = previous is None or abs(delta) >= _MIN_STEP
        if moved:
            scores[evidence.dimension] = score
        book = ScoreBook(
            self.rubric,
            MappingProxyType(scores),
            (*self.ledger, evidence),
            self._seen | {evidence.key},
            MappingProxyType(counts),
        )
        if not moved:
            return book, None
        assert math.isfinite(score) and abs(delta) <= MAX_DELTA + 1e-9
        change = ScoreChange(
            dimension=evidence.dimension,
            delta=delta,
            score=score,
            reason=evidence.note or self.rubric.signal(evidence.signal_id).description,
            evidence_seqs=evidence.seqs,
            signal_id=evidence.signal_id,
            first_observation=previous is None,
        )
        return book, change

    def apply_all(self, evidence: Iterable[Evidence]) -> tuple[ScoreBook, list[ScoreChange]]:
        """:meth:`apply` each piece in order; the final book and every change made.

        Raises :class:`InvalidEvidence` at the first piece that does not fit; nothing of the
        batch is applied then (validate first, then fold).
        """
        pieces = list(evidence)
        for piece in pieces:
            self.validate(piece)
        book, changes = self, []
        for piece in pieces:
            book, change = book.apply(piece)
            if change is not None:
                changes.append(change)
        return book, changes


def fold_evidence(
    rubric: Rubric, evidence: Iterable[Evidence]
) -> tuple[ScoreBook, list[ScoreChange]]:
    """Apply ``evidence`` in order to an empty book of ``rubric``: the book and the changes."""
    return ScoreBook.empty(rubric).apply_all(evidence)
