"""The rubric of each interview track, looked up by track name.

:func:`rubric_for` returns the one rubric of a track in :data:`scoring.rubric.TRACKS` and
raises :class:`KeyError` for any other name. The rubrics themselves are fixed data, one
module per track (:mod:`scoring.rubrics.coding`, :mod:`scoring.rubrics.system_design`,
:mod:`scoring.rubrics.behavioral`), on the model of :mod:`scoring.rubric`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from scoring.rubric import TRACKS, Rubric
from scoring.rubrics import behavioral, coding, system_design

__all__ = ["rubric_for"]

_RUBRICS: Final[Mapping[str, Rubric]] = MappingProxyType(
    {
        "coding": coding.RUBRIC,
        "system_design": system_design.RUBRIC,
        "behavioral": behavioral.RUBRIC,
    }
)


def rubric_for(track: str) -> Rubric:
    """The rubric of ``track``; :class:`KeyError` naming the track if it is not in :data:`TRACKS`."""
    try:
        return _RUBRICS[track]
    except KeyError:
        raise KeyError(f"unknown track {track!r}; expected one of {TRACKS}") from None
