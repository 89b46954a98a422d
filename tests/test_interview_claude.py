"""The live interview through the real `anthropic` SDK against a fake Messages API on loopback.

The fake speaks the API's real SSE stream and injects the faults of issue 3: 429 and 529
before the stream, an in-stream ``overloaded_error``, a connection cut mid-stream, a stall.
Each must leave the session usable and the stored transcript equal to what the candidate saw.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from protocol.client import InterviewClient, open_client
from protocol.messages import (
    CandidateMessage,
    Error,
    InterviewerTurnEnd,
    ServerFrame,
    SessionEnd,
    SessionEnded,
    SessionStart,
    SessionStarted,
)
from server.config import Settings
from tests.fake_anthropic import FakeMessagesAPI
from tests.interview_support import (
    assert_gap_free,
    events,
    read_until,
    stored_turns,
    turn_ended,
    turn_texts,
)
from tests.support import RunningServer, running_server

INTRO = "Hi, I'm Sam. We have about 45 minutes; think aloud as you go."
PRESENT = "Here's the problem: take a look at the statement and ask me anything first."


@pytest.fixture
async def claude(settings: Settings) -> AsyncIterator[tuple[FakeMessagesAPI, RunningServer]]:
    async with FakeMessagesAPI(default_reply=None, separate_lanes=True) as api:
        configured = settings.with_(
            llm_provider="anthropic",
            anthropic_api_key="test-key",
            anthropic_base_url=api.base_url,
            coalesce_ms=5.0,
            llm_stall_timeout_s=0.5,
            llm_backoff_s=0.01,
        )
        async with running_server(configured) as server:
            yield api, server


async def start_interview(
    api: FakeMessagesAPI, c: InterviewClient
) -> tuple[str, list[ServerFrame]]:
    api.reply(INTRO)
    api.reply(PRESENT)
    await c.request(SessionStart(id="start", track="coding"))
    frames = await read_until(c, turn_ended(2))
    started = events(frames)[0]
    assert isinstance(started, SessionStarted)
    return started.session_id, frames


async def say(c: InterviewClient, text: str, ref: str) -> list[ServerFrame]:
    await c.request(CandidateMessage(id=ref, text=text))
    return await read_until(c, turn_ended(1))


def last_turn(frames: list[ServerFrame]) -> InterviewerTurnEnd:
    return [f for f in frames if isinstance(f, InterviewerTurnEnd)][-1]


async def test_streamed_text_is_what_the_api_sent(
    claude: tuple[FakeMessagesAPI, RunningServer],
) -> None:
    api, server = claude
    async with open_client(server.ws_url(), token=server.token(uuid.uuid4().hex)) as c:
        session_id, frames = await start_interview(api, c)
        api.reply("Good question. Yes, it can be empty; what would you return then?")
        frames += await say(c, "Can the input be empty? I'd use a hash map.", "m1")
        texts = turn_texts(frames)
        assert list(texts.values()) == [
            INTRO,
            PRESENT,
            "Good question. Yes, it can be empty; what would you return then?",
        ]
        api.reply("Thanks, that's time.")
        await c.request(SessionEnd(id="end"))
        frames += await read_until(c, lambda f: isinstance(f, SessionEnded))
        assert_gap_free(events(frames))

    request = api.interviewer_requests[2]
    assert "I'd use a hash map" in request.messages_text
    started = events(frames)[0]
    assert isinstance(started, SessionStarted)
    assert started.question.title in request.system_text
    assert request.body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert request.body["max_tokens"] == server.settings.llm_max_tokens
    assert request.body["model"] == server.settings.llm_model
    assert request.api_key == "test-key"
    stored = await stored_turns(server.settings.database_url or "", session_id)
    assert {t["turn_id"]: t["text"] for t in stored if t["role"] == "interviewer"} == turn_texts(
        frames
    )


@pytest.mark.parametrize("status", [429, 529])
async def test_overload_before_the_stream_is_retried(
    claude: tuple[FakeMessagesAPI, RunningServer], status: int
) -> None:
    api, server = claude
    async with open_client(server.ws_url(), token=server.token(uuid.uuid4().hex)) as c:
        await start_interview(api, c)
        api.fail_status(status)
        api.fail_status(status)
        api.reply("Fine, go ahead.")
        frames = await say(c, "Shall I start coding?", "m1")
        assert last_turn(frames).stop_reason == "end_turn"
        assert list(turn_texts(frames).values()) == ["Fine, go ahead."]
        assert not [f for f in frames if isinstance(f, Error)]


CUT = "That approach works, and here is why it matters."
FAULTS: dict[str, Callable[[FakeMessagesAPI], None]] = {
    "overloaded-midstream": lambda api: api.overloaded_midstream(after_chars=12, text=CUT),
    "cut-midstream": lambda api: api.cut_midstream(after_chars=12, text=CUT),
    "stall-midstream": lambda api: api.stall(after_chars=12, seconds=5.0, text=CUT),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_fault_after_the_first_token_ends_the_turn_and_the_session_goes_on(
    claude: tuple[FakeMessagesAPI, RunningServer], fault: str
) -> None:
    api, server = claude
    async with open_client(server.ws_url(), token=server.token(uuid.uuid4().hex)) as c:
        session_id, frames = await start_interview(api, c)
        FAULTS[fault](api)
        cut = await say(c, "Is O(n log n) fine?", "m1")
        end = last_turn(cut)
        assert end.stop_reason == "error"
        seen = turn_texts(cut)[end.turn_id]
        assert seen == CUT[:12]
        errors = [f for f in cut if isinstance(f, Error)]
        if not errors:  # the error may trail the turn.end
            errors = [await c.recv()]  # type: ignore[list-item]
        assert [(e.code, e.retryable) for e in errors] == [("llm_unavailable", True)]

        # The socket and the session stay usable: the next message works.
        api.reply("Let's continue.")
        after = await say(c, "OK, continuing.", "m2")
        assert last_turn(after).stop_reason == "end_turn"
        assert list(turn_texts(after).values()) == ["Let's continue."]
        frames += cut + after
        assert_gap_free(events(frames))
    stored = await stored_turns(server.settings.database_url or "", session_id)
    by_id = {t["turn_id"]: t for t in stored}
    assert by_id[end.turn_id]["text"] == seen
    assert by_id[end.turn_id]["stop_reason"] == "error"


async def test_an_overload_before_the_first_token_is_retried_invisibly(
    claude: tuple[FakeMessagesAPI, RunningServer],
) -> None:
    api, server = claude
    async with open_client(server.ws_url(), token=server.token(uuid.uuid4().hex)) as c:
        await start_interview(api, c)
        api.overloaded_midstream(after_chars=0)
        api.reply("All good.")
        frames = await say(c, "Hello?", "m1")
        assert last_turn(frames).stop_reason == "end_turn"
        assert list(turn_texts(frames).values()) == ["All good."]


async def test_the_prompt_carries_the_latest_code_and_the_budget_is_enforced(
    settings: Settings,
) -> None:
    from protocol.messages import CodeUpdate

    async with FakeMessagesAPI(separate_lanes=True) as api:
        configured = settings.with_(
            llm_provider="anthropic",
            anthropic_api_key="test-key",
            anthropic_base_url=api.base_url,
            coalesce_ms=5.0,
            llm_token_budget=1,  # spent by the first turn
        )
        async with (
            running_server(configured) as server,
            open_client(server.ws_url(), token=server.token(uuid.uuid4().hex)) as c,
        ):
            api.reply(INTRO)
            await c.request(SessionStart(id="start", track="coding"))
            frames = await read_until(c, turn_ended(1))
            # The budget is spent: the next turn is refused with quota_exceeded.
            reply = await c.recv()
            while not isinstance(reply, Error):
                frames.append(reply)
                reply = await c.recv()
            assert (reply.code, reply.retryable) == ("quota_exceeded", False)
            await c.request(
                CodeUpdate(id="code", language="python", source="def solve():\n    return 42\n")
            )
            await c.request(CandidateMessage(id="m", text="Here is my code."))
            refused = (await read_until(c, lambda f: isinstance(f, Error)))[-1]
            assert isinstance(refused, Error)
            assert refused.code == "quota_exceeded"
        assert len(api.interviewer_requests) == 1
        assert api.interviewer_requests[0].body["messages"][-1]["role"] == "user"


async def test_the_request_includes_the_candidates_code(
    claude: tuple[FakeMessagesAPI, RunningServer],
) -> None:
    from protocol.messages import CodeUpdate

    api, server = claude
    async with open_client(server.ws_url(), token=server.token(uuid.uuid4().hex)) as c:
        await start_interview(api, c)
        await c.request(
            CodeUpdate(id="code", language="python", source="def solve():\n    return 42\n")
        )
        api.reply("Walk me through it.")
        await say(c, "Here is my code.", "m1")
    last = api.interviewer_requests[-1]
    assert "return 42" in last.messages_text
    assert "Here is my code." in last.messages_text
    assert "coding" in last.messages_text  # the phase


async def test_the_claude_judge_labels_evidence_beside_the_stream(
    claude: tuple[FakeMessagesAPI, RunningServer],
) -> None:
    from protocol.messages import ScoreDelta, SessionEvent

    api, server = claude
    async with open_client(server.ws_url(), token=server.token(uuid.uuid4().hex)) as c:
        _, frames = await start_interview(api, c)
        said_seq = [f for f in frames if isinstance(f, SessionEvent)][-1].seq + 1
        api.tool_reply(
            "record_evidence",
            {
                "evidence": [
                    {
                        "dimension": "communication",
                        "signal_id": "explains_clearly",
                        "polarity": "positive",
                        "seqs": [said_seq],
                        "note": "walked through the plan step by step",
                    }
                ]
            },
        )
        api.reply("Sounds good, go ahead.")
        ack = await c.request(
            CandidateMessage(
                id="m1", text="First I'll restate the problem, then walk through a hash map plan."
            )
        )
        assert ack.seq == said_seq
        frames = await read_until(
            c, lambda f: isinstance(f, ScoreDelta) and f.dimension == "communication", timeout=20
        )
    delta = frames[-1]
    assert isinstance(delta, ScoreDelta)
    assert delta.evidence == [said_seq]
    assert delta.delta > 0
    judge_calls = [r for r in api.requests if "tools" in r.body]
    assert judge_calls
    assert "hash map plan" in judge_calls[0].messages_text
