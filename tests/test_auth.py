"""server.auth and server.jwks against real tokens and a real JWKS endpoint on loopback.

No PyJWT mocks: tokens are signed with real keys (RSA and EC from ``cryptography``), and the
JWKS is served by a Starlette app under uvicorn on 127.0.0.1 whose key set the tests change
and whose hits they count. Time is a fake clock the tests advance; it starts at the real time
so PyJWT's own checks (which read the system clock) agree with it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.auth import (
    Principal,
    SigningKeysUnavailable,
    TokenVerifier,
    token_from_authorization_header,
)
from server.auth_settings import AuthSettings
from server.dev_tokens import mint_dev_token
from server.errors import Unauthorized
from server.jwks import MAX_JWKS_BYTES

SECRET = "dev-secret-0123456789abcdef0123456789abcdef"
OTHER_SECRET = "another-secret-0123456789abcdef0123456789ab"
ISSUER = "https://clerk.mentara.example"
JWKS_PATH = "/.well-known/jwks.json"


# -- keys, clock, token helpers ---------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self, **extra: Any) -> dict[str, Any]:
        to_jwk = RSAAlgorithm.to_jwk if self.alg == "RS256" else ECAlgorithm.to_jwk
        data: dict[str, Any] = to_jwk(self.private.public_key(), as_dict=True)
        data.update(kid=self.kid, alg=self.alg, use="sig")
        data.update(extra)
        return data

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(  # type: ignore[no-any-return]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.alg, headers={"kid": self.kid, **headers}
        )


def _rsa(kid: str, bits: int = 2048) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=bits))


@pytest.fixture(scope="module")
def key_a() -> SigningKey:
    return _rsa("ins_key_a")


@pytest.fixture(scope="module")
def key_b() -> SigningKey:
    return _rsa("ins_key_b")


@pytest.fixture(scope="module")
def impostor_a() -> SigningKey:
    """Another RSA key that claims key_a's kid."""
    return _rsa("ins_key_a")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey("ins_key_ec", "ES256", ec.generate_private_key(ec.SECP256R1()))


class FakeClock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def claims(*, ttl: int = 3600, **extra: Any) -> dict[str, Any]:
    """Claims valid from now (the system clock, which PyJWT checks) for ``ttl`` seconds."""
    now = int(time.time())
    return {"sub": "user_123", "iat": now, "nbf": now, "exp": now + ttl, **extra}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(
    header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    """A compact JWT assembled without PyJWT, for tokens PyJWT refuses to make."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


async def rejected(verifier: TokenVerifier, token: str) -> Unauthorized:
    """The Unauthorized that verify raises; its message never contains the token."""
    with pytest.raises(Unauthorized) as info:
        await verifier.verify(token)
    assert info.value.code == "unauthorized"
    if len(token) > 8:
        assert token not in info.value.message
        assert token not in str(info.value)
    return info.value


# -- a real JWKS endpoint ---------------------------------------------------------------------


@dataclass
class JwksEndpoint:
    """A JWKS URL on loopback that serves ``document`` (or ``status``/``body``) and counts hits.

    The server runs in its own thread and event loop: the tests' loops come and go, and
    uvicorn takes ~0.2 s to stop, too slow to pay per test. The tests set the attributes; the
    handler only reads them (and bumps ``hits`` before it answers).
    """

    url: str
    stop: Callable[[], None]
    document: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    status: int = 200
    body: bytes | None = None
    delay_s: float = 0.0
    hits: int = 0

    def publish(self, *keys: SigningKey) -> None:
        self.document = {"keys": [k.jwk() for k in keys]}

    def reset(self) -> None:
        self.document, self.status, self.body, self.delay_s, self.hits = (
            {"keys": []},
            200,
            None,
            0,
            0,
        )

    async def handle(self, request: Request) -> Response:
        self.hits += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        headers = {"connection": "close"}  # so a stopped server refuses at once
        if self.body is not None:
            return Response(
                self.body, status_code=self.status, media_type="application/json", headers=headers
            )
        return JSONResponse(self.document, status_code=self.status, headers=headers)


def start_jwks_server() -> JwksEndpoint:
    """Run a JWKS endpoint under uvicorn on a pre-bound 127.0.0.1 socket; ``stop()`` ends it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server: uvicorn.Server
    thread: threading.Thread

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
        assert not thread.is_alive(), "JWKS server did not stop"

    endpoint = JwksEndpoint(url=f"http://127.0.0.1:{port}{JWKS_PATH}", stop=stop)
    app = Starlette(routes=[Route(JWKS_PATH, endpoint.handle)])
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, log_level="warning", access_log=False, ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=asyncio.run, args=(server.serve(sockets=[sock]),), name="jwks-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            stop()
            raise RuntimeError("JWKS server did not start")
        time.sleep(0.005)
    return endpoint


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksEndpoint]:
    endpoint = start_jwks_server()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def jwks(jwks_server: JwksEndpoint) -> JwksEndpoint:
    """The module's JWKS endpoint, emptied and with its hit count at zero."""
    jwks_server.reset()
    return jwks_server


