"""``POST /v1/webhooks/revenuecat`` over real HTTP against a real server and Postgres: the
shared secret, hostile bodies, idempotency by event id and out-of-order events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server.config import Settings
from tests.support import RunningServer, later_token, running_server

SECRET = "rc-" + "s" * 40
URL = "/v1/webhooks/revenuecat"


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, RunningServer]]:
    async with (
        running_server(settings.with_(revenuecat_webhook_secret=SECRET)) as server,
        httpx.AsyncClient(base_url=server.http_url, headers={"Authorization": SECRET}) as client,
    ):
        yield client, server


def webhook(user: str | None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "type": "INITIAL_PURCHASE",
        "product_id": "mentara_pro_monthly",
        "entitlement_ids": ["pro"],
        "event_timestamp_ms": 1_700_000_000_000,
        "expiration_at_ms": 1_702_592_000_000,
        "environment": "PRODUCTION",
        "store": "APP_STORE",
        "period_type": "NORMAL",  # fields the server does not use are fine
        "subscriber_attributes": {},
        **fields,
    }
    if user is not None:
        event["app_user_id"] = user
    return {"api_version": "1.0", "event": event}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    return dict(error)


async def subscription(
    client: httpx.AsyncClient, server: RunningServer, user: str, *, later: bool = False
) -> dict[str, Any]:
    token = later_token(user) if later else server.token(user)
    response = await client.get("/v1/me/export", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    return dict(response.json())


async def test_unconfigured_webhook_answers_503(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        response = await client.post(URL, json=webhook("u1"), headers={"Authorization": "x"})
    assert_error(response, 503, "internal")
    assert "not configured" in response.json()["error"]["message"]


async def test_the_secret_is_required(
    http: tuple[httpx.AsyncClient, RunningServer],
) -> None:
    client, _ = http
    body = webhook("u1")
    for headers in (
        {"Authorization": ""},
        {"Authorization": "wrong"},
        {"Authorization": SECRET + "x"},
    ):
        assert_error(await client.post(URL, json=body, headers=headers), 401, "unauthorized")
    async with httpx.AsyncClient(base_url=client.base_url) as anonymous:
        assert_error(await anonymous.post(URL, json=body), 401, "unauthorized")
    bearer = await client.post(URL, json=body, headers={"Authorization": f"Bearer {SECRET}"})
    assert bearer.status_code == 200 and bearer.json()["status"] == "applied"


async def test_hostile_bodies_get_json_errors(
    http: tuple[httpx.AsyncClient, RunningServer],
) -> None:
    client, server = http
    user = f"hostile-{uuid.uuid4().hex[:6]}"
    assert_error(await client.post(URL, content=b"{not json"), 400, "invalid_field")
    assert_error(await client.post(URL, content=b"[1, 2]"), 400, "invalid_field")
    assert_error(await client.post(URL, content=b""), 400, "invalid_field")
    assert_error(await client.post(URL, json={"api_version": "1.0"}), 400, "invalid_field")
    missing_id = webhook(user)
    del missing_id["event"]["id"]
    error = assert_error(await client.post(URL, json=missing_id), 400, "invalid_field")
    assert "id" in error["message"]
    wrong_type = webhook(user, event_timestamp_ms="yesterday")
    assert_error(await client.post(URL, json=wrong_type), 400, "invalid_field")
    no_user = webhook(None)
    error = assert_error(await client.post(URL, json=no_user), 400, "invalid_field")
    assert "app_user_id" in error["message"]
    assert_error(await client.post(URL, json=webhook("u" * 300)), 400, "invalid_field")
    assert_error(
        await client.post(URL, json=webhook(user, entitlement_ids=[1, 2])), 400, "invalid_field"
    )

    # Too large: refused from Content-Length, and while reading a chunked body.
    huge = b'{"event": {"id": "' + b"x" * 70_000 + b'"}}'
    assert_error(await client.post(URL, content=huge), 413, "too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 8192

    assert_error(await client.post(URL, content=chunks()), 413, "too_large")
    # Nothing above was stored.
    client_user = await subscription(client, server, user)
    assert client_user["subscription"] is None and client_user["subscription_events"] == []


async def test_idempotent_and_out_of_order_events_never_regress(
    http: tuple[httpx.AsyncClient, RunningServer],
) -> None:
    client, server = http
    user = f"sub-{uuid.uuid4().hex[:6]}"
    t0 = 1_700_000_000_000

    purchase = webhook(user, event_timestamp_ms=t0)
    first = await client.post(URL, json=purchase)
    assert first.json() == {"status": "applied", "event_id": purchase["event"]["id"]}
    again = await client.post(URL, json=purchase)  # RevenueCat redelivers
    assert again.status_code == 200 and again.json()["status"] == "duplicate"

    renewal = webhook(
        user, type="RENEWAL", event_timestamp_ms=t0 + 30_000, expiration_at_ms=1_705_000_000_000
    )
    assert (await client.post(URL, json=renewal)).json()["status"] == "applied"
    # A cancellation from before the renewal arrives late: recorded, state unchanged.
    late = webhook(user, type="CANCELLATION", event_timestamp_ms=t0 + 10_000)
    assert (await client.post(URL, json=late)).json()["status"] == "stale"
    data = await subscription(client, server, user)
    assert data["subscription"]["status"] == "active"
    assert data["subscription"]["last_event_type"] == "RENEWAL"
    assert data["subscription"]["expiration_at_ms"] == 1_705_000_000_000

    billing = webhook(user, type="BILLING_ISSUE", event_timestamp_ms=t0 + 40_000)
    assert (await client.post(URL, json=billing)).json()["status"] == "applied"
    expired = webhook(
        user, type="EXPIRATION", event_timestamp_ms=t0 + 50_000, entitlement_ids=None,
        entitlement_id="pro",
    )  # fmt: skip
    assert (await client.post(URL, json=expired)).json()["status"] == "applied"
    # Types that say nothing about access are accepted, not applied.
    test_event = webhook(None, type="TEST", event_timestamp_ms=t0 + 60_000)
    assert (await client.post(URL, json=test_event)).json()["status"] == "ignored"
    transfer = webhook(user, type="TRANSFER", event_timestamp_ms=t0 + 70_000)
    assert (await client.post(URL, json=transfer)).json()["status"] == "ignored"

    data = await subscription(client, server, user)
    assert data["subscription"]["status"] == "expired"
    assert data["subscription"]["entitlement_ids"] == ["pro"]
    assert data["subscription"]["last_event_id"] == expired["event"]["id"]
    assert [e["type"] for e in data["subscription_events"]] == [
        "INITIAL_PURCHASE",
        "CANCELLATION",
        "RENEWAL",
        "BILLING_ISSUE",
        "EXPIRATION",
        "TRANSFER",
    ]

    # Account deletion removes the subscription state and its events.
    deleted = await client.delete(
        "/v1/me", headers={"Authorization": f"Bearer {server.token(user)}"}
    )
    assert deleted.status_code == 204
    data = await subscription(client, server, user, later=True)
    assert data["subscription"] is None and data["subscription_events"] == []
