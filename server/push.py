"""Push notifications for ready reports: an outbox in Postgres, drained by a sender.

Contract:
- :func:`enqueue_report_ready` adds one outbox row per device the user registered, in the
  caller's transaction (the report and its notifications are written together).
- :class:`OutboxDrainer` takes due rows in batches (``FOR UPDATE SKIP LOCKED``, so any number
  of workers can drain together), hands each to a :class:`PushSender`, marks it sent, or
  schedules a retry with exponential backoff (capped; gives up after ``max_attempts``).
- :class:`WebhookPushSender` POSTs the notification as JSON to a URL (the production sender
  relays to APNs/FCM); a non-2xx answer or a transport error is a failed attempt.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import httpx

log = logging.getLogger("mentara.push")


@dataclass(frozen=True)
class PushMessage:
    user_id: str
    token: str
    platform: str
    payload: dict[str, Any]


class PushSender(Protocol):
    async def send(self, message: PushMessage) -> None:
        """Deliver one notification; raise on failure (it will be retried)."""
        ...


class WebhookPushSender:
    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self._http = httpx.AsyncClient(timeout=timeout_s)

    async def send(self, message: PushMessage) -> None:
        response = await self._http.post(
            self.url,
            json={
                "user_id": message.user_id,
                "token": message.token,
                "platform": message.platform,
                "payload": message.payload,
            },
        )
        response.raise_for_status()

    async def aclose(self) -> None:
        await self._http.aclose()


async def enqueue_report_ready(
    conn: asyncpg.Connection, user_id: str, payload: dict[str, Any]
) -> int:
    """Queue the notification for each of the user's devices; returns how many."""
    result = await conn.execute(
        """INSERT INTO push_outbox (user_id, token, platform, payload)
           SELECT user_id, token, platform, $2::jsonb FROM push_tokens WHERE user_id = $1""",
        user_id,
        json.dumps(payload),
    )
    return int(result.split()[-1])


class OutboxDrainer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        sender: PushSender,
        *,
        batch: int = 50,
        interval_s: float = 1.0,
        max_attempts: int = 8,
        backoff_max_s: float = 600.0,
    ) -> None:
        self.pool = pool
        self.sender = sender
        self.batch = batch
        self.interval_s = interval_s
        self.max_attempts = max_attempts
        self.backoff_max_s = backoff_max_s
        self.sent = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="push-outbox")

    async def _run(self) -> None:
        while True:
            try:
                if await self.drain_once() == 0:
                    await asyncio.sleep(self.interval_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("push outbox drain failed", exc_info=True)
                await asyncio.sleep(self.interval_s)

    async def drain_once(self) -> int:
        """Send the due rows of one batch; return how many were attempted."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, user_id, token, platform, payload::text AS payload, attempts
                   FROM push_outbox WHERE sent_at IS NULL AND next_try_at <= now()
                     AND attempts < $1
                   ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED""",
                self.max_attempts,
                self.batch,
            )
            for row in rows:
                message = PushMessage(
                    row["user_id"], row["token"], row["platform"], json.loads(row["payload"])
                )
                try:
                    await self.sender.send(message)
                except Exception as exc:
                    self.failed += 1
                    delay = min(self.backoff_max_s, 2.0 ** (row["attempts"] + 1))
                    await conn.execute(
                        """UPDATE push_outbox SET attempts = attempts + 1, last_error = $2,
                               next_try_at = now() + make_interval(secs => $3) WHERE id = $1""",
                        row["id"],
                        f"{type(exc).__name__}: {exc}"[:500],
                        delay,
                    )
                else:
                    self.sent += 1
                    await conn.execute(
                        "UPDATE push_outbox SET sent_at = now(), attempts = attempts + 1 WHERE id = $1",
                        row["id"],
                    )
            return len(rows)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
