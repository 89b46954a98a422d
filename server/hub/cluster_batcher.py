"""The append pipeline on a Redis Cluster: the calls of one loop turn, grouped by node.

Same contract as :class:`server.hub.batcher.ScriptBatcher` (whose queue and flusher it
reuses): each call gets its own result or error, in the order made. Here a flush splits its
calls by the master that serves each call's slot (the slot of its first key; every key of a
session shares one hash tag) and sends one pipeline per node, all nodes at once, each on a
connection the batcher keeps for that node.

While a slot moves or a master fails over, the calls it refuses are redirected here, not
failed: ``MOVED`` (the slot has a new master: the slot map is read again and the call re-sent
there), ``ASK`` (the slot is migrating and this session's keys are already on the target:
``ASKING`` + the call, on the target), ``TRYAGAIN`` (a session's keys are split mid-migration:
re-sent shortly), ``NOSCRIPT`` (a node that never saw the script, such as a promoted replica:
loaded there and re-sent). A redirected call ran nowhere (Redis refuses before running a
script), so re-sending it is safe. After ``max_redirects`` rounds, or on a connection error
(a master down), the calls fail with that error; the caller's retry (``SessionLog``) waits for
the failover and tries again, and the slot map is read again before the next pipeline.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import redis.exceptions as redis_errors
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from server import metrics
from server.hub.batcher import ScriptBatcher, pack_command

_Call = tuple[list[Any], list[Any], asyncio.Future[Any]]

_TRYAGAIN_PAUSE_S = 0.02
_REDIRECTS: dict[type[Exception], str] = {
    redis_errors.MovedError: "moved",
    redis_errors.AskError: "ask",
    redis_errors.TryAgainError: "tryagain",
    redis_errors.NoScriptError: "noscript",
}


class ClusterScriptBatcher(ScriptBatcher):
    def __init__(
        self,
        cluster: RedisCluster,
        script: str,
        *,
        max_batch: int = 512,
        timeout_s: float = 5.0,
        max_redirects: int = 8,
    ) -> None:
        super().__init__(cluster, script, max_batch=max_batch, timeout_s=timeout_s)  # type: ignore[arg-type]
        self.cluster = cluster
        self.max_redirects = max_redirects
        self._sha = hashlib.sha1(script.encode()).hexdigest()
        self._conns: dict[str, Any] = {}
        self._stale = False  # read the slot map again before the next pipeline
        self.redirects = 0

    async def aclose(self) -> None:
        await super().aclose()
        conns, self._conns = self._conns, {}
        for conn in conns.values():
            await conn.disconnect(nowait=True)

    async def _send(self, batch: list[_Call]) -> None:
        results: list[Any] = [None] * len(batch)
        try:
            await self.cluster.initialize()
            if self._stale:
                self._stale = False
                await self.cluster.nodes_manager.initialize()
            pending = list(range(len(batch)))
            asking: dict[int, ClusterNode] = {}
            for _ in range(self.max_redirects + 1):
                pending = await self._round(batch, pending, asking, results)
                if not pending:
                    break
            for i in pending:
                results[i] = redis_errors.TryAgainError("the slot kept moving; try again")
        except Exception as exc:
            for i, result in enumerate(results):
                if result is None:
                    results[i] = exc
        self.pipelines += 1
        self.calls += len(batch)
        metrics.REDIS_PIPELINES.inc()
        metrics.REDIS_APPENDS.inc(len(batch))
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _round(
        self,
        batch: list[_Call],
        pending: list[int],
        asking: dict[int, ClusterNode],
        results: list[Any],
    ) -> list[int]:
        """Send the ``pending`` calls, one pipeline per node; store the final results; return
        the calls to send again (redirected)."""
        groups: dict[tuple[str, bool], tuple[ClusterNode, list[int]]] = {}
        manager = self.cluster.nodes_manager
        for i in pending:
            node = asking.get(i)
            if node is None:
                node = manager.get_node_from_slot(key_slot(_bytes(batch[i][0][0])))
            groups.setdefault((node.name, i in asking), (node, []))[1].append(i)
        outcomes = await asyncio.gather(
            *(
                self._node_pipeline(node, [batch[i] for i in indices], asking=ask)
                for (_, ask), (node, indices) in groups.items()
            ),
            return_exceptions=True,
        )
        again: list[int] = []
        refresh = pause = False
        for ((_, _), (node, indices)), outcome in zip(groups.items(), outcomes, strict=True):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome
                self._stale = True  # a master down: its replica takes over shortly
                for i in indices:
                    results[i] = outcome
                continue
            for i, reply in zip(indices, outcome, strict=True):
                asking.pop(i, None)
                kind = _REDIRECTS.get(type(reply))
                if kind is not None:
                    metrics.REDIS_REDIRECTS.labels(kind).inc()
                if isinstance(reply, redis_errors.MovedError):
                    refresh = True
                    again.append(i)
                elif isinstance(reply, redis_errors.AskError):
                    target = manager.get_node(reply.host, reply.port) or ClusterNode(
                        reply.host, reply.port, **_node_options(node)
                    )
                    asking[i] = target
                    again.append(i)
                elif isinstance(reply, redis_errors.TryAgainError):
                    pause = True
                    again.append(i)
                elif isinstance(reply, redis_errors.NoScriptError):
                    await self._load_script(node)
                    if (
                        node.name
                        != manager.get_node_from_slot(key_slot(_bytes(batch[i][0][0]))).name
                    ):
                        asking[i] = node  # it was an ASK target: ask again
                    again.append(i)
                else:
                    results[i] = reply
        if again:
            self.redirects += len(again)
        if refresh:
            await manager.initialize()
        if pause:
            await asyncio.sleep(_TRYAGAIN_PAUSE_S)
        return again

    def _connection(self) -> Any:  # pragma: no cover - the single-node path only
        raise NotImplementedError

    def _node_connection(self, node: ClusterNode) -> Any:
        conn = self._conns.get(node.name)
        if conn is None:
            conn = node.connection_class(**node.connection_kwargs)
            conn.socket_timeout = None  # ``_node_pipeline`` bounds the round trip
            self._conns[node.name] = conn
        return conn

    async def _node_pipeline(
        self, node: ClusterNode, calls: list[_Call], *, asking: bool
    ) -> list[Any]:
        """Every call of ``calls`` to ``node`` in one write (each after ``ASKING`` when
        ``asking``); each call's reply or error, in order."""
        sha = self._sha
        assert sha is not None
        head = (b"EVALSHA", sha.encode())
        prefix = pack_command((b"ASKING",)) if asking else b""
        packed = b"".join(
            prefix + pack_command((*head, len(keys), *keys, *args)) for keys, args, _ in calls
        )
        conn = self._node_connection(node)
        try:
            async with asyncio.timeout(self.timeout_s):
                await conn.send_packed_command(packed, check_health=False)
                results: list[Any] = []
                for _ in calls:
                    if asking:
                        await conn.read_response()  # OK
                    try:
                        results.append(await conn.read_response())
                    except redis_errors.ResponseError as exc:  # this call's error; read on
                        results.append(exc)
            return results
        except BaseException as exc:
            self._conns.pop(node.name, None)
            await conn.disconnect(nowait=True)
            if isinstance(exc, TimeoutError):
                raise redis_errors.TimeoutError("append pipeline timed out") from exc
            raise

    async def _load_script(self, node: ClusterNode) -> None:
        conn = self._node_connection(node)
        try:
            async with asyncio.timeout(self.timeout_s):
                await conn.send_command("SCRIPT", "LOAD", self.script)
                await conn.read_response()
        except BaseException:
            self._conns.pop(node.name, None)
            await conn.disconnect(nowait=True)
            raise


def _bytes(key: Any) -> bytes:
    return key if isinstance(key, bytes) else str(key).encode()


def _node_options(node: ClusterNode) -> dict[str, Any]:
    options = dict(node.connection_kwargs)
    options.pop("host", None)
    options.pop("port", None)
    return options
