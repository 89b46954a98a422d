"""The question bank: interview questions as TOML files, validated once at start-up.

Each file in ``scoring/questions/`` (searched recursively) holds one question; its ``id``
is the file's stem. :func:`load_question_bank` reads them all and raises
:class:`QuestionBankError`, naming the file and the field, at the first problem, so a bad
question stops the server at start-up instead of in an interview. Reference solutions are
checked with :mod:`ast` only, never executed here (the test suite runs them through the
sandbox).

File format (all tracks): ``id``, ``track`` (``coding``, ``system_design``,
``behavioral``), ``title``, ``prompt`` (Markdown), ``hints`` (at least 3, gentle to
strong), ``followups`` (at least 2) and a ``[script]`` table for the offline interviewer:
``intro``, ``present``, ``acknowledge`` (at least 3) and ``closing``.

Coding questions add ``difficulty`` (``easy``, ``medium``, ``hard``), ``function_name``,
``signature``, ``starter_code``, ``reference_solution``, ``optimal_complexity``,
``[[examples]]`` (``input``, ``output``, optional ``explanation``: text as shown),
``[[visible_tests]]`` (at least 3) and ``[[hidden_tests]]`` (at least 5), each
``{name, args = [...], expected = ...}`` of JSON values; every hidden test also has
``tags``, one or more kinds of edge case of :data:`scoring.edge_cases.CATEGORIES`
(``general`` for an ordinary case), and optionally ``compare``
(``exact`` by default, ``unordered``, ``sorted`` or ``float``; see
:func:`scoring.code_runner.values_match`) with ``tolerance`` for ``float``. System-design
and behavioral questions add ``focus_areas`` instead.

Only :meth:`CodingQuestion.public_view` (and its siblings) may reach the candidate: it
never contains tests, the reference solution, hints or follow-ups.
"""

from __future__ import annotations

import ast
import json
import math
import random
import re
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeAlias

import msgspec
from msgspec import UNSET, Meta, UnsetType

from scoring.code_runner import CompareMode, TestCase
from scoring.edge_cases import CATEGORIES
from scoring.rubric import Track

__all__ = [
    "DEFAULT_QUESTIONS_DIR",
    "BehavioralQuestion",
    "CodingQuestion",
    "Example",
    "PublicQuestion",
    "Question",
    "QuestionBank",
    "QuestionBankError",
    "QuestionNotFound",
    "Script",
    "SystemDesignQuestion",
    "load_question_bank",
    "load_question_file",
]

DEFAULT_QUESTIONS_DIR: Final = Path(__file__).with_name("questions")
_ID_PATTERN: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

Text = Annotated[str, Meta(min_length=1)]
Difficulty: TypeAlias = Literal["easy", "medium", "hard"]


class QuestionBankError(Exception):
    """A question file is invalid: ``path`` names the file, ``field`` the field (a path like
    ``visible_tests[2].expected``, or None for the file as a whole)."""

    def __init__(self, path: Path, field: str | None, detail: str) -> None:
        self.path = path
        self.field = field
        self.detail = detail
        where = f"{path}: {field}" if field else str(path)
        super().__init__(f"{where}: {detail}")


class QuestionNotFound(KeyError):
    """No question with that id, or not one of the requested track."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "question not found"


class _Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Example(_Strict, frozen=True):
    """A worked example, as text shown to the candidate; ``explanation`` is optional and,
    like the protocol's optional fields, ``UNSET`` (absent on the wire) when missing."""

    input: Text
    output: Text
    explanation: str | UnsetType = UNSET


class Script(_Strict, frozen=True):
    """What the offline interviewer says: greeting, presentation, neutral acknowledgements
    for candidate messages, and the closing."""

    intro: Text
    present: Text
    acknowledge: Annotated[tuple[Text, ...], Meta(min_length=3)]
    closing: Text


class PublicQuestion(_Strict, frozen=True):
    """What the candidate may see of a question (``session.started``'s ``question``)."""

    id: str
    track: Track
    title: str
    prompt: str
    examples: tuple[Example, ...]
    starter_code: str | None = None


class _Question(_Strict, frozen=True, tag_field="track"):
    id: Text
    title: Text
    prompt: Text
    hints: Annotated[tuple[Text, ...], Meta(min_length=3)]
    followups: Annotated[tuple[Text, ...], Meta(min_length=2)]
    script: Script


