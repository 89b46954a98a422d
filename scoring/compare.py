"""Comparing a returned value with the expected one, in the parent, never in the sandbox.

Both values are JSON values (the child sends its return value as JSON text); the candidate's
language does not matter here, so Python and JavaScript answers are judged alike.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, Literal, TypeAlias

__all__ = ["COMPARE_MODES", "CompareMode", "values_match"]

CompareMode: TypeAlias = Literal["exact", "unordered", "sorted", "float"]
COMPARE_MODES: Final[tuple[CompareMode, ...]] = ("exact", "unordered", "sorted", "float")


def values_match(expected: Any, got: Any, compare: CompareMode, tolerance: float = 1e-6) -> bool:
    """Whether ``got`` matches ``expected`` (both JSON values) under ``compare``.

    ``exact``: equal JSON values (``True`` is not ``1``; ``2`` equals ``2.0``).
    ``unordered``: lists equal as multisets (the top level only). ``sorted``: lists equal
    as multisets at every depth. ``float``: numbers within ``tolerance`` (relative or
    absolute), at any depth. Where ``expected`` is not a list, the list modes are exact.
    """
    if compare == "float":
        return _close(expected, got, tolerance)
    if compare in ("unordered", "sorted") and isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return False
        deep = compare == "sorted"
        return sorted(_key(v, deep) for v in expected) == sorted(_key(v, deep) for v in got)
    return _equal(expected, got)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _close(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return _equal(a, b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(_close(x, y, tolerance) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_close(a[k], b[k], tolerance) for k in a)
        )
    return _equal(a, b)


def _key(value: Any, deep: bool) -> str:
    """A canonical JSON text: equal keys for values that are :func:`_equal` (with list order
    ignored at every depth when ``deep``)."""
    return json.dumps(_canonical(value, deep), sort_keys=True)


def _canonical(value: Any, deep: bool) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        items = [_canonical(v, deep) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True)) if deep else items
    if isinstance(value, dict):
        return {k: _canonical(v, deep) for k, v in value.items()}
    return value
