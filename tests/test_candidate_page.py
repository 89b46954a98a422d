"""The candidate page at ``/`` in a real headless Chromium, against a real server: a whole
interview (sign in, pick, stream, answer, code, run, scores, end, report, past reports),
hostile text shown as text, a reload mid-turn and a network cut that both resume without a
duplicated or missing word, and a server restart (1001) that the page rides out.

Needs a system Chromium (see ``tests/browser_support.py``). Screenshots of the page go to the
test's folder, and to docs/ with ``MENTARA_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.config import Settings
from tests.browser_support import CuttableProxy, chromium
from tests.candidate_page_support import (
    TIMEOUT_MS,
    candidate_page,
    screenshot,
    shown_transcript,
    sign_in,
    start,
    stored_matches_shown,
    wait_alert,
    wait_turns_ended,
)
from tests.contract_support import with_code_runs, with_dev_sign_in
from tests.support import RunningServer, running_server, serving, wait_ready

pytestmark = [pytest.mark.timeout(120), pytest.mark.browser]

HOSTILE = (
    "A hash map in one pass. "
    '<script>window.__pwned = "script"</script>'
    "<img src=x onerror=\"window.__pwned = 'img'\">&lt;b&gt;bold?&lt;/b&gt;"
)
WRONG = "def two_sum(nums, target):\n    print('<img src=x onerror=\"window.__pwned=1\">')\n    return []\n"
RIGHT = (
    "def two_sum(nums, target):\n"
    "    seen = {}\n"
    "    for i, n in enumerate(nums):\n"
    "        if target - n in seen:\n"
    "            return [seen[target - n], i]\n"
    "        seen[n] = i\n"
    "    return []\n"
)


def page_settings(settings: Settings, tokens_per_s: float) -> Settings:
    return with_code_runs(
        with_dev_sign_in(settings.with_(offline_tokens_per_s=tokens_per_s, coalesce_ms=10.0))
    )


@pytest.fixture
async def page_server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(page_settings(settings, 400.0)) as s:
        yield s


async def put_code(page: Any, source: str) -> None:
    """Replace the editor's buffer by typing into it (select all, then the text as input)."""
    await page.click("#code-section .CodeMirror")
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(source)