@pytest.fixture
def own_jwks() -> Iterator[JwksEndpoint]:
    """A JWKS endpoint for one test, which may stop it (``await asyncio.to_thread(stop)``)."""
    endpoint = start_jwks_server()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{JWKS_PATH}"


MakeVerifier = Callable[..., TokenVerifier]


@pytest.fixture
async def make_verifier(clock: FakeClock) -> AsyncIterator[MakeVerifier]:
    """Builds verifiers on the fake clock and closes them all at teardown."""
    made: list[TokenVerifier] = []

    def make(**settings: Any) -> TokenVerifier:
        verifier = TokenVerifier(AuthSettings(**settings), clock=clock)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


# -- HS256 development tokens -----------------------------------------------------------------


async def test_hs256_dev_token_gives_user_id(make_verifier: MakeVerifier, clock: FakeClock) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    token = mint_dev_token(SECRET, "user_42", now=clock.now, ttl_s=600)
    principal = await verifier.verify(token)
    assert principal == Principal("user_42", False, clock.now + 600, {})
    assert principal.claims["sub"] == "user_42"
    assert "claims" not in repr(principal)
    with pytest.raises(TypeError):
        principal.claims["sub"] = "someone_else"  # type: ignore[index]


async def test_admin_from_default_role_claim(make_verifier: MakeVerifier, clock: FakeClock) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    token = mint_dev_token(SECRET, "boss", admin=True, now=clock.now)
    assert (await verifier.verify(token)).is_admin
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["role"] == "admin"


async def test_admin_from_dotted_role_claim(make_verifier: MakeVerifier, clock: FakeClock) -> None:
    verifier = make_verifier(
        jwt_secret=SECRET, role_claim="public_metadata.role", admin_role="staff"
    )
    token = mint_dev_token(
        SECRET,
        "boss",
        admin=True,
        role_claim="public_metadata.role",
        admin_role="staff",
        now=clock.now,
        extra_claims={"public_metadata": {"plan": "pro"}},
    )
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["public_metadata"] == {
        "plan": "pro",
        "role": "staff",
    }
    assert (await verifier.verify(token)).is_admin
    # The role at the top level does not count when the path is nested.
    flat = mint_dev_token(SECRET, "boss", admin=True, admin_role="staff", now=clock.now)
    assert not (await verifier.verify(flat)).is_admin


@pytest.mark.parametrize(
    ("metadata", "is_admin"),
    [
        ({"role": ["member", "admin"]}, True),
        ({"role": ["member"]}, False),
        ({"role": "member"}, False),
        ({"role": ["admin "]}, False),
        ({"role": {"admin": True}}, False),
        ({"role": [["admin"]]}, False),
        ("admin", False),
        ({}, False),
    ],
)
async def test_role_claim_value_shapes(
    make_verifier: MakeVerifier, clock: FakeClock, metadata: Any, is_admin: bool
) -> None:
    verifier = make_verifier(jwt_secret=SECRET, role_claim="metadata.role")
    token = jwt.encode(claims(metadata=metadata), SECRET, algorithm="HS256")
    assert (await verifier.verify(token)).is_admin is is_admin


async def test_hs256_wrong_secret(make_verifier: MakeVerifier, clock: FakeClock) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    token = mint_dev_token(OTHER_SECRET, "user_1", now=clock.now)
    assert (await rejected(verifier, token)).message == "invalid token signature"


