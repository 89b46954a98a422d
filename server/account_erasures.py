"""Erased accounts: a token issued before its user's ``DELETE /v1/me`` is refused.

``DELETE /v1/me`` records, once the erasure is complete, when it happened
(:func:`record_erasure`; Postgres table ``account_erasures``, keyed by the SHA-256 of the user
id so that no plain identifier outlives the account; a later erasure moves the time on).
:class:`AccountErasures` is the token verifier's ``revocation`` hook, so every HTTP request
and every socket authentication (upgrade header, ``auth`` frame, refresh) on every worker
refuses such a token with ``unauthorized`` (HTTP 401, close 4001); ``session.start`` checks
again, for a socket authenticated before the erasure.

The rule: a token is refused when its ``iat`` (else ``nbf``) is at or before the erasure
time, whole seconds against the recorded instant, so a token issued in the very second of
the erasure is refused too (get one a second later). A token with neither claim cannot be
shown to be newer: for an erased user it is refused; for anyone else it is accepted as before.

A failed erasure (503, retryable) records nothing, so the same token may repeat the request.
"""

from __future__ import annotations

import hashlib
import time

import asyncpg

from server.auth import Principal
from server.errors import Unauthorized


def _user_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()


async def record_erasure(pool: asyncpg.Pool, user_id: str, at: float | None = None) -> float:
    """Record that ``user_id``'s account was erased ``at`` (default now); return the time."""
    erased_at = time.time() if at is None else at
    await pool.execute(
        """INSERT INTO account_erasures (user_hash, erased_at) VALUES ($1, $2)
           ON CONFLICT (user_hash)
           DO UPDATE SET erased_at = greatest(account_erasures.erased_at, EXCLUDED.erased_at)""",
        _user_hash(user_id),
        erased_at,
    )
    return erased_at


class AccountErasures:
    """Refuses principals whose token predates their account's erasure (see the module)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def erased_at(self, user_id: str) -> float | None:
        value = await self.pool.fetchval(
            "SELECT erased_at FROM account_erasures WHERE user_hash = $1", _user_hash(user_id)
        )
        return None if value is None else float(value)

    async def check(self, principal: Principal | None) -> None:
        """Raise Unauthorized when ``principal``'s token was issued before its erasure."""
        if principal is None:
            return
        erased_at = await self.erased_at(principal.user_id)
        if erased_at is None:
            return
        if principal.issued_at is None or principal.issued_at <= erased_at:
            raise Unauthorized("this token was issued before the account was deleted")
