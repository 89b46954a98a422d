"""A coding interview through a real server (issue 17, deliver 3): code that passes its
visible tests but mishandles negative numbers makes the interviewer's next turn a question
about negatives, naming no input; the hidden check behind it shows the candidate nothing;
the miss and the candidate's answer move testing and edge cases, citing the snapshot and
the answer."""

from __future__ import annotations

import json
import uuid

import msgspec
import pytest

from protocol.client import open_client
from protocol.messages import (
    CandidateMessage,
    CandidateSaid,
    CodeResult,
    CodeRun,
    CodeSnapshot,
    CodeUpdate,
    InterviewerTurnStart,
    ScoreDelta,
    ServerFrame,
    SessionEvent,
    SessionStart,
)
from scoring.edge_cases import PROBES
from scoring.question_bank import CodingQuestion, load_question_bank
from server.config import Settings
from tests.interview_support import assert_gap_free, read_until, turn_ended, turn_texts
from tests.support import running_server

pytestmark = pytest.mark.timeout(120)

SKIPS_NEGATIVES = """\
def two_sum(nums, target):
    seen = {}
    for i, x in enumerate(nums):
        if x < 0:
            continue
        if target - x in seen:
            return [seen[target - x], i]
        seen[x] = i
    return []
"""
ANSWER = (
    "Good question. I skip negative numbers, which is wrong: a negative and a positive "
    "can sum to the target. I'd remove that check."
)


async def test_a_failing_kind_of_hidden_test_is_probed_without_revealing_it(
    settings: Settings,
) -> None:
    fast = settings.with_(offline_tokens_per_s=500.0, coalesce_ms=5.0)
    async with running_server(fast) as server:
        user = f"e-{uuid.uuid4().hex[:6]}"
        async with open_client(server.ws_url(), token=server.token(user)) as c:
            frames: list[ServerFrame] = [
                await c.request(SessionStart(id="s", track="coding", question_id="two-sum"))
            ]
            frames += await read_until(c, turn_ended(2))
            await c.request(CodeUpdate(id="v1", language="python", source=SKIPS_NEGATIVES))
            await c.request(CodeRun(id="r1"))
            frames += await read_until(c, lambda f: isinstance(f, CodeResult))
            frames += await read_until(c, turn_ended(1), timeout=30)  # the probe
            await c.request(CandidateMessage(id="a1", text=ANSWER))
            frames += await read_until(c, turn_ended(1))

            def answered(f: ServerFrame) -> bool:
                return isinstance(f, ScoreDelta) and f.reason.startswith("asked about")

            if not any(answered(f) for f in frames):
                frames += await read_until(c, answered, timeout=10)

    events = [f for f in frames if isinstance(f, SessionEvent)]
    assert_gap_free(events)
    (result,) = [e for e in events if isinstance(e, CodeResult)]
    assert result.status == "passed"
    starts = [e for e in events if isinstance(e, InterviewerTurnStart)]
    texts = turn_texts(frames)
    probe_turn = next(s for s in starts if s.seq > result.seq)
    assert texts[probe_turn.turn_id] == PROBES["negative"]
    # Nothing the candidate received names a hidden test or its input.
    question = load_question_bank().get("two-sum")
    assert isinstance(question, CodingQuestion)
    wire = " ".join(msgspec.json.encode(f).decode() for f in frames)
    everything = " ".join(texts.values()) + " " + wire
    for test in question.hidden_tests:
        # A one-word name ("zeros") is the kind itself, which the probe may say.
        if "_" in test.name:
            assert test.name not in everything
        assert json.dumps(list(test.args)) not in everything
    snapshot = next(e for e in events if isinstance(e, CodeSnapshot))
    answer = next(e for e in events if isinstance(e, CandidateSaid) and e.text == ANSWER)
    edge = [
        d
        for d in events
        if isinstance(d, ScoreDelta)
        and d.dimension == "testing_and_edge_cases"
        and d.seq > result.seq
    ]
    miss = next(d for d in edge if d.evidence == [snapshot.seq] and d.delta < 0)
    assert "negatives and zeros" in miss.reason
    reply = next(d for d in edge if d.evidence == [snapshot.seq, answer.seq])
    assert (
        reply.delta > 0 and reply.reason == "asked about negatives and zeros, reasoned it through"
    )
