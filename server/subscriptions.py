"""Subscription state from RevenueCat webhooks: the event, parsed; the state, per user.

RevenueCat posts ``{"api_version": "1.0", "event": {...}}`` and retries until it gets a 2xx,
so the same event may arrive twice and events may arrive out of order. Contract:

- an event is applied at most once, by ``event.id`` (``subscription_events``);
- the user's row in ``subscriptions`` follows the event with the newest
  ``event_timestamp_ms`` (ties broken by event id): an older event arriving late is recorded
  but does not roll the state back;
- event types that say nothing about access (``TEST``, ...) are accepted and not applied;
- a refund (``CANCELLATION`` with ``cancel_reason: CUSTOMER_SUPPORT``) ends access at once
  (``refunded``), as an ``EXPIRATION`` does; any other cancellation keeps it until
  ``expiration_at_ms`` (what access a row grants is :mod:`server.plans`');
- a ``TRANSFER`` (``transferred_from`` to ``transferred_to``) moves the newest state of the
  users it comes from to the users it goes to; those it comes from keep a ``transferred`` row
  (no access). A ``TRANSFER`` without those lists is recorded and not applied.

The user is RevenueCat's ``app_user_id``: the apps log in to RevenueCat with the same user
id the server's tokens carry.
"""

from __future__ import annotations

import enum

import asyncpg
import msgspec

from protocol.storable import is_storable
from server.errors import InvalidField

#: What each event type says about the subscription; types not listed change nothing.
STATUS_BY_TYPE: dict[str, str] = {
    "INITIAL_PURCHASE": "active",
    "RENEWAL": "active",
    "UNCANCELLATION": "active",
    "PRODUCT_CHANGE": "active",
    "NON_RENEWING_PURCHASE": "active",
    "SUBSCRIPTION_EXTENDED": "active",
    "TEMPORARY_ENTITLEMENT_GRANT": "active",
    "CANCELLATION": "cancelled",  # access continues until expiration_at_ms
    "BILLING_ISSUE": "billing_issue",  # grace period: access until expiration_at_ms
    "REFUND_REVERSED": "active",
    # Paused at the end of the period: RevenueCat says to revoke access on EXPIRATION only.
    "SUBSCRIPTION_PAUSED": "paused",
    "EXPIRATION": "expired",
}

#: A cancellation with this reason is a refund: access ends at once.
REFUND_REASON = "CUSTOMER_SUPPORT"

_MAX_ID = 256
_MAX_ENTITLEMENTS = 64


class RevenueCatEvent(msgspec.Struct, forbid_unknown_fields=False):
    id: str
    type: str
    event_timestamp_ms: int
    app_user_id: str | None = None
    product_id: str | None = None
    new_product_id: str | None = None
    entitlement_ids: list[str] | None = None
    entitlement_id: str | None = None
    expiration_at_ms: int | None = None
    store: str | None = None
    environment: str | None = None
    cancel_reason: str | None = None
    transferred_from: list[str] | None = None
    transferred_to: list[str] | None = None


class RevenueCatWebhook(msgspec.Struct, forbid_unknown_fields=False):
    event: RevenueCatEvent
    api_version: str = "1.0"


class Outcome(enum.StrEnum):
    APPLIED = "applied"  # the subscription now reflects this event
    STALE = "stale"  # recorded; a newer event already decided the state
    DUPLICATE = "duplicate"  # this event id was seen before
    IGNORED = "ignored"  # a type that says nothing about access


def parse_webhook(raw: bytes) -> RevenueCatEvent:
    """The event of a webhook body; raises InvalidField naming what is wrong."""
    try:
        body = msgspec.json.decode(raw, type=RevenueCatWebhook)
    except msgspec.ValidationError as exc:
        text = str(exc)
        field = text.rsplit("$.", 1)[-1].rstrip("`") if "$." in text else "event"
        raise InvalidField(f"invalid RevenueCat webhook: {text}", field=field) from None
    except msgspec.DecodeError:
        raise InvalidField("the body must be a JSON object", field="event") from None
    event = body.event
    if not 1 <= len(event.id) <= _MAX_ID:
        raise InvalidField("event.id must be 1 to 256 characters", field="event.id")
    if not 1 <= len(event.type) <= 64:
        raise InvalidField("event.type must be 1 to 64 characters", field="event.type")
    if event.event_timestamp_ms < 0:
        raise InvalidField(
            "event.event_timestamp_ms must not be negative", field="event.event_timestamp_ms"
        )
    if event.type in STATUS_BY_TYPE and not event.app_user_id:
        raise InvalidField(
            f"a {event.type} event needs event.app_user_id", field="event.app_user_id"
        )
    if event.app_user_id is not None and len(event.app_user_id) > _MAX_ID:
        raise InvalidField("event.app_user_id is too long", field="event.app_user_id")
    for name in ("transferred_from", "transferred_to"):
        ids = getattr(event, name)
        if ids is not None and (
            len(ids) > _MAX_ENTITLEMENTS
            or any(not 1 <= len(i) <= _MAX_ID or not is_storable(i) for i in ids)
        ):
            raise InvalidField(f"too many or bad user ids in event.{name}", field=f"event.{name}")
    if event.cancel_reason is not None and (
        len(event.cancel_reason) > 64 or not is_storable(event.cancel_reason)
    ):
        raise InvalidField("event.cancel_reason is too long", field="event.cancel_reason")
    entitlements = entitlement_ids(event)
    if len(entitlements) > _MAX_ENTITLEMENTS or any(len(e) > _MAX_ID for e in entitlements):
        raise InvalidField("too many or too long entitlement ids", field="event.entitlement_ids")
    return event


