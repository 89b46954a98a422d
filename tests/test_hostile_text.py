"""Hostile text over real sockets, real Postgres: stored or refused, never half-stored.

U+0000 and lone surrogates cannot be stored (Postgres text and jsonb refuse U+0000; UTF-8
cannot encode a surrogate). From a client they are refused at decode with ``invalid_field``;
from the candidate's code (its output, its exceptions, its return values) they become
U+FFFD before the event is appended. Either way every event streamed is in the export as
streamed, and another user's session never notices (issue 10, part 4).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.client import ConnectionClosedByServer, InterviewClient, open_client
from protocol.codec import JSON, JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from protocol.errors import ErrorCode
from protocol.messages import (
    Ack,
    CandidateSaid,
    CodeResult,
    Error,
    InterviewerTurnEnd,
    ServerFrame,
    SessionEvent,
    SessionStart,
    SessionStarted,
)
from protocol.storable import REPLACEMENT, is_storable
from server.config import Settings
from tests.interview_support import read_until
from tests.support import RunningServer, running_server

# Candidate code that prints U+0000 and raises with it, and code whose output and results
# hold lone surrogates (bytes that are a surrogate's three-byte form; a returned string).
PRINTS_NUL = r"""
def two_sum(nums, target):
    print("nul:\x00:", flush=True)
    raise ValueError("bad \x00 value")
"""
PRINTS_SURROGATES = r"""
import sys
def two_sum(nums, target):
    sys.stdout.buffer.write(b"surrogate:\xed\xa0\x80:\x00")
    sys.stdout.buffer.flush()
    if target == 9:
        raise ValueError("lone \ud800")
    return "\x00\udfff"
"""


@pytest.fixture
async def fast_server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running_server(settings.with_(offline_tokens_per_s=400.0, coalesce_ms=5.0)) as s:
        yield s


def hostile_payload(client: InterviewClient, obj: dict[str, Any]) -> bytes | str:
    """``obj`` as a hostile client sends it: JSON with ``\\u`` escapes for U+0000 and lone
    surrogates, MessagePack with a surrogate's three-byte form."""
    if client.codec.is_text:
        return json.dumps(obj)
    packed: bytes = msgpack.Packer(unicode_errors="surrogatepass").pack(obj)
    return packed


_FRAME_ID: Any = object()


async def exchange(
    client: InterviewClient, frame: dict[str, Any], ref: str | None = _FRAME_ID
) -> tuple[Ack | Error, list[ServerFrame]]:
    """Send ``frame`` (a wire object, hostile or not) and read up to the ``ack`` or ``error``
    answering it (``ref``: the frame's ``id`` unless given; None for an error without one);
    returns it and every frame read before."""
    if ref is _FRAME_ID:
        ref = frame.get("id")
    await client.send_raw(hostile_payload(client, frame))
    before: list[ServerFrame] = []
    async with asyncio.timeout(30):
        while True:
            reply = await client.recv(timeout=None)
            if isinstance(reply, Ack | Error) and (reply.ref if reply.ref else None) == ref:
                return reply, before
            before.append(reply)


async def start(client: InterviewClient, start_id: str = "start") -> tuple[str, list[ServerFrame]]:
    reply, frames = await exchange(
        client,
        {"type": "session.start", "id": start_id, "track": "coding", "question_id": "two-sum"},
    )
    assert isinstance(reply, Ack), reply
    frames += await read_until(client, lambda f: isinstance(f, InterviewerTurnEnd), timeout=30)
    started = next(f for f in frames if isinstance(f, SessionStarted))
    return started.session_id, frames


def on_the_wire(frames: list[ServerFrame]) -> dict[int, Any]:
    """Each event streamed, by seq, as the JSON object the export holds."""
    return {f.seq: json.loads(JSON.encode(f)) for f in frames if isinstance(f, SessionEvent)}


async def exported(server: RunningServer, user: str, session_id: str) -> dict[int, Any]:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        response = await http.get(
            "/v1/me/export", headers={"Authorization": f"Bearer {server.token(user)}"}
        )
    assert response.status_code == 200, response.text
    (session,) = [s for s in json.loads(response.content)["sessions"] if s["id"] == session_id]
    return {e["seq"]: e for e in session["events"]}


