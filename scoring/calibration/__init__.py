"""The calibration sets: stored sessions at known levels, to check the offline judges.

One set per track: coding sessions in this folder, system-design ones in ``system_design/``
and behavioral ones in ``behavioral/`` (:data:`TRACK_DIRS`), each with its own ``heldout/``
(:func:`heldout_dir`). Sessions of the talk-only tracks have no ``code`` or ``run`` events,
no ``language`` and no ``[hidden]``.

Each ``*.toml`` file in this folder is one session, written as its event log::

    id = "strong-two-sum"            # the file's stem
    level = "strong"                 # strong, middling or weak
    question_id = "two-sum"          # a coding question of the bank
    language = "python"             # coding only
    started_at_ms = 1767261600000    # ts of session.started (seq 1)
    description = "..."              # what the session shows, for people

    [[events]]                       # in seq order, from seq 2
    seq = 2                          # an interviewer turn takes three seqs:
    t = 4                            #   turn.start, one delta with all the text, turn.end
    kind = "interviewer"             # t: seconds after the start (the turn's end)
    text = "..."

    [[events]]
    seq = 5
    t = 61
    kind = "candidate"               # a candidate.message
    text = "..."

    [[events]]
    kind = "code"                    # a code.snapshot: version, source
    kind = "run"                     # a code.result of the visible tests: version, status,
                                     # tests = [{name, passed, message?}], duration_ms

    [end]                            # session.ended: seq, t, reason
    [hidden]                         # the final hidden-test result: version, status,
                                     # passed, total (the server's, not an event)

:func:`load_calibration_sessions` turns each file into protocol events
(:class:`CalibrationSession`) and raises :class:`CalibrationError`, naming the file, at the
first problem: a seq out of order, a version never snapshotted, an unknown question.

``heldout/`` holds sessions in the same format that were written after the offline rules
were frozen; they are not tuned against and are loaded separately (:data:`HELDOUT_DIR`).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

import msgspec

from protocol.messages import (
    CandidateSaid,
    CodeResult,
    CodeSnapshot,
    EndReason,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    Limits,
    Question,
    Rubric,
    SessionEnded,
    SessionEvent,
    SessionStarted,
    StopReason,
)
from protocol.messages import Example as WireExample
from scoring.judges.code import HiddenTestResult, outcome_messages
from scoring.question_bank import (
    CodingQuestion,
    QuestionBank,
    QuestionNotFound,
    load_question_bank,
)
from scoring.question_bank import Question as BankQuestion
from scoring.rubric import Track
from scoring.rubrics import rubric_for
from scoring.transcript import RunStatus

__all__ = [
    "CALIBRATION_DIR",
    "HELDOUT_DIR",
    "LEVELS",
    "TRACK_DIRS",
    "CalibrationError",
    "CalibrationSession",
    "Level",
    "heldout_dir",
    "load_calibration_session",
    "load_calibration_sessions",
]

Level: TypeAlias = Literal["weak", "middling", "strong"]
LEVELS: Final[tuple[Level, ...]] = ("weak", "middling", "strong")
"""The levels, lowest first."""
CALIBRATION_DIR: Final = Path(__file__).parent
HELDOUT_DIR: Final = CALIBRATION_DIR / "heldout"
"""Sessions written after the offline rules were frozen, to see how they generalise."""
TRACK_DIRS: Final[Mapping[Track, Path]] = MappingProxyType(
    {
        "coding": CALIBRATION_DIR,
        "system_design": CALIBRATION_DIR / "system_design",
        "behavioral": CALIBRATION_DIR / "behavioral",
    }
)
"""Each track's calibration set."""


def heldout_dir(track: Track) -> Path:
    """The held-out sessions of ``track`` (written after its rules were frozen)."""
    return TRACK_DIRS[track] / "heldout"


class CalibrationError(ValueError):
    """A calibration file is invalid; the message names the file."""


class _Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    seq: int
    t: float


class _Interviewer(_Strict, frozen=True, tag="interviewer"):
    text: str
    stop_reason: StopReason = "end_turn"


class _Candidate(_Strict, frozen=True, tag="candidate"):
    text: str


class _Code(_Strict, frozen=True, tag="code"):
    version: int
    source: str


