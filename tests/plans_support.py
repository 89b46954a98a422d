"""Helpers for the plan and quota tests: RevenueCat webhooks as RevenueCat sends them, the
caller's ``GET /v1/me``, and ``session.start`` attempts that report how they were answered."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from protocol.client import ServerErrorReply, open_client
from protocol.messages import SessionStart
from server.dev_tokens import mint_dev_token
from tests.support import TEST_SECRET

RC_SECRET = "rc-plans-" + "k" * 24
DAY_MS = 86_400_000


def now_ms() -> int:
    return int(time.time() * 1000)


def rc_body(user: str | None, type_: str = "INITIAL_PURCHASE", **fields: Any) -> dict[str, Any]:
    """A webhook body in RevenueCat's format (fields the server ignores included)."""
    event: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "type": type_,
        "product_id": "mentara_pro_monthly",
        "entitlement_ids": ["pro"],
        "entitlement_id": None,
        "event_timestamp_ms": now_ms(),
        "purchased_at_ms": now_ms(),
        "expiration_at_ms": now_ms() + 30 * DAY_MS,
        "environment": "PRODUCTION",
        "store": "APP_STORE",
        "period_type": "NORMAL",
        "aliases": [user] if user else [],
        "subscriber_attributes": {},
        **fields,
    }
    if user is not None:
        event["app_user_id"] = user
    return {"api_version": "1.0", "event": event}


async def post_rc(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """POST the webhook; the outcome RevenueCat would see (``applied``, ``stale``, ...)."""
    response = await http.post(
        "/v1/webhooks/revenuecat", json=body, headers={"Authorization": RC_SECRET}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def token(user: str, *, admin: bool = False) -> str:
    return mint_dev_token(TEST_SECRET, user, admin=admin, ttl_s=3600)


async def me(http: httpx.AsyncClient, user: str) -> dict[str, Any]:
    response = await http.get("/v1/me", headers={"Authorization": f"Bearer {token(user)}"})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert isinstance(data, dict)
    return data


async def try_start(ws_url: str, user: str, start_id: str | None = None) -> str:
    """One ``session.start`` on a fresh socket: ``started:<session id>``, or the error code
    and message (``quota_exceeded: ...``)."""
    async with open_client(ws_url, token=token(user)) as client:
        try:
            await client.request(
                SessionStart(id=start_id or uuid.uuid4().hex, track="coding"), timeout=20
            )
        except ServerErrorReply as exc:
            return f"{exc.error.code.value}: {exc.error.message}"
        return "started"