async def assert_streamed_is_exported(
    server: RunningServer, user: str, session_id: str, frames: list[ServerFrame]
) -> None:
    """Every event the client saw is in the user's export, exactly as it was streamed.

    Deltas nobody acks reach Postgres with the write-behind (up to its lazy delay, longer
    on a loaded machine): the export is read again until they are there, for up to 10 s."""
    streamed = on_the_wire(frames)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        stored = await exported(server, user, session_id)
        missing = sorted(set(streamed) - set(stored))
        if not missing or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    assert not missing, f"streamed but not stored: {missing}"
    assert {seq: stored[seq] for seq in streamed} == streamed


async def still_usable(client: InterviewClient, ref: str = "still-there") -> None:
    reply, _ = await exchange(client, {"type": "ping", "id": ref})
    assert isinstance(reply, Ack)
    assert client.close_code is None


@pytest.mark.parametrize("subprotocol", [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL])
async def test_unstorable_client_text_is_refused_and_the_socket_stays(
    fast_server: RunningServer, subprotocol: str
) -> None:
    server, user = fast_server, f"hostile-{subprotocol}"
    async with open_client(server.ws_url(), token=server.token(user), subprotocol=subprotocol) as c:
        session_id, frames = await start(c)
        attacks: list[tuple[dict[str, Any], str, str | None]] = [
            ({"type": "candidate.message", "id": "m1", "text": "a\x00b"}, "text", "m1"),
            ({"type": "candidate.message", "id": "m2", "text": "broken \ud83d"}, "text", "m2"),
            (
                {"type": "code.update", "id": "c1", "language": "python", "source": "x = '\x00'"},
                "source",
                "c1",
            ),
            (
                {"type": "code.update", "id": "c2", "language": "py\udfff", "source": ""},
                "language",
                "c2",
            ),
            ({"type": "code.run", "id": "\ud800"}, "id", None),
            ({"type": "code.run", "id": "r\x00"}, "id", "r\x00"),
        ]
        for frame, field, ref in attacks:
            reply, before = await exchange(c, frame, ref=ref)
            frames += before
            assert isinstance(reply, Error), (frame, reply)
            assert (reply.code, reply.field) == (ErrorCode.INVALID_FIELD, field)
            assert c.close_code is None
        # Nothing of them was applied, and the session goes on.
        reply, before = await exchange(c, {"type": "candidate.message", "id": "m1", "text": "ok"})
        assert isinstance(reply, Ack)
        frames += before
        frames += await read_until(c, lambda f: isinstance(f, InterviewerTurnEnd), timeout=30)
        await still_usable(c)
    said = [f.text for f in frames if isinstance(f, CandidateSaid)]
    assert said == ["ok"]
    await assert_streamed_is_exported(server, user, session_id, frames)


async def test_unstorable_runner_output_becomes_replacement_characters(
    fast_server: RunningServer,
) -> None:
    server, user = fast_server, "prints-nul"
    async with open_client(server.ws_url(), token=server.token(user)) as c:
        session_id, frames = await start(c)
        results: list[CodeResult] = []
        for n, source in enumerate((PRINTS_NUL, PRINTS_SURROGATES)):
            reply, before = await exchange(
                c, {"type": "code.update", "id": f"v{n}", "language": "python", "source": source}
            )
            assert isinstance(reply, Ack), reply
            frames += before
            reply, before = await exchange(c, {"type": "code.run", "id": f"run{n}"})
            assert isinstance(reply, Ack), reply
            frames += before
            (result,) = [f for f in frames if isinstance(f, CodeResult) and f.seq == reply.seq]
            results.append(result)
        await still_usable(c)
    assert len(results) == 2
    for result in results:
        texts = [
            result.stdout_tail,
            *(t.message for t in result.tests if isinstance(t.message, str)),
        ]
        assert all(is_storable(text) for text in texts), texts
        assert any(REPLACEMENT in text for text in texts), texts
    assert "nul:" + REPLACEMENT in results[0].stdout_tail
    await assert_streamed_is_exported(server, user, session_id, frames)


