"""The quota across real ``mentara serve`` processes on one Postgres and Redis: a free user's
fourth ``session.start`` of the month is ``quota_exceeded`` on either worker; after a purchase
webhook (received by either) the same user starts on the other; devices racing for the last
interview on the two workers get one session between them."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from tests.plans_support import RC_SECRET, me, post_rc, rc_body, try_start
from tests.support import Services, serve_env, serving, wait_ready

FREE = 3


async def test_the_free_quota_holds_across_two_serve_processes(
    services: Services, tmp_path: Path
) -> None:
    env = serve_env(
        services,
        tmp_path,
        f"qc{uuid.uuid4().hex[:8]}:",
        MENTARA_FREE_INTERVIEWS_PER_MONTH=str(FREE),
        MENTARA_REVENUECAT_WEBHOOK_SECRET=RC_SECRET,
        MENTARA_OFFLINE_TOKENS_PER_S="200",
    )
    with serving(env=env) as (_a, port_a), serving(env=env) as (_b, port_b):
        assert (await wait_ready(port_a)).status_code == 200
        assert (await wait_ready(port_b)).status_code == 200
        ws = [f"ws://127.0.0.1:{port}/v1/interview" for port in (port_a, port_b)]
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_a}") as http_a,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}") as http_b,
        ):
            gil = f"gil-{uuid.uuid4().hex[:8]}"
            assert [await try_start(ws[i % 2], gil) for i in range(FREE)] == ["started"] * FREE
            for url in ws:  # the fourth, on either worker
                refused = await try_start(url, gil)
                assert refused.startswith("quota_exceeded: "), refused
                assert "resets at" in refused and "paid plan" in refused
            for http in (http_a, http_b):
                state = await me(http, gil)
                assert (state["plan"], state["quota"]["used"], state["quota"]["left"]) == (
                    "free",
                    FREE,
                    0,
                )

            # The purchase reaches worker B; the user starts on worker A.
            assert await post_rc(http_b, rc_body(gil)) == "applied"
            assert await try_start(ws[0], gil) == "started"
            assert (await me(http_a, gil))["plan"] == "paid"

            # Two devices, one on each worker, racing for a user's last interview.
            for _ in range(3):
                racer = f"racer-{uuid.uuid4().hex[:8]}"
                for i in range(FREE - 1):
                    assert await try_start(ws[i % 2], racer) == "started"
                results = await asyncio.gather(try_start(ws[0], racer), try_start(ws[1], racer))
                assert sorted(r.split(":")[0] for r in results) == ["quota_exceeded", "started"]
                quota = (await me(http_b, racer))["quota"]
                assert (quota["used"], quota["left"]) == (FREE, 0)
