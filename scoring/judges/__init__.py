"""Judges: pure functions that label evidence (see :mod:`scoring.evidence`)."""
