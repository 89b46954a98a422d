"""Live scoring with evidence, the report, and code runs under load (issue 5), over real sockets."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from protocol.client import ServerErrorReply, open_client
from protocol.messages import (
    CandidateMessage,
    CodeResult,
    CodeRun,
    CodeUpdate,
    ReportReady,
    ScoreDelta,
    ServerFrame,
    SessionEnd,
    SessionEvent,
    SessionStart,
    SessionStarted,
)
from server.config import Settings
from tests.interview_support import assert_gap_free, read_until, turn_ended
from tests.support import RunningServer, running_server

WRONG = "def two_sum(nums, target):\n    return [0, 0]\n"


async def test_scores_move_with_evidence_and_the_report_follows_the_end(settings: Settings) -> None:
    fast = settings.with_(offline_tokens_per_s=500.0, coalesce_ms=5.0)
    async with running_server(fast) as server:
        user = f"s-{uuid.uuid4().hex[:6]}"
        async with open_client(server.ws_url(), token=server.token(user)) as c:
            frames: list[ServerFrame] = [
                await c.request(SessionStart(id="s", track="coding", question_id="two-sum"))
            ]
            frames += await read_until(c, turn_ended(2))
            session_id = next(f for f in frames if isinstance(f, SessionStarted)).session_id
            reference = server.app.state.resources.sessions.catalog.get(
                "two-sum"
            ).source.reference_solution

            await c.request(
                CandidateMessage(
                    id="q1", text="Before I start: can the array be empty, and can numbers repeat?"
                )
            )
            frames += await read_until(c, turn_ended(1))
            await c.request(
                CandidateMessage(
                    id="a1",
                    text="I'd check every pair with two loops. That's O(n^2) time, which is good enough here.",
                )
            )
            frames += await read_until(c, turn_ended(1))
            await c.request(CodeUpdate(id="v1", language="python", source=WRONG))
            await c.request(CodeRun(id="r1"))
            frames += await read_until(c, lambda f: isinstance(f, CodeResult))
            await c.request(
                CandidateMessage(
                    id="a2",
                    text="Better: a hash map from value to index, one pass, O(n) time and O(n) space. I'll test an empty list and duplicates.",
                )
            )
            frames += await read_until(c, turn_ended(1))
            await c.request(CodeUpdate(id="v2", language="python", source=reference))
            await c.request(CodeRun(id="r2"))
            frames += await read_until(c, lambda f: isinstance(f, CodeResult))
            await c.request(SessionEnd(id="end"))
            frames += await read_until(c, lambda f: isinstance(f, ReportReady), timeout=60)

        events = [f for f in frames if isinstance(f, SessionEvent)]
        assert_gap_free(events)
        by_seq = {e.seq: e for e in events}
        deltas = [e for e in events if isinstance(e, ScoreDelta)]
        assert deltas, "no score.delta at all"
        for delta in deltas:
            assert delta.evidence, delta
            assert all(0 < s < delta.seq and s in by_seq for s in delta.evidence), delta
            assert 1.0 <= delta.score <= 4.0
            assert abs(delta.delta) <= 1.5
        final: dict[str, float] = {}
        for delta in deltas:
            final[delta.dimension] = delta.score
        # Correct code raised implementation and testing; the wrong complexity claim lowered approach.
        rises = {d.dimension for d in deltas if d.delta > 0}
        falls = {d.dimension for d in deltas if d.delta < 0}
        assert {"implementation", "testing_and_edge_cases"} <= rises
        assert "approach_and_complexity" in falls
        passing = [e for e in events if isinstance(e, CodeResult) and e.status == "passed"]
        assert passing
        assert any(passing[-1].seq in d.evidence for d in deltas if d.dimension == "implementation")

        ready = events[-1]
        assert isinstance(ready, ReportReady)
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            mine = await http.get(
                f"/v1/sessions/{session_id}/report",
                headers={"Authorization": f"Bearer {server.token(user)}"},
            )
            assert mine.status_code == 200
            report = mine.json()
            assert report["overall"] == ready.overall
            assert report["summary"] == ready.summary
            assert report["hidden_tests"]["passed"] == report["hidden_tests"]["total"] > 0
            quoted = {
                s
                for finding in report["strengths"] + report["weaknesses"]
                for q in finding["evidence"]
                for s in q["seqs"]
            }
            assert quoted and quoted <= set(by_seq)
            theirs = await http.get(
                f"/v1/sessions/{session_id}/report",
                headers={"Authorization": f"Bearer {server.token('other')}"},
            )
            assert theirs.status_code == 404


async def test_twenty_concurrent_code_runs_are_answered_within_the_limits(
    server: RunningServer,
) -> None:
    reference = server.app.state.resources.sessions.catalog.get("two-sum").source.reference_solution

    async def one(n: int) -> CodeResult:
        async with open_client(
            server.ws_url(), token=server.token(f"runner-{n}-{uuid.uuid4().hex[:4]}")
        ) as c:
            await c.request(SessionStart(id="s", track="coding", question_id="two-sum"))
            await c.request(CodeUpdate(id="v", language="python", source=reference))
            await c.request(CodeRun(id="r"), timeout=60)
            frames = await read_until(c, lambda f: isinstance(f, CodeResult), timeout=60)
            result = frames[-1]
            assert isinstance(result, CodeResult)
            return result

    results = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(20))), 120)
    assert [r.status for r in results] == ["passed"] * 20
    assert max(r.duration_ms for r in results) <= 6000  # the wall-clock limit of one run


async def test_javascript_code_runs_too(server: RunningServer) -> None:
    source = """
function twoSum(nums, target) {
  const seen = new Map();
  for (let i = 0; i < nums.length; i++) {
    if (seen.has(target - nums[i])) return [seen.get(target - nums[i]), i];
    seen.set(nums[i], i);
  }
  return [];
}
"""
    async with open_client(server.ws_url(), token=server.token(f"js-{uuid.uuid4().hex[:6]}")) as c:
        await c.request(
            SessionStart(id="s", track="coding", question_id="two-sum", language="javascript")
        )
        await c.request(CodeUpdate(id="v", language="javascript", source=source))
        await c.request(CodeRun(id="r"), timeout=60)
        result = (await read_until(c, lambda f: isinstance(f, CodeResult), timeout=60))[-1]
        assert isinstance(result, CodeResult)
        assert result.status == "passed", result.tests
        await c.request(CodeUpdate(id="v2", language="cobol", source="DISPLAY 'HI'."))
        with pytest.raises(ServerErrorReply) as refused:
            await c.request(CodeRun(id="r2"))
        assert refused.value.error.code == "invalid_field"
        assert refused.value.error.field == "language"
