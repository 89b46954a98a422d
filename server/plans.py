"""Plans: which a user is on (from their RevenueCat subscription), and the period they count in.

Two plans, configured in :class:`PlanRules` (``MENTARA_PAID_ENTITLEMENT``,
``MENTARA_FREE_INTERVIEWS_PER_MONTH``, ``MENTARA_PAID_INTERVIEWS_PER_MONTH``):

- **paid** while the user's subscription row (``server.subscriptions``) names the paid
  entitlement, its status still grants access and its ``expiration_at_ms`` is in the future
  (no expiry at all: a lifetime purchase). Statuses that grant access until the expiry:
  ``active``, ``cancelled`` (auto-renew off: access runs to the end of the period paid for),
  ``billing_issue`` (RevenueCat's grace period is the expiry it reports) and ``paused``
  (RevenueCat: revoke on ``EXPIRATION`` only). ``expired``, ``refunded`` and ``transferred``
  never do;
- **free** otherwise.

The period is the calendar month in UTC: it starts on the 1st at 00:00 UTC and resets at the
next 1st. Everything here is pure (the clock is passed in); the quota that counts interviews
against a plan is :mod:`server.quota`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ACCESS_STATUSES", "Entitlement", "Period", "PlanRules", "PlanState", "period_of"]

#: Subscription statuses that grant the entitlement until its expiry.
ACCESS_STATUSES = frozenset({"active", "cancelled", "billing_issue", "paused"})

PlanName = Literal["free", "paid"]


@dataclass(frozen=True, slots=True)
class PlanRules:
    """The deployment's plans: the entitlement id that makes a user paid, and each plan's
    interviews per period (None: unlimited)."""

    entitlement: str = "pro"
    free_limit: int | None = 3
    paid_limit: int | None = None

    def limit(self, plan: PlanName) -> int | None:
        return self.paid_limit if plan == "paid" else self.free_limit


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar month in UTC."""

    start: dt.date
    resets_at: dt.datetime

    def to_json(self) -> dict[str, str]:
        return {
            "period_start": _iso(dt.datetime(self.start.year, self.start.month, 1, tzinfo=dt.UTC)),
            "resets_at": _iso(self.resets_at),
        }


def period_of(now: dt.datetime) -> Period:
    """The calendar month (UTC) that ``now`` falls in."""
    now = now.astimezone(dt.UTC)
    start = dt.date(now.year, now.month, 1)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return Period(start, dt.datetime(year, month, 1, tzinfo=dt.UTC))


@dataclass(frozen=True, slots=True)
class Entitlement:
    """The paid entitlement as the subscription row has it (granting access or not)."""

    id: str
    status: str
    active: bool
    expires_at_ms: int | None
    product_id: str | None
    store: str | None
    will_renew: bool

    def to_json(self) -> dict[str, Any]:
        expires = self.expires_at_ms
        return {
            "id": self.id,
            "active": self.active,
            "status": self.status,
            "expires_at_ms": expires,
            "expires_at": None if expires is None else _iso(_from_ms(expires)),
            "product_id": self.product_id,
            "store": self.store,
            "will_renew": self.will_renew,
        }


@dataclass(frozen=True, slots=True)
class PlanState:
    """The plan a user is on now, and why."""

    plan: PlanName
    entitlement: Entitlement | None  # None: no subscription row names the paid entitlement


def plan_of(subscription: Any | None, rules: PlanRules, now: dt.datetime) -> PlanState:
    """The plan of a user whose subscription row (a mapping with ``status``,
    ``entitlement_ids``, ``expiration_at_ms``, ``product_id``, ``store``) is
    ``subscription`` (None: never subscribed), at ``now``."""
    if subscription is None or rules.entitlement not in (subscription["entitlement_ids"] or []):
        return PlanState("free", None)
    status = str(subscription["status"])
    expires = subscription["expiration_at_ms"]
    now_ms = int(now.timestamp() * 1000)
    active = status in ACCESS_STATUSES and (expires is None or expires > now_ms)
    entitlement = Entitlement(
        id=rules.entitlement,
        status=status,
        active=active,
        expires_at_ms=None if expires is None else int(expires),
        product_id=subscription["product_id"],
        store=subscription["store"],
        will_renew=active and status in ("active", "billing_issue"),
    )
    return PlanState("paid" if active else "free", entitlement)


def _from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
