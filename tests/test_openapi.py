"""The OpenAPI document cannot drift from the HTTP API: it names every route of the real app
(the development-only one too) and nothing else, and the real responses of a real server
after a whole interview validate against the schemas it gives them. Also the development
sign-in, which exists only where the server signs its own development tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.routing import Route, WebSocketRoute

from protocol.client import new_id, open_client
from protocol.messages import (
    CandidateMessage,
    CodeRun,
    CodeUpdate,
    ReportReady,
    SessionEnd,
    SessionStart,
    SessionStarted,
)
from server import openapi
from server.config import Settings
from tests.contract_support import (
    OPENAPI_PATH,
    committed,
    problems,
    response_schema,
    with_code_runs,
    with_dev_sign_in,
)
from tests.interview_support import read_until, turn_ended
from tests.support import RunningServer, running_server

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def dev_server(settings: Settings) -> AsyncIterator[RunningServer]:
    fast = settings.with_(offline_tokens_per_s=2000.0, coalesce_ms=5.0)
    async with running_server(with_code_runs(with_dev_sign_in(fast))) as s:
        yield s


def test_the_committed_document_is_what_the_module_builds(tmp_path: Any) -> None:
    assert OPENAPI_PATH.read_text(encoding="utf-8") == openapi.render(), (
        "docs/openapi.json is stale: run python -m server.openapi"
    )
    assert openapi.main(["--check", str(OPENAPI_PATH)]) == 0
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    assert openapi.main(["--check", str(stale)]) == 1


def _templated(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", path)


def test_every_route_of_the_app_is_documented_and_nothing_else(dev_server: RunningServer) -> None:
    paths = committed(OPENAPI_PATH)["paths"]
    in_app: dict[str, set[str]] = {}
    for route in dev_server.app.routes:
        if isinstance(route, WebSocketRoute):
            in_app.setdefault(route.path, set()).add("get")
        elif isinstance(route, Route):
            methods = {m.lower() for m in (route.methods or ())} - {"head"}
            in_app.setdefault(_templated(route.path), set()).update(methods)
        else:
            raise AssertionError(f"an unexpected kind of route: {route!r}")
    assert "/v1/dev/token" in in_app, "the development sign-in is missing in development"
    documented = {
        path: {m for m in ops if m in ("get", "post", "put", "patch", "delete")}
        for path, ops in paths.items()
    }
    assert documented == in_app


async def test_the_production_app_has_no_development_sign_in(server: RunningServer) -> None:
    # The test server's secret is configured, not generated into its data folder.
    assert all(getattr(r, "path", "") != "/v1/dev/token" for r in server.app.routes)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        for method in ("GET", "POST"):
            response = await http.request(method, "/v1/dev/token", json={"user": "mallory"})
            assert response.status_code == 404, method
            assert response.json()["error"]["code"] == "not_found"


async def test_a_data_folder_secret_unlike_the_configured_one_gives_no_sign_in(
    settings: Settings,
) -> None:
    from server.data_folder import JWT_SECRET_FILE
    from server.http_dev_token import dev_signing_secret

    (settings.data_dir / JWT_SECRET_FILE).write_text("another-secret-" + "y" * 40 + "\n")
    assert dev_signing_secret(settings) is None
    assert dev_signing_secret(with_dev_sign_in(settings.with_(data_dir=settings.data_dir / "d")))
    dev = with_dev_sign_in(settings.with_(data_dir=settings.data_dir / "e"))
    assert dev_signing_secret(dev.with_(jwks_url="https://id.example/jwks")) is None


class Checked:
    """An HTTP client whose every response must match the OpenAPI document."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.checked: set[tuple[str, str, int]] = set()

    async def __call__(
        self, method: str, template: str, status: int, *, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        url = template.format(**kw.pop("params", {}))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.request(method, url, headers=headers, **kw)
        assert response.status_code == status, (method, url, response.text)
        documented = committed(OPENAPI_PATH)["paths"][template][method.lower()]["responses"]
        assert str(status) in documented, (method, template, status)
        if "content" not in documented[str(status)]:
            assert response.content == b"", (method, url)
            self.checked.add((method, template, status))
            return response
        media_type, schema = response_schema(template, method, status)
        if media_type == "application/json":
            assert response.headers["content-type"].startswith("application/json"), url
            found = problems(committed(OPENAPI_PATH), schema, response.json())
            assert found == [], (method, url, found)
        self.checked.add((method, template, status))
        return response


async def test_real_responses_match_the_document(dev_server: RunningServer) -> None:
    server = dev_server
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        call = Checked(http)
        # Development sign-in: a candidate token for a name, nothing for a bad name.
        await call("GET", "/v1/dev/token", 200)
        minted = await call("POST", "/v1/dev/token", 201, json={"user": "ada.l"})
        token = minted.json()["token"]
        await call("POST", "/v1/dev/token", 400, json={"user": "<script>"})
        await call("POST", "/v1/dev/token", 400, content=b"not json")

        # A whole interview with that token, over the real socket.
        async with open_client(server.ws_url(), token=token, auth="frame") as c:
            assert c.welcome is not None and c.welcome.user_id == "ada.l"
            await c.send(SessionStart(id=new_id(), track="coding", question_id="two-sum"))
            frames = await read_until(c, turn_ended(2))
            session_id = next(f for f in frames if isinstance(f, SessionStarted)).session_id
            await c.request(CandidateMessage(id=new_id(), text="A hash map, one pass."))
            source = "def two_sum(nums, target):\n    return []\n"
            await c.request(CodeUpdate(id=new_id(), language="python", source=source))
            await c.request(CodeRun(id=new_id()))
            await c.request(SessionEnd(id=new_id()))
            await read_until(c, lambda f: isinstance(f, ReportReady), timeout=30)

        sid = {"params": {"session_id": session_id}}
        await call("GET", "/healthz", 200)
        await call("GET", "/readyz", 200)
        questions = (await call("GET", "/v1/questions", 200, token=token)).json()
        assert {"coding", "system_design", "behavioral"} <= {
            q["track"] for q in questions["questions"]
        }
        assert "python" in questions["languages"]
        two_sum = next(q for q in questions["questions"] if q["id"] == "two-sum")
        assert "def two_sum" in two_sum["starter_code"]["python"]
        assert not {"hints", "visible_tests", "reference_solution"} & set(two_sum)
        await call("GET", "/v1/questions", 401)
        listed = (await call("GET", "/v1/sessions", 200, token=token)).json()
        assert [s["id"] for s in listed["sessions"]] == [session_id]
        await call("GET", "/v1/sessions", 401)
        detail = (await call("GET", "/v1/sessions/{session_id}", 200, token=token, **sid)).json()
        assert detail["score_events"], "no score events to check"
        await call(
            "GET", "/v1/sessions/{session_id}", 404, token=token, params={"session_id": "nope"}
        )
        await call("GET", "/v1/sessions/{session_id}/report", 200, token=token, **sid)
        other = server.token("someone-else")
        await call("GET", "/v1/sessions/{session_id}/report", 404, token=other, **sid)
        admin = server.token("root", admin=True)
        await call("GET", "/v1/admin/sessions", 200, token=admin)
        await call("GET", "/v1/admin/sessions", 403, token=token)
        response = await http.get(
            "/v1/admin/sessions?limit=0", headers={"Authorization": f"Bearer {admin}"}
        )
        assert response.status_code == 400
        assert (
            problems(
                committed(OPENAPI_PATH),
                response_schema("/v1/admin/sessions", "GET", 400)[1],
                response.json(),
            )
            == []
        )
        me = (await call("GET", "/v1/me", 200, token=token)).json()
        assert me["user_id"] == "ada.l" and me["quota"]["used"] == 1
        progress = (await call("GET", "/v1/me/progress", 200, token=token)).json()
        assert progress["sessions"] == 1
        grants = {"params": {"user_id": "ada.l"}}
        granted = await call(
            "POST", "/v1/admin/users/{user_id}/grants", 200, token=admin,
            json={"interviews": 2, "reason": "support"}, **grants,
        )  # fmt: skip
        assert granted.json()["quota"]["granted"] == 2
        await call(
            "POST", "/v1/admin/users/{user_id}/grants", 400, token=admin,
            json={"interviews": 0}, **grants,
        )  # fmt: skip
        await call(
            "POST", "/v1/admin/users/{user_id}/grants", 403, token=token,
            json={"interviews": 1}, **grants,
        )  # fmt: skip
        await call("POST", "/v1/me/push-tokens", 201, token=token, json={"token": "t1"})
        await call("POST", "/v1/me/push-tokens", 400, token=token, json={"token": ""})
        await call("GET", "/v1/me/export", 200, token=token)
        await call("GET", "/v1/asyncapi.json", 200)
        served = await call("GET", "/v1/openapi.json", 200)
        assert served.text == OPENAPI_PATH.read_text(encoding="utf-8")
        await call("POST", "/v1/webhooks/revenuecat", 503, json={})
        for page in ("/", "/admin", "/metrics"):
            await call("GET", page, 200)
        await call("GET", "/app/{asset}", 200, params={"asset": "candidate.js"})
        await call("GET", "/app/{asset}", 404, params={"asset": "..%2Fapp.py"})
        await call("GET", "/admin/{asset}", 200, params={"asset": "inspector.js"})
        await call("DELETE", "/v1/me", 204, token=token)

    # Every JSON operation with a success response was exercised at least once.
    documented = {
        (method.upper(), path)
        for path, ops in committed(OPENAPI_PATH)["paths"].items()
        for method, op in ops.items()
        if any(s.startswith("2") for s in op["responses"])
    }
    exercised = {(m, p) for m, p, s in call.checked if 200 <= s < 300}
    assert documented - exercised <= {("POST", "/v1/webhooks/revenuecat")}, documented - exercised
