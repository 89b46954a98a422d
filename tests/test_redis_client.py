"""``REDIS_URL`` picks one Redis or a Redis Cluster (server/hub/redis_client.py)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from server.config import ConfigError, load_settings
from server.hub import scripts
from server.hub.redis_client import cluster_addresses, connect, is_cluster, is_cluster_url


def test_a_cluster_url_names_its_nodes() -> None:
    url = "redis+cluster://10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002"
    assert is_cluster_url(url)
    assert cluster_addresses(url) == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)]
    assert cluster_addresses("rediss+cluster://user:p%40ss@h:1") == [("h", 1)]
    assert not is_cluster_url("redis://127.0.0.1:6379/0")
    assert not is_cluster_url("unix:///run/redis.sock")


@pytest.mark.parametrize("url", ["redis+cluster://host", "redis+cluster://h:x", "redis+cluster://"])
def test_a_malformed_cluster_url_is_refused_with_the_variable_named(url: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        cluster_addresses(url)
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings({"REDIS_URL": url})


async def test_connect_picks_the_client_from_the_url() -> None:
    single = connect("redis://127.0.0.1:6379/0")
    assert isinstance(single, aioredis.Redis) and not is_cluster(single)
    await single.aclose()
    cluster = connect("redis+cluster://user:secret@127.0.0.1:7000,127.0.0.1:7001")
    assert isinstance(cluster, RedisCluster) and is_cluster(cluster)
    startup = sorted(cluster.nodes_manager.startup_nodes)
    assert startup == ["127.0.0.1:7000", "127.0.0.1:7001"]
    node = cluster.nodes_manager.startup_nodes["127.0.0.1:7000"]
    assert node.connection_kwargs["username"] == "user"
    assert node.connection_kwargs["password"] == "secret"
    await cluster.aclose()


def test_the_append_publishes_sharded_on_a_cluster_only() -> None:
    assert "'SPUBLISH'" in scripts.append_script(sharded=True)
    assert "'PUBLISH'" not in scripts.append_script(sharded=True)
    assert scripts.append_script(sharded=False) == scripts.APPEND
    assert "'PUBLISH'" in scripts.APPEND