async def test_hs512_is_refused_even_with_the_right_secret(
    make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    for alg, digest in (("HS512", hashlib.sha512), ("HS384", hashlib.sha384)):
        token = hand_made(
            {"alg": alg, "typ": "JWT"},
            claims(),
            lambda data, d=digest: hmac.new(SECRET.encode(), data, d).digest(),  # type: ignore[misc]
        )
        assert (await rejected(verifier, token)).message == "token algorithm not accepted"


async def test_rs256_refused_when_no_jwks_configured(
    make_verifier: MakeVerifier, clock: FakeClock, key_a: SigningKey
) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    assert (await rejected(verifier, key_a.sign(claims()))).message == (
        "token algorithm not accepted"
    )


# -- time claims ------------------------------------------------------------------------------


async def test_expired_beyond_leeway(make_verifier: MakeVerifier, clock: FakeClock) -> None:
    verifier = make_verifier(jwt_secret=SECRET, leeway_s=5)
    token = mint_dev_token(SECRET, "user_1", ttl_s=60, now=clock.now)
    await verifier.verify(token)
    clock.advance(60 + 6)
    assert (await rejected(verifier, token)).message == "token expired"


async def test_expired_by_the_system_clock(make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(jwt_secret=SECRET, leeway_s=5)
    token = mint_dev_token(SECRET, "user_1", ttl_s=60, now=time.time() - 100)
    assert (await rejected(verifier, token)).message == "token expired"


async def test_expired_within_leeway_is_accepted(
    make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    verifier = make_verifier(jwt_secret=SECRET, leeway_s=5)
    token = mint_dev_token(SECRET, "user_1", ttl_s=60, now=clock.now)
    clock.advance(60 + 3)
    assert (await verifier.verify(token)).expires_at == clock.now - 3
    # Also by the system clock: a token that expired two seconds ago.
    recent = mint_dev_token(SECRET, "user_1", ttl_s=60, now=time.time() - 62)
    fresh = make_verifier(jwt_secret=SECRET, leeway_s=5)
    clock.now = time.time()
    await fresh.verify(recent)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_not_yet_valid(make_verifier: MakeVerifier, clock: FakeClock, claim: str) -> None:
    verifier = make_verifier(jwt_secret=SECRET, leeway_s=5)
    future = jwt.encode(claims(**{claim: int(clock.now) + 60}), SECRET, algorithm="HS256")
    assert (await rejected(verifier, future)).message == "token not yet valid"
    within_leeway = jwt.encode(claims(**{claim: int(clock.now) + 3}), SECRET, algorithm="HS256")
    await verifier.verify(within_leeway)
    # A verifier whose clock runs behind sees a fresh token as not yet valid.
    clock.advance(-60)
    now = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert (await rejected(verifier, now)).message == "token not yet valid"


# -- required and checked claims --------------------------------------------------------------


@pytest.mark.parametrize("missing", ["exp", "sub"])
async def test_missing_required_claim(
    make_verifier: MakeVerifier, clock: FakeClock, missing: str
) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    payload = claims()
    del payload[missing]
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    assert (await rejected(verifier, token)).message == f"token lacks the {missing} claim"


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": ""},
        {"sub": "x" * 129},
        {"sub": 123},
        {"sub": " user_1"},
        {"sub": "user\n1"},
        {"exp": "9999999999"},
        {"exp": True},
        {"exp": 10**40},
        {"nbf": "0"},
        {"iat": [1]},
    ],
)
async def test_bad_claim_values(
    make_verifier: MakeVerifier, clock: FakeClock, changes: dict[str, Any]
) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    token = jwt.encode(claims() | changes, SECRET, algorithm="HS256")
    await rejected(verifier, token)


async def test_user_id_of_128_characters_is_accepted(
    make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    token = mint_dev_token(SECRET, "u" * 128, now=clock.now)
    assert (await verifier.verify(token)).user_id == "u" * 128


async def test_issuer(make_verifier: MakeVerifier, clock: FakeClock) -> None:
    verifier = make_verifier(jwt_secret=SECRET, issuer=ISSUER)
    good = mint_dev_token(SECRET, "u", now=clock.now, extra_claims={"iss": ISSUER})
    await verifier.verify(good)
    wrong = mint_dev_token(SECRET, "u", now=clock.now, extra_claims={"iss": "https://evil.test"})
    assert (await rejected(verifier, wrong)).message == "token issuer not accepted"
    missing = mint_dev_token(SECRET, "u", now=clock.now)
    assert (await rejected(verifier, missing)).message == "token lacks the iss claim"


async def test_authorized_parties(make_verifier: MakeVerifier, clock: FakeClock) -> None:
    parties = ("https://app.mentara.example", "https://admin.mentara.example")
    verifier = make_verifier(jwt_secret=SECRET, authorized_parties=parties)
    for azp in parties:
        await verifier.verify(mint_dev_token(SECRET, "u", now=clock.now, extra_claims={"azp": azp}))
    missing = mint_dev_token(SECRET, "u", now=clock.now)
    assert (await rejected(verifier, missing)).message == "token lacks the azp claim"
    for bad in ("https://evil.example", ["https://app.mentara.example"]):
        wrong = mint_dev_token(SECRET, "u", now=clock.now, extra_claims={"azp": bad})
        assert (await rejected(verifier, wrong)).message == "token authorized party not accepted"
    # Without authorized_parties the check is skipped.
    lax = make_verifier(jwt_secret=SECRET)
    await lax.verify(missing)


async def test_audience(make_verifier: MakeVerifier, clock: FakeClock) -> None:
    with_aud = mint_dev_token(SECRET, "u", now=clock.now, extra_claims={"aud": "mentara"})
    other_aud = mint_dev_token(SECRET, "u", now=clock.now, extra_claims={"aud": "other"})
    no_aud = mint_dev_token(SECRET, "u", now=clock.now)
    verifier = make_verifier(jwt_secret=SECRET, audience="mentara")
    await verifier.verify(with_aud)
    assert (await rejected(verifier, other_aud)).message == "token audience not accepted"
    assert (await rejected(verifier, no_aud)).message == "token lacks the aud claim"
    unconfigured = make_verifier(jwt_secret=SECRET)
    for token in (with_aud, other_aud, no_aud):
        await unconfigured.verify(token)


# -- forged and malformed tokens --------------------------------------------------------------


async def test_alg_none_is_rejected(make_verifier: MakeVerifier, clock: FakeClock) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    payload = claims(role="admin")
    for alg in ("none", "None", "NONE"):
        token = hand_made({"alg": alg, "typ": "JWT"}, payload, lambda _: b"")
        assert (await rejected(verifier, token)).message == "token algorithm not accepted"
    no_alg = hand_made({"typ": "JWT"}, payload, lambda _: b"x")
    assert (await rejected(verifier, no_alg)).message == "token algorithm not accepted"


async def test_hs256_signed_with_public_key_without_dev_secret(
    make_verifier: MakeVerifier, clock: FakeClock, jwks: JwksEndpoint, key_a: SigningKey
) -> None:
    """The RS256→HS256 confusion attack, when only the JWKS is configured."""
    jwks.publish(key_a)
    verifier = make_verifier(jwks_url=jwks.url)
    await verifier.verify(key_a.sign(claims()))  # the key itself works
    pem = key_a.public_pem()
    forged = hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": key_a.kid},
        claims(role="admin"),
        lambda data: hmac.new(pem, data, hashlib.sha256).digest(),
    )
    assert (await rejected(verifier, forged)).message == "token algorithm not accepted"


async def test_hs256_signed_with_public_key_with_dev_secret(
    make_verifier: MakeVerifier, clock: FakeClock, jwks: JwksEndpoint, key_a: SigningKey
) -> None:
    """The same attack when HS256 is enabled: HS256 only ever uses the configured secret."""
    jwks.publish(key_a)
    verifier = make_verifier(jwks_url=jwks.url, jwt_secret=SECRET)
    pem = key_a.public_pem()
    jwk_json = json.dumps(key_a.jwk()).encode()
    for material in (pem, pem.strip(), jwk_json):
        forged = hand_made(
            {"alg": "HS256", "typ": "JWT", "kid": key_a.kid},
            claims(role="admin"),
            lambda data, m=material: hmac.new(m, data, hashlib.sha256).digest(),  # type: ignore[misc]
        )
        assert (await rejected(verifier, forged)).message == "invalid token signature"
    await verifier.verify(mint_dev_token(SECRET, "u", now=clock.now))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "...",
        "x" * 9000,
        "ü.ü.ü",
        "\ud800.a.b",
        b64url(b"[1]") + "." + b64url(b"{}") + ".",
        b64url(b"not json") + "." + b64url(b"{}") + ".",
        b64url(b'{"alg":"HS256"}') + "." + b64url(b"[1]") + "." + b64url(b"sig"),
        b64url(b'{"alg":"HS256","kid":1}') + "." + b64url(b"{}") + ".",
        b64url(b'{"alg":"HS256","crit":["exp"]}') + "." + b64url(b"{}") + ".",
        b64url(b'{"alg":"HS256","b64":false,"crit":["b64"]}') + "..",
        "Bearer abc.def.ghi",
    ],
)
async def test_garbage_is_rejected(make_verifier: MakeVerifier, token: str) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    await rejected(verifier, token)