@contextlib.contextmanager
def fresh_serve(data_dir: Path) -> Iterator[str]:
    """``mentara serve`` as the README runs it on a fresh machine: no database or Redis URL,
    no secret (embedded Postgres and Redis, a development secret generated into a new data
    folder); a faster offline interviewer. Yields the base URL."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MENTARA_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(MENTARA_DATA_DIR=str(data_dir), MENTARA_LOG_LEVEL="warning",
               MENTARA_OFFLINE_TOKENS_PER_S="400", MENTARA_COALESCE_MS="10")  # fmt: skip
    if not shutil.which("bwrap"):  # see contract_support.with_code_runs
        env["MENTARA_SANDBOX"] = "unsafe-no-isolation"
    with serving(env=env) as (_proc, port):
        yield f"http://127.0.0.1:{port}"


async def test_a_whole_interview_in_the_browser(tmp_path: Path) -> None:
    """What the README promises: after `mentara serve` on a fresh machine, a person takes a
    whole interview at / (the screenshots in docs/ come from here)."""
    with fresh_serve(tmp_path / "data") as base_url:
        assert (await wait_ready(int(base_url.rsplit(":", 1)[1]))).status_code == 200
        await whole_interview(base_url, tmp_path)


async def whole_interview(base_url: str, tmp_path: Path) -> None:
    from playwright.async_api import expect

    async with (
        chromium() as browser,
        candidate_page(browser, f"{base_url}/") as (page, problems),
    ):
        await sign_in(page, "ada")
        await expect(page.locator("#past-sessions")).to_contain_text("No interviews yet")
        await start(page)
        await expect(page.locator("#interview-heading")).to_have_text("Two Sum")
        await wait_turns_ended(page, 2)
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        # The editor starts with the question's starter code, highlighted.
        await expect(page.locator("#code-section .CodeMirror")).to_contain_text("def two_sum")
        assert await page.locator("#code-section .cm-keyword").count() > 0

        # An answer (hostile markup: shown as text, never run).
        await page.fill("#answer", HOSTILE)
        await page.press("#answer", "Enter")
        await expect(page.locator('#transcript li[data-role="candidate"] .text')).to_have_text(
            [HOSTILE]
        )
        await wait_turns_ended(page, 3)
        await expect(page.locator("#outbox li")).to_have_count(0)

        # Code: a wrong version fails its visible tests, with its output shown as text.
        await put_code(page, WRONG)
        await page.click("#run")
        await expect(page.locator("#run-result")).to_contain_text("failed", timeout=TIMEOUT_MS)
        await expect(page.locator("#tests li.fail").first).to_be_visible()
        await expect(page.locator("#stdout")).to_contain_text("<img src=x onerror=")
        # The right one passes every visible test.
        await put_code(page, RIGHT)
        await page.click("#run")
        await expect(page.locator("#run-result")).to_contain_text("passed", timeout=TIMEOUT_MS)
        tests = page.locator("#tests li")
        assert await tests.count() >= 3
        await expect(page.locator("#tests li.fail")).to_have_count(0)

        # Live scores: each dimension that moved has a reason and links to its evidence.
        cites_transcript = page.locator('a.evidence-link[href^="#entry-"]')
        scored = page.locator("#score-rows tr").filter(has=cites_transcript)
        await expect(scored.first).to_be_visible(timeout=TIMEOUT_MS)
        row = scored.first
        assert (await row.locator(".reason").text_content() or "").strip()
        assert (await row.locator(".change").text_content() or "").strip()[0] in "+-"
        link = row.locator(cites_transcript).first
        target = await link.get_attribute("href")
        assert target
        await link.click()
        await expect(page.locator(target)).to_have_class("cited")
        assert await page.evaluate("document.activeElement.id") == target[1:]
        await wait_turns_ended(page, 4)
        await screenshot(page, tmp_path, "candidate-interview.png")

        # The end, and the report.
        await page.click("#end")
        await expect(page.locator("#report-body")).to_contain_text("Overall", timeout=30_000)
        await expect(page.locator("#report-body .report-dimensions li").first).to_be_visible()
        await expect(page.locator("#phase")).to_contain_text("Ended")
        await screenshot(page, tmp_path, "candidate-report.png")

        # What the page showed is what the server stored, turn for turn.
        await stored_matches_shown(base_url, page)

        # Past interviews list this one, and its report opens from there.
        await page.click("#home")
        item = page.locator("#past-sessions li").filter(has_text="Two Sum")
        await expect(item).to_have_count(1)
        await item.locator("button.open-report").click()
        await expect(page.locator("#past-report-body")).to_contain_text("Overall")
        await expect(page.locator("#plan")).not_to_have_text("\u2013")
        await screenshot(page, tmp_path, "candidate-home.png")

        # None of the hostile text became markup or ran.
        assert await page.locator("#transcript img, #transcript script, #tests img").count() == 0
        assert await page.evaluate("typeof window.__pwned") == "undefined"
        assert problems == []


async def test_a_reload_mid_turn_resumes_without_duplicate_text(settings: Settings) -> None:
    from playwright.async_api import expect

    # Slow enough that the introduction is still streaming when the page reloads.
    async with (
        running_server(page_settings(settings, 60.0)) as server,
        chromium() as browser,
        candidate_page(browser, f"{server.http_url}/") as (page, problems),
    ):
        await sign_in(page, "grace")
        await start(page, "behavioral", None)
        streaming = page.locator("#transcript li.streaming .text")
        await expect(streaming).not_to_have_text("", timeout=TIMEOUT_MS)
        # An answer typed while the interviewer speaks waits for the turn to end.
        answer = "What does the team work on?"
        await page.evaluate(
            """() => {
                 window.__outbox = [];
                 const box = document.getElementById('outbox');
                 new MutationObserver(() => window.__outbox.push(box.textContent))
                   .observe(box, {childList: true, subtree: true, characterData: true});
               }"""
        )
        await page.fill("#answer", answer)
        await page.press("#answer", "Enter")
        await page.wait_for_function(
            "() => window.__outbox.some((t) => t.includes('the interviewer is speaking'))"
        )
        before = await streaming.text_content()
        await page.reload()
        # The page shows at once what it had shown, then resumes after it: not from 0.
        await expect(page.locator("#conn")).to_contain_text("resumed after event")
        resumed_after = int(
            (await page.locator("#conn").text_content() or "")
            .split("after event ")[1]
            .split(",")[0]
        )
        assert resumed_after > 2
        first = page.locator('#transcript li[data-role="interviewer"] .text').first
        assert (await first.text_content() or "").startswith(before or "\x00")
        # The answer, re-sent after the reload under its id, is in the conversation once.
        said = page.locator('#transcript li[data-role="candidate"] .text')
        await expect(said).to_have_text([answer], timeout=TIMEOUT_MS)
        await expect(page.locator("#outbox li")).to_have_count(0)
        # The reply to it can be interrupted.
        reply = page.locator('#transcript li[data-role="candidate"] ~ li.streaming')
        await expect(reply).to_have_count(1, timeout=TIMEOUT_MS)
        await expect(page.locator("#interrupt")).to_be_enabled()
        await page.click("#interrupt")
        await expect(page.locator("#transcript li .meta")).to_contain_text(["(interrupted)"])
        await expect(page.locator("#transcript li.streaming")).to_have_count(0)
        await stored_matches_shown(server.http_url, page)
        assert await said.count() == 1
        assert problems == []


async def test_a_cut_connection_reconnects_and_loses_nothing(settings: Settings) -> None:
    from playwright.async_api import expect

    async with (
        running_server(page_settings(settings, 80.0)) as server,
        CuttableProxy(server.port) as proxy,
        chromium() as browser,
        candidate_page(browser, f"{proxy.url}/") as (page, problems),
    ):
        await sign_in(page, "linus")
        await start(page, "coding", "two-sum")
        await wait_turns_ended(page, 2)
        await page.evaluate(
            """() => {
                 window.__connStates = [];
                 const conn = document.getElementById('conn');
                 new MutationObserver(() => window.__connStates.push(conn.dataset.state))
                   .observe(conn, {attributes: true, attributeFilter: ['data-state']});
               }"""
        )
        # An answer, then the network drops while the reply streams.
        await page.fill("#answer", "Could the array hold duplicates?")
        await page.press("#answer", "Enter")
        await expect(page.locator("#transcript li.streaming .text")).not_to_have_text("")
        proxy.cut()
        await expect(page.locator("#conn")).to_contain_text("resumed after event")
        states = await page.evaluate("window.__connStates")
        assert "reconnecting" in states and states[-1] == "live", states
        await wait_turns_ended(page, 3)
        # An answer typed while cut off arrives once.
        proxy.cut()
        await page.fill("#answer", "And negative numbers?")
        await page.press("#answer", "Enter")
        await wait_turns_ended(page, 4)
        shown = await stored_matches_shown(server.http_url, page)
        assert [t for r, t in shown if r == "candidate"] == [
            "Could the array hold duplicates?",
            "And negative numbers?",
        ]
        token = await page.evaluate("sessionStorage.getItem('mentara.candidate.token')")
        assert all(token not in line for line in proxy.request_lines)
        assert problems == []


async def test_a_server_restart_is_shown_and_ridden_out(settings: Settings) -> None:
    from playwright.async_api import expect

    fast = page_settings(settings, 400.0)
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(running_server(fast))
        proxy = await stack.enter_async_context(CuttableProxy(first.port))
        browser = await stack.enter_async_context(chromium())
        page, problems = await stack.enter_async_context(candidate_page(browser, f"{proxy.url}/"))
        await sign_in(page, "barbara")
        await start(page, "system_design", None)
        await wait_turns_ended(page, 2)
        shown = await shown_transcript(page)

        # A deploy: this server goes away (1001); the page says so and keeps trying.
        second_stack = contextlib.AsyncExitStack()
        proxy.target_port = 1  # nothing listens there: reconnects fail until the next server
        first.server.should_exit = True
        await wait_alert(page, "The server is restarting (going away)")
        async with second_stack:
            second = await second_stack.enter_async_context(running_server(fast))
            proxy.target_port = second.port
            # The page retries with backoff (at most about 19 s apart).
            await expect(page.locator("#conn")).to_contain_text(
                "resumed after event", timeout=40_000
            )
            await expect(page.locator("#alert")).to_be_hidden()
            assert await shown_transcript(page) == shown
            await page.fill("#answer", "I would start with the read path.")
            await page.press("#answer", "Enter")
            await wait_turns_ended(page, 3)
            await stored_matches_shown(second.http_url, page)
        assert problems == []


async def tab_to(page: Any, selector: str, limit: int = 60) -> None:
    """Press Tab (only Tab) until the focused element matches ``selector``."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    focused = await page.evaluate("document.activeElement.outerHTML.slice(0, 120)")
    raise AssertionError(f"Tab never reached {selector}; focus is on {focused}")


