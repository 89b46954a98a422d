"""JWT authentication: who a token says the caller is, and whether they are an admin.

Two kinds of token are accepted, each only when the server is configured for it:

- production: RS256 (or ES256) tokens from the identity provider (Clerk session tokens),
  verified with the public key named by the token's ``kid`` in the provider's JWKS
  (:mod:`server.jwks` caches and rotates the key set);
- development: HS256 tokens signed with a local secret, minted by :func:`mint_dev_token`
  (``mentara token``).

The algorithm is chosen by the server's configuration, never by the token: the token's
``alg`` header only selects which configured verifier to try, and ``jwt.decode`` is always
called with exactly that one algorithm and its own kind of key. So ``alg: none``, an
unconfigured algorithm, or an HS256 token "signed" with the provider's public key are
rejected. Every rejection is an :class:`~server.errors.Unauthorized` whose message is short,
fixed and safe to show to the client: never the token, never PyJWT's exception text.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from jwt.types import Options

from server.errors import Unauthorized
from server.jwks import JwksCache

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "MAX_TOKEN_CHARS",
    "MAX_USER_ID_CHARS",
    "MIN_SECRET_BYTES",
    "AuthSettings",
    "Principal",
    "SigningKeysUnavailable",
    "TokenVerifier",
    "mint_dev_token",
    "token_from_authorization_header",
]

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "ES256"})
"""Algorithms verified with a key from the JWKS (only when ``jwks_url`` is configured)."""

MAX_TOKEN_CHARS = 8192
"""Longer tokens are rejected before any parsing (Clerk session tokens are 1 to 3 KB)."""

MAX_USER_ID_CHARS = 128
MIN_SECRET_BYTES = 32
"""RFC 7518 §3.2: an HS256 key must be at least as long as the hash output."""

_MAX_NUMERIC_DATE = 1e11
"""Largest ``exp``/``nbf``/``iat`` we accept (year 5138); bounds float conversion."""

_KNOWN_CLAIMS = frozenset({"exp", "sub", "iss", "aud", "azp"})


class SigningKeysUnavailable(Unauthorized):
    """No signing key could be obtained from the JWKS URL; the same token may work later."""

    retryable = True


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
            _check_secret(self.jwt_secret)
        if self.jwks_url is not None:
            _check_jwks_url(self.jwks_url)
        if not isinstance(self.authorized_parties, tuple) or not all(
            isinstance(p, str) and p for p in self.authorized_parties
        ):
            raise ValueError("authorized_parties must be a tuple of non-empty strings")
        _check_role_claim(self.role_claim)
        if not self.admin_role:
            raise ValueError("admin_role must not be empty")
        if not self.leeway_s >= 0:
            raise ValueError("leeway_s must be >= 0")
        if not (self.jwks_cache_ttl_s > 0 and self.jwks_timeout_s > 0):
            raise ValueError("jwks_cache_ttl_s and jwks_timeout_s must be > 0")
        if not self.jwks_min_refetch_interval_s >= 0:
            raise ValueError("jwks_min_refetch_interval_s must be >= 0")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``user_id`` is the token's ``sub`` (a non-empty printable string of at most 128
    characters). ``expires_at`` is its ``exp`` as Unix seconds; :class:`TokenVerifier` always
    sets it (tokens without ``exp`` are rejected), and a socket must re-authenticate or close
    with 4001 by then. ``claims`` is the verified payload, read-only; it is left out of
    ``repr`` and comparisons because it may hold personal data. ``issued_at`` is the token's
    ``iat`` (else its ``nbf``) as Unix seconds, None when it has neither.
    """

    user_id: str
    is_admin: bool
    expires_at: float | None
    claims: Mapping[str, Any] = field(repr=False, compare=False)
    issued_at: float | None = field(default=None, compare=False)