class CodingQuestion(_Question, frozen=True, tag="coding"):
    """A coding question with tests and a reference solution in Python."""

    difficulty: Difficulty
    function_name: Text
    signature: Text
    starter_code: Text
    examples: Annotated[tuple[Example, ...], Meta(min_length=1)]
    visible_tests: Annotated[tuple[TestCase, ...], Meta(min_length=3)]
    hidden_tests: Annotated[tuple[TestCase, ...], Meta(min_length=5)]
    reference_solution: Text
    optimal_complexity: Text
    compare: CompareMode = "exact"
    tolerance: Annotated[float, Meta(gt=0, lt=1)] = 1e-6

    @property
    def track(self) -> Track:
        return "coding"

    @property
    def all_tests(self) -> tuple[TestCase, ...]:
        return self.visible_tests + self.hidden_tests

    def public_view(self) -> PublicQuestion:
        return PublicQuestion(
            id=self.id,
            track=self.track,
            title=self.title,
            prompt=self.prompt,
            examples=self.examples,
            starter_code=self.starter_code,
        )


class SystemDesignQuestion(_Question, frozen=True, tag="system_design"):
    """A system-design prompt."""

    focus_areas: Annotated[tuple[Text, ...], Meta(min_length=1)]

    @property
    def track(self) -> Track:
        return "system_design"

    def public_view(self) -> PublicQuestion:
        return PublicQuestion(
            id=self.id, track=self.track, title=self.title, prompt=self.prompt, examples=()
        )


class BehavioralQuestion(_Question, frozen=True, tag="behavioral"):
    """A behavioral prompt."""

    focus_areas: Annotated[tuple[Text, ...], Meta(min_length=1)]

    @property
    def track(self) -> Track:
        return "behavioral"

    def public_view(self) -> PublicQuestion:
        return PublicQuestion(
            id=self.id, track=self.track, title=self.title, prompt=self.prompt, examples=()
        )


Question: TypeAlias = CodingQuestion | SystemDesignQuestion | BehavioralQuestion


class QuestionBank:
    """An immutable set of validated questions, by id and by track."""

    def __init__(self, questions: Iterable[Question]) -> None:
        by_id: dict[str, Question] = {}
        for question in questions:
            if question.id in by_id:
                raise ValueError(f"duplicate question id {question.id!r}")
            by_id[question.id] = question
        self._by_id = dict(sorted(by_id.items()))

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Question]:
        return iter(self._by_id.values())

    def __contains__(self, question_id: object) -> bool:
        return question_id in self._by_id

    def get(self, question_id: str) -> Question:
        """The question with ``question_id``; :class:`QuestionNotFound` if there is none."""
        try:
            return self._by_id[question_id]
        except KeyError:
            raise QuestionNotFound(f"no question {question_id!r}") from None

    def for_track(self, track: Track) -> list[Question]:
        """The questions of ``track``, by id."""
        return [q for q in self._by_id.values() if q.track == track]

    def pick(
        self, track: Track, question_id: str | None = None, *, rng: random.Random | None = None
    ) -> Question:
        """``question_id`` if given (it must be of ``track``), else a random question of
        ``track`` drawn with ``rng`` (a fresh ``random.Random`` by default).

        Raises :class:`QuestionNotFound` for an unknown id, an id of another track, or a
        track with no questions.
        """
        if question_id is not None:
            question = self.get(question_id)
            if question.track != track:
                raise QuestionNotFound(f"question {question_id!r} is not a {track} question")
            return question
        choices = self.for_track(track)
        if not choices:
            raise QuestionNotFound(f"no {track} questions")
        return (rng or random.Random()).choice(choices)


def load_question_bank(path: Path | None = None) -> QuestionBank:
    """Load and validate every ``*.toml`` under ``path`` (default: the bundled questions).

    Raises :class:`QuestionBankError` for the first invalid file, a duplicate id, or a
    folder with no question files.
    """
    root = DEFAULT_QUESTIONS_DIR if path is None else path
    if not root.is_dir():
        raise QuestionBankError(root, None, "not a folder")
    files = sorted(root.rglob("*.toml"))
    if not files:
        raise QuestionBankError(root, None, "no question files (*.toml)")
    seen: dict[str, Path] = {}
    questions = []
    for file in files:
        question = load_question_file(file)
        if question.id in seen:
            raise QuestionBankError(
                file, "id", f"duplicate id {question.id!r}, also in {seen[question.id]}"
            )
        seen[question.id] = file
        questions.append(question)
    return QuestionBank(questions)