class _Test(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    passed: bool
    message: str | None = None


class _Run(_Strict, frozen=True, tag="run"):
    version: int
    status: RunStatus
    tests: tuple[_Test, ...]
    duration_ms: int = 0
    stdout_tail: str = ""


class _End(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    seq: int
    t: float
    reason: EndReason = "candidate_ended"


class _Hidden(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    version: int
    status: RunStatus
    passed: int
    total: int


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    level: Level
    question_id: str
    started_at_ms: int
    description: str
    events: tuple[_Interviewer | _Candidate | _Code | _Run, ...]
    end: _End
    language: str = ""
    hidden: _Hidden | None = None


@dataclass(frozen=True, slots=True)
class CalibrationSession:
    """One stored session: its events (``session.started`` first, ``session.ended`` last)
    and the final hidden-test result."""

    id: str
    level: Level
    question: BankQuestion
    description: str
    events: tuple[SessionEvent, ...]
    hidden: HiddenTestResult | None
    path: Path


def _started(data: _File, question: BankQuestion) -> SessionStarted:
    rubric = rubric_for(question.track)
    return SessionStarted(
        seq=1,
        ts=data.started_at_ms,
        session_id=f"calibration-{data.id}",
        track=question.track,
        language=data.language,
        question=Question(
            id=question.id,
            title=question.title,
            prompt=question.prompt,
            examples=[
                WireExample(input=e.input, output=e.output, explanation=e.explanation)
                for e in question.public_view().examples
            ],
        ),
        rubric=Rubric(dimensions=list(rubric.dimension_names), scale=list(rubric.scale)),
        limits=Limits(duration_s=2700),
    )


def _expand(data: _File, path: Path) -> list[SessionEvent]:
    events: list[SessionEvent] = []
    expected = 2
    turns = 0
    versions: dict[int, int] = {}

    def ts(t: float) -> int:
        return data.started_at_ms + round(t * 1000)

    for entry in data.events:
        if entry.seq != expected:
            raise CalibrationError(f"{path.name}: event seq {entry.seq}, expected {expected}")
        at = ts(entry.t)
        if events and at < events[-1].ts:
            raise CalibrationError(f"{path.name}: seq {entry.seq} goes back in time")
        match entry:
            case _Interviewer():
                turns += 1
                turn_id = f"t{turns}"
                events += [
                    InterviewerTurnStart(seq=entry.seq, ts=at, turn_id=turn_id),
                    InterviewerDelta(seq=entry.seq + 1, ts=at, turn_id=turn_id, text=entry.text),
                    InterviewerTurnEnd(
                        seq=entry.seq + 2, ts=at, turn_id=turn_id, stop_reason=entry.stop_reason
                    ),
                ]
                expected += 3
                continue
            case _Candidate():
                turns += 1
                events.append(
                    CandidateSaid(seq=entry.seq, ts=at, turn_id=f"t{turns}", text=entry.text)
                )
            case _Code():
                digest = hashlib.sha256(entry.source.encode()).hexdigest()
                events.append(
                    CodeSnapshot(
                        seq=entry.seq,
                        ts=at,
                        version=entry.version,
                        language=data.language,
                        sha256=digest,
                        source=entry.source,
                    )
                )
                versions[entry.version] = entry.seq
            case _Run():
                if entry.version not in versions:
                    raise CalibrationError(f"{path.name}: run of unknown version {entry.version}")
                events.append(
                    CodeResult(
                        seq=entry.seq,
                        ts=at,
                        run_id=f"run-{entry.seq}",
                        version=entry.version,
                        status=entry.status,
                        tests=outcome_messages(entry.tests),
                        stdout_tail=entry.stdout_tail,
                        duration_ms=entry.duration_ms,
                    )
                )
        expected += 1
    if data.end.seq != expected:
        raise CalibrationError(f"{path.name}: end seq {data.end.seq}, expected {expected}")
    events.append(SessionEnded(seq=data.end.seq, ts=ts(data.end.t), reason=data.end.reason))
    if data.hidden is not None and data.hidden.version not in versions:
        raise CalibrationError(f"{path.name}: hidden tests of unknown version")
    return events


def load_calibration_session(path: Path, bank: QuestionBank | None = None) -> CalibrationSession:
    """Read one calibration file; :class:`CalibrationError` naming it on any problem."""
    try:
        data = msgspec.convert(tomllib.loads(path.read_text(encoding="utf-8")), _File)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise CalibrationError(f"{path.name}: {exc}") from None
    if data.id != path.stem:
        raise CalibrationError(f"{path.name}: id {data.id!r} must equal the file stem")
    try:
        question = (bank or load_question_bank()).get(data.question_id)
    except QuestionNotFound:
        raise CalibrationError(f"{path.name}: no question {data.question_id!r}") from None
    coding = isinstance(question, CodingQuestion)
    if coding != bool(data.language):
        raise CalibrationError(f"{path.name}: language is for coding sessions only, and required")
    if not coding and (data.hidden or any(isinstance(e, _Code | _Run) for e in data.events)):
        raise CalibrationError(f"{path.name}: a {question.track} session has no code")
    events = [_started(data, question), *_expand(data, path)]
    hidden = None
    if data.hidden is not None:
        snapshots = [
            e for e in events if isinstance(e, CodeSnapshot) and e.version == data.hidden.version
        ]
        hidden = HiddenTestResult(
            version=data.hidden.version,
            snapshot_seq=snapshots[-1].seq,
            status=data.hidden.status,
            passed=data.hidden.passed,
            total=data.hidden.total,
        )
    return CalibrationSession(
        id=data.id,
        level=data.level,
        question=question,
        description=data.description.strip(),
        events=tuple(events),
        hidden=hidden,
        path=path,
    )


def load_calibration_sessions(
    path: Path | None = None, bank: QuestionBank | None = None
) -> list[CalibrationSession]:
    """Every ``*.toml`` session directly in ``path`` (default: this folder, the coding set),
    by file name."""
    root = CALIBRATION_DIR if path is None else path
    bank = bank or load_question_bank()
    return [load_calibration_session(p, bank) for p in sorted(root.glob("*.toml"))]
