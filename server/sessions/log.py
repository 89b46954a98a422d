"""A session's event log, as its owner appends to it.

Contract of :meth:`SessionLog.append`:
- one atomic Redis step (``server.hub.scripts.APPEND``) checks this worker's lease token
  (the fence), assigns the next seq, adds the event to the session's history stream and
  publishes it; a stale owner gets :class:`LeaseLost` and nothing is appended;
- the event is then delivered to this worker's own sockets (through the session's channel)
  and queued for Postgres with its side records; ``LoggedEvent.durable`` resolves once
  Postgres has it (for ``interviewer.delta`` and ``score.delta``, which nobody acks, the
  write may wait for a bigger batch: up to the writer's ``lazy_delay_s``);
- every string of the event, and so of the rows projected from it, is storable
  (:mod:`protocol.storable`):
  text from outside (the model's tokens, the candidate's code output, test messages) has
  each U+0000 and lone surrogate replaced by U+FFFD here, before the event is streamed, so
  an event is never streamed that Postgres would refuse;
- appends of one session are serialised, so seqs are assigned and delivered in order; an
  append may wait behind another (or behind Redis), so a caller must not predict its seq
  from ``last_seq``: the rows that name the event's seq are projected from the event once
  its seq is assigned (:mod:`server.sessions.projector`);
- an event nobody waits for at once (:data:`TICK_TYPES`: a score delta, a turn's end) does
  not start a Redis round trip of its own: it rides in the next pipeline another append
  starts (on a tick, every speaking session's delta), or leaves after ``tick_s`` at the
  latest; every other event (a turn's start, the candidate's input, which its sender waits
  to see acked) goes at once;
- while Redis is unreachable (or a cluster's slot is failing over or moving) the append is retried with backoff (for up to
  ``redis_retry_s``), so a Redis restart pauses a session instead of breaking it. If Redis
  came back without the lease (it lost its data), the lease is taken again with the seq
  counter raised to what this owner last assigned: seqs continue with no gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import msgspec
import redis.exceptions as redis_errors

from protocol.codec import JSON
from protocol.messages import InterviewerTurnEnd, ScoreDelta, SessionEvent
from protocol.storable import storable_value
from server.hub.lease import Lease
from server.hub.redis_client import TRANSIENT_ERRORS
from server.retry import Backoff, Retrying
from server.sessions.event_writer import EventWriter, Records
from server.sessions.logged_event import LoggedEvent as LoggedEvent
from server.sessions.logged_event import now_ms as now_ms
from server.sessions.logged_event import with_stamp, without_stamp
from server.sessions.projector import SessionProjector
from server.sessions.serial_lock import SerialLock


class LocalFanout(Protocol):
    """Where the log hands each appended event on this worker: the session's channel
    (:class:`server.sessions.channel.SessionChannel`), which observes the log."""

    def offer(self, logged: LoggedEvent) -> None: ...


log = logging.getLogger("mentara.log")
#: With ``audit``: one line per appended event, "append S seq N token W:F" (the fence it was
#: appended under), from which the chaos checker tells whether two owners ever appended to
#: one session at once.
audit_log = logging.getLogger("mentara.audit")

#: Event types whose commit nobody awaits (EventWriter ``urgent=False``).
_LAZY_TYPES = frozenset({"interviewer.delta", "score.delta"})
#: Events whose Redis step may wait for the next tick's pipeline (up to ``tick_s``).
TICK_TYPES = (ScoreDelta, InterviewerTurnEnd)


class LeaseLost(Exception):
    """Another worker owns the session now; this one must stop appending."""


REDIS_BACKOFF = Backoff(base_s=0.05, max_s=1.0)
"""Waits between append attempts while Redis is unreachable (a restart)."""


def _encode_storable(event: SessionEvent) -> bytes | None:
    """The event's wire JSON, or None when a string in it holds U+0000 (its JSON escape
    shows in the bytes: one search, no walk) or a lone surrogate (UTF-8 cannot encode it)."""
    try:
        raw = JSON.encode(event)
    except UnicodeEncodeError:
        return None
    # A literal backslash before "u0000" also matches: the walk then changes nothing.
    return None if b"\\u0000" in raw else raw


AppendScript = Callable[..., Awaitable[object]]
#: Told how an ``append_soon`` ended: the logged event, or the error.
AppendDone = Callable[[LoggedEvent | None, BaseException | None], None]
#: Takes the lease again after Redis lost it (None: another worker has it now).
Reacquire = Callable[[int], Awaitable[Lease | None]]


class SessionLog:
    def __init__(
        self,
        session_id: str,
        *,
        last_seq: int,
        lease: Lease,
        keys: list[str],
        channel_name: str,
        append_script: AppendScript,
        reacquire: Reacquire,
        writer: EventWriter,
        channel: LocalFanout,
        stream_maxlen: int,
        ttl_ms: int,
        redis_retry_s: float = 30.0,
        audit: bool = False,
        tick_s: float | None = None,
    ) -> None:
        self.session_id = session_id
        self.last_seq = last_seq
        #: The one handle of the session's lease on this worker: the live session reads and
        #: replaces it here (a re-take), the fenced append presents its token.
        self.lease = lease
        self.keys = keys
        self.channel_name = channel_name
        self.append_script = append_script
        self.reacquire = reacquire
        self.writer = writer
        self.channel = channel
        #: Derives each appended event's rows; a new owner warms it with the events it took.
        self.projector = SessionProjector(session_id)
        self.stream_maxlen = stream_maxlen
        self.ttl_ms = ttl_ms
        self.redis_retry_s = redis_retry_s
        self.audit = audit
        #: How long a :data:`TICK_TYPES` event may wait for another append's pipeline (the
        #: coalescing window); None: every event goes at once.
        self.tick_s = tick_s
        self.lost = False
        self._lock = SerialLock()
        self._tasks: set[asyncio.Task[None]] = set()  # append_soon's slow paths
        #: Called with every appended event, in seq order; must not block (live scoring).
        self.observers: list[Callable[[LoggedEvent], None]] = []

    @property
    def token(self) -> str:
        """The fencing token the append presents: the lease's."""
        return self.lease.token

    async def append(self, event: SessionEvent, *, input_id: str | None = None) -> LoggedEvent:
        """Append ``event`` (its seq and ts are assigned here); see the module docstring.

        Its rows (the event, a transcript turn, a code snapshot, the ending) are projected
        from it by the log's :class:`~server.sessions.projector.SessionProjector` with the
        seq it got. ``input_id``: the client input this event applies, recorded in Redis
        with the seq in the same step (a take-over knows it even before Postgres does) and in
        Postgres with the event.

        Raises LeaseLost when another worker owns the session. Cancelling it while it waits
        for Redis appends nothing; after Redis answered, the event stands and is delivered.
        """
        async with self._lock:
            if self.lost:
                raise LeaseLost(self.session_id)
            event, body = self._storable(event)
            ts = now_ms()
            within_s = self.tick_s if isinstance(event, TICK_TYPES) else None
            seq = await self._append_in_redis(ts, body, input_id or "", within_s)
            logged, extra, urgent = self._deliver(event, body, seq, ts, input_id)
            durable = logged.durable = await self.writer.submit(extra, urgent=urgent)
            durable.add_done_callback(logged.forget_durable)
            return logged

    def append_soon(self, event: SessionEvent, done: AppendDone) -> bool:
        """:meth:`append` without waiting, for the process's tick (one pass appends every
        speaking session's delta; see ``server.interviewer.tick_speech``).

        False, doing nothing, when another append holds the log (take it again next tick).
        Else the append is under way and ``done(logged, None)`` is called once it stands
        (delivered locally, queued for Postgres), or ``done(None, error)`` when it failed
        (:class:`LeaseLost`, Redis gone past ``redis_retry_s``). A first attempt Redis
        refused or did not answer is finished by :meth:`append`'s own retry path, still in
        order: the log stays held until ``done`` is called. Needs an append script that can
        queue without waiting (``submit``, as :class:`~server.hub.batcher.ScriptBatcher`);
        with another it takes the waiting path in a task.
        """
        if self.lost:
            done(None, LeaseLost(self.session_id))
            return True
        if not self._lock.try_acquire():
            return False
        try:
            event, body = self._storable(event)
            ts = now_ms()
            submit = getattr(self.append_script, "submit", None)
            token_used = self.token
            first = (
                submit(keys=self.keys, args=self._script_args(token_used, ts, body, ""))
                if submit is not None
                else None
            )
        except BaseException:
            self._lock.release()
            raise
        if first is None:
            self._spawn(self._finish_soon(event, body, ts, None, done))
        else:
            first.add_done_callback(
                lambda answered: self._answered(answered, event, body, ts, token_used, done)
            )
        return True

    def _answered(
        self,
        answered: asyncio.Future[object],
        event: SessionEvent,
        body: bytes,
        ts: int,
        token_used: str,
        done: AppendDone,
    ) -> None:
        if answered.cancelled() or answered.exception() is not None:
            self._spawn(self._finish_soon(event, body, ts, None, done))
            return
        seq = int(answered.result())  # type: ignore[call-overload]
        self._audit(seq, token_used)
        try:
            logged, extra, urgent = self._deliver(event, body, seq, ts, None)
            durable = self.writer.submit_nowait(extra, urgent=urgent)
        except BaseException as exc:
            self._lock.release()
            done(None, exc)
            return
        if durable is None:  # the writer is full: wait for room in a task, still in order
            self._spawn(self._finish_soon(event, body, ts, (logged, extra, urgent), done))
            return
        logged.durable = durable
        durable.add_done_callback(logged.forget_durable)
        self._lock.release()
        done(logged, None)

    async def _finish_soon(
        self,
        event: SessionEvent,
        body: bytes,
        ts: int,
        delivered: tuple[LoggedEvent, Records, bool] | None,
        done: AppendDone,
    ) -> None:
        """The rest of an :meth:`append_soon` that could not finish in its callback: the
        Redis step again through the retry path (unless it stood), the Postgres queue."""
        try:
            if delivered is None:
                seq = await self._append_in_redis(ts, body, "")
                delivered = self._deliver(event, body, seq, ts, None)
            logged, extra, urgent = delivered
            durable = logged.durable = await self.writer.submit(extra, urgent=urgent)
            durable.add_done_callback(logged.forget_durable)
        except BaseException as exc:
            self._lock.release()
            done(None, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._lock.release()
        done(logged, None)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work, name=f"append-{self.session_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _storable(self, event: SessionEvent) -> tuple[SessionEvent, bytes]:
        """The event (its strings made storable if need be) and its JSON without the stamp."""
        unstamped = (
            event
            if event.seq == 0 and event.ts == 0
            else msgspec.structs.replace(event, seq=0, ts=0)
        )
        raw = _encode_storable(unstamped)
        if raw is None:  # text from outside (a model, the candidate's code) made storable
            log.warning(
                "%s event of %s: unstorable text replaced",
                type(event).__name__,
                self.session_id,
            )
            event = storable_value(event)
            unstamped = storable_value(unstamped)
            raw = JSON.encode(unstamped)
        return event, without_stamp(raw)

    def _deliver(
        self, event: SessionEvent, body: bytes, seq: int, ts: int, input_id: str | None
    ) -> tuple[LoggedEvent, Records, bool]:
        """The event that got ``seq``, to this worker's sockets and observers; its rows, and
        whether someone waits for their commit (a delta's may ride in a later batch)."""
        stamped = msgspec.structs.replace(event, seq=seq, ts=ts)
        logged = LoggedEvent(stamped)
        logged._encoded[JSON.name] = with_stamp(seq, ts, body)
        self.last_seq = seq
        self.channel.offer(logged)
        for observe in self.observers:
            observe(logged)
        extra = self.projector.rows(logged, input_id)
        return logged, extra, logged.type not in _LAZY_TYPES

    def _audit(self, seq: int, token: str) -> None:
        if self.audit:
            audit_log.info(
                "append %s seq %s token %s",
                self.session_id,
                seq,
                token,
                extra={"session_id": self.session_id},
            )

    def _script_args(self, token: str, ts: int, body: bytes, input_id: str) -> list[object]:
        # The last argument is the seq floor: this owner's last seq (see scripts.APPEND).
        return [
            token,
            ts,
            body,
            self.stream_maxlen,
            self.ttl_ms,
            self.channel_name,
            input_id,
            self.last_seq,
        ]

    async def _append_in_redis(
        self, ts: int, body: bytes, input_id: str, within_s: float | None = None
    ) -> int:
        """The Redis step, retried; ``within_s``: the first attempt may wait that long for
        another append's pipeline (with a batcher that can; retries go at once)."""
        retrying: Retrying | None = None  # made on the first failure: nothing per append
        submit = getattr(self.append_script, "submit", None) if within_s is not None else None
        while True:
            token_used = self.token
            args = self._script_args(token_used, ts, body, input_id)
            try:
                answer: object
                if submit is not None:
                    call, submit = submit(keys=self.keys, args=args, within_s=within_s), None
                    answer = await call
                else:
                    answer = await self.append_script(keys=self.keys, args=args)
                seq: int = int(answer)  # type: ignore[call-overload]
                self._audit(seq, token_used)
                return seq
            except TRANSIENT_ERRORS as exc:
                retrying = await _wait_to_retry(retrying, self.redis_retry_s, exc)
            except redis_errors.ResponseError as exc:
                if "FENCED" not in str(exc):
                    raise
                if self.token != token_used:
                    continue  # the lease keeper re-took the lease meanwhile
                try:
                    lease = await self.reacquire(self.last_seq)
                except TRANSIENT_ERRORS as again:
                    retrying = await _wait_to_retry(retrying, self.redis_retry_s, again)
                    continue
                if lease is None:
                    self.lost = True
                    raise LeaseLost(self.session_id) from None
                log.warning("lease of %s re-taken after Redis lost it", self.session_id)
                self.lease = lease


async def _wait_to_retry(retrying: Retrying | None, retry_s: float, exc: BaseException) -> Retrying:
    """Sleep before the next attempt of an append Redis did not answer; re-raise ``exc`` once
    ``retry_s`` has passed since the first failure."""
    if retrying is None:
        retrying = Retrying(REDIS_BACKOFF, give_up_after_s=retry_s)
    delay = retrying.next_delay()
    if delay is None:
        raise exc
    log.warning("redis unreachable (%r); retrying append in %.2fs", exc, delay)
    await asyncio.sleep(delay)
    return retrying
