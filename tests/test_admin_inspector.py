"""The session inspector page in a real headless Chromium, against a real server and session.

The browser reaches the server through a loopback proxy that can cut every connection, so
the page's reconnect-and-resume is tested the way it happens: a network drop mid-session.
Needs a system Chromium (see ``tests/browser_support.py``; ``MENTARA_SKIP_BROWSER_TESTS=1``
skips instead of failing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from protocol.client import new_id, open_client
from protocol.messages import (
    CandidateMessage,
    CandidateSaid,
    CodeUpdate,
    InterviewerDelta,
    InterviewerTurnStart,
    ReportReady,
    ScoreDelta,
    ServerFrame,
    SessionEnd,
    SessionEvent,
    SessionStart,
    SessionStarted,
)
from server.config import Settings
from tests.browser_support import CuttableProxy, chromium
from tests.interview_support import read_until, turn_ended
from tests.support import RunningServer, running_server

pytestmark = [pytest.mark.timeout(60), pytest.mark.browser]

# Markup a candidate might type; the page must show it as text and run none of it.
HOSTILE = (
    "Use a hash map, one pass, O(n) time and O(n) space; I'll test an empty list. "
    '<script>window.__pwned = "script"</script>'
    "<img src=x onerror=\"window.__pwned = 'img'\">&lt;b&gt;bold?&lt;/b&gt;"
)
HOSTILE_CODE = (
    "def two_sum(nums, target):\n"
    '    """</pre><img src=x onerror="window.__pwned = \'code\'">"""\n'
    "    return []\n"
)
LATE = "<svg onload=\"window.__pwned = 'svg'\"></svg> asked while the inspector was cut off"

_TIMEOUT_MS = 15_000


@pytest.fixture
async def streaming_server(settings: Settings) -> AsyncIterator[RunningServer]:
    # Slow enough that a turn streams for a while (the page must show it growing), fast
    # enough to keep the test short.
    async with running_server(settings.with_(offline_tokens_per_s=40.0, coalesce_ms=10.0)) as s:
        yield s


def transcript_of(frames: list[ServerFrame]) -> list[dict[str, str]]:
    """The transcript as the candidate saw it: turns in order, each turn's whole text."""
    turns: dict[str, dict[str, str]] = {}
    for f in frames:
        match f:
            case CandidateSaid(turn_id=turn_id, text=text):
                turns[turn_id] = {"turn_id": turn_id, "role": "candidate", "text": text}
            case InterviewerTurnStart(turn_id=turn_id):
                turns.setdefault(turn_id, {"turn_id": turn_id, "role": "interviewer", "text": ""})
            case InterviewerDelta(turn_id=turn_id, text=text):
                turns[turn_id]["text"] += text
    return list(turns.values())


async def page_transcript(page: Any) -> list[dict[str, str]]:
    result: list[dict[str, str]] = await page.evaluate(
        """() => [...document.querySelectorAll('#transcript > li')].map((li) => ({
               turn_id: li.dataset.turnId, role: li.dataset.role,
               text: li.querySelector('.text').textContent }))"""
    )
    return result


async def wait_seq(page: Any, seq: int) -> None:
    await page.wait_for_function(
        "(seq) => Number(document.getElementById('fact-seq').textContent) >= seq",
        arg=seq,
        timeout=_TIMEOUT_MS,
    )


def last_seq(frames: list[ServerFrame]) -> int:
    return max(f.seq for f in frames if isinstance(f, SessionEvent))


