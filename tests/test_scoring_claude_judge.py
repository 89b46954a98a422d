"""The Claude conversation judge, driving the real ``anthropic`` SDK against the fake
Messages API streaming ``tool_use`` blocks: valid labels are applied, anything invalid or cut
off discards the whole call, failures return no evidence and never raise."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from scoring.judges.code import CODE_JUDGE_SIGNALS
from scoring.rubrics import rubric_for
from scoring.scorer import SessionScorer
from server.judging.claude_judge import (
    DEFAULT_JUDGE_MODEL,
    TOOL_NAME,
    ClaudeJudge,
    build_judge_input,
    evidence_tool,
)
from tests.fake_anthropic import FakeMessagesAPI
from tests.scoring_support import GOOD_TWO_SUM, SessionBuilder

pytestmark = pytest.mark.timeout(20)

CODING = rubric_for("coding")


@pytest.fixture
async def api() -> AsyncIterator[FakeMessagesAPI]:
    async with FakeMessagesAPI(default_reply=None) as fake:
        yield fake


@pytest.fixture
async def make_judge(api: FakeMessagesAPI) -> AsyncIterator[Callable[..., ClaudeJudge]]:
    made: list[ClaudeJudge] = []

    def make(**overrides: Any) -> ClaudeJudge:
        options: dict[str, Any] = {
            "api_key": "test-key",
            "base_url": api.base_url,
            "timeout_s": 5.0,
            "max_retries": 0,
        }
        options.update(overrides)
        judge = ClaudeJudge(**options)
        made.append(judge)
        return judge

    yield make
    for judge in made:
        await judge.aclose()


class Session:
    def __init__(self) -> None:
        self.b = SessionBuilder()
        self.intro = self.b.interviewer("Here's the problem; tell me how you understand it.", t=10)
        self.asked = self.b.candidate("So I return indices. Can the array be empty?", t=40)
        self.answer = self.b.interviewer("It has at least two elements.", t=50)
        self.planned = self.b.candidate(
            "I'd keep a dictionary from value to index and look up the complement.", t=120
        )
        self.code = self.b.code(GOOD_TWO_SUM, t=240)


def label(
    dimension: str, signal_id: str, polarity: str, seqs: list[int], note: str
) -> dict[str, Any]:
    return {
        "dimension": dimension,
        "signal_id": signal_id,
        "polarity": polarity,
        "seqs": seqs,
        "note": note,
    }


async def judge_once(judge: ClaudeJudge, session: Session, since_seq: int = 0) -> Any:
    return await judge.judge(
        session_id="sess-42",
        question=session.b.question,
        transcript=session.b.transcript(),
        since_seq=since_seq,
    )


async def test_valid_labels_are_applied(
    api: FakeMessagesAPI, make_judge: Callable[..., ClaudeJudge]
) -> None:
    s = Session()
    labels = [
        label(
            "problem_understanding",
            "asks_clarifying_questions",
            "positive",
            [s.asked],
            "asked about empty input",
        ),
        label("communication", "explains_clearly", "positive", [s.planned], "clear one-pass plan"),
        label("implementation", "clean_structure", "positive", [s.code], "small, well-named loop"),
    ]
    api.tool_reply(TOOL_NAME, {"evidence": labels}, chunk_size=7)
    result = await judge_once(make_judge(), s)
    assert result.outcome == "applied", result.reason
    assert [(e.signal_id, e.seqs, e.note) for e in result.evidence] == [
        ("asks_clarifying_questions", (s.asked,), "asked about empty input"),
        ("explains_clearly", (s.planned,), "clear one-pass plan"),
        ("clean_structure", (s.code,), "small, well-named loop"),
    ]
    scorer = SessionScorer(s.b.question, offline_judge=False)
    for event in s.b.events:
        scorer.observe(event)
    changes = scorer.apply(result.evidence)
    assert [c.dimension for c in changes] == [
        "problem_understanding",
        "communication",
        "implementation",
    ]
    assert [c.evidence_seqs for c in changes] == [(s.asked,), (s.planned,), (s.code,)]


async def test_the_request_forces_one_strict_tool_and_caches_the_rubric(
    api: FakeMessagesAPI, make_judge: Callable[..., ClaudeJudge]
) -> None:
    s = Session()
    api.tool_reply(TOOL_NAME, {"evidence": []})
    result = await judge_once(make_judge(), s, since_seq=s.asked)
    assert result.outcome == "applied" and result.evidence == ()
    (request,) = api.requests
    body = request.body
    assert body["model"] == DEFAULT_JUDGE_MODEL
    assert body["stream"] is True
    assert body["tool_choice"] == {
        "type": "tool",
        "name": TOOL_NAME,
        "disable_parallel_tool_use": True,
    }
    (tool,) = body["tools"]
    assert tool["name"] == TOOL_NAME and tool["strict"] is True
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "asks_clarifying_questions (positive)" in request.system_text
    assert "sess-42" not in json.dumps(body)
    text = request.messages_text
    assert f"[seq {s.asked}] candidate:" in text  # context, not new
    assert f"[seq {s.planned}] NEW candidate:" in text
    assert f"[seq {s.code}] NEW the candidate's latest code" in text
    assert "interviewer: It has at least two elements." in text
    assert f"[seq {s.answer}]" not in text
    assert request.outcome == "completed"


@pytest.mark.parametrize(
    ("bad_label", "reason"),
    [
        (label("implementation", "writes_beautiful_code", "positive", [0], "x"), "unknown signal"),
        (label("implementation", "code_passes_tests", "positive", [0], "x"), "unknown signal"),
        (label("communication", "asks_clarifying_questions", "positive", [0], "x"), "belongs to"),
        (label("communication", "thinks_aloud", "negative", [0], "x"), "is positive"),
        (label("communication", "thinks_aloud", "positive", [-1], "x"), "not offered"),
        (label("communication", "thinks_aloud", "positive", [], "x"), "seqs required"),
        (label("communication", "thinks_aloud", "positive", [0], " "), "note"),
        ({**label("communication", "thinks_aloud", "positive", [0], "x"), "score": 4}, "not valid"),
    ],
)
async def test_one_invalid_label_discards_the_whole_call(
    api: FakeMessagesAPI,
    make_judge: Callable[..., ClaudeJudge],
    bad_label: dict[str, Any],
    reason: str,
) -> None:
    s = Session()
    seqs = {0: s.planned, -1: s.answer}  # placeholders: a new candidate seq, an interviewer seq
    bad = {**bad_label, "seqs": [seqs.get(x, x) for x in bad_label["seqs"]]}
    good = label("communication", "explains_clearly", "positive", [s.planned], "clear plan")
    api.tool_reply(TOOL_NAME, {"evidence": [good, bad]})
    result = await judge_once(make_judge(), s)
    assert result.outcome == "discarded"
    assert reason in result.reason
    assert result.evidence == ()


async def test_labels_must_cite_a_new_event(
    api: FakeMessagesAPI, make_judge: Callable[..., ClaudeJudge]
) -> None:
    s = Session()
    old = label("problem_understanding", "asks_clarifying_questions", "positive", [s.asked], "x")
    api.tool_reply(TOOL_NAME, {"evidence": [old]})
    result = await judge_once(make_judge(), s, since_seq=s.asked)
    assert result.outcome == "discarded" and "no new event" in result.reason


async def test_tool_input_cut_off_at_max_tokens_is_discarded(
    api: FakeMessagesAPI, make_judge: Callable[..., ClaudeJudge]
) -> None:
    s = Session()
    whole = json.dumps(
        {
            "evidence": [
                label("communication", "explains_clearly", "positive", [s.planned], "clear plan")
            ]
        }
    )
    api.tool_reply(TOOL_NAME, whole[: len(whole) // 2], stop_reason="max_tokens")
    api.tool_reply(TOOL_NAME, whole, stop_reason="max_tokens")  # complete JSON, still cut off
    judge = make_judge()
    for _ in range(2):
        result = await judge_once(judge, s)
        assert result.outcome == "discarded"
        assert "max_tokens" in result.reason
        assert result.evidence == ()


async def test_invalid_json_is_discarded(
    api: FakeMessagesAPI, make_judge: Callable[..., ClaudeJudge]
) -> None:
    s = Session()
    api.tool_reply(TOOL_NAME, '{"evidence": [{"dimension": "communication", "signal_id": }')
    result = await judge_once(make_judge(), s)
    assert result.outcome == "discarded" and result.evidence == ()


async def test_a_text_reply_without_the_tool_is_discarded(
    api: FakeMessagesAPI, make_judge: Callable[..., ClaudeJudge]
) -> None:
    s = Session()
    api.reply("The candidate communicates well.")
    result = await judge_once(make_judge(), s)
    assert result.outcome == "discarded" and result.evidence == ()


@pytest.mark.parametrize(
    "script",
    [
        lambda api: api.fail_status(400),
        lambda api: api.fail_status(401),
        lambda api: api.fail_status(529),
        lambda api: api.fail_status(500, should_retry=False),
        lambda api: api.overloaded_midstream(after_chars=12, text='{"evidence": []}'),
        lambda api: api.cut_midstream(after_chars=12, text='{"evidence": []}'),
    ],
)
async def test_api_failures_give_no_evidence_and_no_exception(
    api: FakeMessagesAPI,
    make_judge: Callable[..., ClaudeJudge],
    script: Callable[[FakeMessagesAPI], None],
) -> None:
    s = Session()
    script(api)
    api.tool_reply(TOOL_NAME, {"evidence": []})  # the midstream faults stream a prefix of this
    result = await judge_once(make_judge(), s)
    assert result.outcome == "failed", result
    assert result.evidence == ()
    evidence = await make_judge().label(
        session_id="s", question=s.b.question, transcript=s.b.transcript(), since_seq=0
    )
    assert evidence == []  # the next call gets the scripted reply: nothing to label


async def test_a_stalled_stream_is_bounded_by_the_timeout(
    api: FakeMessagesAPI, make_judge: Callable[..., ClaudeJudge]
) -> None:
    s = Session()
    api.stall(after_chars=5, seconds=10, text='{"evidence": []}')
    started = time.monotonic()
    result = await judge_once(make_judge(timeout_s=0.5), s)
    assert time.monotonic() - started < 3
    assert result.outcome == "failed" and result.reason == "timed out"


async def test_cancelling_a_call_propagates(
    api: FakeMessagesAPI, make_judge: Callable[..., ClaudeJudge]
) -> None:
    s = Session()
    api.stall(after_chars=5, seconds=10, text='{"evidence": []}')
    task = asyncio.create_task(judge_once(make_judge(), s))
    for _ in range(200):  # until the stream is stalled mid-input
        if api.requests and api.requests[0].streamed_text:
            break
        await asyncio.sleep(0.01)
    assert api.requests[0].streamed_text == '{"evi'
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(api.disconnected.wait(), 2)


async def test_nothing_new_to_judge_makes_no_request(
    api: FakeMessagesAPI, make_judge: Callable[..., ClaudeJudge]
) -> None:
    s = Session()
    result = await judge_once(make_judge(), s, since_seq=s.code)
    assert result.outcome == "skipped"
    assert api.requests == []


def test_the_tool_schema_is_strict_and_leaves_test_results_to_the_code_judge() -> None:
    tool = evidence_tool(CODING)
    schema = tool["input_schema"]
    item = schema["properties"]["evidence"]["items"]
    assert tool["strict"] is True
    assert schema["additionalProperties"] is False and item["additionalProperties"] is False
    assert set(item["required"]) == set(item["properties"])
    signal_ids = set(item["properties"]["signal_id"]["enum"])
    assert signal_ids == set(CODING.signals) - CODE_JUDGE_SIGNALS
    assert "clean_structure" in signal_ids and "code_passes_tests" not in signal_ids


def test_the_judge_input_offers_only_candidate_seqs() -> None:
    s = Session()
    judge_input = build_judge_input(s.b.transcript(), since_seq=s.asked, max_turns=16)
    assert judge_input is not None
    assert judge_input.offered == {s.asked, s.planned, s.code}
    assert judge_input.new == {s.planned, s.code}
    short = build_judge_input(s.b.transcript(), since_seq=0, max_turns=1)
    assert short is not None and short.offered == {s.planned, s.code}


async def test_calls_beyond_the_workers_bound_wait_for_a_slot(
    api: FakeMessagesAPI, make_judge: Callable[..., ClaudeJudge]
) -> None:
    """Six sessions' calls at once on a judge bounded to two: never more than two requests
    in flight at the API, every call still answered whole (the wait is not its timeout)."""
    s = Session()
    answer = {
        "evidence": [label("communication", "explains_clearly", "positive", [s.planned], "clear")]
    }
    for _ in range(6):
        api.tool_reply(TOOL_NAME, answer, chunk_size=64, delay_s=0.05)
    judge = make_judge(max_concurrent=2, timeout_s=0.4)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, sum(r.outcome == "pending" for r in api.requests))
            await asyncio.sleep(0.002)

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(*(judge_once(judge, s) for _ in range(6)))
    watcher.cancel()
    assert [r.outcome for r in results] == ["applied"] * 6, [r.reason for r in results]
    assert len(api.requests) == 6
    assert peak == 2 and judge.in_flight == 0
    with pytest.raises(ValueError, match="max_concurrent"):
        make_judge(max_concurrent=0)
