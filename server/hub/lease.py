"""Ownership of sessions, cluster-wide: a lease in Redis with a fencing token.

A worker owns a session while its lease (``<worker>:<fence>``) is in Redis; the fence grows
with every acquisition, and the append script refuses any token but the current one, so a
stale owner can never append (invariant 1). The lease expires ``lease_ms`` after its last
renewal: an owner that dies is replaced once that time has passed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from redis.asyncio.cluster import RedisCluster

from server.hub import scripts
from server.hub.batcher import ScriptBatcher
from server.hub.cluster_batcher import ClusterScriptBatcher
from server.hub.keys import session_keys
from server.hub.redis_client import RedisClient

RELEASED = "released"

#: One line per lease taken ("lease taken: session S token W:F at seq N"): with the append
#: audit (server.sessions.log) the record of who owned what, when (the chaos checker reads it).
log = logging.getLogger("mentara.lease")


@dataclass(frozen=True)
class Lease:
    session_id: str
    token: str
    seq: int  # the session's last seq when the lease was taken


class Leases:
    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        worker_id: str,
        *,
        lease_ms: int,
        ttl_ms: int,
        unfenced: bool = False,
    ) -> None:
        """``unfenced`` is TEST ONLY: appends skip the fence check (``scripts.APPEND_UNFENCED``)."""
        self.redis = redis
        self.prefix = prefix
        self.worker_id = worker_id
        self.lease_ms = lease_ms
        self.ttl_ms = ttl_ms
        self._acquire = redis.register_script(scripts.ACQUIRE)
        self._renew = redis.register_script(scripts.RENEW)
        self._release = redis.register_script(scripts.RELEASE)
        if unfenced:
            log.warning("MENTARA_TEST_UNFENCED_APPEND: appends are NOT fenced (a test build)")
        # Appends are auto-pipelined: all those of one loop turn share a round trip (per
        # node, on a cluster).
        self.append_script: ScriptBatcher
        if isinstance(redis, RedisCluster):
            self.append_script = ClusterScriptBatcher(
                redis, scripts.append_script(sharded=True, unfenced=unfenced)
            )
        else:
            self.append_script = ScriptBatcher(
                redis, scripts.append_script(sharded=False, unfenced=unfenced)
            )

    async def aclose(self) -> None:
        await self.append_script.aclose()

    async def acquire(
        self, session_id: str, floor_seq: int, *, retake: bool = False
    ) -> Lease | None:
        """Take the lease if nobody holds it; None if another worker does.

        ``retake``: the caller owned the session and its lease vanished (Redis lost its
        data); ``floor_seq`` is then the last seq it appended, and the lease is refused
        (None) when the session's counter is past it: another owner appended meanwhile, so
        the caller's state of the session is stale (found by the chaos harness)."""
        keys = session_keys(self.prefix, session_id)
        token, value = await self._acquire(
            keys=[keys.lease, keys.fence, keys.seq],
            args=[
                self.worker_id,
                self.lease_ms,
                floor_seq,
                self.ttl_ms,
                floor_seq if retake else "",
            ],
        )
        if not token:
            return None
        lease = Lease(
            session_id, token.decode() if isinstance(token, bytes) else str(token), int(value)
        )
        log.info(
            "lease taken: session %s token %s at seq %d",
            session_id,
            lease.token,
            lease.seq,
            extra={"session_id": session_id},
        )
        return lease

    async def retake(self, session_id: str, last_seq: int, stored_seq: int) -> Lease | None:
        """A former owner whose lease vanished takes it again, only if its state is current:
        nobody appended past ``last_seq`` (its own last), neither in Redis (the counter) nor in
        Postgres (``stored_seq``: another owner's events flushed there, then lost by Redis
        with the counter; found by the chaos harness). None: stop owning the session."""
        if stored_seq > last_seq:
            log.warning(
                "not re-taking %s: the store is at seq %d, past ours (%d)",
                session_id,
                stored_seq,
                last_seq,
                extra={"session_id": session_id},
            )
            return None
        return await self.acquire(session_id, last_seq, retake=True)

    async def renew(self, leases: list[Lease]) -> list[bool]:
        """Renew many leases in one round trip; False where the lease is no longer ours."""
        if not leases:
            return []
        if isinstance(self.redis, RedisCluster):
            # One call each, sent concurrently: the cluster client routes each to its slot's
            # node (and loads the script on a node that lacks it, which a pipeline would not).
            renewed = await asyncio.gather(
                *(
                    self._renew(
                        keys=[session_keys(self.prefix, lease.session_id).lease],
                        args=[lease.token, self.lease_ms],
                    )
                    for lease in leases
                ),
                return_exceptions=True,
            )
            for result in renewed:  # a node down: as one Redis down, the round failed
                if isinstance(result, BaseException):
                    raise result
            return [bool(r) for r in renewed]
        # As a context manager: a renewal cancelled mid-way (a shutdown while Redis does not
        # answer) still resets the pipeline and gives its connection back.
        async with self.redis.pipeline(transaction=False) as pipe:
            for lease in leases:
                keys = session_keys(self.prefix, lease.session_id)
                await self._renew(keys=[keys.lease], args=[lease.token, self.lease_ms], client=pipe)
            return [bool(r) for r in await pipe.execute()]

    async def release(self, lease: Lease) -> None:
        """Hand the session over: other workers may take it at once."""
        keys = session_keys(self.prefix, lease.session_id)
        await self._release(keys=[keys.lease], args=[lease.token, self.lease_ms])

    async def holder(self, session_id: str) -> str | None:
        """The worker id that owns the session now; ``RELEASED`` after a hand-over; None
        when there is no lease at all (expired, or lost with a Redis restart)."""
        raw = await self.redis.get(session_keys(self.prefix, session_id).lease)
        if raw is None:
            return None
        value = raw.decode() if isinstance(raw, bytes) else str(raw)
        return RELEASED if value == RELEASED else value.rsplit(":", 1)[0]
