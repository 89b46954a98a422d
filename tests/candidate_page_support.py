"""Driving the candidate page (``GET /``) in a real Chromium: open it, sign in, start an
interview, read what it shows, compare it with what the server stored."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

TIMEOUT_MS = 20_000
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS_ENV = "MENTARA_UPDATE_SCREENSHOTS"


@asynccontextmanager
async def candidate_page(browser: Any, url: str) -> AsyncIterator[tuple[Any, list[str]]]:
    """A fresh page at ``url`` and the problems it reports: page errors and CSP refusals.
    Waits and ``expect`` assertions time out after ``TIMEOUT_MS`` (the machine may be busy)."""
    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    page = await context.new_page()
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
    page.set_default_timeout(TIMEOUT_MS)
    try:
        response = await page.goto(url)
        assert response is not None and response.ok
        csp = (await response.all_headers())["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe" not in csp
        await record_alerts(page)
        yield page, problems
    finally:
        await context.close()


async def sign_in(page: Any, user: str) -> None:
    from playwright.async_api import expect

    await expect(page.locator("#dev-signin-form")).to_be_visible()
    await page.fill("#dev-user", user)
    await page.click("#dev-signin")
    await expect(page.locator("#who")).to_have_text(f"signed in as {user}")
    await expect(page.locator("#home-panel")).to_be_visible()


async def start(page: Any, track: str = "coding", question: str | None = "two-sum") -> None:
    from playwright.async_api import expect

    await page.select_option("#track", track)
    if question:
        await expect(page.locator(f'#question option[value="{question}"]')).to_have_count(1)
        await page.select_option("#question", question)
    await page.click("#start")
    await expect(page.locator("#interview-panel")).to_be_visible()


async def wait_turns_ended(page: Any, interviewer_turns: int) -> None:
    """Until ``interviewer_turns`` interviewer turns are shown, none still streaming."""
    await page.wait_for_function(
        """(n) => document.querySelectorAll('#transcript li[data-role="interviewer"]').length >= n
               && !document.querySelector('#transcript li.streaming')""",
        arg=interviewer_turns,
        timeout=TIMEOUT_MS,
    )


async def shown_transcript(page: Any) -> list[tuple[str, str]]:
    """The conversation as the page shows it: (role, text) per turn."""
    rows: list[list[str]] = await page.evaluate(
        """() => [...document.querySelectorAll('#transcript > li')]
               .filter((li) => li.dataset.role !== 'run')
               .map((li) => [li.dataset.role, li.querySelector('.text').textContent])"""
    )
    return [(role, text) for role, text in rows]


async def session_id(page: Any) -> str:
    state = await page.evaluate("sessionStorage.getItem('mentara.candidate.interview')")
    sid = json.loads(state)["session_id"]
    assert isinstance(sid, str)
    return sid


async def stored_transcript(base_url: str, page: Any) -> list[tuple[str, str]]:
    """The conversation as the server stored it (GET /v1/sessions/{id})."""
    token = await page.evaluate("sessionStorage.getItem('mentara.candidate.token')")
    sid = await session_id(page)
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get(
            f"/v1/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}
        )
    response.raise_for_status()
    return [(t["role"], t["text"]) for t in response.json()["transcript"]]


async def stored_matches_shown(
    base_url: str, page: Any, within_s: float = 10.0
) -> list[tuple[str, str]]:
    """The page's transcript, once the stored one (GET /v1/sessions/{id}) is the same; fails
    with both when they still differ after ``within_s``. Events reach the page before their
    rows reach Postgres (the write-behind), so the store is read until it has caught up."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        shown = await shown_transcript(page)
        stored = await stored_transcript(base_url, page)
        if shown == stored:
            return shown
        if asyncio.get_running_loop().time() > deadline:
            assert shown == stored, "the stored transcript never matched the page's"
        await asyncio.sleep(0.2)


async def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    """A PNG of the page, kept in the test's folder; copied into docs/ when
    ``MENTARA_UPDATE_SCREENSHOTS=1`` (how the committed screenshots were made)."""
    path = tmp_path / name
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get(SCREENSHOTS_ENV) == "1":
        shutil.copyfile(path, ROOT / "docs" / name)
    return path


async def record_alerts(page: Any) -> None:
    """Keep every message the page's alert shows in ``window.__alerts`` (some last only until
    the page has reconnected)."""
    await page.evaluate(
        """() => {
             window.__alerts = [];
             const text = document.getElementById('alert-text');
             new MutationObserver(() => text.textContent && window.__alerts.push(text.textContent))
               .observe(text, {childList: true, characterData: true, subtree: true});
           }"""
    )


async def wait_alert(page: Any, fragment: str) -> None:
    """Until the page's alert has shown a message containing ``fragment``."""
    await page.wait_for_function(
        "(f) => window.__alerts.some((a) => a.includes(f))", arg=fragment, timeout=TIMEOUT_MS
    )
