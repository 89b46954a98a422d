"""The benchmark's listener: one session per socket, its delivery lag and its seq checks.

A listener starts a session, listens, and answers each interviewer turn after a pause drawn
uniformly from ``[think_s / 2, 3 * think_s / 2]`` (seeded by the session name: sessions that
started together do not stay in step) so that the interviewer keeps speaking; for every session event it checks the seq
(:class:`SeqCheck`) and, inside the measurement window, records the delivery lag
``arrival - ts`` in milliseconds. One listener class per system, with the same bookkeeping
(:meth:`Listener.event`):

- :class:`MentaraListener`: protocol v1 over ``mentara.v1.json``, token in the upgrade.
- :class:`BareListener`: the same JSON frames, without auth or subprotocol (the bare
  ``websockets`` peer speaks them).
- :class:`SocketIOListener`: Engine.IO 4 / Socket.IO 5 over a plain WebSocket (the
  python-socketio peer): ``40`` to join the namespace, ``42["start", ...]``, events as
  ``42["event", {...}]``, Engine.IO pings (``2``) answered with ``3``.
- :class:`IdleSocket`: a Mentara socket that authenticates and then only answers pings.

Frames are decoded with msgspec into a struct holding only the fields the bench reads.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from bench.wsclient import WsConnection
from loadtest.metrics import Histogram

__all__ = [
    "LISTENER_KINDS",
    "BareListener",
    "IdleSocket",
    "Listener",
    "ListenerStats",
    "MentaraListener",
    "SeqCheck",
    "SocketIOListener",
]

JSON_SUBPROTOCOL = "mentara.v1.json"
REPLY_TEXT = "I would keep a hash map from each value to its index and look up the complement."
TURN_END = "interviewer.turn.end"
STARTED = "session.started"


class Frame(msgspec.Struct):
    """The fields of a server frame the bench reads; every other field is ignored."""

    type: str = ""
    seq: int = 0
    ts: int = 0
    code: str = ""


_decode_frame = msgspec.json.Decoder(Frame).decode
_decode_sio_event = msgspec.json.Decoder(tuple[str, Frame]).decode


class SeqCheck:
    """Seqs of one session's stream: each must be the previous one plus 1.

    :meth:`observe` returns ``(missing, duplicate)``: how many seqs were skipped before this
    one, and whether it was already seen (or is older). A gap moves the expectation past it."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = 0

    def observe(self, seq: int) -> tuple[int, bool]:
        if seq == self.last + 1:
            self.last = seq
            return 0, False
        if seq <= self.last:
            return 0, True
        missing = seq - self.last - 1
        self.last = seq
        return missing, False


@dataclass
class ListenerStats:
    """What the listeners of one client process saw; merges across processes."""

    lag: Histogram = field(default_factory=Histogram)
    """Delivery lag (ms) of the events that arrived inside the window."""
    events: int = 0
    window_events: int = 0
    gaps: int = 0
    """Events missing from streams (sum over gaps of their widths)."""
    dups: int = 0
    started: int = 0
    active_at_window: int = 0
    """Sessions started and open when the window opened."""
    open_at_end: int = 0
    replies: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "lag": self.lag.to_dict(),
            "events": self.events,
            "window_events": self.window_events,
            "gaps": self.gaps,
            "dups": self.dups,
            "started": self.started,
            "active_at_window": self.active_at_window,
            "open_at_end": self.open_at_end,
            "replies": self.replies,
            "errors": dict(self.errors),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ListenerStats:
        return cls(
            lag=Histogram.from_dict(data["lag"]),
            events=int(data["events"]),
            window_events=int(data["window_events"]),
            gaps=int(data["gaps"]),
            dups=int(data["dups"]),
            started=int(data["started"]),
            active_at_window=int(data["active_at_window"]),
            open_at_end=int(data["open_at_end"]),
            replies=int(data["replies"]),
            errors=Counter({k: int(v) for k, v in data["errors"].items()}),
        )

    def merge(self, other: ListenerStats) -> None:
        self.lag.merge(other.lag)
        self.events += other.events
        self.window_events += other.window_events
        self.gaps += other.gaps
        self.dups += other.dups
        self.started += other.started
        self.active_at_window += other.active_at_window
        self.open_at_end += other.open_at_end
        self.replies += other.replies
        self.errors.update(other.errors)


@dataclass
class Window:
    """The measurement window, Unix seconds: lag is recorded for arrivals in [start, end)."""

    start: float
    end: float


