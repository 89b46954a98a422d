"""A session's event log on this worker: seq assignment, durable write-behind, fan-out.

Contract:
- :meth:`SessionLog.append` stamps the next ``seq`` (gap-free from 1) and ``ts``, queues the
  event with its side records for Postgres, and delivers it to every attached socket, in seq
  order. It returns the :class:`LoggedEvent`, whose ``durable`` future resolves once Postgres
  has it.
- Each event is encoded at most once per encoding (invariant 6): the bytes are cached on the
  LoggedEvent and the same bytes go to every socket that uses that encoding.
- :meth:`attach` replays every event after ``last_seq`` (from memory when the recent history
  reaches back far enough, else from Postgres), then continues live, with no gap and no
  duplicate at the seam: live events that arrive while the replay is read from Postgres are
  held for that socket and delivered after it.
- History kept in memory is bounded (``history_limit`` events); older events come from
  Postgres, which has everything (the writer flushes in order, and an event leaves memory
  only once it is durable).

The seq counter lives in this object, so one worker owns a session's log at a time; the
cluster-wide hub (Redis) keeps this interface.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from protocol.codec import JSON, Codec
from protocol.messages import Resumed, SessionEvent
from server.client_socket import ClientSocket
from server.sessions.event_writer import EventWriter, Records
from server.sessions.store import SessionStore


class LoggedEvent:
    """A session event with its seq, and its encodings cached per codec."""

    __slots__ = ("_encoded", "durable", "event", "seq", "type")

    def __init__(self, event: SessionEvent, durable: asyncio.Future[None] | None = None) -> None:
        self.event = event
        self.seq: int = event.seq
        self.type: str = type(event).__struct_config__.tag  # type: ignore[assignment]
        self._encoded: dict[str, bytes] = {}
        self.durable = durable

    def encoded(self, codec: Codec) -> bytes:
        data = self._encoded.get(codec.name)
        if data is None:
            data = self._encoded[codec.name] = codec.encode(self.event)
        return data

    @classmethod
    def from_json(cls, body: str | bytes) -> LoggedEvent:
        """A stored event (its wire JSON) back as a LoggedEvent, JSON bytes already cached."""
        raw = body.encode() if isinstance(body, str) else body
        event = JSON.decode_server(raw)
        assert isinstance(event, SessionEvent)
        logged = cls(event)
        logged._encoded[JSON.name] = raw
        return logged


@dataclass
class Attachment:
    """One socket on one session: the next seq it must receive, and events held meanwhile."""

    sock: ClientSocket
    next_seq: int
    catching_up: bool = True
    held: list[LoggedEvent] = field(default_factory=list)
    read_only: bool = False

    def deliver(self, logged: LoggedEvent) -> None:
        if self.catching_up:
            self.held.append(logged)
            return
        if logged.seq < self.next_seq:
            return  # already sent (replay/live seam)
        self.sock.send_encoded(logged.encoded(self.sock.codec))
        self.next_seq = logged.seq + 1


def now_ms() -> int:
    return int(time.time() * 1000)


class SessionLog:
    def __init__(
        self,
        session_id: str,
        *,
        last_seq: int,
        writer: EventWriter,
        store: SessionStore,
        history_limit: int = 2000,
    ) -> None:
        self.session_id = session_id
        self.last_seq = last_seq
        self.writer = writer
        self.store = store
        self.history: deque[LoggedEvent] = deque()
        self.history_limit = history_limit
        self.attachments: dict[ClientSocket, Attachment] = {}

    async def append(self, event: SessionEvent, records: Records | None = None) -> LoggedEvent:
        """Stamp, persist (write-behind) and deliver ``event``; see the module docstring.

        ``records`` are side rows (transcript, code snapshot, input id) written in the same
        transaction as the event. Cancelling this call after it returned nothing is safe: the
        event is already queued and delivered.
        """
        self.last_seq += 1
        stamped = msgspec.structs.replace(event, seq=self.last_seq, ts=now_ms())
        logged = LoggedEvent(stamped)
        body = logged.encoded(JSON).decode()
        extra = records or Records()
        extra.events = ((self.session_id, logged.seq, logged.type, stamped.ts, body),)
        for attachment in list(self.attachments.values()):
            attachment.deliver(logged)
        self._remember(logged)
        logged.durable = await self.writer.submit(extra)
        return logged

    def _remember(self, logged: LoggedEvent) -> None:
        self.history.append(logged)
        while len(self.history) > self.history_limit:
            oldest = self.history[0]
            if oldest.durable is None or not oldest.durable.done():
                break  # not in Postgres yet: keep it, memory is the only copy
            self.history.popleft()

    async def attach(
        self, sock: ClientSocket, last_seq: int, *, read_only: bool = False, announce: bool = True
    ) -> int:
        """Attach ``sock``; send ``resumed`` (unless ``announce`` is False: a new session) and
        the events after ``last_seq``, then live ones. Returns the number of events replayed.
        """
        previous = self.attachments.get(sock)
        if previous is not None:
            previous.catching_up = True  # re-attach: start over from last_seq
        attachment = Attachment(sock, last_seq + 1, read_only=read_only)
        self.attachments[sock] = attachment
        head = self.last_seq
        start = last_seq + 1
        replay: Iterable[LoggedEvent]
        if start > head:
            replay = ()
        elif self.history and self.history[0].seq <= start:
            replay = [e for e in self.history if e.seq >= start]
        else:
            stored = await self.store.events_after(self.session_id, last_seq)
            in_memory_from = self.history[0].seq if self.history else head + 1
            replay = [LoggedEvent.from_json(e.body) for e in stored if e.seq < in_memory_from]
            replay += [e for e in self.history if e.seq >= start]
        if self.attachments.get(sock) is not attachment:
            return 0  # detached or re-attached while reading Postgres
        replay = list(replay)
        if announce:
            sock.send(Resumed(session_id=self.session_id, replayed=len(replay)))
        attachment.catching_up = False
        for logged in replay:
            attachment.deliver(logged)
        for logged in attachment.held:
            attachment.deliver(logged)
        attachment.held.clear()
        return len(replay)

    def detach(self, sock: ClientSocket) -> None:
        self.attachments.pop(sock, None)

    def sockets(self) -> list[ClientSocket]:
        return [a.sock for a in self.attachments.values()]
