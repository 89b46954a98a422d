"""The Claude judge on every track, through the real ``anthropic`` SDK against the fake
Messages API: for each track a tool-use answer on one of its calibration sessions
(``tests/claude_judge_answers/<track>.json``), streamed as the API streams it, is applied
whole when valid, and discarded whole (nothing applied, the book unchanged) when cut off at
``max_tokens`` or when one label of it is invalid."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from protocol.messages import CandidateSaid, CodeSnapshot
from scoring.calibration import TRACK_DIRS, CalibrationSession, load_calibration_session
from scoring.rubric import TRACKS, Track
from scoring.rubrics import rubric_for
from scoring.scorer import SessionScorer
from scoring.transcript import Transcript
from server.judging.claude_judge import TOOL_NAME, ClaudeJudge, JudgeResult
from server.judging.judge_prompt import judgeable_signals
from tests.fake_anthropic import FakeMessagesAPI

pytestmark = pytest.mark.timeout(30)

ANSWERS = Path(__file__).with_name("claude_judge_answers")


def answer(track: Track) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ANSWERS / f"{track}.json").read_text(encoding="utf-8"))
    return data


def session_of(track: Track) -> CalibrationSession:
    return load_calibration_session(TRACK_DIRS[track] / f"{answer(track)['session']}.toml")


def candidate_seqs(session: CalibrationSession) -> set[int]:
    return {e.seq for e in session.events if isinstance(e, CandidateSaid | CodeSnapshot)}


def observed(session: CalibrationSession) -> SessionScorer:
    """The session's events folded with the offline conversation judge off (Claude's place)."""
    scorer = SessionScorer(session.question, offline_judge=False)
    for event in session.events:
        scorer.observe(event)
    return scorer


@pytest.fixture
async def api() -> AsyncIterator[FakeMessagesAPI]:
    async with FakeMessagesAPI(default_reply=None) as fake:
        yield fake


@pytest.fixture
async def judge(api: FakeMessagesAPI) -> AsyncIterator[ClaudeJudge]:
    made = ClaudeJudge(api_key="test-key", base_url=api.base_url, timeout_s=5.0, max_retries=0)
    yield made
    await made.aclose()


async def judge_session(judge: ClaudeJudge, session: CalibrationSession) -> JudgeResult:
    return await judge.judge(
        session_id=f"calibration-{session.id}",
        question=session.question,
        transcript=Transcript.of(session.events),
        since_seq=0,
    )


@pytest.mark.parametrize("track", TRACKS)
async def test_a_valid_answer_is_applied_whole_and_moves_every_dimension(
    api: FakeMessagesAPI, judge: ClaudeJudge, track: Track
) -> None:
    session = session_of(track)
    labels = answer(track)["valid"]
    api.tool_reply(TOOL_NAME, labels, chunk_size=9)
    result = await judge_session(judge, session)
    assert result.outcome == "applied", result.reason
    assert [(e.signal_id, list(e.seqs)) for e in result.evidence] == [
        (label["signal_id"], label["seqs"]) for label in labels["evidence"]
    ]
    scorer = observed(session)
    changes = scorer.apply(result.evidence)
    rubric = rubric_for(track)
    assert {c.dimension for c in changes} == set(rubric.dimension_names)
    for change in changes:
        assert set(change.evidence_seqs) <= candidate_seqs(session), change
    report = scorer.report()
    assert report.band_label in ("lean hire", "strong hire")
    quoted = {e.note for s in report.strengths for e in s.evidence}
    assert quoted and quoted <= {label["note"] for label in labels["evidence"]} | {
        e.note for e in scorer.book.ledger if e.source == "code"
    }


@pytest.mark.parametrize("track", TRACKS)
async def test_the_request_is_the_tracks_rubric_and_question(
    api: FakeMessagesAPI, judge: ClaudeJudge, track: Track
) -> None:
    session = session_of(track)
    api.tool_reply(TOOL_NAME, {"evidence": []})
    result = await judge_session(judge, session)
    assert result.outcome == "applied" and result.evidence == ()
    (request,) = api.requests
    rubric = rubric_for(track)
    (tool,) = request.body["tools"]
    item = tool["input_schema"]["properties"]["evidence"]["items"]["properties"]
    assert item["signal_id"]["enum"] == list(judgeable_signals(rubric))
    assert item["dimension"]["enum"] == list(rubric.dimension_names)
    system = request.system_text
    assert f"({rubric.track} track;" in system and session.question.title in system
    for signal in judgeable_signals(rubric):
        assert f"  - {signal} (" in system
    if track == "coding":
        assert "Optimal complexity" in system and "Test results are scored elsewhere" in system
        assert "the candidate's latest code" in request.messages_text
    else:
        assert "there is no code" in system and "Optimal complexity" not in system
        assert "What the interviewer listens for:" in system
        assert "latest code" not in request.messages_text
        assert "visible-test runs" not in request.messages_text


@pytest.mark.parametrize("track", TRACKS)
async def test_an_answer_cut_off_at_max_tokens_applies_nothing(
    api: FakeMessagesAPI, judge: ClaudeJudge, track: Track
) -> None:
    session = session_of(track)
    whole = json.dumps(answer(track)["valid"])
    api.tool_reply(TOOL_NAME, whole[: len(whole) * 2 // 3], stop_reason="max_tokens")
    api.tool_reply(TOOL_NAME, whole, stop_reason="max_tokens")  # whole JSON, still cut off
    scorer = observed(session)
    before = scorer.book
    for _ in range(2):
        result = await judge_session(judge, session)
        assert result.outcome == "discarded" and "max_tokens" in result.reason
        assert result.evidence == ()
        assert scorer.apply(result.evidence) == [] and scorer.book == before


@pytest.mark.parametrize("track", TRACKS)
async def test_one_invalid_label_after_valid_ones_discards_the_whole_answer(
    api: FakeMessagesAPI, judge: ClaudeJudge, track: Track
) -> None:
    session = session_of(track)
    data = answer(track)
    labels = [*data["valid"]["evidence"], data["invalid_label"]]
    api.tool_reply(TOOL_NAME, {"evidence": labels}, chunk_size=11)
    scorer = observed(session)
    before = scorer.book
    result = await judge_session(judge, session)
    assert result.outcome == "discarded"
    assert data["invalid_reason"] in result.reason
    assert f"evidence[{len(labels) - 1}]" in result.reason  # only the last label was bad
    assert result.evidence == ()
    assert scorer.apply(result.evidence) == [] and scorer.book == before
