"""The interview quota: how many interviews a user may start this period, checked and counted
in one atomic step.

Postgres is the truth and the lock. :meth:`Quota.admit` runs inside the transaction that
inserts the new session row (``SessionStore.create_session``): one conditional ``UPDATE`` of
the user's ``interview_usage`` row for the period adds 1 only while ``used < limit +
granted``. Concurrent starts of one user, on any worker, queue on that row lock and each
sees the count the one before it committed, so two devices racing for the last interview get
one session. A refusal raises :class:`QuotaExceeded`, which rolls the session row back:
nothing is created. A repeated ``session.start`` ``id`` finds its session before any of this
runs, so it never counts twice; an interview counts once it started (the session row exists),
however it ends.

The admin may add interviews for the current period (:meth:`Quota.grant`), each grant
recorded in ``quota_grants`` and logged. Both tables are the user's data (exported, erased:
``server.account_data``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from protocol.errors import ErrorCode
from server.errors import MentaraError
from server.plans import Period, PlanRules, PlanState, period_of, plan_of

__all__ = ["Quota", "QuotaExceeded", "Usage"]

log = logging.getLogger("mentara.quota")

#: Most interviews one admin grant may add.
MAX_GRANT = 1000


class QuotaExceeded(MentaraError):
    """``session.start`` over the plan's interviews for the period: nothing was created."""

    code = ErrorCode.QUOTA_EXCEEDED


@dataclass(frozen=True, slots=True)
class Usage:
    """A user's plan and interviews in one period. ``limit`` None: unlimited."""

    state: PlanState
    period: Period
    used: int
    granted: int
    limit: int | None

    @property
    def left(self) -> int | None:
        if self.limit is None:
            return None
        return max(0, self.limit + self.granted - self.used)

    def account_json(self) -> dict[str, Any]:
        """``{plan, entitlement, quota}`` as ``GET /v1/me`` answers them."""
        entitlement = self.state.entitlement
        return {
            "plan": self.state.plan,
            "entitlement": None if entitlement is None else entitlement.to_json(),
            "quota": self.quota_json(),
        }

    def quota_json(self) -> dict[str, Any]:
        return {
            "period": "month",
            **self.period.to_json(),
            "limit": self.limit,
            "granted": self.granted,
            "used": self.used,
            "left": self.left,
        }


def _user_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


class Quota:
    """The deployment's quota (see the module docstring). ``clock`` gives the current time
    (UTC); tests may pass their own."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        rules: PlanRules,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.pool = pool
        self.rules = rules
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    async def _plan(self, conn: asyncpg.Connection, user_id: str, now: dt.datetime) -> PlanState:
        row = await conn.fetchrow(
            """SELECT status, entitlement_ids, expiration_at_ms, product_id, store
               FROM subscriptions WHERE user_id = $1""",
            user_id,
        )
        return plan_of(row, self.rules, now)

    async def admit(self, conn: asyncpg.Connection, user_id: str) -> None:
        """Count one interview of ``user_id`` in this period, in ``conn``'s transaction;
        raises :class:`QuotaExceeded` (counting nothing) when the plan's interviews are used."""
        now = self.clock()
        period = period_of(now)
        state = await self._plan(conn, user_id, now)
        limit = self.rules.limit(state.plan)
        await conn.execute(
            """INSERT INTO interview_usage (user_id, period_start) VALUES ($1, $2)
               ON CONFLICT (user_id, period_start) DO NOTHING""",
            user_id,
            period.start,
        )
        used = await conn.fetchval(
            """UPDATE interview_usage SET used = used + 1
               WHERE user_id = $1 AND period_start = $2
                 AND ($3::integer IS NULL OR used < $3 + granted)
               RETURNING used""",
            user_id,
            period.start,
            limit,
        )
        if used is None:
            granted = await conn.fetchval(
                "SELECT granted FROM interview_usage WHERE user_id = $1 AND period_start = $2",
                user_id,
                period.start,
            )
            raise QuotaExceeded(self._refusal(state, period, limit, int(granted or 0)))

    def _refusal(self, state: PlanState, period: Period, limit: int | None, granted: int) -> str:
        resets = period.to_json()["resets_at"]
        allowance = f"{limit}" + (f" (and {granted} granted)" if granted else "")
        if state.plan == "free":
            return (
                f"you have used the {allowance} interviews of the free plan this month; the quota"
                f" resets at {resets}; the paid plan (entitlement {self.rules.entitlement!r})"
                f" lifts it"
                + (
                    ""
                    if self.rules.paid_limit is None
                    else f" to {self.rules.paid_limit} interviews a month"
                )
            )
        return (
            f"you have used the {allowance} interviews of the paid plan this month (fair use);"
            f" the quota resets at {resets}"
        )

    async def usage(self, user_id: str) -> Usage:
        """The user's plan and interviews this period (nothing is counted)."""
        now = self.clock()
        period = period_of(now)
        async with self.pool.acquire() as conn:
            state = await self._plan(conn, user_id, now)
            row = await conn.fetchrow(
                "SELECT used, granted FROM interview_usage WHERE user_id = $1 AND period_start = $2",
                user_id,
                period.start,
            )
        used, granted = (row["used"], row["granted"]) if row else (0, 0)
        return Usage(state, period, used, granted, self.rules.limit(state.plan))

    async def grant(self, user_id: str, interviews: int, *, by: str, reason: str) -> Usage:
        """Add ``interviews`` to ``user_id``'s allowance for this period; recorded and logged."""
        period = period_of(self.clock())
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO interview_usage (user_id, period_start, granted)
                   VALUES ($1, $2, $3) ON CONFLICT (user_id, period_start)
                   DO UPDATE SET granted = interview_usage.granted + EXCLUDED.granted""",
                user_id,
                period.start,
                interviews,
            )
            await conn.execute(
                """INSERT INTO quota_grants (user_id, period_start, interviews, granted_by, reason)
                   VALUES ($1, $2, $3, $4, $5)""",
                user_id,
                period.start,
                interviews,
                by,
                reason,
            )
        # The user is named by a hash: the grant row (erased with the account) has the id.
        log.info(
            "admin %s granted %d interviews for %s to user %s: %s",
            by,
            interviews,
            period.start.isoformat(),
            _user_hash(user_id),
            reason,
        )
        return await self.usage(user_id)
