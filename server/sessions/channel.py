"""One session's events on this worker: in order, once, to every local socket.

A channel exists on every worker that has at least one socket on the session. Events reach
it from the session's owner: directly when the owner is this worker, through Redis pub/sub
otherwise. Pub/sub is at-most-once, so the channel checks seqs:

- an event at or below the channel's head is a duplicate and is dropped;
- the next one is delivered;
- one further ahead means events were missed: they are read from history (the Redis stream,
  else Postgres) and delivered first (a *gap fill*), and events arriving meanwhile wait.

Each event is encoded once per encoding on this worker and the same bytes go to every
socket (invariant 6). :meth:`attach` replays ``last_seq + 1 ..`` and then goes live with no
gap and no duplicate at the seam; when history no longer reaches back, the socket gets a
``snapshot`` instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from protocol.messages import Resumed, Snapshot
from server import metrics
from server.client_socket import ClientSocket
from server.errors import FellBehind, HistoryLost, InvalidField
from server.sessions.history import History
from server.sessions.logged_event import LoggedEvent

log = logging.getLogger("mentara.channel")

#: Live events held for one socket while its replay is sent; past this, it must resume.
MAX_HELD = 10_000


@dataclass
class Attachment:
    """One socket on the session: the next seq it must receive, and events held meanwhile."""

    sock: ClientSocket
    next_seq: int
    read_only: bool = False
    catching_up: bool = True
    held: list[LoggedEvent] = field(default_factory=list)

    def deliver(self, logged: LoggedEvent) -> None:
        if self.catching_up:
            if len(self.held) >= MAX_HELD:
                self.sock.end(FellBehind("too far behind; resume"))
                return
            self.held.append(logged)
            return
        if logged.seq < self.next_seq:
            return  # already sent (the replay/live seam)
        self.sock.send_encoded(logged.encoded(self.sock.codec))
        self.next_seq = logged.seq + 1


SnapshotBuilder = Callable[[str], Awaitable[Snapshot | None]]


class SessionChannel:
    def __init__(
        self,
        session_id: str,
        history: History,
        snapshot: SnapshotBuilder,
        *,
        recent_limit: int = 512,
    ) -> None:
        self.session_id = session_id
        self.history = history
        self.snapshot = snapshot
        self.head = 0  # the highest seq delivered here, contiguously (0: none yet)
        self.synced = False  # head is meaningful once the first replay (or the owner) set it
        self.subscribed = False  # on Redis pub/sub (while it has sockets and is not owned here)
        self.joining = 0  # sockets being attached (not yet in ``attachments``)
        self.attachments: dict[ClientSocket, Attachment] = {}
        self._pending: dict[int, LoggedEvent] = {}
        # The latest events delivered here, contiguous: replays of recent history come from
        # it, already decoded and encoded (a crowd of resumes costs no Redis reads).
        self.recent: deque[LoggedEvent] = deque(maxlen=recent_limit)
        self._filling: asyncio.Task[None] | None = None

    # -- events in -------------------------------------------------------------------------

    def offer(self, logged: LoggedEvent) -> None:
        """An event from the owner (local or via pub/sub); see the module docstring."""
        if logged.seq <= self.head:
            return
        if logged.seq == self.head + 1 and not self._pending:
            self._deliver(logged)
            return
        self._pending[logged.seq] = logged
        self._drain_pending()
        if self._pending and self.synced and self._filling is None:
            self._filling = asyncio.create_task(self._fill_gap(), name=f"gap-{self.session_id}")

    def set_head(self, seq: int) -> None:
        """Adopt ``seq`` as the head (the channel's first replay decides where live starts)."""
        self.synced = True
        if seq > self.head:
            self.head = seq
        self._drain_pending()
        if self._pending and self._filling is None:
            self._filling = asyncio.create_task(self._fill_gap(), name=f"gap-{self.session_id}")

    def _deliver(self, logged: LoggedEvent) -> None:
        self.head = logged.seq
        if self.recent and self.recent[-1].seq != logged.seq - 1:
            self.recent.clear()  # keep it contiguous
        self.recent.append(logged)
        for attachment in list(self.attachments.values()):
            attachment.deliver(logged)

    def _drain_pending(self) -> None:
        for seq in sorted(self._pending):
            if seq <= self.head:
                del self._pending[seq]
            elif seq == self.head + 1:
                self._deliver(self._pending.pop(seq))
            else:
                break

    async def _fill_gap(self) -> None:
        attempts = 0
        try:
            while self._pending:
                attempts += 1
                if attempts > 100:
                    log.error("gap in %s not in history after %d reads", self.session_id, attempts)
                    self._resync()
                    return
                upto = min(self._pending) - 1
                missing = await self.history.read(self.session_id, self.head, upto)
                if missing is None:
                    log.error("gap in %s cannot be filled; resyncing sockets", self.session_id)
                    self._resync()
                    return
                metrics.GAP_FILLS.inc()
                for logged in missing:
                    if logged.seq == self.head + 1:
                        self._deliver(logged)
                self._drain_pending()
                if self._pending and min(self._pending) == self.head + 1:
                    continue
                if self._pending and not missing:
                    await asyncio.sleep(0.02)  # not in history yet: the append is in flight
        finally:
            self._filling = None

    def _resync(self) -> None:
        """History cannot close a gap: make every socket resume (it will get a snapshot)."""
        for attachment in list(self.attachments.values()):
            attachment.sock.end(HistoryLost("history lost; resume"))
        self.attachments.clear()
        self._pending.clear()

    async def check_gap(self, latest_seq: int) -> None:
        """After a pub/sub outage: fetch anything after the head up to ``latest_seq``."""
        if latest_seq > self.head:
            missing = await self.history.read(self.session_id, self.head, latest_seq)
            for logged in missing or ():
                self.offer(logged)

    # -- sockets ---------------------------------------------------------------------------

    async def attach(
        self, sock: ClientSocket, last_seq: int, *, read_only: bool = False, announce: bool = True
    ) -> int:
        """Attach ``sock`` and bring it to live: ``resumed`` + replay, or ``snapshot``.

        Must be called with the channel already subscribed, so that no live event is lost
        between the history read and live delivery. Returns the number of events replayed.
        """
        current = await self.history.current_seq(self.session_id)
        if last_seq > current:
            raise InvalidField(
                f"last_seq is beyond the session's last event ({current})", field="last_seq"
            )
        attachment = Attachment(sock, last_seq + 1, read_only=read_only)
        self.attachments[sock] = attachment
        replay = self._recent_after(last_seq)
        source = "memory"
        if replay is None:
            replay = await self.history.read(self.session_id, last_seq)
            source = self.history.last_source
        if self.attachments.get(sock) is not attachment:
            return 0  # detached or re-attached meanwhile
        if replay is None:
            # History no longer reaches last_seq + 1: the state as of what Postgres has, then
            # the events after it (Redis keeps the recent ones).
            snapshot = await self.snapshot(self.session_id)
            if snapshot is None:
                raise RuntimeError("no history and no snapshot")
            metrics.RESUMES.labels("snapshot").inc()
            sock.send(snapshot)
            attachment.next_seq = snapshot.seq + 1
            replay = await self.history.read(self.session_id, snapshot.seq) or []
        else:
            if announce:
                metrics.RESUMES.labels(source).inc()
                sock.send(Resumed(session_id=self.session_id, replayed=len(replay)))
        if not self.synced:
            # The first socket here: live starts after what history holds. (On a synced
            # channel the head only moves by delivery, or in-flight events would be dropped
            # for the other sockets.)
            self.set_head(max(current, replay[-1].seq if replay else 0))
        # The replay is paced by the socket's drain (it may be far larger than the send
        # queue); live events meanwhile are held, then delivered after it.
        for logged in replay:
            if logged.seq >= attachment.next_seq:
                await sock.send_paced(logged.encoded(sock.codec))
                attachment.next_seq = logged.seq + 1
        attachment.catching_up = False
        held, attachment.held = attachment.held, []
        for logged in held:
            attachment.deliver(logged)
        return len(replay)

    def _recent_after(self, last_seq: int) -> list[LoggedEvent] | None:
        """The events after ``last_seq`` that this worker delivered, from the recent cache;
        None when it does not reach back to ``last_seq + 1``. Events after those are on their
        way here (the owner's own appends, or pub/sub) and reach the socket live."""
        recent = self.recent
        if not recent or recent[0].seq > last_seq + 1 or recent[-1].seq < last_seq:
            return None
        return [e for e in recent if e.seq > last_seq]

    def detach(self, sock: ClientSocket) -> None:
        self.attachments.pop(sock, None)

    def sockets(self) -> list[ClientSocket]:
        return [a.sock for a in self.attachments.values()]

    async def close(self) -> None:
        if self._filling is not None:
            self._filling.cancel()
            await asyncio.gather(self._filling, return_exceptions=True)
