"""A session event as the log assigned it, and the stored-event layout: the bottom of the
session layer.

The layout, in one place: a stored or published event's JSON starts with its seq and ts
(``{"seq":N,"ts":T,...``). The owner encodes the event with both zero (they follow its
``type`` tag, the field order of :class:`protocol.messages.SessionEvent`) and cuts them out
(:func:`without_stamp`); the append script (:data:`server.hub.scripts.APPEND`) puts the seq
it assigns and the ts in front, exactly as :func:`with_stamp` does; readers peek at the seq
without decoding (:func:`peek_seq`).
``tests/test_event_layout.py`` runs the script on a real Redis against these functions.

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

__all__ = ["LoggedEvent", "now_ms", "peek_seq", "with_stamp", "without_stamp"]


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

    Stored and published events start with their seq (``{"seq":N,...``, see
    :func:`with_stamp`); control frames do not."""
    if not data.startswith(b'{"seq":'):
        return None
    end = data.find(b",", 7)
    try:
        return int(data[7:end])
    except ValueError:
        return None


_ZERO_STAMP = b'"seq":0,"ts":0,'


def without_stamp(encoded: bytes) -> bytes:
    """An event's JSON encoded with seq and ts 0, without them: what the append script
    gets (``{"type":...,rest}``)."""
    return encoded.replace(_ZERO_STAMP, b"", 1)


def with_stamp(seq: int, ts: int, body: bytes) -> bytes:
    """``body`` (from :func:`without_stamp`) with ``seq`` and ``ts`` in front: the event as
    Redis stores and publishes it and Postgres keeps it."""
    return b'{"seq":%d,"ts":%d,' % (seq, ts) + body[1:]
