"""The AsyncAPI document cannot drift from the code: every frame of a whole interview, both
directions, as it crossed a real server socket in each subprotocol, validates against the
committed ``docs/asyncapi.json``; the committed copy is what the generator writes and what
the server serves; and every frame class in ``protocol/`` has its schema and message there.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

import protocol.messages as messages
from protocol import asyncapi, client_frames, control_frames, session_events
from protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from server.config import Settings
from server.hub.keys import session_keys
from tests.contract_support import (
    ASYNCAPI_PATH,
    committed,
    frame_problems,
    problems,
    with_code_runs,
)
from tests.support import RunningServer, running_server

pytestmark = pytest.mark.timeout(90)

_CHANNELS = {
    JSON_SUBPROTOCOL: ("interviewJson", "adminWatchJson"),
    MSGPACK_SUBPROTOCOL: ("interviewMsgpack", "adminWatchMsgpack"),
}


def test_the_committed_document_is_what_the_generator_writes() -> None:
    # Adding, removing or changing a message type changes the generated document; this
    # fails until `python -m protocol.asyncapi` has rewritten docs/asyncapi.json.
    assert ASYNCAPI_PATH.read_text(encoding="utf-8") == asyncapi.render(), (
        "docs/asyncapi.json is stale: run python -m protocol.asyncapi"
    )
    assert asyncapi.main(["--check", str(ASYNCAPI_PATH)]) == 0


def test_check_mode_fails_on_a_stale_copy(tmp_path: Any) -> None:
    stale = tmp_path / "asyncapi.json"
    stale.write_text(ASYNCAPI_PATH.read_text(encoding="utf-8").replace('"auth"', '"login"', 1))
    assert asyncapi.main(["--check", str(stale)]) == 1
    assert asyncapi.main([str(stale)]) == 0
    assert asyncapi.main(["--check", str(stale)]) == 0


def _frame_classes() -> list[type[msgspec.Struct]]:
    """Every frame class defined in the frame modules behind protocol/messages.py, found by
    what it is (a struct tagged by ``type``), not by the lookup tables, so one left out of
    them is found too."""
    return [
        cls
        for module in (client_frames, control_frames, session_events)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, msgspec.Struct)
        and cls.__module__ == module.__name__
        and not cls.__name__.startswith("_")  # the abstract bases
        and cls.__struct_config__.tag_field == "type"
        and isinstance(cls.__struct_config__.tag, str)
    ]


def test_every_frame_class_in_protocol_is_in_the_committed_document() -> None:
    document = committed(ASYNCAPI_PATH)
    schemas = document["components"]["schemas"]
    classes = _frame_classes()
    assert len(classes) >= 20
    for channel in document["channels"].values():
        refs = {m["payload"]["$ref"].rsplit("/", 1)[-1] for m in channel["messages"].values()}
        for cls in classes:
            if channel["address"] == "/v1/admin/watch" and cls in (
                set(messages.CLIENT_FRAME_TYPES.values()) - set(messages.ADMIN_FRAME_TYPES.values())
            ):
                continue
            assert cls.__name__ in schemas, f"{cls.__name__} has no schema"
            assert cls.__name__ in refs, f"{cls.__name__} is no message of {channel['address']}"
            tag = cls.__struct_config__.tag
            assert schemas[cls.__name__]["properties"]["type"] == {"enum": [tag]}
    # Every message an operation names exists, and the other way round.
    for key, operation in document["operations"].items():
        channel_key = operation["channel"]["$ref"].rsplit("/", 1)[-1]
        names = {ref["$ref"].rsplit("/", 1)[-1] for ref in operation["messages"]}
        side = "client." if operation["action"] == "receive" else "server."
        assert names == {
            n for n in document["channels"][channel_key]["messages"] if n.startswith(side)
        }, key


def test_the_validator_is_not_vacuous() -> None:
    good = {"type": "interviewer.delta", "seq": 3, "ts": 1, "turn_id": "t", "text": "hi"}
    assert frame_problems("interviewJson", "server", good) == []
    for bad in (
        {**good, "seq": 0},
        {k: v for k, v in good.items() if k != "turn_id"},
        {**good, "text": 5},
        {**good, "surprise": True},
    ):
        assert frame_problems("interviewJson", "server", bad), bad
    assert frame_problems("interviewJson", "client", {"type": "watch", "session_id": "s"}) == []
    assert frame_problems("adminWatchJson", "client", {"type": "code.run", "id": "x"})
    document = committed(ASYNCAPI_PATH)
    assert problems(document, {"$ref": "#/components/schemas/Auth"}, {"type": "auth"})


class RawSocket:
    """A WebSocket that records every frame as it crossed the wire, decoded to plain data."""

    def __init__(self, ws: ClientConnection, subprotocol: str, log: list[tuple[str, str, Any]]):
        self.ws = ws
        self.subprotocol = subprotocol
        self.log = log

    def _channel(self) -> str:
        interview, admin = _CHANNELS[self.subprotocol]
        return admin if self.ws.request and "watch" in self.ws.request.path else interview

    async def send(self, frame: dict[str, Any]) -> None:
        self.log.append((self._channel(), "client", frame))
        if self.subprotocol == JSON_SUBPROTOCOL:
            await self.ws.send(json.dumps(frame))
        else:
            await self.ws.send(msgspec.msgpack.encode(frame))

    async def recv(self) -> dict[str, Any]:
        data = await asyncio.wait_for(self.ws.recv(), 20)
        if self.subprotocol == JSON_SUBPROTOCOL:
            assert isinstance(data, str), "JSON frames are text frames"
            frame = json.loads(data)
        else:
            assert isinstance(data, bytes), "MessagePack frames are binary frames"
            frame = msgspec.msgpack.decode(data)
        assert isinstance(frame, dict)
        self.log.append((self._channel(), "server", frame))
        return frame

    async def until(self, stop: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        frames = []
        while True:
            frames.append(await self.recv())
            if stop(frames[-1]):
                return frames


@contextlib.asynccontextmanager
async def _open_socket(
    server: RunningServer, subprotocol: str, token: str, log: list[Any], path: str
) -> AsyncIterator[RawSocket]:
    async with connect(
        server.ws_url(path), subprotocols=[Subprotocol(subprotocol)], proxy=None
    ) as ws:
        assert ws.subprotocol == subprotocol
        sock = RawSocket(ws, subprotocol, log)
        await sock.send({"type": "auth", "token": token})
        assert (await sock.recv())["type"] == "welcome"
        yield sock


def _turn_ends(n: int) -> Callable[[dict[str, Any]], bool]:
    seen = 0

    def stop(frame: dict[str, Any]) -> bool:
        nonlocal seen
        if frame["type"] == "interviewer.turn.end":
            seen += 1
        return seen >= n

    return stop


def _is(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: bool(frame["type"] == kind)


@pytest.mark.parametrize("subprotocol", [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL])
async def test_every_frame_of_a_whole_interview_validates(
    settings: Settings, subprotocol: str
) -> None:
    fast = with_code_runs(settings.with_(offline_tokens_per_s=300.0, coalesce_ms=5.0))
    log: list[tuple[str, str, Any]] = []
    async with running_server(fast) as server:
        token = server.token(f"contract-{subprotocol}")
        async with _open_socket(server, subprotocol, token, log, "/v1/interview") as c:
            await c.send({"type": "ping", "id": "p1"})
            await c.until(_is("ack"))
            await c.send({"type": "no.such.type", "id": "x1"})
            await c.until(_is("error"))
            await c.send({"type": "session.start", "id": "s1", "track": "coding",
                          "language": "python", "question_id": "two-sum"})  # fmt: skip
            frames = await c.until(_turn_ends(2))
            session_id = next(f for f in frames if f["type"] == "session.started")["session_id"]
            await c.send({"type": "candidate.message", "id": "m1", "text": "Can it be empty?"})
            await c.until(_turn_ends(1))
            # Interrupted mid-turn (or acked after the turn: either way the frames are valid).
            await c.send({"type": "candidate.message", "id": "m2", "text": "I'm stuck, a hint?"})
            await c.until(_is("interviewer.delta"))
            await c.send({"type": "interviewer.interrupt", "id": "i1"})
            await c.until(_turn_ends(1))
            source = "def two_sum(nums, target):\n    return []\n"
            await c.send({"type": "code.update", "id": "v1", "language": "python",
                          "source": source})  # fmt: skip
            await c.send({"type": "code.run", "id": "r1"})
            await c.until(_is("code.result"))
            last_seq = max(f["seq"] for _, d, f in log if d == "server" and "seq" in f
                           and f["type"] not in ("ack",))  # fmt: skip

        # A second device resumes from the last event the first saw.
        async with _open_socket(server, subprotocol, token, log, "/v1/interview") as c:
            await c.send({"type": "session.resume", "session_id": session_id,
                          "last_seq": max(0, last_seq - 3)})  # fmt: skip
            await c.until(_is("resumed"))
            await c.send({"type": "session.end", "id": "e1"})
            await c.until(_is("report.ready"))

        # The admin watches the ended session from the start.
        admin = server.token("contract-admin", admin=True)
        async with _open_socket(server, subprotocol, admin, log, "/v1/admin/watch") as w:
            await w.send({"type": "watch", "session_id": session_id, "last_seq": 0})
            await w.until(_is("report.ready"))

    # History trimmed past the client's last_seq: a snapshot instead of a replay.
    redis = aioredis.from_url(fast.redis_url or "")
    await redis.xtrim(session_keys(fast.redis_prefix, session_id).stream, maxlen=3)
    await redis.aclose()
    conn = await asyncpg.connect(fast.database_url)
    await conn.execute("DELETE FROM session_events WHERE session_id = $1 AND seq <= 5", session_id)
    await conn.close()
    async with (
        running_server(fast) as other,
        _open_socket(other, subprotocol, token, log, "/v1/interview") as c,
    ):
        await c.send({"type": "session.resume", "session_id": session_id, "last_seq": 0})
        await c.until(_is("snapshot"))

    # The one frame sent to provoke an `error` is the one frame the document refuses.
    failures = [
        f"{direction} {frame.get('type')} on {channel}: {problem}"
        for channel, direction, frame in log
        for problem in frame_problems(channel, direction, frame)
    ]
    channel = _CHANNELS[subprotocol][0]
    assert failures == [
        f"client no.such.type on {channel}: no client message 'no.such.type' on {channel}"
    ]
    seen = {(d, f["type"]) for _, d, f in log if f["type"] != "no.such.type"}
    assert {("client", t) for t in messages.CLIENT_FRAME_TYPES} <= seen
    assert {("server", t) for t in messages.SERVER_FRAME_TYPES} <= seen, {
        ("server", t) for t in messages.SERVER_FRAME_TYPES
    } - seen
    assert len(log) > 60


async def test_the_server_serves_the_committed_document(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        response = await http.get("/v1/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == ASYNCAPI_PATH.read_text(encoding="utf-8")
    document = response.json()
    assert document["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses == {"/v1/interview", "/v1/admin/watch"}
    content_types = {
        m["contentType"] for c in document["channels"].values() for m in c["messages"].values()
    }
    assert content_types == {"application/json", "application/msgpack"}
