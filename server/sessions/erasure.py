"""Erasing sessions cluster-wide: the live side of ``DELETE /v1/me`` (PROTOCOL.md §6, §7).

Any worker may own a session and any worker may have sockets on it, so the worker serving the
request coordinates every worker over one Redis channel they all listen on
(:func:`server.hub.keys.erase_channel`), in two rounds around the deletion of the data:

1. ``end``: each worker ends the listed sessions it owns with ``session.ended {deleted}``,
   appended through the session's own log like any event (fenced, published: every socket on
   every worker receives it in order), waits until Postgres has it (so nothing of the session
   is left in the write-behind queue when its rows are deleted), stops the engine without a
   report, and releases the lease.
2. the coordinator deletes the Postgres rows (its caller's ``delete_rows``) and the session's
   Redis keys: lease, fence, seq counter and history stream.
3. ``gone``: each worker closes its sockets on the sessions with 4004, after sending
   ``session.ended {deleted}`` to any that did not get it from an owner (a session no worker
   owned), and drops a take-over that slipped in meanwhile.

A round waits for a reply from every worker the request reached (PUBLISH says how many),
at most ``timeout_s``. When ``end`` is not confirmed by all, :class:`EraseIncomplete` is
raised before anything is deleted (retryable; erasing is idempotent). Since the rows are gone
after step 2, a resume of these sessions on any worker answers ``not_found``.

Wire format: :class:`~server.hub.worker_messages.EraseRound` and
:class:`~server.hub.worker_messages.EraseDone` (JSON on the erase channel).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, Protocol

from protocol.messages import SessionEnded
from server.errors import ServiceUnavailable, SessionDeleted
from server.hub.keys import erase_channel, session_keys
from server.hub.redis_client import RedisClient, publish
from server.hub.worker_messages import (
    EraseDone,
    EraseRound,
    decode_erase_message,
    encode_erase_message,
)
from server.sessions.log import now_ms

if TYPE_CHECKING:
    from server.hub.lease import Lease
    from server.sessions.channel import SessionChannel
    from server.sessions.live import LiveSession

log = logging.getLogger("mentara.erasure")

#: Sessions erased per round (one request on the erase channel each way).
ERASE_BATCH = 200


class EraseIncomplete(ServiceUnavailable):
    """Not every worker confirmed that it stopped the sessions; nothing was deleted. Retry."""


class _Round:
    def __init__(self) -> None:
        self.expected: int | None = None
        self.replies = 0
        self.complete = asyncio.Event()

    def reply(self) -> None:
        self.replies += 1
        self._check()

    def expect(self, receivers: int) -> None:
        self.expected = receivers
        self._check()

    def _check(self) -> None:
        if self.expected is not None and self.replies >= self.expected:
            self.complete.set()


class ErasureOwners(Protocol):
    """What the eraser needs of the sessions its worker owns (:class:`Ownership`)."""

    def owned_session(self, session_id: str) -> LiveSession | None:
        """The live session this worker owns under ``session_id``, if any."""

    def take_owned(self, session_id: str) -> LiveSession | None:
        """Forget and return the owned session under ``session_id`` (the caller closes it)."""

    def forget_owned(self, session: LiveSession) -> None:
        """Forget ``session`` if it is still the one owned under its id."""

    async def release_lease(self, lease: Lease) -> None:
        """Hand ``lease`` back."""


class ErasureChannels(Protocol):
    """What the eraser needs of its worker's session channels (:class:`LocalChannels`)."""

    def get(self, session_id: str) -> SessionChannel | None:
        """This worker's channel of the session, if it has one."""

    async def drop(self, session_id: str) -> None:
        """Forget the session's channel, whose sockets the caller detached, and stop its
        pub/sub subscription; the caller closes the channel."""