async def test_a_bystander_never_notices_hostile_text(fast_server: RunningServer) -> None:
    """Another user sends U+0000 and lone surrogates in messages and code, and runs code that
    prints them, while the bystander's interview streams: every event the bystander saw is in
    its export, each of its inputs is acked, its socket stays open; the attacker gets
    ``invalid_field`` or acks, never ``internal``."""
    server = fast_server
    rounds = 5
    attacker_replies: list[Ack | Error] = []

    async with (
        open_client(server.ws_url(), token=server.token("bystander")) as b,
        open_client(
            server.ws_url(), token=server.token("attacker"), subprotocol=MSGPACK_SUBPROTOCOL
        ) as a,
    ):
        b_session, b_frames = await start(b)
        a_session, _ = await start(a)

        async def bystander() -> list[Ack | Error]:
            replies: list[Ack | Error] = []
            for n in range(rounds):
                frame = {"type": "candidate.message", "id": f"m{n}", "text": f"question {n}?"}
                reply, before = await exchange(b, frame)
                replies.append(reply)
                b_frames.extend(before)
                # The reply's turn may end before the ack (which waits for Postgres): wait
                # only if its end was not among the frames read up to the ack.
                said = reply.seq if isinstance(reply, Ack) and isinstance(reply.seq, int) else 0

                def replied(f: ServerFrame, said: int = said) -> bool:
                    return isinstance(f, InterviewerTurnEnd) and f.seq > said

                if not any(replied(f) for f in before):
                    b_frames.extend(await read_until(b, replied, timeout=30))
                source = f"def two_sum(nums, target):\n    return []  # v{n}\n"
                frame = {
                    "type": "code.update",
                    "id": f"c{n}",
                    "language": "python",
                    "source": source,
                }
                reply, before = await exchange(b, frame)
                replies.append(reply)
                b_frames.extend(before)
            return replies

        async def attacker() -> None:
            nonlocal a
            frames: list[dict[str, Any]] = []
            for n in range(rounds):
                frames += [
                    {"type": "candidate.message", "id": f"nul{n}", "text": f"hi\x00{n}"},
                    {"type": "code.update", "id": f"src{n}", "language": "python", "source": f"#\x00{n}"},
                    {"type": "code.update", "id": f"pn{n}", "language": "python", "source": PRINTS_NUL + f"# {n}\n"},
                    {"type": "code.run", "id": f"rn{n}"},
                    {"type": "candidate.message", "id": f"sur{n}", "text": f"\udc00{n}"},
                    {"type": "code.update", "id": f"ps{n}", "language": "python", "source": PRINTS_SURROGATES + f"# {n}\n"},
                    {"type": "code.run", "id": f"rs{n}"},
                ]  # fmt: skip
            for frame in frames:
                try:
                    reply, _ = await exchange(a, frame)
                except ConnectionClosedByServer:
                    # Before the fix a rejected batch closed the socket with 1011: come back.
                    attacker_replies.append(
                        Error(code=ErrorCode.INTERNAL, message="closed", retryable=True)
                    )
                    a = await InterviewClient.connect(
                        server.ws_url(),
                        token=server.token("attacker"),
                        subprotocol=MSGPACK_SUBPROTOCOL,
                    )
                    await a.send(SessionStart(id="start", track="coding", question_id="two-sum"))
                    continue
                attacker_replies.append(reply)

        bystander_replies, _ = await asyncio.gather(bystander(), attacker())
        reply, before = await exchange(b, {"type": "ping", "id": "last"})
        b_frames += before
        assert b.close_code is None
        assert isinstance(reply, Ack)

    refused = [r for r in bystander_replies if not isinstance(r, Ack)]
    assert not refused, refused
    await assert_streamed_is_exported(server, "bystander", b_session, b_frames)
    codes = {r.code if isinstance(r, Error) else "ack" for r in attacker_replies}
    assert codes <= {"ack", ErrorCode.INVALID_FIELD}, attacker_replies
    assert a_session


# --- properties: arbitrary Unicode in every string field, through a real socket -------------

PROPERTY = settings(
    max_examples=15,
    derandomize=True,  # the same examples every run
    database=None,
    deadline=None,  # a real socket and Postgres: each exchange is bounded by its own timeout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
unstorable_char = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"])
hostile_chars = (
    st.characters(exclude_categories=())  # every code point, surrogates included
    | unstorable_char
    | st.sampled_from(["\U0001f600", "\U0010ffff", "\x7f", "\x1b", "\u2028", "\ufeff", "\\", '"'])
)
STRING_FIELDS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "auth": ({"type": "auth", "token": "t", "id": "i"}, ("token", "id")),
    "session.start": (
        {"type": "session.start", "id": "i", "track": "coding", "language": "py", "question_id": "q"},
        ("id", "language", "question_id"),
    ),
    "session.resume": (
        {"type": "session.resume", "session_id": "s", "last_seq": 0, "id": "i"},
        ("session_id", "id"),
    ),
    "candidate.message": ({"type": "candidate.message", "id": "i", "text": "t"}, ("id", "text")),
    "code.update": (
        {"type": "code.update", "id": "i", "language": "python", "source": "s"},
        ("id", "language", "source"),
    ),
    "code.run": ({"type": "code.run", "id": "i"}, ("id",)),
    "interviewer.interrupt": ({"type": "interviewer.interrupt", "id": "i"}, ("id",)),
    "session.end": ({"type": "session.end", "id": "i"}, ("id",)),
    "ping": ({"type": "ping", "id": "i"}, ("id",)),
    "watch": ({"type": "watch", "session_id": "s", "last_seq": 0, "id": "i"}, ("session_id", "id")),
}  # fmt: skip