class Listener(WsConnection):
    """A session's socket: the bookkeeping shared by every system's listener."""

    def __init__(
        self,
        url: str,
        stats: ListenerStats,
        window: Window,
        *,
        think_s: float,
        session: str,
        subprotocols: tuple[str, ...] = (),
        headers: tuple[tuple[str, str], ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url, subprotocols=subprotocols, headers=headers)
        self.stats = stats
        self.window = window
        self.think_s = think_s
        self.session = session
        self.clock = clock
        self.check = SeqCheck()
        self._rng = random.Random(session)
        self.started = False
        self._reply_timer: asyncio.TimerHandle | None = None

    def event(self, seq: int, ts_ms: int, kind: str) -> None:
        """One session event arrived now."""
        now = self.clock()
        stats = self.stats
        stats.events += 1
        missing, duplicate = self.check.observe(seq)
        if missing:
            stats.gaps += missing
        if duplicate:
            stats.dups += 1
        window = self.window
        if window.start <= now < window.end:
            stats.window_events += 1
            stats.lag.record(now * 1000.0 - ts_ms)
        if kind == TURN_END:
            pause = self.think_s * self._rng.uniform(0.5, 1.5)
            self._reply_timer = asyncio.get_running_loop().call_later(pause, self._reply)
        elif kind == STARTED and not self.started:
            self.started = True
            stats.started += 1

    def error(self, code: str) -> None:
        self.stats.errors[code] += 1

    def _reply(self) -> None:
        self._reply_timer = None
        if self.is_open:
            self.stats.replies += 1
            self.send_reply()

    def send_reply(self) -> None:
        raise NotImplementedError

    def on_close(self) -> None:
        if self._reply_timer is not None:
            self._reply_timer.cancel()
        if not self.by_client:
            self.error(f"close.{self.close_code}")
        if self.fault is not None:
            self.error("client_fault")


def _frame_id() -> str:
    return uuid.uuid4().hex


def _start_frame(question_id: str) -> bytes:
    frame = {"type": "session.start", "id": _frame_id(), "track": "coding"}
    if question_id:
        frame["question_id"] = question_id
    return msgspec.json.encode(frame)


def _reply_frame() -> bytes:
    return msgspec.json.encode({"type": "candidate.message", "id": _frame_id(), "text": REPLY_TEXT})


class MentaraListener(Listener):
    """Protocol v1: ``welcome`` → ``session.start``; each turn end → ``candidate.message``."""

    def __init__(
        self,
        url: str,
        stats: ListenerStats,
        window: Window,
        *,
        think_s: float,
        session: str,
        token: str,
        question_id: str,
    ) -> None:
        super().__init__(
            url,
            stats,
            window,
            think_s=think_s,
            session=session,
            subprotocols=(JSON_SUBPROTOCOL,),
            headers=(("Authorization", f"Bearer {token}"),),
        )
        self.question_id = question_id

    def on_message(self, data: bytes, text: bool) -> None:
        frame = _decode_frame(data)
        if frame.ts:
            self.event(frame.seq, frame.ts, frame.type)
        elif frame.type == "welcome":
            self.send_text(_start_frame(self.question_id))
        elif frame.type == "error":
            self.error(f"error.{frame.code}")

    def send_reply(self) -> None:
        self.send_text(_reply_frame())


class BareListener(Listener):
    """The bare peer speaks protocol v1's JSON frames, with no auth, subprotocol or welcome."""

    def on_open(self) -> None:
        self.send_text(_start_frame(""))

    def on_message(self, data: bytes, text: bool) -> None:
        frame = _decode_frame(data)
        if frame.ts:
            self.event(frame.seq, frame.ts, frame.type)
        elif frame.type == "error":
            self.error(f"error.{frame.code}")

    def send_reply(self) -> None:
        self.send_text(_reply_frame())


class SocketIOListener(Listener):
    """Socket.IO 5 over Engine.IO 4, WebSocket transport only (no HTTP long-polling)."""

    def on_message(self, data: bytes, text: bool) -> None:
        head = data[:2]
        if head == b"42":
            name, frame = _decode_sio_event(data[2:])
            if name == "event":
                self.event(frame.seq, frame.ts, frame.type)
        elif data == b"2":
            self.send_text(b"3")
        elif head == b"40":
            start = msgspec.json.encode(["start", {"session": self.session}])
            self.send_text(b"42" + start)
        elif head[:1] == b"0":
            self.send_text(b"40")
        elif head == b"44":
            self.error("error.connect_error")
        elif head == b"41":
            self.error("error.disconnected")

    def send_reply(self) -> None:
        self.send_text(b"42" + msgspec.json.encode(["message", {"text": REPLY_TEXT}]))


class IdleSocket(WsConnection):
    """An authenticated Mentara socket that does nothing but answer pings."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(
            url,
            subprotocols=(JSON_SUBPROTOCOL,),
            headers=(("Authorization", f"Bearer {token}"),),
        )
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.unexpected: list[str] = []

    def on_message(self, data: bytes, text: bool) -> None:
        frame = _decode_frame(data)
        if frame.type == "welcome" and not self.welcomed.done():
            self.welcomed.set_result(None)
        elif frame.type == "error":
            self.unexpected.append(f"error.{frame.code}")

    def on_close(self) -> None:
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError(f"closed with {self.close_code}"))


LISTENER_KINDS = ("mentara", "bare", "socketio")
