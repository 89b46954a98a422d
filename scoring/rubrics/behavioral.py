"""The behavioral track's rubric: its dimensions, their four written bands, and their signals.

Fixed data built on :mod:`scoring.rubric`; callers reach it through
:func:`scoring.rubrics.rubric_for`. Signal ids are stable (judges, stored evidence and
reports refer to them): an id is never renamed or reused.
"""

from __future__ import annotations

from typing import Final

from scoring.rubric import Rubric, dimension

__all__ = ["RUBRIC"]

RUBRIC: Final = Rubric(
    track="behavioral",
    dimensions=(
        dimension(
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
        dimension(
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
        dimension(
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
        dimension(
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
        dimension(
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