@st.composite
def hostile_strings(draw: st.DrawFn, *, unstorable: bool) -> str:
    """1 to 40 arbitrary characters; with ``unstorable``, at least one U+0000 or surrogate."""
    text = draw(st.text(hostile_chars, min_size=1, max_size=40))
    if unstorable and is_storable(text):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(unstorable_char) + text[at:]
    return text


def reply_ref(frame: dict[str, Any]) -> str | None:
    frame_id = frame.get("id")
    return (
        frame_id
        if isinstance(frame_id, str)
        and frame_id.encode("utf-8", "surrogatepass") == frame_id.encode("utf-8", "replace")
        else None
    )


@dataclass
class LiveSession:
    client: InterviewClient
    user: str
    session_id: str
    frames: list[ServerFrame]
    durable_seq: int = 1


@pytest.fixture(params=[JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL])
async def live(
    fast_server: RunningServer, request: pytest.FixtureRequest
) -> AsyncIterator[LiveSession]:
    user = f"prop-{uuid.uuid4().hex[:12]}"  # a start id is per user, and the database per run
    async with open_client(
        fast_server.ws_url(), token=fast_server.token(user), subprotocol=request.param
    ) as c:
        session_id, frames = await start(c)
        yield LiveSession(c, user, session_id, frames)


@PROPERTY
@given(data=st.data(), frame_type=st.sampled_from(sorted(STRING_FIELDS)))
async def test_unstorable_text_in_any_field_is_refused_over_the_socket(
    live: LiveSession, frame_type: str, data: st.DataObject
) -> None:
    frame, names = STRING_FIELDS[frame_type]
    bad = data.draw(st.sets(st.sampled_from(names), min_size=1), label="unstorable fields")
    sent = {**frame, **{n: data.draw(hostile_strings(unstorable=n in bad), label=n) for n in names}}
    reply, before = await exchange(live.client, sent, ref=reply_ref(sent))
    live.frames += before
    assert isinstance(reply, Error), reply
    assert reply.code == ErrorCode.INVALID_FIELD
    assert reply.field in {n for n in names if not is_storable(sent[n])}
    await still_usable(live.client)


@PROPERTY
@given(data=st.data())
async def test_arbitrary_text_is_acked_or_refused_and_streamed_as_stored(
    live: LiveSession, fast_server: RunningServer, data: st.DataObject
) -> None:
    message = {
        "type": "candidate.message",
        "id": data.draw(hostile_strings(unstorable=False), label="message id"),
        "text": data.draw(hostile_strings(unstorable=False), label="text"),
    }
    code = {
        "type": "code.update",
        "id": data.draw(hostile_strings(unstorable=False), label="code id"),
        "language": data.draw(
            hostile_strings(unstorable=False).filter(lambda s: len(s) <= 32), label="language"
        ),
        "source": data.draw(hostile_strings(unstorable=False), label="source"),
    }
    for frame in (message, code):
        reply, before = await exchange(live.client, frame, ref=reply_ref(frame))
        live.frames += before
        unstorable = {n for n in frame if n != "type" and not is_storable(frame[n])}
        if unstorable:
            assert isinstance(reply, Error), reply
            assert (reply.code, reply.field in unstorable) == (ErrorCode.INVALID_FIELD, True)
        else:
            assert isinstance(reply, Ack), (frame, reply)
            if isinstance(reply.seq, int):
                live.durable_seq = max(live.durable_seq, reply.seq)
    assert live.client.close_code is None
    # Every event streamed up to the last ack is durable: the export holds it as streamed.
    durable = [
        f for f in live.frames if not isinstance(f, SessionEvent) or f.seq <= live.durable_seq
    ]
    await assert_streamed_is_exported(fast_server, live.user, live.session_id, durable)
