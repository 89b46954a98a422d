"""What the candidate page says when something goes wrong, in a real Chromium against a real
server: code that cannot run (``sandbox_unavailable``), an interviewer whose language model
is unreachable (``llm_unavailable``), a slow-consumer close (4003), a server that rejects
the token (4001) and a spent quota (``quota_exceeded``). Each is a clear message with the action that helps; the interview goes on
where it can. (A server going away, 1001, is in ``test_candidate_page.py``.)
"""

from __future__ import annotations

import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from scoring import sandbox_probe
from server.config import Settings
from tests.browser_support import CuttableProxy, chromium
from tests.candidate_page_support import (
    TIMEOUT_MS,
    candidate_page,
    shown_transcript,
    sign_in,
    start,
    stored_matches_shown,
    wait_alert,
    wait_turns_ended,
)
from tests.contract_support import with_dev_sign_in
from tests.support import running_server

pytestmark = [pytest.mark.timeout(120), pytest.mark.browser]


@pytest.fixture
def broken_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A ``bwrap`` that runs nothing (a host where user namespaces are refused, say)."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    saved = dict(sandbox_probe._supports)
    sandbox_probe._supports.clear()
    monkeypatch.setattr(sandbox_probe, "find_bwrap", lambda: str(fake))
    try:
        yield
    finally:
        sandbox_probe._supports.clear()
        sandbox_probe._supports.update(saved)


async def test_code_that_cannot_run_is_said_and_the_interview_goes_on(
    settings: Settings, broken_bwrap: None
) -> None:
    from playwright.async_api import expect

    fast = with_dev_sign_in(settings.with_(offline_tokens_per_s=400.0, coalesce_ms=10.0))
    async with (
        running_server(fast) as server,
        chromium() as browser,
        candidate_page(browser, f"{server.http_url}/") as (page, problems),
    ):
        await sign_in(page, "ines")
        await start(page)
        await wait_turns_ended(page, 2)
        await page.click("#run")
        alert = page.locator("#alert")
        await expect(alert).to_contain_text("Code cannot run safely on this server right now")
        await expect(alert).to_have_attribute("data-kind", "sandbox")
        await expect(page.locator("#run-result")).to_have_text("Your code was not run.")
        # The interview goes on.
        await page.click("#alert-dismiss")
        await expect(alert).to_be_hidden()
        await page.fill("#answer", "Then I'll walk through it by hand.")
        await page.press("#answer", "Enter")
        await wait_turns_ended(page, 3)
        assert problems == []


async def test_an_unreachable_language_model_is_said(settings: Settings) -> None:
    from playwright.async_api import expect

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    unreachable = with_dev_sign_in(
        settings.with_(
            llm_provider="anthropic",
            anthropic_api_key="sk-test-unreachable",
            anthropic_base_url=dead,
            llm_backoff_s=0.01,
            llm_stall_timeout_s=2.0,
        )
    )
    async with (
        running_server(unreachable) as server,
        chromium() as browser,
        candidate_page(browser, f"{server.http_url}/") as (page, problems),
    ):
        await sign_in(page, "jon")
        await start(page, "behavioral", None)
        alert = page.locator("#alert")
        await expect(alert).to_contain_text("language model is unavailable", timeout=30_000)
        await expect(alert).to_have_attribute("data-kind", "llm")
        await page.click("#alert-action")
        assert await page.evaluate("document.activeElement.id") == "answer"
        assert problems == []


async def test_a_slow_consumer_close_is_said_and_resumed(settings: Settings) -> None:
    from playwright.async_api import expect

    fast = with_dev_sign_in(settings.with_(offline_tokens_per_s=400.0, coalesce_ms=10.0))
    async with (
        running_server(fast) as server,
        CuttableProxy(server.port) as proxy,
        chromium() as browser,
        candidate_page(browser, f"{proxy.url}/") as (page, problems),
    ):
        await sign_in(page, "kay")
        await start(page, "system_design", None)
        await wait_turns_ended(page, 2)
        shown = await shown_transcript(page)
        await proxy.close_websockets(4003, "slow consumer: resume")
        alert = page.locator("#alert")
        await wait_alert(page, "Your connection fell behind the interview")
        await expect(page.locator("#conn")).to_contain_text("resumed after event")
        await expect(alert).to_be_hidden()
        assert await shown_transcript(page) == shown
        await page.fill("#answer", "Sharding by user id.")
        await page.press("#answer", "Enter")
        await wait_turns_ended(page, 3)
        await stored_matches_shown(server.http_url, page)
        assert problems == []


async def test_a_refused_token_asks_for_a_new_sign_in(settings: Settings) -> None:
    from playwright.async_api import expect

    fast = with_dev_sign_in(settings.with_(offline_tokens_per_s=400.0, coalesce_ms=10.0))
    async with (
        running_server(fast) as server,
        chromium() as browser,
        candidate_page(browser, f"{server.http_url}/") as (page, problems),
    ):
        # A token pasted by hand that this server did not sign.
        await page.fill("#token", server.token("eve").rsplit(".", 1)[0] + ".bad-signature")
        await page.click("#use-token")
        alert = page.locator("#alert")
        await expect(alert).to_contain_text("sign in again", timeout=TIMEOUT_MS)
        await expect(page.locator("#signin-panel")).to_be_visible()
        assert await page.evaluate("sessionStorage.getItem('mentara.candidate.token')") is None
        # Signing in again carries on.
        await sign_in(page, "eve")
        await expect(alert).to_be_hidden()
        assert problems == []


async def test_a_spent_quota_is_said_with_the_plan_that_lifts_it(settings: Settings) -> None:
    """The free plan's interviews are spent (0 a month here): the page shows the plan with
    none left, and ``session.start`` answered ``quota_exceeded`` becomes a message saying when
    the quota resets, with the way to the plan."""
    from playwright.async_api import expect

    spent = with_dev_sign_in(settings.with_(free_interviews_per_month=0))
    async with (
        running_server(spent) as server,
        chromium() as browser,
        candidate_page(browser, f"{server.http_url}/") as (page, problems),
    ):
        await sign_in(page, "noor")
        await expect(page.locator("#plan")).to_contain_text("Plan: free")
        await expect(page.locator("#plan")).to_contain_text("interviews left this period: 0")
        await page.select_option("#track", "coding")
        await page.click("#start")
        alert = page.locator("#alert")
        await expect(alert).to_have_attribute("data-kind", "quota", timeout=TIMEOUT_MS)
        await expect(alert).to_contain_text("You have used this period's interviews")
        await expect(alert).to_contain_text("resets at")
        await expect(alert).to_contain_text("'pro'")
        assert problems == []
