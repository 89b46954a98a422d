"""The benchmark's Messages API (bench/fake_claude.py) carries a whole interview.

A real server with the anthropic provider streams its interviewer, evidence judge and report
summary through the SDK from ``python -m bench.fake_claude`` in a process of its own: the
interviewer's words arrive as deltas, the judge's tool call becomes a score delta citing the
candidate's message, and the report carries the fake's summary.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.fake_claude import judge_input
from bench.servers import ServerProcess, start_fake_claude
from protocol.client import open_client
from protocol.messages import (
    CandidateMessage,
    CandidateSaid,
    ReportReady,
    ScoreDelta,
    SessionEnd,
    SessionStart,
)
from server.config import Settings
from tests.interview_support import assert_gap_free, events, read_until, turn_ended
from tests.support import running_server

NOTE = "Stated the approach and its cost clearly."  # the bench API's judge note


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[ServerProcess]:
    api = start_fake_claude(log_path=tmp_path / "api.log", tokens_per_s=400, words_per_chunk=3)
    try:
        yield api
    finally:
        api.stop()


async def test_a_whole_interview_runs_on_the_bench_api(
    settings: Settings, fake_api: ServerProcess
) -> None:
    configured = settings.with_(
        llm_provider="anthropic",
        anthropic_api_key="bench-key",
        anthropic_base_url=fake_api.http_url,
        coalesce_ms=10.0,
    )
    async with (
        running_server(configured) as server,
        open_client(server.ws_url(), token=server.token(uuid.uuid4().hex)) as c,
    ):
        await c.request(SessionStart(id="start", track="coding"))
        frames = await read_until(c, turn_ended(2))
        await c.request(
            CandidateMessage(id="m1", text="I would use a hash map from value to index.")
        )
        frames += await read_until(c, lambda f: isinstance(f, ScoreDelta) and NOTE in f.reason)
        await c.request(SessionEnd(id="end"))
        frames += await read_until(c, lambda f: isinstance(f, ReportReady))
    evts = events(frames)
    assert_gap_free(evts)
    said = next(e for e in evts if isinstance(e, CandidateSaid))
    deltas = [e for e in evts if isinstance(e, ScoreDelta)]
    assert any(said.seq in d.evidence and NOTE in d.reason for d in deltas), deltas
    report = next(e for e in evts if isinstance(e, ReportReady))
    assert report.summary == "A steady interview: the approach was clear and tested."


def test_the_judge_answer_labels_a_positive_signal_citing_the_new_seqs() -> None:
    system = "Rubric (coding track):\n* communication: talks\n  - explains_approach (positive): x"
    request = {
        "system": [{"type": "text", "text": system}],
        "messages": [{"role": "user", "content": "[seq 4] candidate: a\n[seq 9] NEW candidate: b"}],
    }
    assert judge_input(request, 0) == {
        "evidence": [
            {
                "dimension": "communication",
                "signal_id": "explains_approach",
                "polarity": "positive",
                "seqs": [9],
                "note": "Stated the approach and its cost clearly.",
            }
        ]
    }
    request["messages"] = [{"role": "user", "content": "[seq 4] candidate: nothing new"}]
    assert judge_input(request, 0) == {"evidence": []}
