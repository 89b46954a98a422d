"""The protocol v1 codecs: explicit wire examples, round trips, hostile input, interop."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import msgpack
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from protocol import messages as m
from protocol.codec import (
    JSON,
    JSON_SUBPROTOCOL,
    MSGPACK,
    MSGPACK_SUBPROTOCOL,
    Codec,
    negotiate,
)
from protocol.errors import ErrorCode, FrameError

CODECS = [pytest.param(JSON, id="json"), pytest.param(MSGPACK, id="msgpack")]
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def wire(codec: Codec, obj: object) -> bytes | str:
    """A payload as a socket would deliver it: JSON as text, MessagePack as bytes."""
    data = codec.encode_raw(obj)
    return data.decode() if codec.is_text else data


def frame_error(decode: Any, data: bytes | str) -> FrameError:
    with pytest.raises(FrameError) as caught:
        decode(data)
    return caught.value


# --- explicit examples: one per message type, with its exact wire object ---------------------

QUESTION = m.Question(
    id="two-sum",
    title="Two Sum",
    prompt="Find two numbers that add up to a target.",
    examples=[m.Example(input="[2,7,11,15], 9", output="[0,1]", explanation="2 + 7 = 9")],
)
QUESTION_WIRE = {
    "id": "two-sum",
    "title": "Two Sum",
    "prompt": "Find two numbers that add up to a target.",
    "examples": [{"input": "[2,7,11,15], 9", "output": "[0,1]", "explanation": "2 + 7 = 9"}],
}

CLIENT_EXAMPLES: list[tuple[msgspec.Struct, dict[str, Any]]] = [
    (m.Auth(token="jwt"), {"type": "auth", "token": "jwt"}),
    (
        m.SessionStart(id="s1", track="coding", language="python", question_id="two-sum"),
        {
            "type": "session.start",
            "id": "s1",
            "track": "coding",
            "language": "python",
            "question_id": "two-sum",
        },
    ),
    (
        m.SessionResume(session_id="abc", last_seq=0),
        {"type": "session.resume", "session_id": "abc", "last_seq": 0},
    ),
    (
        m.CandidateMessage(id="c1", text="I'd use a hash map."),
        {"type": "candidate.message", "id": "c1", "text": "I'd use a hash map."},
    ),
    (
        m.CodeUpdate(id="u1", language="python", source=""),
        {"type": "code.update", "id": "u1", "language": "python", "source": ""},
    ),
    (m.CodeRun(id="r1"), {"type": "code.run", "id": "r1"}),
    (m.InterviewerInterrupt(), {"type": "interviewer.interrupt"}),
    (m.SessionEnd(id="e1"), {"type": "session.end", "id": "e1"}),
    (m.Ping(id="p1"), {"type": "ping", "id": "p1"}),
    (m.Watch(session_id="abc"), {"type": "watch", "session_id": "abc"}),
]

SERVER_EXAMPLES: list[tuple[msgspec.Struct, dict[str, Any]]] = [
    (
        m.Welcome(server="0.1.0", heartbeat_s=20, max_frame_bytes=262144, user_id="u1"),
        {
            "type": "welcome",
            "protocol": 1,
            "server": "0.1.0",
            "heartbeat_s": 20,
            "max_frame_bytes": 262144,
            "user_id": "u1",
        },
    ),
    (m.Ack(ref="c1", seq=7), {"type": "ack", "ref": "c1", "seq": 7}),
    (
        m.Error(
            code=ErrorCode.INVALID_FIELD, message="bad", ref="c1", retryable=False, field="text"
        ),
        {
            "type": "error",
            "code": "invalid_field",
            "message": "bad",
            "ref": "c1",
            "retryable": False,
            "field": "text",
        },
    ),
    (m.Pong(), {"type": "pong"}),
    (
        m.Resumed(session_id="abc", replayed=3),
        {"type": "resumed", "session_id": "abc", "replayed": 3},
    ),
    (
        m.Snapshot(
            session_id="abc",
            seq=9,
            state=m.SnapshotState(
                status="active",
                track="coding",
                question=QUESTION,
                phase="coding",
                transcript=[m.TranscriptEntry(turn_id="t1", role="interviewer", text="Hi", seq=4)],
                code=None,
                scores={"communication": 2.5},
            ),
        ),
        {
            "type": "snapshot",
            "session_id": "abc",
            "seq": 9,
            "state": {
                "status": "active",
                "track": "coding",
                "question": QUESTION_WIRE,
                "phase": "coding",
                "transcript": [{"turn_id": "t1", "role": "interviewer", "text": "Hi", "seq": 4}],
                "code": None,
                "scores": {"communication": 2.5},
            },
        },
    ),
    (
        m.SessionStarted(
            seq=1,
            ts=1700000000000,
            session_id="abc",
            track="coding",
            language="python",
            question=QUESTION,
            rubric=m.Rubric(dimensions=["communication", "correctness"], scale=[0.0, 4.0]),
            limits=m.Limits(duration_s=2700),
        ),
        {
            "type": "session.started",
            "seq": 1,
            "ts": 1700000000000,
            "session_id": "abc",
            "track": "coding",
            "language": "python",
            "question": QUESTION_WIRE,
            "rubric": {"dimensions": ["communication", "correctness"], "scale": [0.0, 4.0]},
            "limits": {"duration_s": 2700},
        },
    ),
    (
        m.PhaseChanged(seq=2, ts=5, name="intro", deadline_ts=600005),
        {"type": "phase", "seq": 2, "ts": 5, "name": "intro", "deadline_ts": 600005},
    ),
    (
        m.CandidateSaid(seq=3, ts=6, turn_id="t2", text="Hello"),
        {"type": "candidate.message", "seq": 3, "ts": 6, "turn_id": "t2", "text": "Hello"},
    ),
    (
        m.InterviewerTurnStart(seq=4, ts=7, turn_id="t3"),
        {"type": "interviewer.turn.start", "seq": 4, "ts": 7, "turn_id": "t3"},
    ),
    (
        m.InterviewerDelta(seq=5, ts=8, turn_id="t3", text="Let's "),
        {"type": "interviewer.delta", "seq": 5, "ts": 8, "turn_id": "t3", "text": "Let's "},
    ),
    (
        m.InterviewerTurnEnd(seq=6, ts=9, turn_id="t3", stop_reason="interrupted"),
        {
            "type": "interviewer.turn.end",
            "seq": 6,
            "ts": 9,
            "turn_id": "t3",
            "stop_reason": "interrupted",
        },
    ),
    (
        m.CodeSnapshot(seq=7, ts=10, version=1, language="python", sha256=SHA, source=""),
        {
            "type": "code.snapshot",
            "seq": 7,
            "ts": 10,
            "version": 1,
            "language": "python",
            "sha256": SHA,
            "source": "",
        },
    ),
    (
        m.CodeResult(
            seq=8,
            ts=11,
            run_id="run1",
            version=1,
            status="failed",
            tests=[
                m.TestOutcome(name="example 1", passed=True),
                m.TestOutcome(name="example 2", passed=False, message="expected [0,1]"),
            ],
            stdout_tail="",
            duration_ms=42,
        ),
        {
            "type": "code.result",
            "seq": 8,
            "ts": 11,
            "run_id": "run1",
            "version": 1,
            "status": "failed",
            "tests": [
                {"name": "example 1", "passed": True},
                {"name": "example 2", "passed": False, "message": "expected [0,1]"},
            ],
            "stdout_tail": "",
            "duration_ms": 42,
        },
    ),
    (
        m.ScoreDelta(
            seq=9,
            ts=12,
            dimension="correctness",
            delta=-0.5,
            score=2.0,
            reason="off by one",
            evidence=[7, 8],
        ),
        {
            "type": "score.delta",
            "seq": 9,
            "ts": 12,
            "dimension": "correctness",
            "delta": -0.5,
            "score": 2.0,
            "reason": "off by one",
            "evidence": [7, 8],
        },
    ),
    (
        m.SessionEnded(seq=10, ts=13, reason="time_up"),
        {"type": "session.ended", "seq": 10, "ts": 13, "reason": "time_up"},
    ),
    (
        m.ReportReady(seq=11, ts=14, report_id="rep1", overall=3.25, summary="Solid."),
        {
            "type": "report.ready",
            "seq": 11,
            "ts": 14,
            "report_id": "rep1",
            "overall": 3.25,
            "summary": "Solid.",
        },
    ),
]


def example_of(cls: type[msgspec.Struct]) -> dict[str, Any]:
    """A fresh copy of the wire object of the example of ``cls``."""
    for msg, expected in SERVER_EXAMPLES:
        if type(msg) is cls:
            result: dict[str, Any] = json.loads(json.dumps(expected))
            return result
    raise LookupError(cls)


def decode_independently(codec: Codec, data: bytes) -> Any:
    """Decode with a library other than msgspec."""
    return json.loads(data) if codec.is_text else msgpack.unpackb(data, raw=False)


def test_examples_cover_every_message_type() -> None:
    assert {m.wire_type(msg) for msg, _ in CLIENT_EXAMPLES} == set(m.CLIENT_FRAME_TYPES)
    assert {m.wire_type(msg) for msg, _ in SERVER_EXAMPLES} == set(m.SERVER_FRAME_TYPES)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("msg", "expected"), CLIENT_EXAMPLES, ids=lambda x: str(x)[:30])
def test_client_frame_examples(codec: Codec, msg: msgspec.Struct, expected: dict[str, Any]) -> None:
    assert decode_independently(codec, codec.encode(msg)) == expected
    assert codec.decode_client(wire(codec, expected)) == msg


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("msg", "expected"), SERVER_EXAMPLES, ids=lambda x: str(x)[:30])
def test_server_frame_examples(codec: Codec, msg: msgspec.Struct, expected: dict[str, Any]) -> None:
    assert decode_independently(codec, codec.encode(msg)) == expected
    assert codec.decode_server(wire(codec, expected)) == msg


def test_type_is_the_first_key_and_json_is_utf8() -> None:
    data = JSON.encode(m.CandidateMessage(id="a", text="naïve — 😀"))
    assert data.startswith(b'{"type":"candidate.message"')
    assert json.loads(data.decode("utf-8"))["text"] == "naïve — 😀"


def test_the_same_type_decodes_by_direction() -> None:
    client = JSON.decode_client('{"type":"candidate.message","id":"a","text":"hi"}')
    assert client == m.CandidateMessage(id="a", text="hi")
    server = JSON.decode_server(
        '{"type":"candidate.message","seq":1,"ts":2,"turn_id":"t","text":"hi"}'
    )
    assert server == m.CandidateSaid(seq=1, ts=2, turn_id="t", text="hi")


@pytest.mark.parametrize("codec", CODECS)
def test_unknown_fields_are_ignored(codec: Codec) -> None:
    frame = {"type": "ping", "id": "p", "future": {"nested": [1, 2.5, None]}, "flag": True}
    assert codec.decode_client(wire(codec, frame)) == m.Ping(id="p")
    ack = {"type": "ack", "ref": "p", "new_field": "x"}
    assert codec.decode_server(wire(codec, ack)) == m.Ack(ref="p")


def test_unknown_fields_are_only_checked_for_syntax() -> None:
    # An ignored field is skipped, not converted: a number no float holds does not matter.
    assert JSON.decode_client('{"type":"ping","x":1e999}') == m.Ping()
    assert frame_error(JSON.decode_client, '{"type":"ping","x":1e}').code == ErrorCode.BAD_FRAME


def test_frame_type_tables() -> None:
    assert set(m.ADMIN_FRAME_TYPES) == {"auth", "watch", "ping"}
    assert set(m.ADMIN_FRAME_TYPES.items()) <= set(m.CLIENT_FRAME_TYPES.items())
    assert set(m.SERVER_FRAME_TYPES) == set(m.CONTROL_FRAME_TYPES) | set(m.SESSION_EVENT_TYPES)
    assert not set(m.CONTROL_FRAME_TYPES) & set(m.SESSION_EVENT_TYPES)
    for name, cls in {**m.CLIENT_FRAME_TYPES, **m.SERVER_FRAME_TYPES}.items():
        assert m.wire_type(cls) == name
        assert cls.__struct_config__.frozen


def test_negotiate() -> None:
    assert negotiate([MSGPACK_SUBPROTOCOL, JSON_SUBPROTOCOL]) == (MSGPACK, MSGPACK_SUBPROTOCOL)
    assert negotiate(["chat", JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL]) == (JSON, JSON_SUBPROTOCOL)
    assert negotiate(["chat", "mentara.v2.json"]) == (JSON, None)
    assert negotiate([]) == (JSON, None)


# --- specific errors -------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_wrong_field_type_names_the_field_and_the_ref(codec: Codec) -> None:
    err = frame_error(
        codec.decode_client, wire(codec, {"type": "candidate.message", "id": "a", "text": 5})
    )
    assert (err.code, err.field, err.ref, err.frame_type) == (
        ErrorCode.INVALID_FIELD,
        "text",
        "a",
        "candidate.message",
    )
    assert err.message == "`text` must be a string, not an integer"


@pytest.mark.parametrize("codec", CODECS)
def test_missing_field(codec: Codec) -> None:
    err = frame_error(codec.decode_client, wire(codec, {"type": "candidate.message", "id": "a"}))
    assert (err.code, err.field, err.ref) == (ErrorCode.INVALID_FIELD, "text", "a")
    assert err.message == "`text` is required"


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    ("frame", "field", "message"),
    [
        (
            {"type": "candidate.message", "id": "a", "text": "x" * (m.MAX_TEXT_LENGTH + 1)},
            "text",
            "`text` must be a string of at most 20000 characters",
        ),
        ({"type": "candidate.message", "id": "a", "text": ""}, "text", "`text` must not be empty"),
        ({"type": "code.run", "id": ""}, "id", "`id` must not be empty"),
        (
            {"type": "session.start", "id": "a", "track": "cooking"},
            "track",
            '`track` must be one of "behavioral", "coding", "system_design"',
        ),
        (
            {"type": "session.resume", "session_id": "s", "last_seq": -1},
            "last_seq",
            "`last_seq` must be an integer >= 0",
        ),
        (
            {"type": "session.resume", "session_id": "s", "last_seq": 1.0},
            "last_seq",
            "`last_seq` must be an integer, not a number",
        ),
        (
            {"type": "auth", "token": "t" * (m.MAX_TOKEN_LENGTH + 1)},
            "token",
            "`token` must be a string of at most 8192 characters",
        ),
        (
            {"type": "code.update", "id": "a", "language": "x" * 33, "source": ""},
            "language",
            "`language` must be a string of at most 32 characters",
        ),
    ],
)
def test_client_field_rules(codec: Codec, frame: dict[str, Any], field: str, message: str) -> None:
    err = frame_error(codec.decode_client, wire(codec, frame))
    assert (err.code, err.field, err.message) == (ErrorCode.INVALID_FIELD, field, message)


@pytest.mark.parametrize("codec", CODECS)
def test_nested_field_paths(codec: Codec) -> None:
    started = example_of(m.SessionStarted)
    started["question"]["examples"][0]["input"] = 1
    err = frame_error(codec.decode_server, wire(codec, started))
    assert err.field == "question.examples[0].input"
    del started["question"]["examples"][0]["input"]
    err = frame_error(codec.decode_server, wire(codec, started))
    assert (err.field, err.message) == (
        "question.examples[0].input",
        "`question.examples[0].input` is required",
    )
    snapshot = example_of(m.Snapshot)
    snapshot["state"]["phase"] = "lunch"
    err = frame_error(codec.decode_server, wire(codec, snapshot))
    assert err.field == "state.phase"
    assert err.message.startswith("`state.phase` must be one of")
    assert '"wrapup"' in err.message
    snapshot["state"]["phase"] = None
    snapshot["state"]["scores"] = {"x": "high"}
    assert frame_error(codec.decode_server, wire(codec, snapshot)).field == "state.scores[...]"


@pytest.mark.parametrize("codec", CODECS)
def test_unknown_type(codec: Codec) -> None:
    err = frame_error(codec.decode_client, wire(codec, {"type": "nope", "id": "r"}))
    assert (err.code, err.field, err.ref, err.frame_type) == (
        ErrorCode.UNKNOWN_TYPE,
        None,
        "r",
        "nope",
    )
    assert "nope" in err.message
    long_type = "x" * 1000
    err = frame_error(codec.decode_client, wire(codec, {"type": long_type}))
    assert err.code == ErrorCode.UNKNOWN_TYPE
    assert "x" * 64 in err.message
    assert "x" * 65 not in err.message
    assert err.frame_type == "x" * 64
    # Each side knows only the frames it receives.
    assert frame_error(codec.decode_server, wire(codec, {"type": "session.start"})).code == (
        ErrorCode.UNKNOWN_TYPE
    )
    assert frame_error(codec.decode_client, wire(codec, {"type": "welcome"})).code == (
        ErrorCode.UNKNOWN_TYPE
    )


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    "obj",
    [[1, 2], {"type": 3}, {"id": "a"}, {"type": None}, "ping", 7, None, {"type": ["ping"]}],
)
def test_bad_frame(codec: Codec, obj: object) -> None:
    for decode in (codec.decode_client, codec.decode_server):
        err = frame_error(decode, wire(codec, obj))
        assert (err.code, err.field, err.frame_type) == (ErrorCode.BAD_FRAME, None, None)


@pytest.mark.parametrize("codec", CODECS)
def test_bad_frame_keeps_a_string_id_as_ref(codec: Codec) -> None:
    assert frame_error(codec.decode_client, wire(codec, {"type": 3, "id": "r"})).ref == "r"
    assert frame_error(codec.decode_client, wire(codec, {"type": 3, "id": 3})).ref is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b'{"type":"ping"} {}',
        b'{"type":"ping","id":"\xff"}',
        '{"type":"ping","id":"\ud800"}',
        b'{"type":"ping","id":1' + b"0" * 5000 + b"}",
        b'{"type":"session.resume","session_id":"s","last_seq":1e999}',
        b"[" * 100_000 + b"]" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        b'{"type":"ping","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"type":"ping","x":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001,
    ],
    ids=lambda data: repr(data[:24]),
)
def test_json_bad_frames(data: bytes | str) -> None:
    for decode in (JSON.decode_client, JSON.decode_server):
        assert frame_error(decode, data).code == ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        msgpack.packb({"type": "ping"}) + b"\x00",
        b"\x91" * 100_000 + b"\xc0",
        b"\x82\xa4type\xa4ping\xa1x" + b"\x91" * 100_000 + b"\xc0",
        msgpack.packb({1: "x", "type": "ping", "id": "r"}),
        msgpack.packb({"type": b"ping"}),
        msgpack.packb({"type": msgpack.ExtType(1, b"ping")}),
        '{"type":"ping"}',
    ],
    ids=lambda data: repr(data[:24]),
)
def test_msgpack_bad_frames(data: bytes | str) -> None:
    for decode in (MSGPACK.decode_client, MSGPACK.decode_server):
        assert frame_error(decode, data).code == ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"hi", "`text` must be a string, not binary data"),
        (msgpack.ExtType(5, b"hi"), "`text` must be a string, not a MessagePack extension"),
    ],
)
def test_msgpack_wrong_kinds_are_invalid_fields(value: object, message: str) -> None:
    data = msgpack.packb({"type": "candidate.message", "id": "a", "text": value})
    err = frame_error(MSGPACK.decode_client, data)
    assert (err.code, err.field, err.ref, err.message) == (
        ErrorCode.INVALID_FIELD,
        "text",
        "a",
        message,
    )


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"type": "session.resume", "session_id": "s", "last_seq": 2**64 - 1}, "last_seq"),
        ({"type": "session.resume", "session_id": "s", "last_seq": -(2**63)}, "last_seq"),
    ],
)
def test_msgpack_integers_out_of_range(frame: dict[str, Any], field: str) -> None:
    err = frame_error(MSGPACK.decode_client, msgpack.packb(frame))
    assert (err.code, err.field) == (ErrorCode.INVALID_FIELD, field)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_rejected(value: float) -> None:
    frame = example_of(m.ScoreDelta)
    frame["score"] = value
    err = frame_error(MSGPACK.decode_server, msgpack.packb(frame))
    assert (err.code, err.field, err.message) == (
        ErrorCode.INVALID_FIELD,
        "score",
        "`score` must be a finite number",
    )


# --- strategies: valid instances of every struct ---------------------------------------------

MAX = m.MAX_SAFE_INTEGER
short_text = st.text(max_size=24)
# What a client may send: any text but U+0000 (hypothesis leaves out lone surrogates).
storable = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
frame_ids = st.text(storable, min_size=1, max_size=m.MAX_ID_LENGTH)
session_ids = st.text(storable, min_size=1, max_size=m.MAX_SESSION_ID_LENGTH)
languages = st.text(storable, min_size=1, max_size=m.MAX_LANGUAGE_LENGTH)
sources = st.text(storable, max_size=200)
seqs = st.integers(1, MAX)
counts = st.integers(0, MAX)
finite = st.floats(allow_nan=False, allow_infinity=False)
tracks = st.sampled_from(["coding", "system_design", "behavioral"])
phases = st.sampled_from(["intro", "problem", "coding", "followup", "wrapup"])


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.just(UNSET) | strategy


def small_lists(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(strategy, max_size=3)


examples = st.builds(
    m.Example, input=short_text, output=short_text, explanation=optional(short_text)
)
questions = st.builds(
    m.Question, id=short_text, title=short_text, prompt=short_text, examples=small_lists(examples)
)

CLIENT_STRATEGIES: dict[type[msgspec.Struct], st.SearchStrategy[Any]] = {
    m.Auth: st.builds(
        m.Auth,
        token=st.text(storable, min_size=1, max_size=m.MAX_TOKEN_LENGTH),
        id=optional(frame_ids),
    ),
    m.SessionStart: st.builds(
        m.SessionStart,
        id=frame_ids,
        track=tracks,
        language=optional(languages),
        question_id=optional(frame_ids),
    ),
    m.SessionResume: st.builds(
        m.SessionResume, session_id=session_ids, last_seq=counts, id=optional(frame_ids)
    ),
    m.CandidateMessage: st.builds(
        m.CandidateMessage, id=frame_ids, text=st.text(storable, min_size=1, max_size=300)
    ),
    m.CodeUpdate: st.builds(m.CodeUpdate, id=frame_ids, language=languages, source=sources),
    m.CodeRun: st.builds(m.CodeRun, id=frame_ids),
    m.InterviewerInterrupt: st.builds(m.InterviewerInterrupt, id=optional(frame_ids)),
    m.SessionEnd: st.builds(m.SessionEnd, id=frame_ids),
    m.Ping: st.builds(m.Ping, id=optional(frame_ids)),
    m.Watch: st.builds(
        m.Watch, session_id=session_ids, last_seq=optional(counts), id=optional(frame_ids)
    ),
}

CONTROL_STRATEGIES: dict[type[msgspec.Struct], st.SearchStrategy[Any]] = {
    m.Welcome: st.builds(
        m.Welcome,
        server=short_text,
        heartbeat_s=st.floats(min_value=0.001, max_value=3600) | st.integers(1, 3600),
        max_frame_bytes=st.integers(1, MAX),
        user_id=short_text,
    ),
    m.Ack: st.builds(m.Ack, ref=short_text, seq=optional(seqs)),
    m.Error: st.builds(
        m.Error,
        code=st.sampled_from(ErrorCode),
        message=short_text,
        ref=optional(short_text),
        retryable=st.booleans(),
        field=optional(short_text),
    ),
    m.Pong: st.builds(m.Pong, id=optional(short_text)),
    m.Resumed: st.builds(m.Resumed, session_id=session_ids, replayed=counts),
    m.Snapshot: st.builds(
        m.Snapshot,
        session_id=session_ids,
        seq=seqs,
        state=st.builds(
            m.SnapshotState,
            status=short_text,
            track=tracks,
            question=questions,
            phase=st.none() | phases,
            transcript=small_lists(
                st.builds(
                    m.TranscriptEntry,
                    turn_id=short_text,
                    role=st.sampled_from(["candidate", "interviewer"]),
                    text=short_text,
                    seq=seqs,
                )
            ),
            code=st.none()
            | st.builds(m.CodeState, version=counts, language=languages, source=sources),
            scores=st.dictionaries(short_text, finite, max_size=3),
        ),
    ),
}


def event(cls: type[msgspec.Struct], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(cls, seq=seqs, ts=counts, **fields)


EVENT_STRATEGIES: dict[type[msgspec.Struct], st.SearchStrategy[Any]] = {
    m.SessionStarted: event(
        m.SessionStarted,
        session_id=session_ids,
        track=tracks,
        language=short_text,
        question=questions,
        rubric=st.builds(
            m.Rubric,
            dimensions=small_lists(short_text),
            scale=st.lists(finite, min_size=2, max_size=2),
        ),
        limits=st.builds(m.Limits, duration_s=st.integers(1, MAX)),
    ),
    m.PhaseChanged: event(m.PhaseChanged, name=phases, deadline_ts=optional(counts)),
    m.CandidateSaid: event(m.CandidateSaid, turn_id=short_text, text=short_text),
    m.InterviewerTurnStart: event(m.InterviewerTurnStart, turn_id=short_text),
    m.InterviewerDelta: event(m.InterviewerDelta, turn_id=short_text, text=short_text),
    m.InterviewerTurnEnd: event(
        m.InterviewerTurnEnd,
        turn_id=short_text,
        stop_reason=st.sampled_from(["end_turn", "max_tokens", "interrupted", "error"]),
    ),
    m.CodeSnapshot: event(
        m.CodeSnapshot,
        version=counts,
        language=languages,
        sha256=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        source=sources,
    ),
    m.CodeResult: event(
        m.CodeResult,
        run_id=short_text,
        version=counts,
        status=st.sampled_from(["passed", "failed", "error", "timeout"]),
        tests=small_lists(
            st.builds(
                m.TestOutcome, name=short_text, passed=st.booleans(), message=optional(short_text)
            )
        ),
        stdout_tail=short_text,
        duration_ms=counts,
    ),
    m.ScoreDelta: event(
        m.ScoreDelta,
        dimension=short_text,
        delta=finite,
        score=finite,
        reason=short_text,
        evidence=small_lists(seqs),
    ),
    m.SessionEnded: event(
        m.SessionEnded,
        reason=st.sampled_from(["candidate_ended", "time_up", "deleted", "error"]),
    ),
    m.ReportReady: event(m.ReportReady, report_id=short_text, overall=finite, summary=short_text),
}

client_frames = st.one_of(*CLIENT_STRATEGIES.values())
server_frames = st.one_of(*CONTROL_STRATEGIES.values(), *EVENT_STRATEGIES.values())


def test_strategies_cover_every_message_type() -> None:
    assert set(CLIENT_STRATEGIES) == set(m.CLIENT_FRAME_TYPES.values())
    assert set(CONTROL_STRATEGIES) == set(m.CONTROL_FRAME_TYPES.values())
    assert set(EVENT_STRATEGIES) == set(m.SESSION_EVENT_TYPES.values())


# --- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@PROPERTY
@given(frame=client_frames)
def test_client_frames_round_trip(codec: Codec, frame: Any) -> None:
    assert codec.decode_client(codec.encode(frame)) == frame
    # The checked (slow) path agrees with the typed fast path on valid frames.
    assert codec.decode_client(wire(codec, msgspec.to_builtins(frame))) == frame


@pytest.mark.parametrize("codec", CODECS)
@PROPERTY
@given(frame=server_frames)
def test_server_frames_round_trip(codec: Codec, frame: Any) -> None:
    assert codec.decode_server(codec.encode(frame)) == frame


@PROPERTY
@given(frame=client_frames | server_frames)
def test_both_encodings_carry_the_same_objects(frame: Any) -> None:
    from_msgpack = msgpack.unpackb(MSGPACK.encode(frame), raw=False)
    from_json = json.loads(JSON.encode(frame))
    assert from_msgpack == from_json
    assert from_json["type"] == m.wire_type(frame)
    assert next(iter(from_json)) == "type"


def decode_error(decode: Any, data: bytes | str) -> FrameError | None:
    """The FrameError ``decode`` raises, or None when it decodes; anything else propagates."""
    try:
        decode(data)
    except FrameError as err:
        return err
    return None


def assert_decodes_or_frame_error(codec: Codec, data: bytes | str) -> None:
    for decode in (codec.decode_client, codec.decode_server):
        err = decode_error(decode, data)
        if err is not None:
            assert err.code in {
                ErrorCode.BAD_FRAME,
                ErrorCode.UNKNOWN_TYPE,
                ErrorCode.INVALID_FIELD,
            }
            assert err.message
            assert (err.field is not None) == (err.code == ErrorCode.INVALID_FIELD)


@pytest.mark.parametrize("codec", CODECS)
@PROPERTY
@given(data=st.binary(max_size=200) | st.text(max_size=100))
def test_arbitrary_payloads_never_raise_other_errors(codec: Codec, data: bytes | str) -> None:
    assert_decodes_or_frame_error(codec, data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(
        -(2**63), 2**64 - 1
    )  # what MessagePack holds; huge JSON ints: test_json_bad_frames
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8))
    | st.datetimes(timezones=st.just(UTC)),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=10) | st.integers(-5, 5) | st.binary(max_size=4), children, max_size=4
        )
    ),
    max_leaves=20,
)
FIELD_NAMES = sorted(
    {
        field.encode_name
        for cls in (*m.CLIENT_FRAME_TYPES.values(), *m.SERVER_FRAME_TYPES.values())
        for field in msgspec.structs.fields(cls)
    }
)
ALL_TYPES = sorted({*m.CLIENT_FRAME_TYPES, *m.SERVER_FRAME_TYPES})


def frame_like(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[Any, Any]]:
    """Maps with a known ``type`` and known field names holding arbitrary values: the inputs
    that reach field validation."""
    return st.builds(
        lambda type_, fields: {"type": type_, **fields},
        st.sampled_from(ALL_TYPES) | values,
        st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=6),
    )


@pytest.mark.parametrize("codec", CODECS)
@PROPERTY
@given(obj=json_values | frame_like(json_values))
def test_arbitrary_json_values_never_raise_other_errors(codec: Codec, obj: Any) -> None:
    assert_decodes_or_frame_error(codec, wire(codec, obj))
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        err = decode_error(codec.decode_client, wire(codec, obj))
        assert err is None or err.ref == obj["id"]


@PROPERTY
@given(obj=msgpack_values | frame_like(msgpack_values))
def test_arbitrary_msgpack_values_never_raise_other_errors(obj: Any) -> None:
    data = msgpack.packb(obj, use_bin_type=True, datetime=True)
    assert_decodes_or_frame_error(MSGPACK, data)
    assert_decodes_or_frame_error(JSON, data)


@pytest.mark.parametrize("codec", CODECS)
@PROPERTY
@given(frame=client_frames | server_frames, data=st.data())
def test_corrupted_frames_never_raise_other_errors(
    codec: Codec, frame: Any, data: st.DataObject
) -> None:
    payload = bytearray(codec.encode(frame))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(payload) - 1))
        payload[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(payload)))
    assert_decodes_or_frame_error(codec, bytes(payload[:cut]))
    assert_decodes_or_frame_error(codec, bytes(payload))


# --- hostile text: strings no store can hold are refused, naming the field -------------------

UNSTORABLE = ["\x00", "a\x00b", "\ud800", "x\udfff", "\udbff\x00", "😀\ud83d"]
STRING_FIELDS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    # A valid frame of each client type with every optional string present, and its string fields.
    "auth": ({"type": "auth", "token": "t", "id": "i"}, ("token", "id")),
    "session.start": (
        {
            "type": "session.start",
            "id": "i",
            "track": "coding",
            "language": "py",
            "question_id": "q",
        },
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
}
STRING_FIELD_CASES = [
    pytest.param(type_, name, id=f"{type_}.{name}")
    for type_, (_, names) in STRING_FIELDS.items()
    for name in names
]


def hostile_wire(codec: Codec, obj: object) -> bytes | str:
    """``obj`` as a client could send it, lone surrogates included: JSON with ``\\u`` escapes
    (what ``JSON.stringify`` writes), MessagePack with a surrogate's three-byte form (what
    JavaScript MessagePack encoders write)."""
    if codec.is_text:
        return json.dumps(obj)
    packed: bytes = msgpack.Packer(unicode_errors="surrogatepass").pack(obj)
    return packed


def test_string_fields_cover_every_client_frame() -> None:
    assert set(STRING_FIELDS) == set(m.CLIENT_FRAME_TYPES)
    for type_, (frame, names) in STRING_FIELDS.items():
        cls = m.CLIENT_FRAME_TYPES[type_]
        fields = msgspec.structs.fields(cls)
        assert set(frame) - {"type"} == {f.encode_name for f in fields}
        assert set(names) == {
            name
            for name, value in frame.items()
            if name != "type" and name != "track" and isinstance(value, str)
        }
        assert JSON.decode_client(json.dumps(frame)) == msgspec.convert(frame, cls)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("frame_type", "name"), STRING_FIELD_CASES)
@pytest.mark.parametrize("bad", UNSTORABLE, ids=ascii)
def test_unstorable_text_in_any_client_string_is_an_invalid_field(
    codec: Codec, frame_type: str, name: str, bad: str
) -> None:
    frame = {**STRING_FIELDS[frame_type][0], name: bad}
    err = frame_error(codec.decode_client, hostile_wire(codec, frame))
    assert (err.code, err.field, err.frame_type) == (ErrorCode.INVALID_FIELD, name, frame_type)
    assert err.message == f"`{name}` must not contain U+0000 or a lone surrogate (U+D800-U+DFFF)"
    # The id comes back as ref, unless it is the id that cannot be sent back.
    surrogate = any("\ud800" <= c <= "\udfff" for c in bad)
    assert err.ref == (None if name == "id" and surrogate else frame.get("id"))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("size", [10, 1000, 1100, 100_000])
def test_nul_is_found_in_frames_of_any_size(codec: Codec, size: int) -> None:
    """Small and large frames take different searches; both find U+0000 anywhere."""
    for at in (0, size // 2, size - 1):
        source = "x" * at + "\x00" + "é" * (size - at - 1)
        frame = {"type": "code.update", "id": "i", "language": "python", "source": source}
        err = frame_error(codec.decode_client, hostile_wire(codec, frame))
        assert (err.code, err.field, err.ref) == (ErrorCode.INVALID_FIELD, "source", "i")
    clean = {
        "type": "code.update",
        "id": "i",
        "language": "python",
        "source": "\\u0000" * (size // 6),
    }
    assert codec.decode_client(hostile_wire(codec, clean)).source == clean["source"]  # type: ignore[union-attr]


@pytest.mark.parametrize("codec", CODECS)
def test_storable_lookalikes_decode(codec: Codec) -> None:
    """Text that only resembles the refused strings is a client's to send: an escaped
    backslash before ``u0000``, a surrogate pair (an astral character), control characters."""
    for text in ["\\u0000", "\\ud800", "😀", "\U0010ffff", "\x01\x1f\x7f\u2028\ufeff", "\ufffd"]:
        frame = {"type": "candidate.message", "id": "i", "text": text}
        assert codec.decode_client(hostile_wire(codec, frame)) == m.CandidateMessage(
            id="i", text=text
        )
    # JSON may spell an astral character as a pair of escapes.
    pair = r'{"type":"candidate.message","id":"i","text":"\ud83d\ude00"}'
    assert JSON.decode_client(pair) == m.CandidateMessage(id="i", text="😀")


def test_server_frames_may_still_carry_nul() -> None:
    """Only what clients send is refused: a server frame's text is the server's to clean."""
    said = m.CandidateSaid(seq=1, ts=1, turn_id="t", text="a\x00b")
    for codec in (JSON, MSGPACK):
        assert codec.decode_server(codec.encode(said)) == said


@pytest.mark.parametrize(
    "data",
    [
        # Raw surrogates are not UTF-8 text: a JSON frame holding them is not JSON text.
        '{"type":"candidate.message","id":"i","text":"\ud800"}',
        b'{"type":"candidate.message","id":"i","text":"\xed\xa0\x80"}',
        # A surrogate where no known field is: undecodable as ever.
        r'{"type":"candidate.message","id":"i","text":"t","x\ud800":1}',
        r'{"type":"candidate.message","id":"i","text":"t","extra":"\ud800"}',
        r'{"type":"candidate.message","id":"i","text":"t",' + "[" * 5000,
    ],
    ids=lambda data: repr(data[-24:]),
)
def test_json_surrogates_outside_known_fields_are_bad_frames(data: bytes | str) -> None:
    assert frame_error(JSON.decode_client, data).code == ErrorCode.BAD_FRAME


unstorable_char = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"])
hostile_chars = (
    st.characters(exclude_categories=())
    | unstorable_char
    | st.sampled_from(["\U0001f600", "\x7f", "\x1b", "\u2028", "\ufeff", "\\", '"'])
)
hostile_text = st.text(hostile_chars, max_size=40)


def is_storable(text: str) -> bool:
    return not any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in text)


@pytest.mark.parametrize("codec", CODECS)
@PROPERTY
@given(frame_type=st.sampled_from(sorted(STRING_FIELDS)), data=st.data())
def test_hostile_text_in_client_frames_decodes_as_sent_or_names_the_field(
    codec: Codec, frame_type: str, data: st.DataObject
) -> None:
    frame, names = STRING_FIELDS[frame_type]
    sent = {**frame, **{name: data.draw(hostile_text, label=name) for name in names}}
    err = decode_error(codec.decode_client, hostile_wire(codec, sent))
    unstorable = {name for name in names if not is_storable(sent[name])}
    if err is None:
        assert not unstorable
        decoded = codec.decode_client(hostile_wire(codec, sent))
        assert all(getattr(decoded, name) == sent[name] for name in names)
        return
    assert err.code == ErrorCode.INVALID_FIELD
    if err.message.endswith("lone surrogate (U+D800-U+DFFF)"):
        assert err.field in unstorable
    else:  # another rule broken, which may be checked first: an empty or too long string
        assert err.field in names
        assert err.message in {f"`{err.field}` must not be empty"} or "at most" in err.message