async def test_non_string_token_is_rejected(make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(jwt_secret=SECRET)
    with pytest.raises(Unauthorized):
        await verifier.verify(b"abc.def.ghi")  # type: ignore[arg-type]


# -- RS256 / ES256 via the JWKS ---------------------------------------------------------------


async def test_rs256_via_jwks(
    make_verifier: MakeVerifier, clock: FakeClock, jwks: JwksEndpoint, key_a: SigningKey
) -> None:
    jwks.publish(key_a)
    verifier = make_verifier(
        jwks_url=jwks.url, issuer=ISSUER, authorized_parties=("https://app.mentara.example",)
    )
    token = key_a.sign(
        claims(
            sub="user_2xYz",
            iss=ISSUER,
            azp="https://app.mentara.example",
            sid="sess_1",
            role="admin",
        )
    )
    principal = await verifier.verify(token)
    assert (principal.user_id, principal.is_admin, principal.claims["sid"]) == (
        "user_2xYz",
        True,
        "sess_1",
    )
    await verifier.verify(token)
    assert jwks.hits == 1


async def test_es256_via_jwks(
    make_verifier: MakeVerifier,
    clock: FakeClock,
    jwks: JwksEndpoint,
    ec_key: SigningKey,
    key_a: SigningKey,
) -> None:
    jwks.publish(key_a, ec_key)
    verifier = make_verifier(jwks_url=jwks.url)
    assert (await verifier.verify(ec_key.sign(claims()))).user_id == "user_123"
    # The EC key's kid with alg RS256 (or the RSA key's kid with ES256) names no key.
    mismatched = key_a.sign(claims(), kid=ec_key.kid)
    assert (await rejected(verifier, mismatched)).message == "unknown token signing key"


async def test_other_rsa_key_with_the_same_kid(
    make_verifier: MakeVerifier,
    clock: FakeClock,
    jwks: JwksEndpoint,
    key_a: SigningKey,
    impostor_a: SigningKey,
) -> None:
    jwks.publish(key_a)
    verifier = make_verifier(jwks_url=jwks.url)
    forged = impostor_a.sign(claims(role="admin"))
    assert (await rejected(verifier, forged)).message == "invalid token signature"


async def test_token_without_kid(
    make_verifier: MakeVerifier, clock: FakeClock, jwks: JwksEndpoint, key_a: SigningKey
) -> None:
    jwks.publish(key_a)
    verifier = make_verifier(jwks_url=jwks.url)
    token = jwt.encode(claims(), key_a.private, algorithm="RS256")
    assert (await rejected(verifier, token)).message == "token has no key id"
    assert jwks.hits == 0


async def test_unusable_jwks_entries_are_ignored(
    make_verifier: MakeVerifier,
    clock: FakeClock,
    jwks: JwksEndpoint,
    key_a: SigningKey,
    key_b: SigningKey,
) -> None:
    weak = _rsa("ins_weak", bits=1024)
    private_jwk = json.loads(RSAAlgorithm.to_jwk(key_b.private))
    jwks.document = {
        "keys": [
            key_a.jwk(use="enc"),
            {**private_jwk, "kid": key_b.kid, "use": "sig"},
            {"kty": "oct", "kid": "ins_oct", "k": b64url(SECRET.encode())},
            {"kty": "RSA", "kid": "ins_broken"},
            "not a key",
            key_b.jwk(kid="ins_list_alg", alg=["RS256"]),
            key_b.jwk(kid="ins_list_kty", kty=["RSA"]),
            key_b.jwk(kid="ins_bad_n", n=12345),
            weak.jwk(),
            key_a.jwk(kid="ins_key_a_sig"),
        ]
    }
    verifier = make_verifier(jwks_url=jwks.url)
    await verifier.verify(key_a.sign(claims(), kid="ins_key_a_sig"))
    unknown = ["ins_key_a", "ins_key_b", "ins_oct", "ins_broken", "ins_list_alg", "ins_bad_n"]
    for kid in unknown:
        assert (await rejected(verifier, key_a.sign(claims(), kid=kid))).message == (
            "unknown token signing key"
        )
    with pytest.warns(jwt.InsecureKeyLengthWarning):  # PyJWT only warns when signing
        weak_token = weak.sign(claims())
    assert (await rejected(verifier, weak_token)).message == "token signing key not accepted"
    assert jwks.hits == 1


# -- the JWKS cache ---------------------------------------------------------------------------


async def test_unknown_kid_refetches_once_after_rotation(
    make_verifier: MakeVerifier,
    clock: FakeClock,
    jwks: JwksEndpoint,
    key_a: SigningKey,
    key_b: SigningKey,
) -> None:
    jwks.publish(key_a)
    verifier = make_verifier(jwks_url=jwks.url, jwks_min_refetch_interval_s=30)
    await verifier.verify(key_a.sign(claims()))
    assert jwks.hits == 1
    jwks.publish(key_a, key_b)  # the provider rotates in key_b
    clock.advance(31)
    principal = await verifier.verify(key_b.sign(claims()))
    assert principal.user_id == "user_123"
    assert jwks.hits == 2
    await verifier.verify(key_b.sign(claims()))
    await verifier.verify(key_a.sign(claims()))
    assert jwks.hits == 2


async def test_unknown_kid_within_min_interval_does_not_refetch(
    make_verifier: MakeVerifier,
    clock: FakeClock,
    jwks: JwksEndpoint,
    key_a: SigningKey,
    key_b: SigningKey,
) -> None:
    jwks.publish(key_a)
    verifier = make_verifier(jwks_url=jwks.url, jwks_min_refetch_interval_s=30)
    await verifier.verify(key_a.sign(claims()))
    jwks.publish(key_a, key_b)
    clock.advance(10)
    assert (await rejected(verifier, key_b.sign(claims()))).message == ("unknown token signing key")
    assert jwks.hits == 1
    clock.advance(20)
    await verifier.verify(key_b.sign(claims()))
    assert jwks.hits == 2


async def test_flood_of_unknown_kids_is_rate_limited(
    make_verifier: MakeVerifier, clock: FakeClock, jwks: JwksEndpoint, key_a: SigningKey
) -> None:
    jwks.publish(key_a)
    verifier = make_verifier(jwks_url=jwks.url, jwks_min_refetch_interval_s=30)
    await verifier.verify(key_a.sign(claims()))
    clock.advance(31)
    forged = [key_a.sign(claims(), kid=f"ins_{uuid.uuid4().hex}") for _ in range(50)]
    half = len(forged) // 2
    results = await asyncio.gather(
        *(verifier.verify(t) for t in forged[:half]), return_exceptions=True
    )
    for token in forged[half:]:  # and the rest one after another
        results.append(await rejected(verifier, token))
    assert all(isinstance(r, Unauthorized) for r in results)
    assert {r.message for r in results if isinstance(r, Unauthorized)} == {
        "unknown token signing key"
    }
    assert jwks.hits == 2  # the first fetch, then at most one refetch per interval
    await verifier.verify(key_a.sign(claims()))  # the real key still works
    assert jwks.hits == 2


async def test_concurrent_verifications_share_one_fetch(
    make_verifier: MakeVerifier, clock: FakeClock, jwks: JwksEndpoint, key_a: SigningKey
) -> None:
    jwks.publish(key_a)
    jwks.delay_s = 0.05
    verifier = make_verifier(jwks_url=jwks.url)
    tokens = [key_a.sign(claims(sub=f"user_{i}")) for i in range(20)]
    principals = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert [p.user_id for p in principals] == [f"user_{i}" for i in range(20)]
    assert jwks.hits == 1


async def test_cancelled_verification_does_not_cancel_the_shared_fetch(
    make_verifier: MakeVerifier, clock: FakeClock, jwks: JwksEndpoint, key_a: SigningKey
) -> None:
    jwks.publish(key_a)
    jwks.delay_s = 0.1
    verifier = make_verifier(jwks_url=jwks.url)
    token = key_a.sign(claims())
    first = asyncio.create_task(verifier.verify(token))
    second = asyncio.create_task(verifier.verify(token))
    await asyncio.sleep(0.03)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await second).user_id == "user_123"
    assert jwks.hits == 1


