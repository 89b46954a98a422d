"""Ownership: the sessions this worker owns, their leases, take-overs and the keeper.

One worker owns a session at a time, cluster-wide: the one holding its lease (a fencing
token in Redis, :mod:`server.hub.lease`). :class:`Ownership` keeps this worker's owned
sessions and guarantees:

- **renewal first**: the keeper renews every lease each ``lease_ms / 3`` in one round trip
  that nothing else delays; a lease not renewed is re-taken if Redis lost it (a restart
  without persistence, with the seq counter raised to what this worker last appended), else
  the session is dropped here (its appends would be refused by the fence anyway);
- **take-over without a gap**: a session with sockets here and no live owner is taken over
  once its lease is released, or absent for a whole lease period (the owner may be re-taking
  it after a Redis restart); the rebuild (:mod:`server.sessions.takeover`) holds the lease
  throughout (the keeper renews it), needs a history that reaches the lease's seq, backfills
  Postgres with what the dead owner had not flushed, replays the state; a cut turn is ended
  with ``stop_reason: error``; concurrent take-overs of one session share one attempt;
- **reports**: an ended session whose report is done is handed back (lease released); a
  report left unwritten by a dead owner is written by :meth:`recover_report`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from server import metrics
from server.errors import NotFound, ServiceUnavailable
from server.hub.keys import session_keys
from server.hub.lease import RELEASED, Lease, Leases
from server.hub.redis_client import TRANSIENT_ERRORS, RedisClient
from server.sessions.assembly import SessionAssembly
from server.sessions.event_writer import EventWriter
from server.sessions.history import History
from server.sessions.live import LiveSession, SessionEndedError
from server.sessions.local_channels import LocalChannels
from server.sessions.logged_event import now_ms
from server.sessions.opening import OPENING_SEQ, open_session, started_at_ms
from server.sessions.store import SessionRow, SessionStore
from server.sessions.takeover import Rebuilds

__all__ = ["Ownership"]

log = logging.getLogger("mentara.sessions")


class Ownership:
    """The sessions this worker owns (``owned``, shared read-only with the channels), with
    the guarantees in the module docstring."""

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
        owned: dict[str, LiveSession],
        lease_ms: int,
        spawn: Callable[[Awaitable[object]], None],
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.leases = leases
        self.store = store
        self.writer = writer
        self.history = history
        self.channels = channels
        self.assembly = assembly
        self.owned = owned
        self.lease_ms = lease_ms
        self._spawn = spawn
        self._takeovers: dict[str, asyncio.Future[LiveSession | None]] = {}
        self._orphaned: dict[str, float] = {}  # session -> when we first saw it without a lease
        # Take-overs in progress: their leases are renewed by the keeper too.
        self.rebuilds = Rebuilds(
            redis=redis,
            prefix=prefix,
            leases=leases,
            store=store,
            writer=writer,
            history=history,
            channels=channels,
            assembly=assembly,
            lease_ms=lease_ms,
        )
        self._keeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._keeper = asyncio.create_task(self._keep(), name="lease-keeper")

    async def close(self) -> None:
        """Stop the keeper, stop every owned session (a turn in progress ends with
        ``error``) and hand it over by releasing its lease."""
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        sessions = list(self.owned.values())
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        for session in sessions:
            if session.lease is not None:
                try:
                    await self.leases.release(session.lease)
                except Exception:
                    log.warning("could not release the lease of %s", session.id)
        self.owned.clear()

    # -- the eraser's view (server.sessions.erasure.ErasureOwners) -------------------------

    def owned_session(self, session_id: str) -> LiveSession | None:
        return self.owned.get(session_id)

    def take_owned(self, session_id: str) -> LiveSession | None:
        return self.owned.pop(session_id, None)

    def forget_owned(self, session: LiveSession) -> None:
        if self.owned.get(session.id) is session:
            del self.owned[session.id]

    async def release_lease(self, lease: Lease) -> None:
        await self.leases.release(lease)

    # -- taking sessions -------------------------------------------------------------------

    async def own_new(self, row: SessionRow, *, started_at_ms: int) -> LiveSession:
        """Take the lease of a session just created and own it here (its channel starts
        before seq 1). Raises ServiceUnavailable (retryable) if the lease cannot be taken."""
        lease = await self.leases.acquire(row.id, 0)
        if lease is None:
            raise ServiceUnavailable("could not take the new session's lease; retry")
        self.channels.channel(row.id).set_head(0)
        session = self.assembly.live(row, lease, started_at_ms=started_at_ms)
        self.owned[row.id] = session
        return session

    async def abandon_new(self, session: LiveSession) -> None:
        """A session just owned whose start failed before its opening was durable (Redis or
        Postgres failed under it, or the start was cancelled): owned here no more, its lease
        released if Redis answers (else it expires). The start sent again, here or elsewhere,
        attaches, and a take-over completes the opening (:mod:`server.sessions.opening`)."""
        await self.drop(session.id)  # its socket has left: nothing stays to sync
        if session.lease is not None:
            with contextlib.suppress(*TRANSIENT_ERRORS):
                await self.leases.release(session.lease)

    async def ensure_owner(self, session_id: str) -> None:
        """Take the session over if it has no live owner (see the module docstring)."""
        if session_id in self.owned:
            return
        holder = await self.leases.holder(session_id)
        if self.may_take_over(session_id, holder):
            try:
                await self.take_over(session_id)
            except ServiceUnavailable as exc:  # not yet: tried again by the keeper
                log.info("not taking %s over now: %s", session_id, exc.message)

    def may_take_over(self, session_id: str, holder: str | None) -> bool:
        """A released session may be taken at once. A session with no lease at all may only
        be taken once it has stayed so for a whole lease period: after a Redis restart its
        owner may still be alive and about to take it back with its own, later, seq."""
        if holder == RELEASED:
            return True
        if holder is not None:
            self._orphaned.pop(session_id, None)
            return False
        now = asyncio.get_running_loop().time()
        first_seen = self._orphaned.setdefault(session_id, now)
        return now - first_seen >= self.lease_ms / 1000

    async def take_over(self, session_id: str) -> LiveSession | None:
        """Become the owner if nobody is; None when another worker holds the lease."""
        pending = self._takeovers.get(session_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[LiveSession | None] = asyncio.get_running_loop().create_future()
        self._takeovers[session_id] = future
        try:
            session = await self._load_as_owner(session_id)
            future.set_result(session)
            return session
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            future.exception()
            raise
        finally:
            self._takeovers.pop(session_id, None)

    async def _load_as_owner(self, session_id: str) -> LiveSession | None:
        existing = self.owned.get(session_id)
        if existing is not None:
            return existing
        row = await self._row(session_id)
        if row.status == "ended":
            raise SessionEndedError("this session has ended")
        taken = await self.rebuilds.take(row)
        if taken is None:
            return None
        session, state = taken
        if state.code is not None:
            session.engine.code_updated(state.code.language, state.code.source)
        self.owned[session_id] = session
        self._orphaned.pop(session_id, None)
        metrics.LEASE_TAKEOVERS.inc()
        await self.channels.sync(session_id)
        log.info(
            "took over session %s at seq %d",
            session_id,
            session.log.last_seq,
            extra={"session_id": session_id},
        )
        if state.open_turn is not None:
            await state.close_open_turn(session.log)
        if session.log.last_seq < OPENING_SEQ:
            # Its start did not finish its opening (server.sessions.opening).
            duration_s = self.assembly.config.engine.duration_s
            started = started_at_ms(row.deadline_ts, row.created_at_ms, duration_s)
            await open_session(
                session, self.assembly.catalog, started_ms=started, duration_s=duration_s
            )
            log.warning("completed the opening of %s, whose start had failed", session_id)
        # A log that ends at the opening has not been introduced yet.
        session.engine.start(introduce=session.log.last_seq == OPENING_SEQ)
        if row.deadline_ts is not None and row.deadline_ts <= now_ms():
            session.spawn(session.end("time_up"))
        else:
            session.arm_deadline()
        return session

    async def recover_report(self, session_id: str) -> bool:
        """Write the report of an ended session left without one (its owner died or shut down
        while writing it, or gave up): take the session's lease, rebuild its scoring from the
        stored events, run the end of the session again (hidden tests, final deltas, report,
        push rows, ``report.ready``). The keeper releases the lease once it is done.

        Returns False, doing nothing, when another worker holds the lease (an owner still at
        it) or the session is not an ended one; True once the attempt is over (see
        ``LiveSession.report_done``; whether it stored a report, Postgres says)."""
        if session_id in self.owned:
            return False
        row = await self._row(session_id)
        if row.status != "ended":
            return False
        taken = await self.rebuilds.take(row)
        if taken is None:
            return False
        session, _ = taken
        session.ended = True  # inputs are refused; the engine is never started
        self.owned[session_id] = session
        await self.channels.sync(session_id)
        log.warning("writing the report of %s, left without one", session_id)
        metrics.REPORTS_RECOVERED.inc()
        await session.write_report()
        return True

    async def drop(self, session_id: str) -> None:
        """This worker lost the lease: stop the engine (its appends would be refused)."""
        session = self.owned.pop(session_id, None)
        if session is not None:
            session.log.lost = True
            await session.close()
            channel = self.channels.forget_unattached(session_id)
            if channel is not None:
                # Our sockets stay: from now on the new owner's events come by pub/sub.
                await self.channels.sync(session_id)
                await channel.check_gap(await self.history.current_seq(session_id))

    async def _row(self, session_id: str) -> SessionRow:
        row = await self.store.get_session(session_id)
        if row is None:
            raise NotFound("no such session")
        return row

    # -- the keeper ------------------------------------------------------------------------

    async def _keep(self) -> None:
        interval = self.lease_ms / 1000 / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.keep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("lease keeping failed", exc_info=True)

    async def keep_once(self) -> None:
        """Renew every lease first, in one round trip; nothing else may delay it (a lease
        not renewed for ``lease_ms`` is lost). The rest (a lease not renewed, sessions done,
        sockets whose session has no owner here) runs in tasks of its own."""
        owned = [(s, s.lease) for s in self.owned.values() if s.lease is not None]
        rebuilding = self.rebuilds.renewing()  # take-overs still rebuilding hold theirs too
        renewed = await self.leases.renew([lease for _, lease in owned] + rebuilding)
        for lease, ok in zip(rebuilding, renewed[len(owned) :], strict=True):
            self.rebuilds.renewed(lease, ok)
        for (session, lease_used), ok in zip(owned, renewed[: len(owned)], strict=True):
            if ok or session.lease is not lease_used or session.id not in self.owned:
                continue  # renewed, or re-taken by an append meanwhile
            self._spawn(self._retake_or_drop(session))
        for session_id, session in list(self.owned.items()):
            if session.ended and session.report_done.is_set():
                self.owned.pop(session_id, None)
                self._spawn(self._hand_back(session))
        for session_id in self.channels.sessions_with_sockets():
            if session_id not in self.owned:
                self._spawn(self._ensure_owner_quietly(session_id))

    async def _hand_back(self, session: LiveSession) -> None:
        """An ended session whose report is done: release its lease; sockets still on it
        here now hear any later event (a recovered report) through pub/sub; without
        sockets, its channel goes too (they left while we owned it)."""
        if session.lease is not None:
            await self.leases.release(session.lease)
        await self.channels.sync(session.id)
        await self.channels.close_if_unused(session.id)

    async def _retake_or_drop(self, session: LiveSession) -> None:
        """Our lease was not renewed: take it again if Redis lost it (a restart without
        persistence), with the seq counter raised to what we last appended; else another
        worker owns the session now and this one stops."""
        value = await self.redis.get(session_keys(self.prefix, session.id).lease)
        if value is None:
            last = session.log.last_seq
            taken = await self.leases.retake(
                session.id, last, await self.store.last_seq(session.id)
            )
            if taken is not None:
                log.warning("re-took the lease of %s after Redis lost it", session.id)
                session.lease = taken  # the log's handle: its appends present the new token
                return
            # Taken meanwhile: by another worker, or by one of our own appends (which
            # re-takes it too, and records the new lease on the session).
            value = await self.redis.get(session_keys(self.prefix, session.id).lease)
        if value is not None and session.lease is not None and _text(value) == session.lease.token:
            return
        log.warning("lost the lease of %s", session.id)
        await self.drop(session.id)

    async def _ensure_owner_quietly(self, session_id: str) -> None:
        try:
            await self.ensure_owner(session_id)
        except SessionEndedError:
            pass
        except TRANSIENT_ERRORS as exc:
            log.warning("cannot check the owner of %s: %r", session_id, exc)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
