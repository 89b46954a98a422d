"""The calibration harness replays any judge: the offline judges through it give exactly the
published figures, and the Claude judge (the real SDK against the fake Messages API) is
called once per candidate message, as live, with its answers folded into the figures and
its failed calls counted."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from protocol.messages import CandidateSaid
from scoring.calibration import TRACK_DIRS, heldout_dir, load_calibration_sessions
from scoring.calibration.agreement import OVERALL, score_calibration
from scoring.calibration.judged import OfflineJudge, replay_judged, score_judged
from scoring.question_bank import Question
from scoring.rubric import TRACKS, Track
from scoring.rubrics import rubric_for
from scoring.transcript import Transcript
from server.judging import calibrate
from server.judging.claude_judge import TOOL_NAME, ClaudeJudge
from server.judging.judge_prompt import build_judge_input, judgeable_signals
from tests.fake_anthropic import FakeMessagesAPI

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("track", TRACKS)
async def test_the_offline_judge_through_the_harness_gives_the_published_figures(
    track: Track,
) -> None:
    doc = (ROOT / "docs" / "scoring.md").read_text(encoding="utf-8")
    for folder in (TRACK_DIRS[track], heldout_dir(track)):
        sessions = load_calibration_sessions(folder)
        judged = await score_judged(sessions, OfflineJudge(), name="offline")
        assert judged.figures == score_calibration(sessions)
        assert judged.figures.markdown() in doc
        messages = sum(isinstance(e, CandidateSaid) for s in sessions for e in s.events)
        assert judged.calls == {"applied": messages}


class Oracle:
    """Answers each call as the offline judge would label it, in the shape Claude must
    use (judgeable signals, offered seqs, short notes): the script for the fake API."""

    def __init__(self) -> None:
        self.answers: list[dict[str, Any]] = []
        self._offline = OfflineJudge()

    async def judge(
        self, *, session_id: str, question: Question, transcript: Transcript, since_seq: int
    ) -> Any:
        result = await self._offline.judge(
            session_id=session_id, question=question, transcript=transcript, since_seq=since_seq
        )
        judge_input = build_judge_input(transcript, since_seq=since_seq)
        assert judge_input is not None
        allowed = set(judgeable_signals(rubric_for(question.track)))
        labels = []
        for e in result.evidence:
            seqs = sorted(set(e.seqs) & judge_input.offered)
            if e.signal_id in allowed and set(seqs) & judge_input.new:
                labels.append(
                    {
                        "dimension": e.dimension,
                        "signal_id": e.signal_id,
                        "polarity": e.polarity,
                        "seqs": seqs,
                        "note": e.note[:200],
                    }
                )
        self.answers.append({"evidence": labels[:12]})
        return result


@pytest.fixture
async def api() -> AsyncIterator[FakeMessagesAPI]:
    async with FakeMessagesAPI(default_reply=None) as fake:
        yield fake


@pytest.fixture
async def claude(api: FakeMessagesAPI) -> AsyncIterator[ClaudeJudge]:
    judge = ClaudeJudge(api_key="test-key", base_url=api.base_url, timeout_s=5.0, max_retries=0)
    yield judge
    await judge.aclose()


@pytest.mark.parametrize("track", TRACKS)
async def test_the_claude_judge_is_replayed_once_per_candidate_message(
    api: FakeMessagesAPI, claude: ClaudeJudge, track: Track
) -> None:
    sessions = load_calibration_sessions(TRACK_DIRS[track])
    oracle = Oracle()
    for session in sessions:
        await replay_judged(session, oracle)
    for reply in oracle.answers:
        api.tool_reply(TOOL_NAME, reply, chunk_size=64)
    judged = await score_judged(sessions, claude, name="claude (fake)")
    messages = sum(isinstance(e, CandidateSaid) for s in sessions for e in s.events)
    assert len(api.requests) == messages == len(oracle.answers)
    assert judged.calls == {"applied": messages}, judged.reasons
    for session, request in zip(
        (s for s in sessions for e in s.events if isinstance(e, CandidateSaid)),
        api.requests,
        strict=True,
    ):
        assert session.question.title in request.system_text
    # Labels like the offline judge's (at full weight) still order the set overall.
    overall = next(a for a in judged.figures.agreement if a.dimension == OVERALL)
    assert overall.accuracy == 1.0, judged.markdown()
    assert "Judge `claude (fake)`, calls: " in judged.markdown()


async def test_failed_and_discarded_calls_are_counted_and_make_the_run_unclean(
    api: FakeMessagesAPI, claude: ClaudeJudge
) -> None:
    sessions = load_calibration_sessions(TRACK_DIRS["behavioral"])
    calls = sum(isinstance(e, CandidateSaid) for s in sessions for e in s.events)
    api.fail_status(529)
    api.tool_reply(TOOL_NAME, '{"evidence": [', stop_reason="max_tokens")
    for _ in range(calls - 2):
        api.tool_reply(TOOL_NAME, {"evidence": []})
    out = io.StringIO()
    clean = await calibrate.run(claude, name="claude", tracks=("behavioral",), out=out)
    assert clean is False
    text = out.getvalue()
    assert "behavioral, calibration set:" in text
    assert f"calls: {calls - 2} applied, 1 discarded, 1 failed, 0 skipped." in text
    assert "- Claude API 529 overloaded_error" in text
    # Nothing applied: every conversation dimension is unobserved.
    assert "| strong-failed-project-migration | strong | - | - | - | - | - | 1.00" in text


def test_the_command_line_prints_the_offline_figures() -> None:
    out = io.StringIO()
    assert calibrate.main(["--judge", "offline", "--track", "behavioral", "--heldout"], out) == 0
    text = out.getvalue()
    for folder in (TRACK_DIRS["behavioral"], heldout_dir("behavioral")):
        assert score_calibration(load_calibration_sessions(folder)).markdown() in text
    assert "system_design" not in text
