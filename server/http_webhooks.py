"""HTTP webhooks from other services: ``POST /v1/webhooks/revenuecat`` (PROTOCOL.md §7).

RevenueCat sends the ``Authorization`` header value configured in its dashboard; it must equal
``MENTARA_REVENUECAT_WEBHOOK_SECRET`` (compared in constant time; ``Bearer <secret>`` is
accepted too). Unset, the endpoint answers 503: a deployment that forgot the secret says so
instead of accepting anyone's events. Answers: 200 ``{"status": applied | stale | duplicate
| ignored}``; 401, 400 (naming the field), 413 (body over 64 KiB) as JSON errors.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from protocol.errors import ErrorCode
from server.errors import Unauthorized
from server.http_body import read_body
from server.http_errors import error_response
from server.subscriptions import apply_event, parse_webhook

if TYPE_CHECKING:
    from server.resources import Resources

MAX_WEBHOOK_BYTES = 64 * 1024


def _authorized(header: str | None, secret: str) -> bool:
    if header is None:
        return False
    given = header.strip().encode()
    expected = secret.encode()
    # Both compared every time, so timing says nothing about which form was close.
    plain = hmac.compare_digest(given, expected)
    bearer = hmac.compare_digest(given, b"Bearer " + expected)
    return plain | bearer


async def revenuecat_webhook(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    secret = resources.settings.revenuecat_webhook_secret
    if not secret:
        return error_response(
            503, ErrorCode.INTERNAL, "the RevenueCat webhook is not configured on this server"
        )
    if not _authorized(request.headers.get("authorization"), secret):
        raise Unauthorized("the Authorization header does not match the webhook secret")
    event = parse_webhook(await read_body(request, MAX_WEBHOOK_BYTES))
    outcome = await apply_event(resources.pool, event)
    return JSONResponse({"status": outcome.value, "event_id": event.id})


WEBHOOK_ROUTES = [Route("/v1/webhooks/revenuecat", revenuecat_webhook, methods=["POST"])]
