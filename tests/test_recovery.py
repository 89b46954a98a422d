"""A session outlives the worker that ran it: a restart recovers it from Postgres."""

from __future__ import annotations

from protocol.client import open_client
from protocol.messages import (
    CandidateMessage,
    InterviewerDelta,
    InterviewerTurnEnd,
    Resumed,
    SessionEnd,
    SessionEnded,
    SessionResume,
    SessionStart,
)
from server.config import Settings
from tests.interview_support import (
    assert_gap_free,
    events,
    read_until,
    started_id,
    stored_turns,
    turn_ended,
    turn_texts,
)
from tests.support import running_server


async def test_a_restart_mid_turn_ends_the_turn_and_the_interview_goes_on(
    settings: Settings,
) -> None:
    slow = settings.with_(offline_tokens_per_s=20.0, coalesce_ms=10.0)
    async with (
        running_server(slow) as first,
        open_client(first.ws_url(), token=first.token("rita")) as c,
    ):
        await c.request(SessionStart(id="s", track="coding"))
        seen = await read_until(c, lambda f: isinstance(f, InterviewerDelta))
        seen += await read_until(c, lambda f: isinstance(f, InterviewerDelta))
        session_id = started_id(seen)
    # Leaving the block shuts the server down while the interviewer is mid-sentence.
    async with (
        running_server(slow.with_(offline_tokens_per_s=500.0)) as second,
        open_client(second.ws_url(), token=second.token("rita")) as c,
    ):
        await c.send(SessionResume(session_id=session_id, last_seq=0))
        resumed = await c.recv()
        assert isinstance(resumed, Resumed)
        replay = [await c.recv() for _ in range(resumed.replayed)]
        evts = events(replay)
        assert_gap_free(evts)
        cut = [e for e in evts if isinstance(e, InterviewerTurnEnd)][-1]
        assert cut.stop_reason == "error"
        cut_text = turn_texts(replay)[cut.turn_id]
        assert cut_text  # what the candidate saw of it
        await c.request(CandidateMessage(id="m", text="Sorry, I lost you. Go on?"))
        more = await read_until(c, turn_ended(1))
        assert_gap_free(evts + events(more))
        await c.request(SessionEnd(id="end"))
        await read_until(c, lambda f: isinstance(f, SessionEnded))
    stored = {t["turn_id"]: t for t in await stored_turns(settings.database_url or "", session_id)}
    assert stored[cut.turn_id]["text"] == cut_text
    assert stored[cut.turn_id]["stop_reason"] == "error"
