"""The coding track's rubric: its dimensions, their four written bands, and their signals.

Fixed data built on :mod:`scoring.rubric`; callers reach it through
:func:`scoring.rubrics.rubric_for`. Signal ids are stable (judges, stored evidence and
reports refer to them): an id is never renamed or reused.
"""

from __future__ import annotations

from typing import Final

from scoring.rubric import Rubric, dimension

__all__ = ["RUBRIC"]

RUBRIC: Final = Rubric(
    track="coding",
    dimensions=(
        dimension(
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
        dimension(
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
        dimension(
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
        dimension(
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
        dimension(
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
