"""The system-design track's rubric: its dimensions, their four written bands, and their signals.

Fixed data built on :mod:`scoring.rubric`; callers reach it through
:func:`scoring.rubrics.rubric_for`. Signal ids are stable (judges, stored evidence and
reports refer to them): an id is never renamed or reused.
"""

from __future__ import annotations

from typing import Final

from scoring.rubric import Rubric, dimension

__all__ = ["RUBRIC"]

RUBRIC: Final = Rubric(
    track="system_design",
    dimensions=(
        dimension(
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
        dimension(
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
        dimension(
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
        dimension(
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
        dimension(
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
