"""Probing a kind of edge case the hidden tests caught, and judging the answer.

When a version's hidden tests fail in some tagged kinds of case
(:func:`failing_categories`), the interviewer asks about one of those kinds, never about
an input (:data:`scoring.edge_cases.PROBES`), and the answer is judged. :class:`EdgeProbes`
is the session's pure state machine for it::

    idle --found(categories)--> asking --probe turn ends--> answering --candidate--> idle

- :meth:`EdgeProbes.found` picks the first failing kind not probed yet in this session
  (each kind at most once) and returns the probe's text with one piece of evidence:
  ``misses_edge_case`` (negative, weight 0.5) on the snapshot that failed, its note naming
  the kind only. Nothing is picked while a probe is pending.
- :meth:`EdgeProbes.observe` takes the session's events in seq order. The probe turn is
  the first interviewer turn *started* after ``after_seq`` (the caller passes the log's
  last seq when the interviewer queued the probe, which it speaks before any reply); the
  answer is the candidate's first message after that turn ends (its evidence cites the
  snapshot and the answer). An answer that engages
  with that kind of case (:data:`scoring.edge_cases.CUES`) without brushing it off gives
  ``names_edge_cases`` (positive); anything else ``misses_edge_case`` (negative, 0.5).

Pure: no clock, no I/O; evidence notes never carry a test name, an input or a message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from protocol.messages import (
    CandidateSaid,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    SessionEvent,
)
from scoring.edge_cases import CUES, LABELS, PROBED_CATEGORIES, PROBES
from scoring.evidence import Evidence
from scoring.run_results import RunResult, TestCase

__all__ = ["EdgeProbes", "PendingProbe", "failing_categories", "judge_answer"]

DIMENSION: Final = "testing_and_edge_cases"
_BRUSH_OFF: Final = re.compile(
    r"\b(should (be|work) fine|(it )?doesn'?t matter|not (needed|necessary|important)|"
    r"won'?t happen|can'?t happen|never happens?|not my problem|no idea)\b",
    re.I,
)


def failing_categories(tests: Sequence[TestCase], result: RunResult) -> tuple[str, ...]:
    """The probed kinds (in :data:`PROBED_CATEGORIES` order) of ``tests`` that failed in
    ``result``. Empty unless the run completed (``passed`` or ``failed``): an error or a
    timeout says nothing about one kind of input. ``general`` is never returned."""
    if result.status not in ("passed", "failed"):
        return ()
    failed = {t.name for t in result.tests if not t.passed}
    tags = {tag for t in tests if t.name in failed for tag in t.tags}
    return tuple(c for c in PROBED_CATEGORIES if c in tags)


def judge_answer(category: str, text: str, seq: int, snapshot_seq: int) -> Evidence:
    """The evidence of the candidate's answer ``text`` (event ``seq``) to the probe about
    ``category`` raised by the snapshot ``snapshot_seq``; it cites both (so it is not the
    same observation as the conversation judge's reading of the message alone)."""
    label = LABELS[category]
    seqs = (snapshot_seq, seq)
    if CUES[category].search(text) and not _BRUSH_OFF.search(text):
        return Evidence(
            DIMENSION,
            "names_edge_cases",
            "positive",
            seqs,
            f"asked about {label}, reasoned it through",
        )
    return Evidence(
        DIMENSION,
        "misses_edge_case",
        "negative",
        seqs,
        f"asked about {label}, did not address it",
        weight=0.5,
    )


@dataclass(frozen=True, slots=True)
class PendingProbe:
    """A probe asked or about to be: its kind, the snapshot that raised it, the seq after
    which its turn starts, and
    (once seen) that turn's id and whether it has ended."""

    category: str
    snapshot_seq: int
    after_seq: int
    turn_id: str | None = None
    stage: Literal["asking", "answering"] = "asking"


@dataclass(frozen=True, slots=True)
class EdgeProbes:
    """One session's edge-case probes (see the module docstring). Immutable."""

    probed: frozenset[str] = frozenset()
    pending: PendingProbe | None = None

    def found(
        self, categories: Sequence[str], *, snapshot_seq: int, after_seq: int
    ) -> tuple[EdgeProbes, str | None, list[Evidence]]:
        """A hidden-test check of the snapshot ``snapshot_seq`` failed in ``categories``:
        the new state, the probe to ask (None: nothing new to probe, or one pending) and
        its evidence."""
        if self.pending is not None:
            return self, None, []
        category = next((c for c in categories if c in PROBES and c not in self.probed), None)
        if category is None:
            return self, None, []
        evidence = Evidence(
            DIMENSION,
            "misses_edge_case",
            "negative",
            (snapshot_seq,),
            f"the code mishandles {LABELS[category]}, a case the visible tests do not cover",
            weight=0.5,
        )
        state = EdgeProbes(
            self.probed | {category}, PendingProbe(category, snapshot_seq, after_seq)
        )
        return state, PROBES[category], [evidence]

    def observe(self, event: SessionEvent) -> tuple[EdgeProbes, list[Evidence]]:
        """Fold one session event: the new state and the evidence of an answer, if this
        event is the answer to the pending probe."""
        pending = self.pending
        if pending is None:
            return self, []
        match event:
            case InterviewerTurnStart() if (
                pending.turn_id is None and event.seq > pending.after_seq
            ):
                return replace(self, pending=replace(pending, turn_id=event.turn_id)), []
            case InterviewerTurnEnd() if pending.turn_id == event.turn_id:
                return replace(self, pending=replace(pending, stage="answering")), []
            case CandidateSaid() if pending.stage == "answering":
                return replace(self, pending=None), [
                    judge_answer(pending.category, event.text, event.seq, pending.snapshot_seq)
                ]
            case _:
                return self, []
