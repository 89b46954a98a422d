"""The scoring rubric of each interview track: dimensions, four written bands, and signals.

A rubric is fixed data. Scores live on :data:`SCALE`, 1.0 to 4.0, read the way
interviewing.io reads its 1-to-4 scale: 1 strong no hire, 2 lean no hire, 3 lean hire,
4 strong hire. Each dimension describes all four bands in words (after the Tech Interview
Handbook's rubric, which gives basic and advanced signals per dimension) and lists the
positive and negative signals that judges label evidence with.

Contracts:

- ``TRACKS`` is the closed set of tracks; :func:`rubric_for` returns the one rubric of a
  track and raises :class:`KeyError` for any other name.
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
    "rubric_for",
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


def _dimension(
    name: str,
    title: str,
    description: str,
    bands: tuple[str, str, str, str],
    positive: Mapping[str, str],
    negative: Mapping[str, str],
) -> Dimension:
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


_CODING = Rubric(
    track="coding",
    dimensions=(
        _dimension(
            "problem_understanding",
            "Problem understanding",
            "Understands what is asked, pins down inputs, outputs and constraints before solving.",
            (
                "Starts coding a different problem or misreads it; never checks assumptions, even when the examples contradict them.",
                "Understands the happy path but misses stated constraints; asks questions only after going wrong.",
                "Restates the problem, asks about the important constraints (input size, duplicates, empty input) and works an example.",
                "Quickly finds the real ambiguities, confirms them with targeted questions and examples, and uses the constraints to steer the approach.",
            ),
            {
                "asks_clarifying_questions": "Asks targeted questions about inputs, outputs or constraints.",
                "restates_problem": "Restates the problem in their own words before solving.",
                "works_example": "Walks through an example by hand to confirm understanding.",
                "identifies_constraints": "Names the constraints that matter (input size, value ranges, ordering).",
            },
            {
                "misreads_problem": "Solves a different problem than the one asked.",
                "ignores_constraints": "Ignores a stated constraint or requirement.",
                "starts_coding_immediately": "Starts coding with no clarification or plan.",
            },
        ),
        _dimension(
            "approach_and_complexity",
            "Approach and complexity",
            "Finds a working approach, improves it, and analyses its time and space cost correctly.",
            (
                "No workable approach, even with hints; cannot say what the code costs.",
                "Reaches a brute-force approach but cannot improve it or analyses it wrongly; needs strong hints.",
                "Finds an efficient approach, perhaps after a brute-force start or a hint, and states its complexity correctly.",
                "Compares alternatives, reaches the optimal approach with little help, and justifies time and space complexity precisely.",
            ),
            {
                "proposes_brute_force_first": "Starts from a simple correct approach before optimising.",
                "states_complexity": "States the time and space complexity of the approach.",
                "compares_alternatives": "Weighs two or more approaches and their trade-offs.",
                "reaches_optimal_approach": "Arrives at an approach with the optimal complexity.",
            },
            {
                "wrong_complexity": "States a complexity that is wrong for their approach.",
                "suboptimal_without_awareness": "Settles on a slow approach without recognising it can improve.",
                "needs_strong_hints": "Only progresses after a strong hint.",
            },
        ),
        _dimension(
            "implementation",
            "Implementation",
            "Turns the approach into correct, clean, idiomatic code.",
            (
                "Code does not run or is largely incorrect; cannot translate the idea into code.",
                "Code runs for simple cases but has logic bugs, or is hard to read; fixes need much help.",
                "Working code with minor issues, reasonable names and structure; fixes bugs when they show up.",
                "Correct, clean and idiomatic code on the first or second try, well structured and easy to follow.",
            ),
            {
                "code_passes_tests": "The code passes the tests it is run against.",
                "clean_structure": "Uses clear names, small helpers and idiomatic constructs.",
                "fixes_bugs_independently": "Finds and fixes their own bugs.",
            },
            {
                "code_fails_tests": "The code fails tests it is run against.",
                "syntax_or_runtime_errors": "The code does not compile or crashes.",
                "messy_code": "Code that is hard to follow: unclear names, duplicated logic, deep nesting.",
            },
        ),
        _dimension(
            "testing_and_edge_cases",
            "Testing and edge cases",
            "Checks the code: traces examples, names edge cases and handles them.",
            (
                "Does not test and misses obvious edge cases even when prompted.",
                "Tests only the given example; handles edge cases only when pointed to them.",
                "Traces through examples, names the main edge cases and handles most of them.",
                "Systematically tests, including boundaries and tricky inputs, and finds their own bugs before running the code.",
            ),
            {
                "handles_empty_input": "Handles empty input explicitly.",
                "names_edge_cases": "Names edge cases (single element, duplicates, large values, negative numbers).",
                "traces_code_by_hand": "Traces their code by hand on an example.",
                "writes_tests": "Proposes or writes test cases.",
                "passes_hidden_tests": "The code passes the hidden tests.",
            },
            {
                "misses_edge_case": "Misses an edge case that breaks the code.",
                "no_testing": "Declares the code done without testing it.",
                "fails_hidden_tests": "The code fails hidden tests.",
            },
        ),
        _dimension(
            "communication",
            "Communication",
            "Thinks aloud, explains decisions and works with the interviewer.",
            (
                "Mostly silent or incoherent; does not respond to questions or hints.",
                "Explains only when asked; reasoning hard to follow; struggles with feedback.",
                "Thinks aloud, explains the approach clearly and responds well to hints.",
                "Clear, structured and concise throughout; drives the conversation and uses hints to move quickly.",
            ),
            {
                "thinks_aloud": "Narrates their reasoning while working.",
                "explains_clearly": "Explains an idea clearly and concisely.",
                "incorporates_feedback": "Takes a hint or feedback and uses it well.",
            },
            {
                "silent_for_long": "Goes silent for a long stretch while working.",
                "unclear_explanation": "Explanations that are confusing or contradictory.",
                "ignores_hints": "Ignores or argues against helpful hints.",
            },
        ),
    ),
)

_SYSTEM_DESIGN = Rubric(
    track="system_design",
    dimensions=(
        _dimension(
            "requirements_and_scope",
            "Requirements and scope",
            "Establishes functional and non-functional requirements and scopes the problem.",
            (
                "Jumps into components without knowing what the system must do or at what scale.",
                "Lists some features but misses key requirements or never quantifies scale.",
                "Clarifies the core features, the main non-functional requirements and rough scale estimates.",
                "Prioritises requirements, states explicit assumptions, estimates load and storage, and scopes the design to what matters.",
            ),
            {
                "clarifies_functional_requirements": "Asks what the system must do and for whom.",
                "states_nonfunctional_requirements": "Names latency, availability, consistency or durability needs.",
                "estimates_scale": "Does back-of-the-envelope estimates of traffic or storage.",
                "defines_scope": "Explicitly scopes what is in and out of the design.",
            },
            {
                "skips_requirements": "Starts designing without establishing requirements.",
                "no_scale_estimate": "Never considers the scale the system must handle.",
            },
        ),
        _dimension(
            "high_level_design",
            "High-level design",
            "Lays out components, APIs, data model and data flow that meet the requirements.",
            (
                "No coherent architecture; components do not connect or do not meet the requirements.",
                "A generic diagram with gaps: unclear APIs, data model or data flow.",
                "A sound architecture with clear components, APIs and data model that covers the core flow.",
                "A clean, well-justified design where every component earns its place and the data flow is explained end to end.",
            ),
            {
                "defines_api": "Defines the main API endpoints or interfaces.",
                "designs_data_model": "Chooses a data model and storage that fit the access patterns.",
                "explains_data_flow": "Walks a request through the system end to end.",
            },
            {
                "missing_core_component": "Leaves out a component the core flow needs.",
                "buzzword_design": "Names technologies without explaining why they fit.",
            },
        ),
        _dimension(
            "deep_dive_and_tradeoffs",
            "Deep dive and trade-offs",
            "Goes deep on the hard parts and reasons about alternatives and their costs.",
            (
                "Cannot go deeper than boxes on a diagram; no trade-offs discussed.",
                "Goes deep only when pushed; trade-offs stated vaguely or wrongly.",
                "Goes deep on one or two critical components and discusses real trade-offs.",
                "Finds the hardest parts unprompted, compares alternatives with concrete costs and justifies each choice.",
            ),
            {
                "discusses_tradeoffs": "Compares alternatives and names what each costs.",
                "deep_dives_component": "Explains a critical component in depth.",
                "justifies_choices": "Gives reasons for technology and design choices.",
            },
            {
                "no_tradeoffs": "Presents choices as the only option, without alternatives.",
                "shallow_answers": "Answers deep-dive questions at the surface only.",
            },
        ),
        _dimension(
            "scalability_and_reliability",
            "Scalability and reliability",
            "Makes the system grow with load and survive failures.",
            (
                "Ignores scaling and failures; single points of failure everywhere.",
                "Mentions scaling in generic terms (add servers, add a cache) without specifics.",
                "Identifies bottlenecks and addresses them with partitioning, caching or replication; handles common failures.",
                "Plans for growth and failure precisely: bottlenecks, partitioning keys, replication, degradation and monitoring.",
            ),
            {
                "identifies_bottlenecks": "Finds the component that limits scale first.",
                "plans_partitioning_or_caching": "Uses sharding, partitioning or caching where it helps.",
                "handles_failures": "Explains what happens when a component fails.",
                "mentions_monitoring": "Plans metrics, alerts or observability.",
            },
            {
                "single_point_of_failure": "Leaves a single point of failure unaddressed.",
                "hand_waves_scaling": "Answers scaling questions with generic phrases only.",
            },
        ),
        _dimension(
            "communication",
            "Communication",
            "Structures the discussion, explains clearly and collaborates with the interviewer.",
            (
                "Disorganised and hard to follow; does not respond to the interviewer's questions.",
                "Explains when asked, but the discussion wanders and needs steering.",
                "Structured and clear; checks in with the interviewer and adapts to feedback.",
                "Drives the discussion with a clear structure, manages time and makes the interviewer a collaborator.",
            ),
            {
                "structures_discussion": "Lays out a plan for the discussion and follows it.",
                "checks_in": "Checks in with the interviewer on direction and priorities.",
                "explains_clearly": "Explains ideas clearly and concisely.",
            },
            {
                "rambles": "Long, unfocused answers.",
                "ignores_interviewer": "Ignores the interviewer's questions or guidance.",
            },
        ),
    ),
)

_BEHAVIORAL = Rubric(
    track="behavioral",
    dimensions=(
        _dimension(
            "situation_and_ownership",
            "Situation and ownership",
            "Sets up a concrete situation and shows what the candidate personally owned.",
            (
                "Vague or hypothetical story; cannot say what they personally did.",
                "A real situation, but the candidate's own role and stakes stay unclear.",
                "A concrete situation with clear context and a clear personal responsibility.",
                "A well-chosen, specific situation with the stakes and the candidate's ownership obvious from the start.",
            ),
            {
                "gives_specific_example": "Tells a real, specific story rather than a general one.",
                "sets_context": "Explains the context and the stakes briefly.",
                "takes_ownership": "Makes clear what they personally owned.",
            },
            {
                "hypothetical_answer": "Answers with what they would do instead of what they did.",
                "we_not_i": "Describes only what the team did, never their own part.",
            },
        ),
        _dimension(
            "actions_and_judgment",
            "Actions and judgment",
            "Explains the actions taken, the reasoning behind them and the alternatives weighed.",
            (
                "No clear actions, or actions that show poor judgment.",
                "Actions described in general terms; little reasoning behind them.",
                "Concrete actions with sound reasoning behind the key decisions.",
                "Concrete, well-reasoned actions; explains the alternatives considered and why they chose as they did.",
            ),
            {
                "describes_concrete_actions": "Describes the specific steps they took.",
                "explains_reasoning": "Explains why they acted as they did.",
                "weighs_alternatives": "Names alternatives they considered.",
            },
            {
                "vague_actions": "Cannot say concretely what they did.",
                "poor_judgment": "Describes decisions that show poor judgment without recognising it.",
            },
        ),
        _dimension(
            "impact_and_results",
            "Impact and results",
            "States the outcome and its impact, with evidence.",
            (
                "No outcome described, or the outcome is unrelated to their actions.",
                "An outcome stated vaguely, without evidence or link to their actions.",
                "A clear outcome tied to their actions, with some measure of impact.",
                "A clear, measured outcome whose impact on the team, product or users is concrete.",
            ),
            {
                "states_outcome": "States how the situation ended.",
                "quantifies_impact": "Gives a number or concrete evidence of impact.",
                "links_actions_to_results": "Connects the outcome to their own actions.",
            },
            {
                "no_outcome": "Never says how the story ended.",
                "takes_undue_credit": "Claims results that were not theirs.",
            },
        ),
        _dimension(
            "collaboration",
            "Collaboration",
            "Works with others: listens, handles disagreement and helps the team succeed.",
            (
                "Blames others or describes working against the team.",
                "Works alongside others but avoids or mishandles disagreement.",
                "Listens, handles disagreement respectfully and keeps the relationship working.",
                "Builds alignment across people with different views and leaves the team stronger.",
            ),
            {
                "seeks_other_views": "Seeks out and considers other people's views.",
                "resolves_disagreement": "Resolves a disagreement constructively.",
                "supports_teammates": "Helps teammates succeed.",
            },
            {
                "blames_others": "Blames others for problems.",
                "dismisses_others": "Dismisses or disparages other people's views.",
            },
        ),
        _dimension(
            "self_reflection",
            "Self-reflection",
            "Learns from experience: names mistakes, lessons and what they changed since.",
            (
                "No reflection; sees nothing they would do differently.",
                "Generic lessons that are not tied to the story.",
                "Names a specific mistake or lesson and what they would do differently.",
                "Candid about their own mistakes, draws a specific lesson and shows how it changed their later behaviour.",
            ),
            {
                "acknowledges_mistakes": "Names a mistake they made.",
                "states_lesson_learned": "States a specific lesson from the experience.",
                "shows_growth": "Shows how they applied the lesson later.",
            },
            {
                "no_reflection": "Says they would change nothing, or cannot name a lesson.",
                "defensive": "Gets defensive about mistakes or feedback.",
            },
        ),
    ),
)

_RUBRICS: Final[Mapping[str, Rubric]] = MappingProxyType(
    {"coding": _CODING, "system_design": _SYSTEM_DESIGN, "behavioral": _BEHAVIORAL}
)


def rubric_for(track: str) -> Rubric:
    """The rubric of ``track``; :class:`KeyError` naming the track if it is not in :data:`TRACKS`."""
    try:
        return _RUBRICS[track]
    except KeyError:
        raise KeyError(f"unknown track {track!r}; expected one of {TRACKS}") from None