async def test_keys_are_refetched_after_the_ttl(
    make_verifier: MakeVerifier,
    clock: FakeClock,
    jwks: JwksEndpoint,
    key_a: SigningKey,
    key_b: SigningKey,
) -> None:
    jwks.publish(key_a)
    verifier = make_verifier(jwks_url=jwks.url, jwks_cache_ttl_s=300)
    await verifier.verify(key_a.sign(claims()))
    jwks.publish(key_b)  # key_a is withdrawn
    clock.advance(299)
    await verifier.verify(key_a.sign(claims()))
    assert jwks.hits == 1
    clock.advance(2)
    assert (await rejected(verifier, key_a.sign(claims()))).message == ("unknown token signing key")
    assert jwks.hits == 2
    await verifier.verify(key_b.sign(claims()))


async def test_endpoint_down_after_first_fetch_serves_cached_keys(
    make_verifier: MakeVerifier,
    clock: FakeClock,
    own_jwks: JwksEndpoint,
    key_a: SigningKey,
    key_b: SigningKey,
) -> None:
    own_jwks.publish(key_a)
    verifier = make_verifier(jwks_url=own_jwks.url, jwks_cache_ttl_s=300, jwks_timeout_s=2)
    await verifier.verify(key_a.sign(claims()))
    await asyncio.to_thread(own_jwks.stop)  # connections are refused from now on
    clock.advance(301)  # stale: a refetch is attempted and fails
    assert (await verifier.verify(key_a.sign(claims()))).user_id == "user_123"
    clock.advance(31)
    assert (await rejected(verifier, key_b.sign(claims()))).message == ("unknown token signing key")
    await verifier.verify(key_a.sign(claims()))
    assert own_jwks.hits == 1