LANDMARKS_AND_LABELS = """() => {
  const problems = [];
  const visible = (e) => e.getClientRects().length > 0;
  const named = (e) => (e.labels && e.labels.length) || e.getAttribute('aria-label')
      || (e.getAttribute('aria-labelledby') || '').split(' ').some((id) => id && document.getElementById(id));
  if (document.querySelectorAll('body > header').length !== 1) problems.push('one banner');
  if (document.querySelectorAll('main').length !== 1) problems.push('one main');
  if (document.querySelectorAll('h1').length !== 1) problems.push('one h1');
  for (const nav of document.querySelectorAll('nav')) if (!named(nav)) problems.push('nav without a name');
  for (const e of document.querySelectorAll('input, select, textarea')) {
    if (visible(e) && !named(e)) problems.push(`unlabelled ${e.outerHTML.slice(0, 80)}`);
  }
  for (const b of document.querySelectorAll('button, a[href]')) {
    if (visible(b) && !(b.textContent.trim() || b.getAttribute('aria-label'))) {
      problems.push(`nameless ${b.outerHTML.slice(0, 80)}`);
    }
  }
  for (const s of document.querySelectorAll('section')) {
    const id = s.getAttribute('aria-labelledby');
    const heading = id && document.getElementById(id);
    if (!heading || !/^H[1-6]$/.test(heading.tagName)) problems.push(`section ${s.id} has no heading`);
  }
  for (const e of document.querySelectorAll('[tabindex]')) {
    if (Number(e.getAttribute('tabindex')) > 0) problems.push(`positive tabindex on ${e.id}`);
  }
  return problems;
}"""


