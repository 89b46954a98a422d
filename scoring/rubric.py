"""What a scoring rubric is: dimensions, four written bands, and signals.

A rubric is fixed data; each track's is in :mod:`scoring.rubrics`, built on this model.
Scores live on :data:`SCALE`, 1.0 to 4.0, read the way interviewing.io reads its 1-to-4
scale: 1 strong no hire, 2 lean no hire, 3 lean hire, 4 strong hire. Each dimension describes all four bands in words (after the Tech Interview
Handbook's rubric, which gives basic and advanced signals per dimension) and lists the
positive and negative signals that judges label evidence with.

Contracts:

- ``TRACKS`` is the closed set of tracks; :func:`scoring.rubrics.rubric_for` returns the one
  rubric of a track and raises :class:`KeyError` for any other name.
- Within a rubric, dimension names are unique, and signal ids are unique across all of its
  dimensions, so a signal id alone names its dimension. Ids are stable: judges, stored
  evidence and reports refer to them, so an id is never renamed or reused.
- A dimension without evidence is "not yet observed": its score is ``None``, never a
  number (see :meth:`Rubric.unobserved_scores`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

__all__ = [
    "BAND_LABELS",
    "SCALE",
    "TRACKS",
    "Band",
    "Dimension",
    "Polarity",
    "Rubric",
    "Scores",
    "Signal",
    "Track",
    "dimension",
]

Track: TypeAlias = Literal["coding", "system_design", "behavioral"]
Polarity: TypeAlias = Literal["positive", "negative"]
Scores: TypeAlias = Mapping[str, float | None]
"""Score per dimension name; ``None`` means not yet observed."""

TRACKS: Final[tuple[Track, ...]] = ("coding", "system_design", "behavioral")
SCALE: Final[tuple[float, float]] = (1.0, 4.0)
BAND_LABELS: Final[tuple[str, str, str, str]] = (
    "strong no hire",
    "lean no hire",
    "lean hire",
    "strong hire",
)


@dataclass(frozen=True, slots=True)
class Band:
    """One of the four bands of a dimension: ``level`` 1 to 4, its label and what it looks like."""

    level: int
    label: str
    description: str


@dataclass(frozen=True, slots=True)
class Signal:
    """An observable behaviour that counts for (``positive``) or against a dimension."""

    id: str
    dimension: str
    polarity: Polarity
    description: str


@dataclass(frozen=True, slots=True)
class Dimension:
    """A scored dimension: four bands from 1 (strong no hire) to 4 (strong hire), and signals."""

    name: str
    title: str
    description: str
    bands: tuple[Band, Band, Band, Band]
    signals: tuple[Signal, ...]

    def band(self, score: float) -> Band:
        """The band nearest to ``score``, halves rounding up: [1, 1.5) is band 1, [1.5, 2.5)
        band 2, [2.5, 3.5) band 3, [3.5, 4] band 4.

        Raises :class:`ValueError` for a score outside :data:`SCALE`.
        """
        low, high = SCALE
        if not low <= score <= high:
            raise ValueError(f"score {score} is outside the scale {SCALE}")
        level = min(4, int(score + 0.5))
        return self.bands[level - 1]

    @property
    def positive_signals(self) -> tuple[Signal, ...]:
        return tuple(s for s in self.signals if s.polarity == "positive")

    @property
    def negative_signals(self) -> tuple[Signal, ...]:
        return tuple(s for s in self.signals if s.polarity == "negative")


@dataclass(frozen=True, slots=True)
class Rubric:
    """The dimensions of one track, in report order, on ``scale`` (min, max)."""

    track: Track
    dimensions: tuple[Dimension, ...]
    scale: tuple[float, float] = SCALE
    _by_name: Mapping[str, Dimension] = field(init=False, repr=False, compare=False)
    _signals: Mapping[str, Signal] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Dimension] = {}
        signals: dict[str, Signal] = {}
        for dimension in self.dimensions:
            if dimension.name in by_name:
                raise ValueError(f"{self.track}: duplicate dimension {dimension.name!r}")
            by_name[dimension.name] = dimension
            for signal in dimension.signals:
                if signal.id in signals:
                    raise ValueError(f"{self.track}: duplicate signal id {signal.id!r}")
                if signal.dimension != dimension.name:
                    raise ValueError(f"{self.track}: signal {signal.id!r} is misfiled")
                signals[signal.id] = signal
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))
        object.__setattr__(self, "_signals", MappingProxyType(signals))

    @property
    def dimension_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def dimension(self, name: str) -> Dimension:
        """The dimension called ``name``; :class:`KeyError` if this track has none."""
        return self._by_name[name]

    def signal(self, signal_id: str) -> Signal:
        """The signal with id ``signal_id``; :class:`KeyError` if this track has none."""
        return self._signals[signal_id]

    @property
    def signals(self) -> Mapping[str, Signal]:
        """Every signal of the track, by id (read-only)."""
        return self._signals

    def unobserved_scores(self) -> dict[str, float | None]:
        """A fresh score map with every dimension not yet observed (``None``)."""
        return dict.fromkeys(self.dimension_names)

    def public_view(self) -> dict[str, list[str] | list[float]]:
        """The rubric as ``session.started`` carries it: ``{dimensions: [...], scale: [min, max]}``."""
        return {"dimensions": list(self.dimension_names), "scale": list(self.scale)}


def dimension(
    name: str,
    title: str,
    description: str,
    bands: tuple[str, str, str, str],
    positive: Mapping[str, str],
    negative: Mapping[str, str],
) -> Dimension:
    """A dimension of four bands (descriptions from 1 to 4, labelled :data:`BAND_LABELS`) and
    its ``positive`` and ``negative`` signals, each ``{id: description}``."""
    return Dimension(
        name=name,
        title=title,
        description=description,
        bands=(
            Band(1, BAND_LABELS[0], bands[0]),
            Band(2, BAND_LABELS[1], bands[1]),
            Band(3, BAND_LABELS[2], bands[2]),
            Band(4, BAND_LABELS[3], bands[3]),
        ),
        signals=(
            *(Signal(i, name, "positive", d) for i, d in positive.items()),
            *(Signal(i, name, "negative", d) for i, d in negative.items()),
        ),
    )
