"""``GET /v1/admin/sessions`` and the inspector's HTTP side (PROTOCOL.md §7), on a real server."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from protocol.client import new_id, open_client
from protocol.messages import CandidateMessage, SessionEnd, SessionEnded, SessionStart
from server.admin_sessions import MAX_LIMIT, Cursor
from server.config import Settings
from server.http_admin import INSPECTOR_CSP
from tests.interview_support import read_until, started_id, turn_ended
from tests.support import RunningServer, running_server


@pytest.fixture
async def fast_server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(settings.with_(offline_tokens_per_s=2000.0, coalesce_ms=5.0)) as s:
        yield s


def admin_headers(server: RunningServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token('root', admin=True)}"}


async def start_session(server: RunningServer, user: str, *, end: bool = False) -> str:
    """A session of ``user``'s: started, one candidate message, ended when ``end``."""
    async with open_client(server.ws_url(), token=server.token(user)) as c:
        ack = await c.request(SessionStart(id=new_id(), track="coding"))
        assert ack.seq == 1
        frames = await read_until(c, turn_ended(2))
        session_id = started_id(frames)
        await c.request(CandidateMessage(id="m1", text="hello"))
        await read_until(c, turn_ended(1))
        if end:
            await c.request(SessionEnd(id="end"))
            await read_until(c, lambda f: isinstance(f, SessionEnded))
        return str(session_id)


async def test_needs_an_admin_token(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        missing = await http.get("/v1/admin/sessions")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthorized"
        bad = await http.get("/v1/admin/sessions", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        expired = await http.get(
            "/v1/admin/sessions",
            headers={"Authorization": f"Bearer {server.token('root', admin=True, ttl_s=-5)}"},
        )
        assert expired.status_code == 401
        user = await http.get(
            "/v1/admin/sessions", headers={"Authorization": f"Bearer {server.token('alice')}"}
        )
        assert user.status_code == 403
        assert user.json() == {"error": {"code": "forbidden", "message": "admin rights required"}}
        # Tokens are never taken from the URL (PROTOCOL.md §1).
        in_url = await http.get(
            "/v1/admin/sessions", params={"token": server.token("root", admin=True)}
        )
        assert in_url.status_code == 401
        ok = await http.get(
            "/v1/admin/sessions", params={"user_id": "nobody"}, headers=admin_headers(server)
        )
        assert ok.status_code == 200
        assert ok.json() == {"sessions": [], "next_cursor": None}
        assert ok.headers["cache-control"] == "no-store"


async def test_lists_live_and_ended_sessions_newest_first(fast_server: RunningServer) -> None:
    server = fast_server
    ann, bob = f"ann-{new_id()}", f"bob-{new_id()}"  # the run's database is shared by tests
    first = await start_session(server, ann, end=True)
    second = await start_session(server, bob)
    third = await start_session(server, ann)
    mine = {first, second, third}

    def ids(page: dict[str, Any]) -> list[str]:
        return [s["id"] for s in page["sessions"] if s["id"] in mine]

    async with httpx.AsyncClient(base_url=server.http_url, headers=admin_headers(server)) as http:
        listed = (await http.get("/v1/admin/sessions")).json()
        assert ids(listed) == [third, second, first]
        assert listed["sessions"][0]["id"] == third  # the newest of all
        started = [s["started_at"] for s in listed["sessions"]]
        assert started == sorted(started, reverse=True)
        by_id = {s["id"]: s for s in listed["sessions"]}

        live = by_id[third]
        worker = server.app.state.resources.sessions.worker_id
        assert live["status"] == "live" and live["end_reason"] is None
        assert live["owner"]["worker"] == worker and live["owner"]["fence"] >= 1
        assert live["user_id"] == ann and live["track"] == "coding"
        assert live["question"]["id"] and live["question"]["title"]
        assert live["phase"] in {"problem", "coding"}
        assert live["started_at"] > 0 and live["ended_at"] is None
        assert live["last_seq"] >= live["stored_seq"] > 0
        assert live["counts"] == {
            "candidate_messages": 1,
            "interviewer_turns": 3,
            "code_snapshots": 0,
        }

        ended = by_id[first]
        assert ended["status"] == "ended" and ended["end_reason"] == "candidate_ended"
        assert ended["owner"] is None
        assert ended["ended_at"] >= ended["started_at"]

        only_live = (await http.get("/v1/admin/sessions", params={"status": "live"})).json()
        assert ids(only_live) == [third, second]
        assert {s["status"] for s in only_live["sessions"]} == {"live"}
        only_ended = (await http.get("/v1/admin/sessions", params={"status": "ended"})).json()
        assert ids(only_ended) == [first]
        assert {s["status"] for s in only_ended["sessions"]} == {"ended"}
        anns = (await http.get("/v1/admin/sessions", params={"user_id": ann})).json()
        assert [s["id"] for s in anns["sessions"]] == [third, first]
        other_track = {"user_id": ann, "track": "behavioral"}
        assert (await http.get("/v1/admin/sessions", params=other_track)).json()["sessions"] == []


async def test_pages_walk_every_session_once(fast_server: RunningServer) -> None:
    server = fast_server
    user = f"pager-{new_id()}"
    made = [await start_session(server, user) for _ in range(3)]
    async with httpx.AsyncClient(base_url=server.http_url, headers=admin_headers(server)) as http:
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 1, "user_id": user}
        for _ in range(5):
            page = (await http.get("/v1/admin/sessions", params=params)).json()
            seen += [s["id"] for s in page["sessions"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == made[::-1]
        # A session created while paging does not disturb the pages after the cursor.
        first = (await http.get("/v1/admin/sessions", params={"limit": 2, "user_id": user})).json()
        newer = await start_session(server, user)
        after = {"limit": 2, "user_id": user, "cursor": first["next_cursor"]}
        rest = (await http.get("/v1/admin/sessions", params=after)).json()
        assert [s["id"] for s in first["sessions"] + rest["sessions"]] == made[::-1]
        assert newer not in [s["id"] for s in rest["sessions"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": MAX_LIMIT + 1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "running"}, "status"),
        ({"track": "chess"}, "track"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"9:1:x").decode()}, "cursor"),
    ],
)
async def test_bad_parameters_are_400(
    server: RunningServer, params: dict[str, Any], field: str
) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, headers=admin_headers(server)) as http:
        response = await http.get("/v1/admin/sessions", params=params)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_field" and field in error["message"]


def test_cursor_round_trips_exactly() -> None:
    cursor = Cursor(1_767_225_600_123_456, "s:with:colons")
    assert Cursor.decode(cursor.encode()) == cursor
    assert "=" not in cursor.encode()


async def test_inspector_page_is_served_with_a_strict_policy(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        page = await http.get("/admin")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert csp == INSPECTOR_CSP
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert '<script src="/admin/inspector.js"' in page.text
        for asset, kind in (("inspector.js", "text/javascript"), ("inspector.css", "text/css")):
            response = await http.get(f"/admin/{asset}")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith(kind)
            assert response.headers["content-security-policy"] == INSPECTOR_CSP
        script = (await http.get("/admin/inspector.js")).text
        code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("//"))
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code  # session content reaches the page only as text
        missing = await http.get("/admin/other.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