async def test_a_whole_interview_by_keyboard_alone(page_server: RunningServer) -> None:
    from playwright.async_api import expect

    server = page_server
    async with (
        chromium() as browser,
        candidate_page(browser, f"{server.http_url}/") as (
            page,
            problems,
        ),
    ):
        assert await page.evaluate(LANDMARKS_AND_LABELS) == []
        await tab_to(page, "#dev-user")
        await page.keyboard.type("kim")
        await page.keyboard.press("Enter")
        await expect(page.locator("#home-panel")).to_be_visible()
        assert await page.evaluate(LANDMARKS_AND_LABELS) == []
        await tab_to(page, "#question")
        await expect(page.locator('#question option[value="two-sum"]')).to_have_count(1)
        await page.keyboard.type("Two Sum")
        assert await page.input_value("#question") == "two-sum"
        await tab_to(page, "#start")
        await page.keyboard.press("Enter")
        await expect(page.locator("#interview-heading")).to_have_text("Two Sum")
        await wait_turns_ended(page, 2)
        assert await page.evaluate(LANDMARKS_AND_LABELS) == []

        await tab_to(page, "#answer")
        await page.keyboard.type("I'd keep a map from value to index.")
        await page.keyboard.press("Enter")
        await wait_turns_ended(page, 3)

        # The editor takes the code, and Tab leaves it again (no keyboard trap).
        await tab_to(page, "#code-section .CodeMirror textarea")
        await page.keyboard.press("Control+A")
        await page.keyboard.insert_text(RIGHT)
        await page.keyboard.press("Tab")
        assert await page.evaluate("!document.activeElement.closest('.CodeMirror')")
        await tab_to(page, "#run")
        await page.keyboard.press("Enter")
        await expect(page.locator("#run-result")).to_contain_text("passed", timeout=TIMEOUT_MS)

        # An evidence link moves focus to the transcript entry it cites.
        link = 'a.evidence-link[href^="#entry-"]'
        await expect(page.locator(link).first).to_be_visible(timeout=TIMEOUT_MS)
        await tab_to(page, link)
        target = await page.evaluate("document.activeElement.getAttribute('href')")
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == target[1:]

        await tab_to(page, "#end")
        await page.keyboard.press("Enter")
        await expect(page.locator("#report-body")).to_contain_text("Overall", timeout=30_000)
        await tab_to(page, "#home")
        await page.keyboard.press("Enter")
        await expect(page.locator("button.open-report")).to_have_count(1)
        await tab_to(page, "button.open-report")
        await page.keyboard.press("Enter")
        await expect(page.locator("#past-report-body")).to_contain_text("Overall")
        assert await page.evaluate(LANDMARKS_AND_LABELS) == []
        assert problems == []
