"""Ownership of sessions, cluster-wide: a lease in Redis with a fencing token.

A worker owns a session while its lease (``<worker>:<fence>``) is in Redis; the fence grows
with every acquisition, and the append script refuses any token but the current one, so a
stale owner can never append (invariant 1). The lease expires ``lease_ms`` after its last
renewal: an owner that dies is replaced once that time has passed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio.cluster import RedisCluster

from server.hub import scripts
from server.hub.batcher import ScriptBatcher
from server.hub.cluster_batcher import ClusterScriptBatcher
from server.hub.keys import session_keys
from server.hub.redis_client import RedisClient

RELEASED = "released"


@dataclass(frozen=True)
class Lease:
    session_id: str
    token: str
    seq: int  # the session's last seq when the lease was taken


class Leases:
    def __init__(
        self, redis: RedisClient, prefix: str, worker_id: str, *, lease_ms: int, ttl_ms: int
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.worker_id = worker_id
        self.lease_ms = lease_ms
        self.ttl_ms = ttl_ms
        self._acquire = redis.register_script(scripts.ACQUIRE)
        self._renew = redis.register_script(scripts.RENEW)
        self._release = redis.register_script(scripts.RELEASE)
        # Appends are auto-pipelined: all those of one loop turn share a round trip (per
        # node, on a cluster).
        self.append_script: ScriptBatcher
        if isinstance(redis, RedisCluster):
            self.append_script = ClusterScriptBatcher(redis, scripts.append_script(sharded=True))
        else:
            self.append_script = ScriptBatcher(redis, scripts.append_script(sharded=False))

    async def aclose(self) -> None:
        await self.append_script.aclose()

    async def acquire(self, session_id: str, floor_seq: int) -> Lease | None:
        """Take the lease if nobody holds it; None if another worker does."""
        keys = session_keys(self.prefix, session_id)
        token, value = await self._acquire(
            keys=[keys.lease, keys.fence, keys.seq],
            args=[self.worker_id, self.lease_ms, floor_seq, self.ttl_ms],
        )
        if not token:
            return None
        return Lease(
            session_id, token.decode() if isinstance(token, bytes) else str(token), int(value)
        )

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
        pipe = self.redis.pipeline(transaction=False)
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