class TokenVerifier:
    """Verifies bearer tokens against :class:`AuthSettings`. One per process; share it.

    ``http`` is used for JWKS fetches when given (the caller closes it); otherwise the
    verifier owns a client and closes it in :meth:`aclose`. ``clock`` (Unix seconds) is the
    verifier's "now": the JWKS cache's freshness and rate limit, and the ``exp``/``nbf``/
    ``iat`` checks. PyJWT also checks those claims against the system clock (it has no clock
    hook), so with an injected clock a token must be within its validity window by both.

    ``revocation``, when set, is awaited with every principal :meth:`verify` would return and
    raises :class:`~server.errors.Unauthorized` to refuse it (tokens of an erased account:
    ``server.account_erasures``).
    """

    revocation: Callable[[Principal], Awaitable[None]] | None = None

    def __init__(
        self,
        settings: AuthSettings,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._jwks: JwksCache | None = None
        if settings.jwks_url is not None:
            self._jwks = JwksCache(
                settings.jwks_url,
                ttl_s=settings.jwks_cache_ttl_s,
                min_refetch_interval_s=settings.jwks_min_refetch_interval_s,
                timeout_s=settings.jwks_timeout_s,
                http=http,
                clock=clock,
            )

    @property
    def settings(self) -> AuthSettings:
        return self._settings

    async def verify(self, token: str) -> Principal:
        """Verify ``token`` (the compact JWT, without ``Bearer``) and return its principal.

        Checks, in order: size and shape; the header's ``alg`` against the configuration; the
        signature with the configured secret or the JWKS key named by ``kid``; ``exp`` (required)
        and ``nbf``/``iat`` with ``leeway_s``; ``sub`` (required); ``iss``, ``aud`` and ``azp``
        when configured.

        Raises :class:`~server.errors.Unauthorized` for any token that is not accepted, and
        :class:`SigningKeysUnavailable` (retryable) when the JWKS has never been fetchable.
        Never raises anything else for bad input. Safe to cancel.
        """
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("malformed token")
        if not token.isascii():
            raise Unauthorized("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self._settings.jwt_secret is not None:
            key = self._settings.jwt_secret
        elif isinstance(alg, str) and alg in ASYMMETRIC_ALGORITHMS and self._jwks is not None:
            key = await self._jwks_key(self._jwks, header.get("kid"), alg)
        else:
            raise Unauthorized("token algorithm not accepted")
        claims = self._decode(token, key, alg)
        principal = self._principal(claims)
        if self.revocation is not None:
            await self.revocation(principal)
        return principal

    async def prefetch_keys(self) -> bool:
        """Fetch the JWKS now (start-up, readiness); True when signing keys are available.

        True at once when no ``jwks_url`` is configured. Never raises for fetch failures.
        """
        return True if self._jwks is None else await self._jwks.prefetch()

    async def aclose(self) -> None:
        """Stop any JWKS fetch and close the HTTP client the verifier created.

        :meth:`verify` must not be called afterwards (it raises ``RuntimeError``).
        """
        if self._jwks is not None:
            await self._jwks.aclose()

    async def __aenter__(self) -> TokenVerifier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _jwks_key(self, jwks: JwksCache, kid: object, alg: str) -> Any:
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise Unauthorized("token has no key id")
        jwk = await jwks.get(kid, alg)
        if jwk is not None:
            return jwk.key
        if not jwks.has_keys:
            raise SigningKeysUnavailable("signing keys unavailable")
        raise Unauthorized("unknown token signing key")

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        settings = self._settings
        options: Options = {"require": ["exp", "sub"], "enforce_minimum_key_length": True}
        if settings.audience is None:
            options["verify_aud"] = False
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                options=options,
                issuer=settings.issuer,
                audience=settings.audience,
                leeway=settings.leeway_s,
            )
        except jwt.PyJWTError as exc:
            raise _rejection(exc) from exc

    def _principal(self, claims: dict[str, Any]) -> Principal:
        settings = self._settings
        sub = claims.get("sub")
        if (
            not isinstance(sub, str)
            or not sub
            or len(sub) > MAX_USER_ID_CHARS
            or not sub.isprintable()
            or sub != sub.strip()
        ):
            raise Unauthorized("invalid token subject")
        now = self._clock()
        exp = _numeric_date(claims.get("exp"))
        if exp is None:
            raise Unauthorized("invalid token expiry")
        if exp <= now - settings.leeway_s:
            raise Unauthorized("token expired")
        issued: dict[str, float] = {}
        for name in ("nbf", "iat"):
            if name in claims:
                value = _numeric_date(claims[name])
                if value is None:
                    raise Unauthorized("malformed token")
                if value > now + settings.leeway_s:
                    raise Unauthorized("token not yet valid")
                issued[name] = value
        if settings.authorized_parties:
            azp = claims.get("azp")
            if azp is None:
                raise Unauthorized("token lacks the azp claim")
            if azp not in settings.authorized_parties:
                raise Unauthorized("token authorized party not accepted")
        return Principal(
            user_id=sub,
            is_admin=_has_role(claims, settings.role_claim, settings.admin_role),
            expires_at=exp,
            claims=MappingProxyType(claims),
            issued_at=issued.get("iat", issued.get("nbf")),
        )


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
    _check_secret(secret)
    _check_role_claim(role_claim)
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


def token_from_authorization_header(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None.

    The scheme is case-insensitive; surrounding whitespace is ignored; a missing token, a
    token containing whitespace, or another scheme gives None.
    """
    if value is None:
        return None
    scheme, _, rest = value.strip().partition(" ")
    token = rest.strip()
    if scheme.lower() != "bearer" or not token or any(c.isspace() for c in token):
        return None
    return token


def _rejection(exc: jwt.PyJWTError) -> Unauthorized:
    """A client-safe rejection for a PyJWT error; the message never includes the error text."""
    match exc:
        case jwt.ExpiredSignatureError():
            return Unauthorized("token expired")
        case jwt.ImmatureSignatureError():
            return Unauthorized("token not yet valid")
        case jwt.InvalidIssuerError():
            return Unauthorized("token issuer not accepted")
        case jwt.InvalidAudienceError():
            return Unauthorized("token audience not accepted")
        case jwt.MissingRequiredClaimError():
            if exc.claim in _KNOWN_CLAIMS:
                return Unauthorized(f"token lacks the {exc.claim} claim")
            return Unauthorized("token lacks a required claim")
        case jwt.InvalidSignatureError():
            return Unauthorized("invalid token signature")
        case jwt.InvalidAlgorithmError():
            return Unauthorized("token algorithm not accepted")
        case jwt.InvalidKeyError():
            # Our key was refused (say, an RSA key under 2048 bits in the JWKS).
            return Unauthorized("token signing key not accepted")
        case _:
            return Unauthorized("malformed token")


def _numeric_date(value: object) -> float | None:
    """A JSON NumericDate as float, or None when it is not a number in a sane range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= _MAX_NUMERIC_DATE:  # also rejects NaN
        return None
    return float(value)


def _has_role(claims: Mapping[str, Any], path: str, role: str) -> bool:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    if isinstance(value, str):
        return value == role
    if isinstance(value, list):
        return any(isinstance(item, str) and item == role for item in value)
    return False


def _set_path(payload: dict[str, Any], path: str, value: str) -> None:
    *parents, leaf = path.split(".")
    node = payload
    for part in parents:
        child = node.get(part)
        child = dict(child) if isinstance(child, Mapping) else {}
        node[part] = child
        node = child
    node[leaf] = value


def _check_secret(secret: str) -> None:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the HS256 secret must be at least {MIN_SECRET_BYTES} bytes")


def _check_role_claim(path: str) -> None:
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