def entitlement_ids(event: RevenueCatEvent) -> list[str]:
    if event.entitlement_ids is not None:
        return event.entitlement_ids
    return [event.entitlement_id] if event.entitlement_id else []


def status_of(event: RevenueCatEvent) -> str | None:
    """The subscription status ``event`` sets; None for a type that says nothing about access."""
    if event.type == "CANCELLATION" and event.cancel_reason == REFUND_REASON:
        return "refunded"
    return STATUS_BY_TYPE.get(event.type)


def _is_transfer(event: RevenueCatEvent) -> bool:
    return event.type == "TRANSFER" and bool(event.transferred_from and event.transferred_to)


_UPSERT = """INSERT INTO subscriptions AS s
        (user_id, status, product_id, entitlement_ids, expiration_at_ms, store,
         environment, last_event_id, last_event_type, event_timestamp_ms, cancel_reason)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (user_id) DO UPDATE SET
        status = EXCLUDED.status, product_id = EXCLUDED.product_id,
        entitlement_ids = EXCLUDED.entitlement_ids,
        expiration_at_ms = EXCLUDED.expiration_at_ms, store = EXCLUDED.store,
        environment = EXCLUDED.environment, last_event_id = EXCLUDED.last_event_id,
        last_event_type = EXCLUDED.last_event_type,
        event_timestamp_ms = EXCLUDED.event_timestamp_ms,
        cancel_reason = EXCLUDED.cancel_reason, updated_at = now()
    WHERE (s.event_timestamp_ms, s.last_event_id)
          < (EXCLUDED.event_timestamp_ms, EXCLUDED.last_event_id)
    RETURNING user_id"""


async def apply_event(pool: asyncpg.Pool, event: RevenueCatEvent) -> Outcome:
    """Record ``event`` and update the user's subscription; see the module docstring."""
    status = status_of(event)
    transfer = _is_transfer(event)
    owner = event.app_user_id or (
        event.transferred_to[0] if transfer and event.transferred_to else None
    )
    if owner is None:
        return Outcome.IGNORED
    product = event.new_product_id if event.type == "PRODUCT_CHANGE" else None
    async with pool.acquire() as conn, conn.transaction():
        recorded = await conn.fetchval(
            """INSERT INTO subscription_events
                   (event_id, user_id, type, product_id, event_timestamp_ms)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING
               RETURNING event_id""",
            event.id,
            owner,
            event.type,
            event.product_id,
            event.event_timestamp_ms,
        )
        if recorded is None:
            return Outcome.DUPLICATE
        if transfer:
            return await _transfer(conn, event)
        if status is None:
            return Outcome.IGNORED
        applied = await conn.fetchval(
            _UPSERT,
            owner,
            status,
            product or event.product_id,
            entitlement_ids(event),
            event.expiration_at_ms,
            event.store,
            event.environment,
            event.id,
            event.type,
            event.event_timestamp_ms,
            event.cancel_reason,
        )
    return Outcome.APPLIED if applied is not None else Outcome.STALE


async def _transfer(conn: asyncpg.Connection, event: RevenueCatEvent) -> Outcome:
    """Move the newest state among ``transferred_from`` to ``transferred_to`` (rows older
    than the event only); the users it came from keep a ``transferred`` row."""
    sources = sorted(set(event.transferred_from or []))
    targets = sorted(set(event.transferred_to or []) - set(sources))
    rows = await conn.fetch(
        """SELECT status, product_id, entitlement_ids, expiration_at_ms, store, environment
           FROM subscriptions WHERE user_id = ANY($1::text[])
           ORDER BY expiration_at_ms DESC NULLS FIRST, event_timestamp_ms DESC
           FOR UPDATE""",
        sources,
    )
    if not rows:
        return Outcome.IGNORED  # nothing known to move
    moved = rows[0]
    changed = 0
    for user, status, reason in [(u, "transferred", "TRANSFER") for u in sources] + [
        (u, moved["status"], None) for u in targets
    ]:
        result = await conn.fetchval(
            _UPSERT,
            user,
            status,
            moved["product_id"],
            moved["entitlement_ids"],
            moved["expiration_at_ms"],
            moved["store"],
            moved["environment"],
            event.id,
            event.type,
            event.event_timestamp_ms,
            reason,
        )
        changed += result is not None
    return Outcome.APPLIED if changed else Outcome.STALE
