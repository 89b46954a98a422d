"""A cache of an identity provider's public signing keys, fetched from its JWKS URL.

:class:`JwksCache` answers "which public key has this ``kid`` for this algorithm" and hides
when and how often the key set is fetched:

- a fetched key set is fresh for ``ttl_s``; a stale one is refetched on the next lookup;
- a ``kid`` missing from the cache triggers a refetch, but fetch *attempts* (of any cause)
  are rate-limited to one per ``min_refetch_interval_s``, so a flood of tokens with made-up
  key ids costs at most one request per interval;
- concurrent lookups share one in-flight fetch, and a lookup that is cancelled does not
  cancel the fetch the others wait for;
- a failed fetch (network error, timeout, non-200, bad JSON, no usable keys) keeps the keys
  from the last good fetch (stale-while-error). Stale keys are served for as long as fetches
  keep failing; a successful fetch replaces the whole set, so a key the provider removed
  stops working at the next successful fetch.

Bounds: the response body is read up to :data:`MAX_JWKS_BYTES`, at most :data:`MAX_KEYS`
keys are considered, and the whole fetch (connect, headers, body) has one deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable
from typing import Any

import httpx
import jwt

__all__ = ["MAX_JWKS_BYTES", "MAX_KEYS", "SUPPORTED_KEY_TYPES", "JwksCache", "JwksFetchError"]

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES = 256 * 1024
"""Largest JWKS response body read; a longer one is a failed fetch."""

MAX_KEYS = 64
"""Most keys taken from one JWKS; the rest are ignored (providers publish two or three)."""

SUPPORTED_KEY_TYPES = frozenset({"RSA", "EC"})
"""JWK ``kty`` values we accept; symmetric (``oct``) and other keys in a JWKS are ignored."""


class JwksFetchError(Exception):
    """A JWKS fetch failed; the message is for server logs, never for clients."""


KeyIndex = dict[tuple[str, str], jwt.PyJWK]
"""Keys by ``(kid, algorithm name)``, e.g. ``("ins_2abc", "RS256")``."""


def parse_jwks(document: Any) -> KeyIndex:
    """Index the usable signing keys of a parsed JWKS document by ``(kid, alg)``.

    A key is usable when it has a string ``kid``, its ``use`` is absent or ``sig``, its
    ``kty`` is RSA or EC, it carries no private part, and PyJWT can build it (which also fixes
    its algorithm: the JWK's ``alg``, else RS256 for RSA and ES256/384/512 by curve for EC).
    The first key wins when two share a ``(kid, alg)``.

    Raises :class:`JwksFetchError` when the document is not a JWKS or has no usable key, so
    the caller keeps its previous keys rather than replacing them with nothing.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksFetchError("JWKS document is not an object with a 'keys' list")
    index: KeyIndex = {}
    for data in document["keys"][:MAX_KEYS]:
        if not (
            isinstance(data, dict)
            and isinstance(data.get("kid"), str)
            and data["kid"]
            and data.get("use", "sig") == "sig"
            and isinstance(data.get("kty"), str)
            and data["kty"] in SUPPORTED_KEY_TYPES
            and isinstance(data.get("alg", ""), str)
            # A published private key is a provider misconfiguration; never verify with it.
            and "d" not in data
        ):
            continue
        try:
            key = jwt.PyJWK(data)
        except (jwt.PyJWTError, TypeError, ValueError, KeyError) as exc:
            # One malformed entry must not cost us the provider's other keys.
            logger.warning("JWKS key %r skipped: %s", data["kid"], type(exc).__name__)
            continue
        index.setdefault((data["kid"], key.algorithm_name), key)
    if not index:
        raise JwksFetchError("JWKS has no usable signing keys")
    return index


class JwksCache:
    """The signing keys published at one JWKS URL, cached and refreshed (see the module doc).

    ``clock`` gives the time used for freshness and rate limiting (seconds; any origin). A
    clock that steps backwards makes the cache treat its keys as stale and allows a fetch.

    ``http`` is used when given and then stays the caller's to close; otherwise the cache
    creates its own client and closes it in :meth:`aclose`.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float,
        min_refetch_interval_s: float,
        timeout_s: float,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float],
    ) -> None:
        self._url = url
        self._ttl_s = ttl_s
        self._min_interval_s = min_refetch_interval_s
        self._timeout_s = timeout_s
        self._own_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout_s)
        self._clock = clock
        self._keys: KeyIndex | None = None
        self._fetched_at = -math.inf
        self._attempted_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def has_keys(self) -> bool:
        """Whether any fetch has succeeded, i.e. keys (fresh or stale) are available."""
        return self._keys is not None

    async def get(self, kid: str, alg: str) -> jwt.PyJWK | None:
        """The key with this ``kid`` whose algorithm is ``alg``, or None when there is none.

        Fetches first when the cache is empty, stale, or lacks the key, subject to the rate
        limit; a failed or rate-limited fetch falls back to the cached keys. Returns None both
        when the key is unknown and when no keys could ever be fetched; :attr:`has_keys` tells
        the two apart. Never raises for fetch failures. Safe to cancel: the shared fetch goes on
        for the other callers.
        """
        if self._closed:
            raise RuntimeError("JwksCache is closed")
        keys = self._keys
        if keys is not None and self._elapsed(self._fetched_at) < self._ttl_s:
            key = keys.get((kid, alg))
            if key is not None:
                return key
        await self._refresh()
        keys = self._keys
        return None if keys is None else keys.get((kid, alg))

    async def prefetch(self) -> bool:
        """Fetch now unless the keys are fresh (rate limit applies); True when keys are held.

        For start-up, so the first token does not wait for the fetch. Never raises for fetch
        failures; safe to cancel.
        """
        if self._closed:
            raise RuntimeError("JwksCache is closed")
        if self._keys is None or self._elapsed(self._fetched_at) >= self._ttl_s:
            await self._refresh()
        return self._keys is not None

    async def aclose(self) -> None:
        """Cancel an in-flight fetch and close the HTTP client if this cache created it."""
        self._closed = True
        task = self._inflight
        if task is not None:
            task.cancel()
            # asyncio.wait neither raises the task's cancellation here nor cancels anything
            # when we ourselves are cancelled, which a plain `await task` would.
            await asyncio.wait((task,))
        if self._own_http:
            await self._http.aclose()

    def _elapsed(self, since: float) -> float:
        elapsed = self._clock() - since
        return elapsed if elapsed >= 0 else math.inf

    async def _refresh(self) -> None:
        """Join the in-flight fetch, or start one unless the rate limit forbids it."""
        task = self._inflight
        if task is None:
            if self._attempted_at is not None and (
                self._elapsed(self._attempted_at) < self._min_interval_s
            ):
                return
            self._attempted_at = self._clock()
            task = asyncio.get_running_loop().create_task(
                self._fetch_and_store(), name="mentara-jwks-fetch"
            )
            self._inflight = task
            task.add_done_callback(self._forget_task)
        await asyncio.wait((task,))

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _fetch_and_store(self) -> None:
        try:
            keys = await self._fetch()
        except JwksFetchError as exc:
            state = "keeping the previous keys" if self._keys is not None else "no keys yet"
            logger.warning("JWKS fetch from %s failed (%s): %s", self._url, state, exc)
            return
        except Exception:  # a bug, not a network error: log it, keep serving old keys
            logger.exception("JWKS fetch from %s failed unexpectedly", self._url)
            return
        self._keys = keys
        self._fetched_at = self._clock()
        logger.info("JWKS fetched from %s: %d signing keys", self._url, len(keys))

    async def _fetch(self) -> KeyIndex:
        try:
            async with asyncio.timeout(self._timeout_s):
                body = await self._download()
        except TimeoutError:
            raise JwksFetchError(f"timed out after {self._timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise JwksFetchError(f"{type(exc).__name__}: {exc}") from None
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise JwksFetchError(f"response is not JSON: {exc}") from None
        return parse_jwks(document)

    async def _download(self) -> bytes:
        headers = {"Accept": "application/json"}
        async with self._http.stream("GET", self._url, headers=headers) as response:
            if response.status_code != 200:
                raise JwksFetchError(f"HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_JWKS_BYTES:
                    raise JwksFetchError(f"response larger than {MAX_JWKS_BYTES} bytes")
                chunks.append(chunk)
        return b"".join(chunks)