async def test_failing_endpoint_keeps_stale_keys_and_is_rate_limited(
    make_verifier: MakeVerifier, clock: FakeClock, jwks: JwksEndpoint, key_a: SigningKey
) -> None:
    jwks.publish(key_a)
    verifier = make_verifier(jwks_url=jwks.url, jwks_cache_ttl_s=300)
    await verifier.verify(key_a.sign(claims()))
    jwks.status = 503
    clock.advance(301)
    for _ in range(5):
        await verifier.verify(key_a.sign(claims()))
    assert jwks.hits == 2  # one failed refetch, then the rate limit holds
    jwks.status = 200
    clock.advance(31)
    await verifier.verify(key_a.sign(claims()))
    assert jwks.hits == 3


async def test_jwks_never_reachable(
    make_verifier: MakeVerifier, clock: FakeClock, closed_port_url: str, key_a: SigningKey
) -> None:
    verifier = make_verifier(jwks_url=closed_port_url, jwks_timeout_s=2)
    error = await rejected(verifier, key_a.sign(claims()))
    assert isinstance(error, SigningKeysUnavailable)
    assert error.message == "signing keys unavailable"
    assert error.retryable
    assert closed_port_url not in error.message
    # HS256 is still refused (not configured), and nothing about the JWKS changes that.
    assert (await rejected(verifier, mint_dev_token(SECRET, "u", now=clock.now))).message == (
        "token algorithm not accepted"
    )


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"keys": []}'),
        (200, b"<html>not json</html>"),
        (200, b'{"keys": []}'),
        (200, b'{"keys": "nope"}'),
        (200, b"[]"),
        (200, b'{"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}'),
        (200, b'{"keys": [], "pad": "' + b"x" * MAX_JWKS_BYTES + b'"}'),
        (301, b""),
    ],
)
async def test_unusable_jwks_responses_mean_no_keys(
    make_verifier: MakeVerifier,
    clock: FakeClock,
    jwks: JwksEndpoint,
    key_a: SigningKey,
    status: int,
    body: bytes,
) -> None:
    jwks.status, jwks.body = status, body
    verifier = make_verifier(jwks_url=jwks.url)
    token = key_a.sign(claims())
    assert isinstance(await rejected(verifier, token), SigningKeysUnavailable)
    assert isinstance(await rejected(verifier, token), SigningKeysUnavailable)
    assert jwks.hits == 1  # the failed fetch is rate-limited too
    jwks.status, jwks.body = 200, None
    jwks.publish(key_a)
    clock.advance(30)
    await verifier.verify(token)
    assert jwks.hits == 2


