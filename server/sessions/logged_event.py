"""A session event as the log assigned it: the bottom of the session layer.

:class:`LoggedEvent` is what every layer above passes around once an event has its seq: the
log (which makes them), the channels (which fan them out), history (which reads them back
from Redis or Postgres). It caches the event's encoding per codec, so a fan-out to many
sockets encodes once.
"""

from __future__ import annotations

import asyncio
import time

from protocol.codec import JSON, Codec
from protocol.messages import SessionEvent

__all__ = ["LoggedEvent", "now_ms", "peek_seq"]


class LoggedEvent:
    """A session event with its seq, and its encodings cached per codec."""

    __slots__ = ("_encoded", "durable", "event", "seq", "type")

    def __init__(self, event: SessionEvent, durable: asyncio.Future[None] | None = None) -> None:
        self.event = event
        self.seq: int = event.seq
        self.type: str = type(event).__struct_config__.tag  # type: ignore[assignment]
        self._encoded: dict[str, bytes] = {}
        self.durable = durable

    def forget_durable(self, future: asyncio.Future[None]) -> None:
        """Done callback of ``durable``: once committed, nothing is left to wait for, and the
        event (kept in its channel's recent cache) should not keep a future alive: tens of
        thousands of them lengthen every full garbage collection. A failed commit stays
        visible to whoever awaits it."""
        if not future.cancelled() and future.exception() is None and self.durable is future:
            self.durable = None

    def encoded(self, codec: Codec) -> bytes:
        data = self._encoded.get(codec.name)
        if data is None:
            data = self._encoded[codec.name] = codec.encode(self.event)
        return data

    @classmethod
    def from_json(cls, body: str | bytes) -> LoggedEvent:
        """An event as stored or published (its wire JSON), the JSON bytes already cached."""
        raw = body.encode() if isinstance(body, str) else body
        event = JSON.decode_server(raw)
        if not isinstance(event, SessionEvent):
            raise ValueError(f"not a session event: {type(event).__name__}")
        logged = cls(event)
        logged._encoded[JSON.name] = raw
        return logged


def now_ms() -> int:
    return int(time.time() * 1000)


def peek_seq(data: bytes) -> int | None:
    """The seq of a published or stored event without decoding it; None for anything else.

    Events are encoded with ``seq`` first (``{"seq":N,...``: the field order of
    :class:`protocol.messages.SessionEvent`, which the append script relies on too)."""
    if not data.startswith(b'{"seq":'):
        return None
    end = data.find(b",", 7)
    try:
        return int(data[7:end])
    except ValueError:
        return None
