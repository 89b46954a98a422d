"""The transport's own frame writing (the fast path under ``ClientSocket``)."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from server.ws_transport import _FIN_BINARY, _FIN_TEXT, _frame_header


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("text", [True, False])
def test_direct_frame_header_parses_as_websockets_frame(length: int, text: bool) -> None:
    """The transport's own frame header (the fast path of server writes) is what websockets'
    client-side parser reads: same opcode, FIN, payload, at every length encoding."""
    payload = (
        (b"x" * length) if text else bytes(range(256)) * (length // 256) + b"y" * (length % 256)
    )
    reader = StreamReader()
    reader.feed_data(_frame_header(_FIN_TEXT if text else _FIN_BINARY, length) + payload)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
        raise AssertionError("parser wants more data")
    except StopIteration as done:
        frame = done.value
    assert frame.fin
    assert frame.opcode is (Opcode.TEXT if text else Opcode.BINARY)
    assert frame.data == payload