async def test_prefetch_keys(
    make_verifier: MakeVerifier,
    clock: FakeClock,
    jwks: JwksEndpoint,
    closed_port_url: str,
    key_a: SigningKey,
) -> None:
    assert await make_verifier(jwt_secret=SECRET).prefetch_keys()
    assert not await make_verifier(jwks_url=closed_port_url, jwks_timeout_s=2).prefetch_keys()
    jwks.publish(key_a)
    verifier = make_verifier(jwks_url=jwks.url)
    assert await verifier.prefetch_keys()
    assert await verifier.prefetch_keys()
    await verifier.verify(key_a.sign(claims()))
    assert jwks.hits == 1


async def test_injected_http_client_is_used_and_left_open(
    clock: FakeClock, jwks: JwksEndpoint, key_a: SigningKey
) -> None:
    import httpx

    jwks.publish(key_a)
    async with httpx.AsyncClient() as http:
        async with TokenVerifier(AuthSettings(jwks_url=jwks.url), http=http, clock=clock) as v:
            await v.verify(key_a.sign(claims()))
        assert not http.is_closed
    assert jwks.hits == 1


# -- helpers and settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER   abc.def.ghi  ", "abc.def.ghi"),
        ("  Bearer abc", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("abc.def.ghi", None),
        ("Bearer abc def", None),
        ("Bearerabc.def.ghi", None),
    ],
)
def test_token_from_authorization_header(header: str | None, token: str | None) -> None:
    assert token_from_authorization_header(header) == token


