"""Plans and the interview quota against real servers, Postgres and Redis: real RevenueCat
webhook sequences decide the plan ``GET /v1/me`` shows; ``session.start`` is refused with
``quota_exceeded`` past the plan's interviews (nothing created), never counts a repeated
start twice, gives one session to two devices racing for the last interview on two servers,
and lets a user start again after a purchase or an admin grant."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from server.config import Settings
from server.plans import period_of
from tests.plans_support import (
    DAY_MS,
    RC_SECRET,
    me,
    now_ms,
    post_rc,
    rc_body,
    token,
    try_start,
)
from tests.support import RunningServer, running_server

FREE = 3


@pytest.fixture
def plans(settings: Settings) -> Settings:
    """The product's free plan (3 a month), a fast offline interviewer, the webhook on."""
    return settings.with_(
        free_interviews_per_month=FREE,
        revenuecat_webhook_secret=RC_SECRET,
        offline_tokens_per_s=400.0,
        coalesce_ms=5.0,
    )


@pytest.fixture
async def served(plans: Settings) -> AsyncIterator[tuple[RunningServer, httpx.AsyncClient]]:
    async with (
        running_server(plans) as server,
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
        yield server, http


def user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def sessions_of(database_url: str, who: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1", who))
    finally:
        await conn.close()


async def test_webhook_sequences_decide_the_plan(
    served: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    _, http = served
    ann = user("ann")
    fresh = await me(http, ann)
    assert fresh["plan"] == "free" and fresh["entitlement"] is None
    assert fresh["push_tokens"] == 0
    assert fresh["quota"]["limit"] == FREE and fresh["quota"]["left"] == FREE

    t0 = now_ms()
    purchase = rc_body(ann, event_timestamp_ms=t0, expiration_at_ms=t0 + 30 * DAY_MS)
    assert await post_rc(http, purchase) == "applied"
    paid = await me(http, ann)
    assert paid["plan"] == "paid"
    assert paid["entitlement"]["id"] == "pro" and paid["entitlement"]["active"] is True
    assert paid["entitlement"]["expires_at_ms"] == t0 + 30 * DAY_MS
    assert paid["entitlement"]["will_renew"] is True
    assert paid["quota"]["limit"] is None and paid["quota"]["left"] is None  # unlimited

    renewal = rc_body(
        ann, "RENEWAL", event_timestamp_ms=t0 + 1000, expiration_at_ms=t0 + 60 * DAY_MS
    )
    assert await post_rc(http, renewal) == "applied"
    assert (await me(http, ann))["entitlement"]["expires_at_ms"] == t0 + 60 * DAY_MS

    # A billing issue keeps access through the grace period RevenueCat reports as the expiry.
    billing = rc_body(
        ann, "BILLING_ISSUE", event_timestamp_ms=t0 + 2000, expiration_at_ms=t0 + 3 * DAY_MS
    )
    assert await post_rc(http, billing) == "applied"
    state = await me(http, ann)
    assert state["plan"] == "paid" and state["entitlement"]["status"] == "billing_issue"

    # Cancelled (auto-renew off): access until the expiry, no renewal.
    cancel = rc_body(
        ann, "CANCELLATION", event_timestamp_ms=t0 + 3000, expiration_at_ms=t0 + 3 * DAY_MS,
        cancel_reason="UNSUBSCRIBE",
    )  # fmt: skip
    assert await post_rc(http, cancel) == "applied"
    state = await me(http, ann)
    assert state["plan"] == "paid" and state["entitlement"]["will_renew"] is False

    # RevenueCat redelivers the purchase, and an older renewal arrives late: no roll back.
    assert await post_rc(http, purchase) == "duplicate"
    late = rc_body(ann, "RENEWAL", event_timestamp_ms=t0 + 500, expiration_at_ms=t0 + 90 * DAY_MS)
    assert await post_rc(http, late) == "stale"
    state = await me(http, ann)
    assert state["entitlement"]["status"] == "cancelled"
    assert state["entitlement"]["expires_at_ms"] == t0 + 3 * DAY_MS

    expiration = rc_body(
        ann, "EXPIRATION", event_timestamp_ms=t0 + 4000, expiration_at_ms=t0 + 4000,
        entitlement_ids=None, entitlement_id="pro",
    )  # fmt: skip
    assert await post_rc(http, expiration) == "applied"
    state = await me(http, ann)
    assert state["plan"] == "free" and state["entitlement"]["active"] is False
    assert state["quota"]["limit"] == FREE


async def test_refund_ends_access_at_once_and_cancellation_at_expiry(
    served: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    _, http = served
    bob, cat = user("bob"), user("cat")
    t0 = now_ms()
    assert await post_rc(http, rc_body(bob, event_timestamp_ms=t0)) == "applied"
    refund = rc_body(
        bob, "CANCELLATION", event_timestamp_ms=t0 + 1000, cancel_reason="CUSTOMER_SUPPORT",
        expiration_at_ms=t0 + 30 * DAY_MS,  # RevenueCat may still report the period's end
    )  # fmt: skip
    assert await post_rc(http, refund) == "applied"
    state = await me(http, bob)
    assert state["plan"] == "free" and state["entitlement"]["status"] == "refunded"

    # Cancelled with a second and a half left: paid now, free once the expiry has passed.
    assert await post_rc(http, rc_body(cat, event_timestamp_ms=t0)) == "applied"
    cancel = rc_body(
        cat, "CANCELLATION", event_timestamp_ms=t0 + 1000, expiration_at_ms=now_ms() + 1500,
        cancel_reason="UNSUBSCRIBE",
    )  # fmt: skip
    assert await post_rc(http, cancel) == "applied"
    assert (await me(http, cat))["plan"] == "paid"
    await asyncio.sleep(2.0)
    assert (await me(http, cat))["plan"] == "free"


async def test_a_transfer_moves_the_entitlement_to_the_new_user(
    served: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    _, http = served
    old, new = user("old"), user("new")
    t0 = now_ms()
    assert await post_rc(http, rc_body(old, event_timestamp_ms=t0)) == "applied"
    transfer = rc_body(
        None, "TRANSFER", event_timestamp_ms=t0 + 1000, transferred_from=[old],
        transferred_to=[new], entitlement_ids=["pro"],
    )  # fmt: skip
    for bad in ({"transferred_to": ["x\u0000"]}, {"transferred_from": ["y" * 300]}):
        response = await http.post(
            "/v1/webhooks/revenuecat",
            json={"api_version": "1.0", "event": {**transfer["event"], **bad}},
            headers={"Authorization": RC_SECRET},
        )
        assert response.status_code == 400 and "transferred" in response.text, response.text
    assert await post_rc(http, transfer) == "applied"
    assert await post_rc(http, transfer) == "duplicate"
    before, after = await me(http, old), await me(http, new)
    assert before["plan"] == "free" and before["entitlement"]["status"] == "transferred"
    assert after["plan"] == "paid" and after["entitlement"]["status"] == "active"
    # The old user's purchase, redelivered late, does not take it back.
    late = rc_body(old, "RENEWAL", event_timestamp_ms=t0 + 500)
    assert await post_rc(http, late) == "stale"
    assert (await me(http, old))["plan"] == "free"


async def test_a_free_users_fourth_interview_is_refused_until_a_purchase(
    served: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = served
    dan = user("dan")
    for i in range(FREE):
        assert await try_start(server.ws_url(), dan, f"start-{i}") == "started"
    # The same start id again re-attaches to its session: not counted, not refused.
    assert await try_start(server.ws_url(), dan, "start-0") == "started"
    state = await me(http, dan)
    assert (state["quota"]["used"], state["quota"]["left"]) == (FREE, 0)

    refused = await try_start(server.ws_url(), dan)
    resets = period_of(dt.datetime.now(dt.UTC)).to_json()["resets_at"]
    assert refused.startswith("quota_exceeded: "), refused
    assert resets in refused and "paid plan" in refused and "'pro'" in refused
    assert await sessions_of(server.settings.database_url or "", dan) == FREE  # nothing created
    assert (await me(http, dan))["quota"]["used"] == FREE

    assert await post_rc(http, rc_body(dan)) == "applied"
    assert await try_start(server.ws_url(), dan) == "started"
    state = await me(http, dan)
    assert state["plan"] == "paid" and state["quota"]["used"] == FREE + 1


async def test_a_paid_fair_use_cap_and_an_admin_grant(plans: Settings) -> None:
    async with (
        running_server(
            plans.with_(free_interviews_per_month=1, paid_interviews_per_month=2)
        ) as server,
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
        eve, fay = user("eve"), user("fay")
        assert await post_rc(http, rc_body(eve)) == "applied"
        assert [await try_start(server.ws_url(), eve) for _ in range(2)] == ["started"] * 2
        refused = await try_start(server.ws_url(), eve)
        assert refused.startswith("quota_exceeded: ") and "fair use" in refused

        assert await try_start(server.ws_url(), fay) == "started"
        assert (await try_start(server.ws_url(), fay)).startswith("quota_exceeded: ")
        url = f"/v1/admin/users/{fay}/grants"
        body = {"interviews": 2, "reason": "support ticket 42"}
        as_fay = {"Authorization": f"Bearer {token(fay)}"}
        as_admin = {"Authorization": f"Bearer {token('ops-1', admin=True)}"}
        assert (await http.post(url, json=body)).status_code == 401
        assert (await http.post(url, json=body, headers=as_fay)).status_code == 403
        for bad in ({"interviews": 0}, {"interviews": 5000}, {"interviews": "2"}, {"x": 1}):
            response = await http.post(url, json=bad, headers=as_admin)
            assert response.status_code == 400, bad
            assert response.json()["error"]["code"] == "invalid_field"
        hostile = [
            (url, b'{"interviews": 1, "reason": "\\u0000"}'),
            (url, b'{"interviews": 1, "reason": "\\ud800"}'),
            (url, b"not json"),
            ("/v1/admin/users/%00/grants", b'{"interviews": 1}'),
            (f"/v1/admin/users/{'u' * 300}/grants", b'{"interviews": 1}'),
        ]
        for where, raw in hostile:
            response = await http.post(where, content=raw, headers=as_admin)
            assert response.status_code == 400, (where, raw, response.text)
            assert response.json()["error"]["code"] == "invalid_field"
        granted = await http.post(url, json=body, headers=as_admin)
        assert granted.status_code == 200, granted.text
        quota = granted.json()["quota"]
        assert (quota["limit"], quota["granted"], quota["used"], quota["left"]) == (1, 2, 1, 2)
        third = [await try_start(server.ws_url(), fay) for _ in range(3)]
        assert third[:2] == ["started"] * 2
        assert third[2].startswith("quota_exceeded: ") and "(and 2 granted)" in third[2]
        assert (await me(http, fay))["quota"]["left"] == 0
        conn = await asyncpg.connect(server.settings.database_url or "")
        try:
            row = await conn.fetchrow(
                "SELECT interviews, granted_by, reason FROM quota_grants WHERE user_id = $1", fay
            )
        finally:
            await conn.close()
        assert dict(row or {}) == {
            "interviews": 2,
            "granted_by": "ops-1",
            "reason": "support ticket 42",
        }


async def test_two_devices_racing_for_the_last_interview_on_two_servers_get_one(
    plans: Settings,
) -> None:
    """Two servers on one Postgres and Redis: per user, two devices (one on each server)
    send ``session.start`` at once with one interview left; exactly one starts."""
    async with (
        running_server(plans) as a,
        running_server(plans) as b,  # the same database and Redis prefix: one cluster
        httpx.AsyncClient(base_url=a.http_url) as http,
    ):
        for _ in range(4):
            racer = user("racer")
            for i in range(FREE - 1):
                assert await try_start((a, b)[i % 2].ws_url(), racer) == "started"
            results = await asyncio.gather(
                try_start(a.ws_url(), racer), try_start(b.ws_url(), racer)
            )
            assert sorted(r.split(":")[0] for r in results) == ["quota_exceeded", "started"]
            assert await sessions_of(a.settings.database_url or "", racer) == FREE
            quota = (await me(http, racer))["quota"]
            assert (quota["used"], quota["left"]) == (FREE, 0)
