"""Worker-to-worker messages: typed, and the same bytes on the wire as the previous release
spoke (workers of both understand each other during a rolling deploy)."""

from __future__ import annotations

import json

import msgpack
import pytest

from server.hub.worker_messages import (
    EraseDone,
    EraseRound,
    InputReply,
    InputRequest,
    decode_erase_message,
    decode_input_message,
    encode_erase_message,
    encode_input_message,
)


def test_forwarded_input_round_trips_and_matches_the_old_maps() -> None:
    request = InputRequest(rid=7, to="w:a", sid="s1", uid="u1", f=b'{"type":"ping"}')
    old = {"k": "req", "rid": 7, "to": "w:a", "sid": "s1", "uid": "u1", "f": b'{"type":"ping"}'}
    assert msgpack.unpackb(encode_input_message(request)) == old
    assert decode_input_message(msgpack.packb(old)) == request
    failed = {
        "k": "rep",
        "rid": 7,
        "seq": None,
        "err": ["not_found", "no such session", False, None],
    }
    reply = decode_input_message(msgpack.packb(failed))
    assert reply == InputReply(rid=7, err=("not_found", "no such session", False, None))
    assert msgpack.unpackb(encode_input_message(reply)) == failed


def test_erase_rounds_round_trip_and_match_the_old_json() -> None:
    round_ = EraseRound(k="end", rid="r1", sender="w1", sids=["a", "b"])
    old = {"k": "end", "rid": "r1", "from": "w1", "sids": ["a", "b"]}
    assert json.loads(encode_erase_message(round_)) == old
    assert decode_erase_message(json.dumps(old).encode()) == round_
    done = {"k": "done", "rid": "r1", "to": "w1"}
    assert decode_erase_message(json.dumps(done).encode()) == EraseDone(rid="r1", to="w1")


@pytest.mark.parametrize(
    "data",
    [b"", b"\x81\xa1k\xa3bad", b"[1, 2]", msgpack.packb({"k": "req", "rid": "x"})],
)
def test_anything_else_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        decode_input_message(data)
    with pytest.raises(ValueError, match=r"."):
        decode_erase_message(data)
