"""Development tokens: HS256 tokens signed with the local secret (``mentara token``).

:func:`mint_dev_token` issues what :class:`server.auth.TokenVerifier` accepts when the
server is configured with that secret (development and tests; never in production, where
tokens come from the identity provider). It checks its arguments with the same rules as
:class:`server.auth_settings.AuthSettings` and raises ``ValueError`` for bad ones.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import jwt

from server.auth_settings import MAX_USER_ID_CHARS, check_role_claim, check_secret

__all__ = ["mint_dev_token"]


def mint_dev_token(
    secret: str,
    user_id: str,
    *,
    admin: bool = False,
    ttl_s: int = 3600,
    role_claim: str = "role",
    admin_role: str = "admin",
    now: float | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """An HS256 development token for ``user_id``, valid from ``now`` for ``ttl_s`` seconds.

    Carries ``sub``, ``iat``, ``nbf``, ``exp`` (whole seconds) and, when ``admin``, the value
    ``admin_role`` at the dotted ``role_claim`` path. ``extra_claims`` (``iss``, ``aud``, ``azp``
    when the verifier requires them) are added first; the claims above take precedence.
    Raises ``ValueError`` for a secret shorter than 32 bytes, an empty or over-long user id,
    or a non-positive ttl.
    """
    check_secret(secret)
    check_role_claim(role_claim)
    if not user_id or len(user_id) > MAX_USER_ID_CHARS:
        raise ValueError(f"user_id must be 1 to {MAX_USER_ID_CHARS} characters")
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = dict(extra_claims or {})
    payload.update(sub=user_id, iat=issued, nbf=issued, exp=issued + ttl_s)
    if admin:
        _set_path(payload, role_claim, admin_role)
    return jwt.encode(payload, secret, algorithm="HS256")


def _set_path(payload: dict[str, Any], path: str, value: str) -> None:
    *parents, leaf = path.split(".")
    node = payload
    for part in parents:
        child = node.get(part)
        child = dict(child) if isinstance(child, Mapping) else {}
        node[part] = child
        node = child
    node[leaf] = value
