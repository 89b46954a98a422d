"""Forming a Redis Cluster out of started, empty nodes: the one procedure behind the chaos
harness's cluster (:mod:`chaos.redis_nodes`, nodes on namespaced hosts) and the tests'
loopback cluster (tests/redis_cluster.py).

A node is anything with a settable ``node_id`` and ``command(*args)`` that runs one command
on it (redis-py's ``execute_command``, responses decoded). Every step is polled through the
caller's ``wait(check, what)``, which owns the deadline and the error it raises.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import redis

__all__ = [
    "SLOTS",
    "ClusterMember",
    "cluster_info",
    "cluster_ok",
    "form_cluster",
    "replicate",
    "synced_replica",
]

SLOTS = 16384


class ClusterMember(Protocol):
    node_id: str

    def command(self, *args: str | int) -> Any: ...


M = TypeVar("M", bound=ClusterMember)

#: ``wait(check, what)``: poll ``check`` until it is true; raise, naming ``what``, past the
#: caller's deadline.
Wait = Callable[[Callable[[], bool], str], None]


def cluster_info(node: ClusterMember) -> dict[str, str]:
    """``CLUSTER INFO`` as a dict."""
    text = str(node.command("CLUSTER", "INFO"))
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def cluster_ok(nodes: Sequence[ClusterMember]) -> bool:
    """Every node of ``nodes`` says ``cluster_state:ok``."""
    return all(cluster_info(n)["cluster_state"] == "ok" for n in nodes)


def replicate(node: ClusterMember, master: ClusterMember) -> bool:
    """Make ``node`` a replica of ``master``; False while ``node`` does not know ``master``
    as a master yet (ask again)."""
    try:
        node.command("CLUSTER", "REPLICATE", master.node_id)
    except redis.ResponseError:
        return False
    return True


def synced_replica(node: ClusterMember) -> bool:
    """``node`` is a replica whose link to its master is up."""
    info = node.command("INFO", "replication")
    return bool(info["role"] == "slave" and info.get("master_link_status") == "up")


def form_cluster(
    nodes: Sequence[M],
    masters: Sequence[M],
    replicas: Sequence[tuple[M, M]],
    *,
    meet: Callable[[M], tuple[str | int, ...]],
    wait: Wait,
) -> None:
    """Give every node its ``node_id``, make them all meet (``meet(node)``: the ``CLUSTER
    MEET`` arguments that reach ``node``), share the slots evenly among ``masters``, make each
    ``(replica, master)`` of ``replicas`` replicate its master, and return once every replica
    is in sync and every node says ``cluster_state:ok``."""
    for node in nodes:
        node.node_id = str(node.command("CLUSTER", "MYID"))
    for node in nodes[1:]:
        nodes[0].command("CLUSTER", "MEET", *meet(node))
    count = str(len(nodes))
    wait(
        lambda: all(cluster_info(n)["cluster_known_nodes"] == count for n in nodes),
        "every node to know every other",
    )
    per = SLOTS // len(masters)
    for index, master in enumerate(masters):
        end = SLOTS - 1 if index == len(masters) - 1 else (index + 1) * per - 1
        master.command("CLUSTER", "ADDSLOTSRANGE", index * per, end)
    wait(lambda: cluster_ok(nodes), "cluster_state:ok")
    for replica, master in replicas:
        wait(functools.partial(replicate, replica, master), f"a replica of {master.node_id}")
    wait(
        lambda: all(synced_replica(r) for r, _ in replicas) and cluster_ok(nodes),
        "replicas in sync",
    )
