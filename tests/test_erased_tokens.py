"""Tokens issued before a user's ``DELETE /v1/me`` are refused, on every worker (issue #10).

The attack: keep a token (or an open socket) from before the deletion and go on using the
account. Two real servers share Postgres and Redis; the deletion is served by one."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest

from protocol.client import (
    AuthMode,
    ConnectionClosedByServer,
    InterviewClient,
    ServerErrorReply,
    open_client,
)
from protocol.errors import CloseCode
from protocol.messages import SessionStart
from server.config import Settings
from tests.support import TEST_SECRET, later_token, running_server

pytestmark = pytest.mark.timeout(120)


def token_without_iat(user: str) -> str:
    return jwt.encode({"sub": user, "exp": int(time.time()) + 600}, TEST_SECRET, "HS256")


async def refused_socket(url: str, token: str, auth: AuthMode = "header") -> None:
    """The socket gets ``error{unauthorized}`` instead of ``welcome`` (then close 4001)."""
    with pytest.raises(ServerErrorReply) as caught:
        client = await InterviewClient.connect(url, token=token, auth=auth)
        await client.close()
    assert caught.value.error.code == "unauthorized"
    assert "deleted" in caught.value.error.message


async def test_tokens_from_before_the_deletion_are_refused_everywhere(settings: Settings) -> None:
    user = f"gone-{uuid.uuid4().hex[:6]}"
    async with running_server(settings) as a, running_server(settings) as b:
        old = a.token(user)
        no_iat = token_without_iat(user)
        async with (
            httpx.AsyncClient(base_url=a.http_url) as http_a,
            httpx.AsyncClient(base_url=b.http_url) as http_b,
            open_client(b.ws_url(), token=old) as idle,  # authenticated before the deletion
        ):
            for token in (old, no_iat):  # both accepted before
                listed = await http_b.get(
                    "/v1/sessions", headers={"Authorization": f"Bearer {token}"}
                )
                assert listed.status_code == 200
            deleted = await http_a.delete("/v1/me", headers={"Authorization": f"Bearer {old}"})
            assert deleted.status_code == 204

            for http in (http_a, http_b):
                for token in (old, no_iat):
                    answer = await http.get(
                        "/v1/sessions", headers={"Authorization": f"Bearer {token}"}
                    )
                    assert answer.status_code == 401, answer.text
                    assert answer.json()["error"]["code"] == "unauthorized"
            for server in (a, b):
                await refused_socket(server.ws_url(), old)
                await refused_socket(server.ws_url(), old, auth="frame")
                await refused_socket(server.ws_url(), no_iat)
            # A socket that authenticated before the deletion starts no session.
            with pytest.raises(ServerErrorReply) as caught:
                await idle.request(SessionStart(id="s", track="behavioral"))
            assert caught.value.error.code == "unauthorized"
            with pytest.raises(ConnectionClosedByServer) as closed:
                await idle.recv()
            assert closed.value.code == CloseCode.UNAUTHENTICATED

            # A token issued afterwards works: the user may come back.
            fresh = later_token(user)
            answer = await http_b.get("/v1/sessions", headers={"Authorization": f"Bearer {fresh}"})
            assert answer.status_code == 200
            async with open_client(a.ws_url(), token=fresh) as back:
                await back.request(SessionStart(id="s", track="behavioral"))
            # Other users' tokens, with or without iat, are untouched.
            other = token_without_iat(user + "-other")
            answer = await http_a.get("/v1/sessions", headers={"Authorization": f"Bearer {other}"})
            assert answer.status_code == 200
