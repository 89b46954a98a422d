"""How bearer tokens are to be verified: :class:`AuthSettings`, checked when built.

The rules both the verifier (:mod:`server.auth`) and the development-token minter
(:mod:`server.dev_tokens`) hold a token's inputs to: an HS256 secret of at least
:data:`MIN_SECRET_BYTES`, a role claim that is a dotted path of claim names, a user id of at
most :data:`MAX_USER_ID_CHARS` characters, a JWKS URL that is ``https`` (``http`` to a
loopback host only). A value that breaks one raises ``ValueError``; nothing here touches a
token.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "MAX_USER_ID_CHARS",
    "MIN_SECRET_BYTES",
    "AuthSettings",
    "check_role_claim",
    "check_secret",
]

MAX_USER_ID_CHARS = 128
MIN_SECRET_BYTES = 32
"""RFC 7518 §3.2: an HS256 key must be at least as long as the hash output."""


@dataclass(frozen=True)
class AuthSettings:
    """How tokens are verified. Invalid values raise ``ValueError`` at construction.

    At least one of ``jwt_secret`` (HS256, development; at least 32 bytes) and ``jwks_url``
    (RS256/ES256, production; ``https``, or ``http`` to a loopback host only) must be set.
    Anyone holding ``jwt_secret`` can mint admin tokens: leave it unset in production.

    ``issuer`` and ``audience``, when set, are required to match ``iss`` and ``aud``.
    ``authorized_parties``, when non-empty, requires an ``azp`` claim among them (Clerk sets
    ``azp`` to the origin of the app that requested the token).

    ``role_claim`` is a dotted path into the claims (``role``, ``metadata.role``,
    ``public_metadata.role``); the value found there is a string or a list of strings, and the
    caller is an admin when it is, or contains, ``admin_role``.

    ``leeway_s`` is the clock skew allowed on ``exp``, ``nbf`` and ``iat``. The ``jwks_*``
    values drive :class:`server.jwks.JwksCache`.
    """

    jwt_secret: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    authorized_parties: tuple[str, ...] = ()
    audience: str | None = None
    role_claim: str = "role"
    admin_role: str = "admin"
    leeway_s: float = 5.0
    jwks_cache_ttl_s: float = 300.0
    jwks_min_refetch_interval_s: float = 30.0
    jwks_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.jwt_secret is None and self.jwks_url is None:
            raise ValueError("AuthSettings needs jwt_secret (development) or jwks_url")
        if self.jwt_secret is not None:
            check_secret(self.jwt_secret)
        if self.jwks_url is not None:
            _check_jwks_url(self.jwks_url)
        if not isinstance(self.authorized_parties, tuple) or not all(
            isinstance(p, str) and p for p in self.authorized_parties
        ):
            raise ValueError("authorized_parties must be a tuple of non-empty strings")
        check_role_claim(self.role_claim)
        if not self.admin_role:
            raise ValueError("admin_role must not be empty")
        if not self.leeway_s >= 0:
            raise ValueError("leeway_s must be >= 0")
        if not (self.jwks_cache_ttl_s > 0 and self.jwks_timeout_s > 0):
            raise ValueError("jwks_cache_ttl_s and jwks_timeout_s must be > 0")
        if not self.jwks_min_refetch_interval_s >= 0:
            raise ValueError("jwks_min_refetch_interval_s must be >= 0")


def check_secret(secret: str) -> None:
    """``ValueError`` unless ``secret`` is long enough to sign HS256 tokens."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the HS256 secret must be at least {MIN_SECRET_BYTES} bytes")


def check_role_claim(path: str) -> None:
    """``ValueError`` unless ``path`` is a dotted path of non-empty claim names."""
    if not path or any(not part for part in path.split(".")):
        raise ValueError(f"role_claim must be a dotted path of claim names, got {path!r}")


def _check_jwks_url(url: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and _is_loopback(host):
        return
    raise ValueError("jwks_url must be an https URL (plain http only to a loopback host)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