class SessionEraser:
    """Ends and closes erased sessions on every worker (the rounds above); one per worker,
    listening on the erase channel while the worker runs."""

    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        worker_id: str,
        owners: ErasureOwners,
        channels: ErasureChannels,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.worker_id = worker_id
        self.owners = owners
        self.channels = channels
        self.timeout_s = timeout_s
        self.channel = erase_channel(prefix)
        self._rounds: dict[str, _Round] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the coordinator -------------------------------------------------------------------

    async def erase(
        self, session_ids: list[str], delete_rows: Callable[[list[str]], Awaitable[None]]
    ) -> None:
        """End ``session_ids`` everywhere, ``delete_rows(session_ids)``, delete their Redis
        keys, close their sockets with 4004. Raises EraseIncomplete (nothing deleted) when a
        worker did not confirm the first round in time."""
        if not session_ids:
            return
        if not await self._round("end", session_ids):
            raise EraseIncomplete("not every server confirmed the deletion; retry")
        await delete_rows(session_ids)
        pipe = self.redis.pipeline(transaction=False)
        for session_id in session_ids:
            keys = session_keys(self.prefix, session_id)
            pipe.delete(keys.lease, keys.fence, keys.seq, keys.stream, keys.inputs)  # one slot
        await pipe.execute()
        if not await self._round("gone", session_ids):
            # The data is gone already; a silent worker's sockets see not_found on resume.
            log.warning("not every worker confirmed closing the sockets of erased sessions")

    async def _round(self, kind: Literal["end", "gone"], session_ids: list[str]) -> bool:
        rid = uuid.uuid4().hex
        waiting = self._rounds[rid] = _Round()
        request = EraseRound(k=kind, rid=rid, sender=self.worker_id, sids=session_ids)
        try:
            published = await publish(self.redis, self.channel, encode_erase_message(request))
            waiting.expect(published)
            try:
                async with asyncio.timeout(self.timeout_s):
                    await waiting.complete.wait()
            except TimeoutError:
                log.warning(
                    "erase round %s: %d of %s workers answered",
                    kind,
                    waiting.replies,
                    waiting.expected,
                )
                return False
            return True
        finally:
            self._rounds.pop(rid, None)

    # -- every worker ----------------------------------------------------------------------

    def on_message(self, data: bytes) -> None:
        """A message on the erase channel (called in pub/sub order; never blocks)."""
        try:
            message = decode_erase_message(data)
        except ValueError:
            log.warning("undecodable message on the erase channel")
            return
        if isinstance(message, EraseDone):
            if message.to == self.worker_id:
                waiting = self._rounds.get(message.rid)
                if waiting is not None:
                    waiting.reply()
            return
        task = asyncio.create_task(self._serve(message), name=f"erase-{message.k}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, message: EraseRound) -> None:
        session_ids = message.sids
        try:
            if message.k == "end":
                await asyncio.gather(
                    *(
                        self._end_owned(session)
                        for session_id in session_ids
                        if (session := self.owners.owned_session(session_id)) is not None
                    )
                )
            else:
                await self._close_here(session_ids)
        except Exception:
            # Reply all the same: what could be stopped is stopped; the coordinator must not
            # wait out its timeout for a failure it cannot fix.
            log.exception("erase round failed on this worker")
        reply = EraseDone(rid=message.rid, to=message.sender)
        try:
            await publish(self.redis, self.channel, encode_erase_message(reply))
        except Exception:
            log.warning("could not confirm an erase round", exc_info=True)

    async def _end_owned(self, session: LiveSession) -> None:
        """``session.ended {deleted}`` through the session's log, durable; then stop here."""
        owners = self.owners
        scoring, session.scoring = session.scoring, None  # no report for a deleted session
        try:
            if scoring is not None:
                await scoring.close()
            ended = await session.end("deleted")
            if ended is None:  # it had ended already (its report may be on the way)
                ended = await session.log.append(SessionEnded(reason="deleted", seq=0, ts=0))
            if ended.durable is not None:
                await ended.durable
        except Exception:
            log.warning("could not end %s for deletion", session.id, exc_info=True)
        finally:
            await session.close()
            owners.forget_owned(session)
            if session.lease is not None:
                try:
                    await owners.release_lease(session.lease)
                except Exception:
                    log.warning("could not release the lease of %s", session.id)

    async def _close_here(self, session_ids: list[str]) -> None:
        for session_id in session_ids:
            straggler = self.owners.take_owned(session_id)  # taken over after round one
            if straggler is not None:
                straggler.log.lost = True
                await straggler.close()
            channel = self.channels.get(session_id)
            if channel is None:
                continue
            last = channel.recent[-1].event if channel.recent else None
            told = isinstance(last, SessionEnded) and last.reason == "deleted"
            for sock in channel.sockets():
                if not told:
                    sock.send(SessionEnded(reason="deleted", seq=channel.head + 1, ts=now_ms()))
                sock.end(SessionDeleted("session deleted"))  # after what is queued
                # Detached here, all at once: their own detach then finds no channel, rather
                # than each re-deciding the subscription while the others leave.
                channel.detach(sock)
            await self.channels.drop(session_id)  # no sockets left: unsubscribed
            await channel.close()
