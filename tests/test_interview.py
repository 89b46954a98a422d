"""The live interview over a real socket, offline interviewer, real Postgres (issue 3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from protocol.client import ServerErrorReply, open_client
from protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from protocol.messages import (
    Ack,
    CandidateMessage,
    CandidateSaid,
    CodeSnapshot,
    CodeUpdate,
    Error,
    InterviewerInterrupt,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    PhaseChanged,
    Resumed,
    SessionEnd,
    SessionEnded,
    SessionResume,
    SessionStart,
    SessionStarted,
)
from server.config import Settings
from tests.interview_support import (
    assert_gap_free,
    assert_stored_from,
    events,
    read_until,
    started_id,
    stored_turns,
    turn_ended,
    turn_texts,
)
from tests.support import RunningServer, running_server


@pytest.fixture
async def fast_server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(settings.with_(offline_tokens_per_s=2000.0, coalesce_ms=5.0)) as s:
        yield s


@pytest.mark.parametrize("subprotocol", [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL])
async def test_a_whole_interview(fast_server: RunningServer, subprotocol: str) -> None:
    server = fast_server
    async with open_client(
        server.ws_url(), token=server.token(f"cand-{subprotocol}"), subprotocol=subprotocol
    ) as c:
        await c.send(SessionStart(id="start-1", track="coding"))
        # Introduction and problem: two interviewer turns, streamed.
        frames = await read_until(c, turn_ended(2))
        evts = events(frames)
        started = evts[0]
        assert isinstance(started, SessionStarted)
        assert started.seq == 1
        assert started.rubric.scale == [1.0, 4.0]
        assert len(started.rubric.dimensions) >= 4
        assert started.question.prompt and started.question.title
        assert started.limits.duration_s == server.settings.session_duration_s
        acks = [f for f in frames if isinstance(f, Ack)]
        assert [(a.ref, a.seq) for a in acks] == [("start-1", 1)]
        assert [e.name for e in evts if isinstance(e, PhaseChanged)] == ["intro", "problem"]
        assert sum(isinstance(e, InterviewerTurnStart) for e in evts) == 2
        session_id = started.session_id

        # The candidate answers; the interviewer answers back.
        ack = await c.request(CandidateMessage(id="m1", text="Can the input be empty?"))
        assert ack.seq is not None
        frames += await read_until(c, turn_ended(1))
        await c.request(CodeUpdate(id="code-1", language="python", source="def f():\n    pass\n"))
        ack = await c.request(SessionEnd(id="end-1"))
        frames += await read_until(c, lambda f: isinstance(f, SessionEnded))
        evts = events(frames)
        assert_gap_free(evts)
        said = [e for e in evts if isinstance(e, CandidateSaid)]
        assert [s.text for s in said] == ["Can the input be empty?"]
        assert any(isinstance(e, CodeSnapshot) and e.version == 1 for e in evts)
        assert isinstance(evts[-1], SessionEnded)
        assert evts[-1].reason == "candidate_ended"
        assert ack.seq == evts[-1].seq
        names = [e.name for e in evts if isinstance(e, PhaseChanged)]
        assert names == ["intro", "problem", "coding", "wrapup"]

    # What Postgres holds is exactly what was streamed.
    streamed = turn_texts(frames)
    stored = await stored_turns(server.settings.database_url or "", session_id)
    interviewer = {t["turn_id"]: t["text"] for t in stored if t["role"] == "interviewer"}
    assert interviewer == streamed
    assert all(t["stop_reason"] == "end_turn" for t in stored if t["role"] == "interviewer")
    assert [t["text"] for t in stored if t["role"] == "candidate"] == ["Can the input be empty?"]
    await assert_stored_from(server.settings.database_url or "", session_id, evts)


async def test_repeated_ids_are_applied_once(fast_server: RunningServer) -> None:
    server = fast_server
    async with open_client(server.ws_url(), token=server.token("dup")) as c:
        first = await c.request(SessionStart(id="start-dup", track="coding"))
        again = await c.request(SessionStart(id="start-dup", track="coding"))
        assert first.seq == again.seq == 1
        await read_until(c, turn_ended(2))
        a1 = await c.request(CandidateMessage(id="same", text="hello"))
        a2 = await c.request(CandidateMessage(id="same", text="hello"))
        assert a1.seq == a2.seq
        end = await c.request(SessionEnd(id="bye"))
        frames = await read_until(c, lambda f: isinstance(f, SessionEnded))
    said = [e for e in events(frames) if isinstance(e, CandidateSaid)]
    assert len(said) == 1
    async with open_client(server.ws_url(), token=server.token("dup")) as c:
        again = await c.request(SessionStart(id="start-dup", track="coding"))
        frames = await read_until(c, lambda f: isinstance(f, SessionEnded))
        # A repeated session.start re-attaches to the session it created: same session.
        replay = events(frames)
        assert replay[0].seq == 1
        assert_gap_free(replay)
        assert sum(isinstance(e, CandidateSaid) for e in replay) == 1
        assert end.seq == replay[-1].seq


async def test_an_input_whose_socket_drops_mid_apply_is_applied_once(
    fast_server: RunningServer,
) -> None:
    """The candidate sends a message and its socket goes at once (a phone losing its
    network); it resumes on a new socket and sends the same input again, as the protocol
    says to for an input it has no ack for. The first application must finish although its
    socket is gone, and the repeat must be recognised: one candidate.said per input."""
    server = fast_server
    user = "dropper"
    async with open_client(server.ws_url(), token=server.token(user)) as c:
        started = await c.request(SessionStart(id="start-drop", track="coding"))
        frames = await read_until(c, turn_ended(2))
        session_id = next(e for e in events(frames) if isinstance(e, SessionStarted)).session_id
    assert started.seq == 1
    texts = [f"answer number {i}" for i in range(6)]
    for i, text in enumerate(texts):
        dropped = await open_client(server.ws_url(), token=server.token(user)).__aenter__()
        await dropped.send(SessionResume(session_id=session_id, last_seq=0))
        await dropped.send(CandidateMessage(id=f"drop-{i}", text=text))
        await dropped.close()  # gone before its ack
        async with open_client(server.ws_url(), token=server.token(user)) as again:
            await again.send(SessionResume(session_id=session_id, last_seq=0))
            got = await read_until(again, lambda f: isinstance(f, Resumed | Error))
            assert isinstance(got[-1], Resumed)
            await again.request(CandidateMessage(id=f"drop-{i}", text=text))
    async with open_client(server.ws_url(), token=server.token(user)) as c:
        await c.send(SessionResume(session_id=session_id, last_seq=0))
        await c.request(SessionEnd(id="end-drop"))
        frames = await read_until(c, lambda f: isinstance(f, SessionEnded))
    said = [e.text for e in events(frames) if isinstance(e, CandidateSaid)]
    assert [said.count(text) for text in texts] == [1] * len(texts)


async def test_second_device_sees_the_same_events_and_others_cannot_attach(
    settings: Settings,
) -> None:
    async with (
        running_server(settings.with_(offline_tokens_per_s=200.0, coalesce_ms=5.0)) as server,
        open_client(server.ws_url(), token=server.token("dana")) as phone,
    ):
        ack = await phone.request(SessionStart(id="s", track="coding"))
        assert ack.seq == 1
        first = await phone.recv()
        session_id = first.session_id if isinstance(first, SessionStarted) else ""
        assert session_id
        async with open_client(server.ws_url(), token=server.token("dana")) as laptop:
            await laptop.send(SessionResume(session_id=session_id, last_seq=0))
            resumed = await laptop.recv()
            assert isinstance(resumed, Resumed)
            await laptop.request(CandidateMessage(id="from-laptop", text="I'm on my laptop now"))
            laptop_frames = await read_until(laptop, lambda f: isinstance(f, CandidateSaid))
            phone_frames = [
                first,
                *await read_until(phone, lambda f: isinstance(f, CandidateSaid)),
            ]
            laptop_events, phone_events = events(laptop_frames), events(phone_frames)
            assert_gap_free(laptop_events)
            assert_gap_free(phone_events)
            common = min(len(laptop_events), len(phone_events))
            assert laptop_events[:common] == phone_events[:common]
        async with open_client(server.ws_url(), token=server.token("mallory")) as other:
            with pytest.raises(ServerErrorReply) as refused:
                await other.request(SessionResume(id="peek", session_id=session_id, last_seq=0))
            assert refused.value.error.code == "not_found"
            with pytest.raises(ServerErrorReply) as no_session:
                await other.request(CandidateMessage(id="x", text="hi"))
            assert no_session.value.error.code == "not_found"


async def test_interrupt_stores_exactly_what_was_delivered(settings: Settings) -> None:
    async with running_server(
        settings.with_(offline_tokens_per_s=30.0, coalesce_ms=20.0)
    ) as server:
        async with open_client(server.ws_url(), token=server.token("ivy")) as c:
            await c.request(SessionStart(id="s", track="coding"))
            frames = await read_until(c, lambda f: type(f).__name__ == "InterviewerDelta")
            await asyncio.sleep(0.3)
            await c.request(InterviewerInterrupt(id="stop"))
            frames += await read_until(c, turn_ended(1))
            end = next(f for f in frames if isinstance(f, InterviewerTurnEnd))
            assert end.stop_reason == "interrupted"
            delivered = turn_texts(frames)[end.turn_id]
            # A message while it speaks is queued and answered after the turn.
            frames += await read_until(c, lambda f: isinstance(f, InterviewerTurnStart))
            await c.request(CandidateMessage(id="q", text="Quick question: is the array sorted?"))
            await c.request(InterviewerInterrupt(id="stop-2"))
            frames += await read_until(c, turn_ended(1))
            reply = await read_until(c, turn_ended(1), timeout=20)
            assert any(isinstance(f, InterviewerTurnStart) for f in reply)
            await c.request(SessionEnd(id="end"))
            session_id = started_id(frames)
        stored = await stored_turns(server.settings.database_url or "", session_id)
        by_id = {t["turn_id"]: t for t in stored}
        assert by_id[end.turn_id]["text"] == delivered
        assert by_id[end.turn_id]["stop_reason"] == "interrupted"
        assert len(delivered) > 0


async def test_time_limit_ends_the_session(settings: Settings) -> None:
    async with (
        running_server(
            settings.with_(session_duration_s=2, offline_tokens_per_s=500.0, coalesce_ms=5.0)
        ) as server,
        open_client(server.ws_url(), token=server.token("tim")) as c,
    ):
        await c.request(SessionStart(id="s", track="behavioral"))
        frames = await read_until(c, lambda f: isinstance(f, SessionEnded), timeout=20)
        ended = events(frames)[-1]
        assert isinstance(ended, SessionEnded)
        assert ended.reason == "time_up"
        assert_gap_free(events(frames))
        await c.send(CandidateMessage(id="late", text="wait"))
        reply = await c.recv()
        assert isinstance(reply, Error)
        assert reply.code == "session_ended"


async def test_http_lists_the_callers_sessions(fast_server: RunningServer) -> None:
    server = fast_server
    async with open_client(server.ws_url(), token=server.token("hal")) as c:
        await c.request(SessionStart(id="s", track="system_design"))
        frames = await read_until(c, turn_ended(2))
        await c.request(CandidateMessage(id="m", text="Let me start with requirements."))
        await c.request(SessionEnd(id="e"))
        await read_until(c, lambda f: isinstance(f, SessionEnded))
    session_id = started_id(frames)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        assert (await http.get("/v1/sessions")).status_code == 401
        mine = await http.get(
            "/v1/sessions", headers={"Authorization": f"Bearer {server.token('hal')}"}
        )
        assert [s["id"] for s in mine.json()["sessions"]] == [session_id]
        one = await http.get(
            f"/v1/sessions/{session_id}", headers={"Authorization": f"Bearer {server.token('hal')}"}
        )
        body = one.json()
        assert body["session"]["status"] == "ended"
        assert [t["text"] for t in body["transcript"] if t["role"] == "candidate"] == [
            "Let me start with requirements."
        ]
        theirs = await http.get(
            f"/v1/sessions/{session_id}", headers={"Authorization": f"Bearer {server.token('eve')}"}
        )
        assert theirs.status_code == 404
        assert theirs.json()["error"]["code"] == "not_found"


async def test_code_runs_against_visible_tests_and_hints_are_graded(
    fast_server: RunningServer,
) -> None:
    from protocol.messages import CodeResult, CodeRun, InterviewerDelta

    server = fast_server
    async with open_client(server.ws_url(), token=server.token("coder")) as c:
        await c.request(SessionStart(id="s", track="coding", question_id="two-sum"))
        frames = await read_until(c, turn_ended(2))
        catalog_question = server.app.state.resources.sessions.catalog.get("two-sum")
        hints = catalog_question.script.hints

        # Stuck: the first hint, then the second; never the reference solution.
        for n in (1, 2):
            frames += [
                await c.request(CandidateMessage(id=f"stuck-{n}", text="I'm stuck, any hint?"))
            ]
            frames += await read_until(c, turn_ended(1))
            assert hints[n - 1] in list(turn_texts(frames).values())[-1]
        spoken = "".join(turn_texts(frames).values())
        assert catalog_question.source.reference_solution.strip() not in spoken

        # Wrong code fails its visible tests; right code passes and brings the follow-ups.
        await c.request(
            CodeUpdate(
                id="v1", language="python", source="def two_sum(nums, target):\n    return []\n"
            )
        )
        ack = await c.request(CodeRun(id="run-1"))
        result = next(
            f
            for f in await read_until(c, lambda f: isinstance(f, CodeResult))
            if isinstance(f, CodeResult)
        )
        assert result.status == "failed"
        assert ack.seq == result.seq
        assert result.version == 1
        await c.request(
            CodeUpdate(
                id="v2", language="python", source=catalog_question.source.reference_solution
            )
        )
        await c.request(CodeRun(id="run-2"))
        after = await read_until(c, lambda f: isinstance(f, InterviewerDelta))
        result = next(f for f in after if isinstance(f, CodeResult))
        assert result.status == "passed"
        assert all(t.passed for t in result.tests)
        assert [e.name for e in events(after) if isinstance(e, PhaseChanged)] == ["followup"]
        # A repeated run id is not run again.
        again = await c.request(CodeRun(id="run-2"))
        assert again.seq == result.seq