def load_question_file(path: Path) -> Question:
    """Parse and validate one question file; :class:`QuestionBankError` on any problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionBankError(path, None, f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise QuestionBankError(path, None, f"invalid TOML: {exc}") from None
    try:
        question: Question = msgspec.convert(data, Question)
    except msgspec.ValidationError as exc:
        field, detail = _describe_validation_error(str(exc))
        raise QuestionBankError(path, field, detail) from None
    if question.id != path.stem:
        raise QuestionBankError(
            path, "id", f"{question.id!r} must equal the file stem {path.stem!r}"
        )
    if not _ID_PATTERN.fullmatch(question.id):
        raise QuestionBankError(path, "id", f"{question.id!r} is not kebab-case")
    if isinstance(question, CodingQuestion):
        _check_coding(path, question)
    return question


def _describe_validation_error(message: str) -> tuple[str | None, str]:
    """Split msgspec's ``"<detail> - at `$.a[0].b`"`` into a field path and the detail."""
    detail, _, location = message.partition(" - at `$")
    path = location.rstrip("`").lstrip(".") if location else ""
    named = re.search(r"(?:missing required|unknown) field `([^`]+)`", detail)
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path or None, detail


def _check_coding(path: Path, question: CodingQuestion) -> None:
    names: set[str] = set()
    for group in ("visible_tests", "hidden_tests"):
        tests: tuple[TestCase, ...] = getattr(question, group)
        for index, test in enumerate(tests):
            where = f"{group}[{index}]"
            if test.name in names:
                raise QuestionBankError(path, f"{where}.name", f"duplicate test name {test.name!r}")
            names.add(test.name)
            if group == "hidden_tests" and not test.tags:
                raise QuestionBankError(path, f"{where}.tags", "a hidden test needs its tags")
            unknown = sorted(set(test.tags) - CATEGORIES)
            if unknown:
                raise QuestionBankError(
                    path, f"{where}.tags", f"unknown {unknown}; known: {sorted(CATEGORIES)}"
                )
            for part, value in (("args", list(test.args)), ("expected", test.expected)):
                problem = _json_problem(value)
                if problem:
                    raise QuestionBankError(path, f"{where}.{part}", problem)
    expected = {json.dumps(t.expected, sort_keys=True) for t in question.all_tests}
    if len(expected) < 2:
        raise QuestionBankError(
            path, "hidden_tests", "every test expects the same value; a constant would pass"
        )
    function = _defined_function(
        path, "reference_solution", question.reference_solution, question.function_name
    )
    _defined_function(path, "starter_code", question.starter_code, question.function_name)
    if not question.signature.startswith(f"def {question.function_name}("):
        raise QuestionBankError(
            path, "signature", f"must start with 'def {question.function_name}('"
        )
    low, high = _arity(function)
    for group in ("visible_tests", "hidden_tests"):
        for index, test in enumerate(getattr(question, group)):
            if not low <= len(test.args) <= high:
                raise QuestionBankError(
                    path,
                    f"{group}[{index}].args",
                    f"{len(test.args)} arguments, but {question.function_name} takes {low} to {high}",
                )


def _defined_function(path: Path, field: str, source: str, name: str) -> ast.FunctionDef:
    try:
        tree = ast.parse(source, filename=f"{path.name}:{field}")
    except SyntaxError as exc:
        raise QuestionBankError(
            path, field, f"does not parse: {exc.msg} (line {exc.lineno})"
        ) from None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise QuestionBankError(path, field, f"does not define a top-level function {name!r}")


def _arity(function: ast.FunctionDef) -> tuple[int, float]:
    """How many positional arguments ``function`` accepts: (required, maximum)."""
    positional = function.args.posonlyargs + function.args.args
    required = len(positional) - len(function.args.defaults)
    maximum = math.inf if function.args.vararg else len(positional)
    return required, maximum


def _json_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` is not a JSON value (TOML also has dates and non-finite floats)."""
    if depth > 50:
        return "nested too deeply"
    if isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a finite number"
    if isinstance(value, list | tuple):
        for item in value:
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for item in value.values():
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"{type(value).__name__} is not a JSON value"
