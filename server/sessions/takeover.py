"""Taking a session over: its lease held for the whole rebuild, from a history that reaches it.

:meth:`Rebuilds.take` takes a session's lease and rebuilds the session as this worker's own
(the caller registers it as owned). It guarantees:

- **the lease is held throughout**: from the moment it is taken, the lease keeper renews it
  with the owned sessions' leases (:meth:`Rebuilds.renewing`, :meth:`Rebuilds.renewed`), so a
  rebuild slowed by a slow store (history from Postgres, the backfill, the applied inputs)
  never outlives it and lets another worker in. A renewal refused means the lease was lost
  meanwhile: the rebuild is abandoned (None), nothing of it is used;
- **the history reaches the lease's seq**: a take-over rebuilds only from every event up to
  the seq its lease was taken at; while some are neither in Redis nor in Postgres yet (Redis
  lost its data and the previous owner's write-behind is behind), it releases the lease and
  raises ServiceUnavailable (retryable) instead of rebuilding from less (see
  :meth:`Rebuilds._short_history`);
- what the previous owner logged in Redis but Postgres lacks is backfilled, with the input
  ids its appends recorded in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.errors import ServiceUnavailable
from server.hub.keys import session_keys
from server.hub.lease import Lease, Leases
from server.hub.redis_client import TRANSIENT_ERRORS, RedisClient
from server.sessions.assembly import SessionAssembly
from server.sessions.event_writer import EventWriter
from server.sessions.history import History
from server.sessions.live import LiveSession
from server.sessions.local_channels import LocalChannels
from server.sessions.logged_event import LoggedEvent
from server.sessions.projector import backfill_records
from server.sessions.recovery import RecoveredState, recover_state
from server.sessions.store import SessionRow, SessionStore

__all__ = ["SHORT_HISTORY_WAIT_LEASES", "Rebuilds"]

log = logging.getLogger("mentara.sessions")

#: How long a take-over waits for a history that does not reach its lease's seq (in lease
#: periods) before it rebuilds from what there is (see ``Rebuilds._short_history``).
SHORT_HISTORY_WAIT_LEASES = 20


class Rebuilds:
    """This worker's take-overs in progress (see the module docstring)."""

    def __init__(
        self,
        *,
        redis: RedisClient,
        prefix: str,
        leases: Leases,
        store: SessionStore,
        writer: EventWriter,
        history: History,
        channels: LocalChannels,
        assembly: SessionAssembly,
        lease_ms: int,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.leases = leases
        self.store = store
        self.writer = writer
        self.history = history
        self.channels = channels
        self.assembly = assembly
        self.lease_ms = lease_ms
        self._rebuilding: dict[str, Lease] = {}  # leases taken, sessions not yet owned
        self._lapsed: set[str] = set()
        self._short_since: dict[str, float] = {}  # session -> first take-over with short history

    def renewing(self) -> list[Lease]:
        """The leases of the rebuilds in progress, for the keeper to renew."""
        return list(self._rebuilding.values())

    def renewed(self, lease: Lease, ok: bool) -> None:
        """The keeper's answer for ``lease``: a refusal abandons its rebuild."""
        if not ok and self._rebuilding.get(lease.session_id) is lease:
            self._lapsed.add(lease.session_id)

    async def take(self, row: SessionRow) -> tuple[LiveSession, RecoveredState] | None:
        """Take the session's lease and rebuild it as this worker's own (not yet in
        ``owned``); None when another worker holds the lease.

        What the previous owner logged in Redis but Postgres lacks is backfilled, with the
        input ids its appends recorded in Redis (they reach Postgres only with the
        write-behind: a dead owner's last inputs may be known only there); the session's
        state is replayed from history, and its channel goes live after the lease's seq."""
        session_id = row.id
        floor = await self.store.last_seq(session_id)
        lease = await self.leases.acquire(session_id, floor)
        if lease is None:
            return None
        self._rebuilding[session_id] = lease  # renewed by the keeper while we rebuild
        try:
            rebuilt = await self._rebuild(row, lease, floor)
        finally:
            self._rebuilding.pop(session_id, None)
            lapsed = session_id in self._lapsed
            self._lapsed.discard(session_id)
        if lapsed:
            log.warning("lease of %s lapsed during its rebuild; not taking it over", session_id)
            await rebuilt[0].close()
            return None
        return rebuilt

    async def _rebuild(
        self, row: SessionRow, lease: Lease, floor: int
    ) -> tuple[LiveSession, RecoveredState]:
        """The session rebuilt under ``lease`` (see :meth:`take`)."""
        session_id = row.id
        events = await self.history.read(session_id, 0, lease.seq) or []
        if lease.seq and (not events or events[-1].seq < lease.seq):
            await self._short_history(session_id, lease, events)
        self._short_since.pop(session_id, None)
        raw_inputs = await self.redis.hgetall(session_keys(self.prefix, session_id).inputs)
        redis_inputs = {
            _text(input_id): int(seq)
            for input_id, seq in raw_inputs.items()
            if int(seq) <= lease.seq
        }
        if any(e.seq > floor for e in events):
            await self.writer.submit(
                backfill_records(session_id, events, after=floor, inputs=redis_inputs)
            )
        state = recover_state(session_id, events)
        channel = self.channels.channel(session_id)
        if not channel.attachments:
            channel.set_head(lease.seq)
        session = self.assembly.live(
            row,
            lease,
            started_at_ms=row.created_at_ms,
            catch_up=events,
            transcript=state.transcript,
            phase=state.phase,
            turns_spoken=state.turns_spoken,
        )
        session.candidate_turns = state.candidate_turns
        session.code = state.code
        applied = await self.store.applied_inputs(session_id)
        for input_id, seq in sorted(redis_inputs.items(), key=lambda item: item[1]):
            applied.setdefault(input_id, seq)
        session.remember_inputs(applied)
        return session, state

    async def _short_history(
        self, session_id: str, lease: Lease, events: list[LoggedEvent]
    ) -> None:
        """The history does not reach the lease's seq: Redis lost its data, its previous owner
        had taken the lease back with the counter at its own last seq, and that owner's last
        events are not in Postgres yet (its write-behind is behind: frozen, or cut from
        Postgres). Rebuilt from less, this worker would not know them: a candidate message
        among them would give its next one the same turn id (docs/reliability.md, bug 3).

        So the take-over waits: the lease is released and ServiceUnavailable (retryable)
        raised, until the events are stored. Only once the history has stayed short for
        ``SHORT_HISTORY_WAIT_LEASES`` lease periods (their owner died with them: they are
        lost) is the session rebuilt from what there is, with an error logged."""
        now = asyncio.get_running_loop().time()
        since = self._short_since.setdefault(session_id, now)
        reached = events[-1].seq if events else 0
        if now - since < SHORT_HISTORY_WAIT_LEASES * self.lease_ms / 1000:
            log.warning(
                "history of %s reaches seq %d, its lease seq %d: not taking it over yet",
                session_id,
                reached,
                lease.seq,
                extra={"session_id": session_id},
            )
            with contextlib.suppress(*TRANSIENT_ERRORS):  # else it expires
                await self.leases.release(lease)
            raise ServiceUnavailable("the session's last events are not stored yet; retry")
        log.error(
            "history of %s lost seqs %d..%d; taking it over from what is stored",
            session_id,
            reached + 1,
            lease.seq,
            extra={"session_id": session_id},
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