def test_mint_dev_token_contents() -> None:
    token = mint_dev_token(SECRET, "user_9", ttl_s=120, now=1_700_000_000.7)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    payload = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert payload == {
        "sub": "user_9",
        "iat": 1_700_000_000,
        "nbf": 1_700_000_000,
        "exp": 1_700_000_120,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": "short"},
        {"user_id": ""},
        {"user_id": "x" * 129},
        {"ttl_s": 0},
        {"role_claim": "a..b"},
    ],
)
def test_mint_dev_token_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"secret": SECRET, "user_id": "u"} | kwargs
    with pytest.raises(ValueError):  # noqa: PT011
        mint_dev_token(**args)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"jwt_secret": "too-short"},
        {"jwks_url": "http://clerk.example/.well-known/jwks.json"},
        {"jwks_url": "ftp://clerk.example/jwks.json"},
        {"jwks_url": "https:///jwks.json"},
        {"jwt_secret": SECRET, "authorized_parties": "https://app.example"},
        {"jwt_secret": SECRET, "role_claim": ""},
        {"jwt_secret": SECRET, "admin_role": ""},
        {"jwt_secret": SECRET, "leeway_s": -1},
        {"jwt_secret": SECRET, "jwks_timeout_s": 0},
    ],
)
def test_auth_settings_reject_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        AuthSettings(**kwargs)


def test_auth_settings_accept_production_and_loopback_urls() -> None:
    AuthSettings(jwks_url="https://clerk.mentara.example/.well-known/jwks.json")
    AuthSettings(jwks_url="http://localhost:8080/jwks.json")
    AuthSettings(jwks_url="http://[::1]:8080/jwks.json")
