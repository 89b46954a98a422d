"""The Redis client the server runs on: one Redis, or a Redis Cluster, picked from the URL.

``REDIS_URL`` of the form ``redis+cluster://host:port,host:port,...`` (``rediss+cluster://``
for TLS; credentials as in ``redis://user:password@...`` on the first address) selects redis-py's
asyncio :class:`~redis.asyncio.cluster.RedisCluster`, started from any of the nodes named
(it learns the others from them). Any other URL is one Redis, exactly as before.

What differs in cluster mode, and where:
- session channels and worker channels use sharded pub/sub (:func:`publish` sends
  ``SPUBLISH``; :mod:`server.hub.sharded_pubsub` subscribes per node): classic ``PUBLISH`` is
  broadcast to every node of a cluster, and its receiver count is only the receiving node's;
- the append script publishes with ``SPUBLISH`` (:func:`server.hub.scripts.append_script`);
- appends are pipelined per node (:mod:`server.hub.cluster_batcher`).
One Redis keeps classic ``PUBLISH``/``SUBSCRIBE`` (the embedded Redis 6.2 has no sharded
pub/sub).

Importing this module installs :mod:`server.hub.cancel_safe`'s ``wait_for`` (redis-py's
sends go through ``asyncio.wait_for``, which on Python 3.11 can lose a cancellation).
"""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from redis.asyncio.cluster import ClusterNode, RedisCluster

from server.hub import cancel_safe

cancel_safe.install()

__all__ = [
    "CLUSTER_SCHEMES",
    "TRANSIENT_ERRORS",
    "RedisClient",
    "connect",
    "is_cluster",
    "is_cluster_url",
    "publish",
]

#: Either client: the server calls only what both have.
RedisClient: TypeAlias = aioredis.Redis | RedisCluster

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")

#: Errors that mean "Redis is not answering right now" (a restart, a failover in progress, a
#: slot in flux): the operation is retried with backoff, never reported as a bug.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.RedisClusterException,
    OSError,
)


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def is_cluster(client: RedisClient) -> bool:
    return isinstance(client, RedisCluster)


def cluster_addresses(url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` of every node a cluster URL names. Raises ValueError."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    addresses = []
    for item in netloc.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"a cluster URL names host:port pairs, not {item!r}")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def connect(url: str, **options: Any) -> RedisClient:
    """A client for ``url``; ``options`` go to the client (e.g. ``health_check_interval``).
    Raises ValueError for a malformed cluster URL."""
    if not is_cluster_url(url):
        return aioredis.from_url(url, **options)
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
    if credentials:
        user, _, password = credentials.partition(":")
        if user:
            options.setdefault("username", unquote(user))
        if password:
            options.setdefault("password", unquote(password))
    if parts.scheme == "rediss+cluster":
        options.setdefault("ssl", True)
    startup = [ClusterNode(host, port) for host, port in cluster_addresses(url)]
    return RedisCluster(startup_nodes=startup, **options)


async def publish(client: RedisClient, channel: str, data: bytes) -> int:
    """Publish ``data`` on ``channel``: ``SPUBLISH`` on a cluster, ``PUBLISH`` otherwise.
    Returns the number of subscribers that got it (on a cluster: those of the channel's
    shard, which is where every subscriber of this server is)."""
    if isinstance(client, RedisCluster):
        return int(await client.execute_command("SPUBLISH", channel, data))
    return int(await client.publish(channel, data))
