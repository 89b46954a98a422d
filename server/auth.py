"""JWT authentication: who a token says the caller is, and whether they are an admin.

Two kinds of token are accepted, each only when the server is configured for it:

- production: RS256 (or ES256) tokens from the identity provider (Clerk session tokens),
  verified with the public key named by the token's ``kid`` in the provider's JWKS
  (:mod:`server.jwks` caches and rotates the key set);
- development: HS256 tokens signed with a local secret, minted by
  :func:`server.dev_tokens.mint_dev_token` (``mentara token``).

How tokens are to be verified is :class:`server.auth_settings.AuthSettings`; this module
verifies them (:class:`TokenVerifier`) and reads the bearer token of a request
(:func:`token_from_authorization_header`).

The algorithm is chosen by the server's configuration, never by the token: the token's
``alg`` header only selects which configured verifier to try, and ``jwt.decode`` is always
called with exactly that one algorithm and its own kind of key. So ``alg: none``, an
unconfigured algorithm, or an HS256 token "signed" with the provider's public key are
rejected. Every rejection is an :class:`~server.errors.Unauthorized` whose message is short,
fixed and safe to show to the client: never the token, never PyJWT's exception text.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import httpx
import jwt
from jwt.types import Options

from server.auth_settings import MAX_USER_ID_CHARS, AuthSettings
from server.errors import Unauthorized
from server.jwks import JwksCache

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "MAX_TOKEN_CHARS",
    "Principal",
    "SigningKeysUnavailable",
    "TokenVerifier",
    "token_from_authorization_header",
]

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "ES256"})
"""Algorithms verified with a key from the JWKS (only when ``jwks_url`` is configured)."""

MAX_TOKEN_CHARS = 8192
"""Longer tokens are rejected before any parsing (Clerk session tokens are 1 to 3 KB)."""

_MAX_NUMERIC_DATE = 1e11
"""Largest ``exp``/``nbf``/``iat`` we accept (year 5138); bounds float conversion."""

_KNOWN_CLAIMS = frozenset({"exp", "sub", "iss", "aud", "azp"})


class SigningKeysUnavailable(Unauthorized):
    """No signing key could be obtained from the JWKS URL; the same token may work later."""

    retryable = True


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