async def test_inspector_lists_and_watches_a_live_session(
    streaming_server: RunningServer,
) -> None:
    server = streaming_server
    from playwright.async_api import expect

    admin_token = server.token("root", admin=True)
    async with (
        CuttableProxy(server.port) as proxy,
        chromium() as browser,
        open_client(server.ws_url(), token=server.token("cand")) as cand,
    ):
        # A live session: the interviewer's introduction and the problem.
        await cand.send(SessionStart(id=new_id(), track="coding"))
        frames = await read_until(cand, turn_ended(2))
        session_id = next(f for f in frames if isinstance(f, SessionStarted)).session_id

        page = await (await browser.new_context()).new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(msg.text)
                if "Content Security Policy" in msg.text or "Refused to" in msg.text
                else None
            ),
        )
        response = await page.goto(f"{proxy.url}/admin")
        assert response is not None and response.ok
        assert "script-src 'self'" in (await response.all_headers())["content-security-policy"]

        # A candidate's token is refused; the admin's lists the session with its owner.
        await page.fill("#token", server.token("cand"))
        await page.click("#use-token")
        await expect(page.locator("#list-state")).to_contain_text("HTTP 403 forbidden")
        await page.click("#forget-token")
        await page.fill("#token", admin_token)
        await page.click("#use-token")
        row = page.locator(f'#session-rows tr[data-session-id="{session_id}"]')
        await expect(row.locator("td.status")).to_have_text("live", timeout=_TIMEOUT_MS)
        worker = server.app.state.resources.sessions.worker_id
        await expect(row.locator("td.owner")).to_contain_text(worker)
        await expect(row.locator("td.user")).to_have_text("cand")
        assert await page.evaluate("sessionStorage.getItem('mentara.admin.token')") == admin_token
        assert await page.input_value("#token") == ""

        # Watch: history replays, then live events stream in.
        await row.locator("button.watch").click()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        await wait_seq(page, last_seq(frames))
        assert await page_transcript(page) == transcript_of(frames)

        # The interviewer's answer shows while it is still being spoken, not only at its end:
        # record what the streaming turn shows after every change the page makes.
        await page.evaluate(
            """() => {
                 window.__partials = [];
                 new MutationObserver(() => {
                   const li = document.querySelector('#transcript li.streaming');
                   if (li) window.__partials.push(
                     [li.dataset.turnId, li.querySelector('.text').textContent]);
                 }).observe(document.getElementById('transcript'),
                            {subtree: true, childList: true, characterData: true,
                             attributes: true});
               }"""
        )
        await cand.request(CandidateMessage(id=new_id(), text=HOSTILE))
        await cand.request(CodeUpdate(id=new_id(), language="python", source=HOSTILE_CODE))
        frames += await read_until(cand, turn_ended(1))
        await wait_seq(page, last_seq(frames))
        seen = await page_transcript(page)
        assert seen == transcript_of(frames)
        reply = seen[-1]
        assert reply["role"] == "interviewer"
        partials = {
            text
            for turn_id, text in await page.evaluate("window.__partials")
            if turn_id == reply["turn_id"] and text
        }
        assert all(reply["text"].startswith(p) for p in partials)
        assert len(partials - {reply["text"]}) >= 2, partials  # it grew delta by delta

        # The hostile text is on the page as text, and none of it ran.
        candidate_turn = page.locator('#transcript li[data-role="candidate"] .text').last
        await expect(candidate_turn).to_have_text(HOSTILE)
        await expect(page.locator("#code")).to_have_text(HOSTILE_CODE)
        assert await page.locator("#watch-panel img, #watch-panel script").count() == 0
        assert await page.evaluate("typeof window.__pwned") == "undefined"

        # A network drop: the page reconnects and resumes from the last seq it showed,
        # catching up on what happened while it was away, with no duplicate.
        await page.evaluate(
            """() => {
                 window.__connStates = [];
                 const conn = document.getElementById('conn');
                 new MutationObserver(() => window.__connStates.push(conn.dataset.state))
                   .observe(conn, {attributes: true, attributeFilter: ['data-state']});
               }"""
        )
        proxy.cut()
        await cand.request(CandidateMessage(id=new_id(), text=LATE))
        frames += await read_until(cand, turn_ended(1))
        await expect(page.locator("#conn")).to_contain_text(
            "resumed after seq", timeout=_TIMEOUT_MS
        )
        states = await page.evaluate("window.__connStates")
        assert "reconnecting" in states and states[-1] == "live", states
        await wait_seq(page, last_seq(frames))
        assert await page_transcript(page) == transcript_of(frames)

        # The end: final scores per rubric dimension and the report, as the candidate got them.
        await cand.request(SessionEnd(id=new_id()))
        frames += await read_until(cand, lambda f: isinstance(f, ReportReady), timeout=30)
        await wait_seq(page, last_seq(frames))
        await expect(page.locator("#fact-status")).to_have_text("ended (candidate_ended)")
        await expect(page.locator("#report")).to_contain_text("overall")
        final: dict[str, float] = {}
        for f in frames:
            if isinstance(f, ScoreDelta):
                final[f.dimension] = f.score
        assert final, "the session produced no score.delta to show"
        shown = await page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('#score-rows tr')]
                 .map((tr) => [tr.dataset.dimension, tr.querySelector('.score').textContent]))"""
        )
        assert {d: float(v) for d, v in shown.items() if v != "\u2013"} == final
        assert await page.evaluate("typeof window.__pwned") == "undefined"
        assert problems == []

        # The token never travelled in a URL.
        assert proxy.request_lines, "the proxy saw no request"
        assert all(admin_token not in line for line in proxy.request_lines)
        assert any(line.startswith("GET /v1/admin/watch ") for line in proxy.request_lines)
