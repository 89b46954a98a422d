"""Redis on the hosts of a :class:`~chaos.netns.Network`: a Redis Cluster (the default) or one
Redis, both this machine's ``redis-server`` without persistence (a killed node comes back
empty, the harder case).

**Cluster** (:class:`ClusterRedis`): 3 masters and 3 replicas on the hosts ``r1``…``r3``, two
nodes each. ``r<n>a`` (port 7001) starts as a master of a third of the slots, ``r<n>b``
(port 7002) as the replica of the previous host's master, so no master shares its host with
its replica. Every node announces its host's address (``cluster-announce-ip``): slot maps and
``MOVED`` replies name addresses every server host reaches. ``cluster-node-timeout`` is 2 s,
so a killed master's replica is promoted within about 4 s. A killed node is started again
with its ``nodes.conf``: the cluster gave its slots a newer epoch meanwhile, so it rejoins as
the replica of its successor and syncs from it.

**Single** (:class:`SingleRedis`): one Redis on host ``redis``, port 6379; killed and
started again, it is empty.

Both: each Redis host also answers on an alias address (:func:`alias_of`), the way in for
the slow link's proxy (the slow host has the Redis hosts' own addresses on its loopback,
:meth:`routes` gives the proxy's routes). The harness controls each node through its unix
socket in the run folder, a channel no fault touches. Every process is started through
:meth:`Network.spawn`, so :meth:`Network.destroy` ends them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from chaos.cluster_forming import cluster_info, cluster_ok, form_cluster, synced_replica
from chaos.netns import Network

__all__ = [
    "TOPOLOGIES",
    "ClusterRedis",
    "RedisNodes",
    "RedisStartError",
    "SingleRedis",
    "alias_of",
    "make_redis",
]

TOPOLOGIES = ("cluster", "single")
NODE_TIMEOUT_MS = 2000
_READY_S = 30.0
_FAILOVER_S = 30.0
_REJOIN_S = 45.0


class RedisStartError(RuntimeError):
    """A node did not start, or the cluster did not form or heal (the node's log says why)."""


def alias_of(ip: str) -> str:
    """The second address of a Redis host: its last octet + 100."""
    head, _, last = ip.rpartition(".")
    return f"{head}.{int(last) + 100}"


@dataclass
class Node:
    name: str
    host: str
    ip: str
    port: int
    socket: Path
    folder: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self, *args: str | int, timeout: float = 2.0) -> Any:
        """One command over the node's unix socket."""
        with redis.Redis(
            unix_socket_path=str(self.socket),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
        ) as client:
            return client.execute_command(*args)

    def info(self, section: str, timeout: float = 2.0) -> dict[str, Any]:
        with redis.Redis(
            unix_socket_path=str(self.socket), socket_timeout=timeout, decode_responses=True
        ) as client:
            return dict(client.info(section))


class RedisNodes:
    """What the stack and the nemesis need of Redis, whichever the topology."""

    hosts: tuple[str, ...] = ()

    def __init__(
        self,
        network: Network,
        folder: Path,
        logs: Path,
        env: Mapping[str, str],
        sockets: Path | None = None,
    ):
        """``sockets``: where the nodes' unix sockets go (a short path: a socket's path is at
        most 107 bytes); ``folder`` when None."""
        self.network, self.folder, self.logs, self.env = network, folder, logs, dict(env)
        self.sockets = sockets or folder
        self.nodes: dict[str, Node] = {}

    def layout(self) -> Iterable[tuple[str, str, int]]:
        """(node name, host, port) of every node."""
        raise NotImplementedError

    def url(self) -> str:
        """The servers' ``REDIS_URL``."""
        raise NotImplementedError

    def start(self) -> None:
        """Give the Redis hosts their alias, start every node, form the cluster."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for host in self.hosts:
            self.network.add_alias(host, alias_of(self.network.hosts[host].ip))
        for name, host, port in self.layout():
            ip = self.network.hosts[host].ip
            folder = self.folder / name
            folder.mkdir()
            self.nodes[name] = Node(
                name, host, ip, port, self.sockets / f"{name}.sock", folder,
                self.logs / f"redis-{name}.log",
            )  # fmt: skip
        for node in self.nodes.values():
            self._spawn(node)
        for node in self.nodes.values():
            self._wait_ping(node)

    def routes(self) -> list[str]:
        """The slow link proxy's routes: each node's address to its host's alias."""
        return [f"{n.address}={alias_of(n.ip)}:{n.port}" for n in self.nodes.values()]

    def victim(self, session_ids: Iterable[str]) -> str:
        """The node the ``kill_redis_master`` fault kills next."""
        raise NotImplementedError

    def kill(self, name: str) -> None:
        """SIGKILL: what it held in memory, and anything it had not yet replicated, is gone."""
        node = self.nodes[name]
        if node.process is not None and node.process.poll() is None:
            os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait(timeout=10)
        node.socket.unlink(missing_ok=True)

    def recover(self, name: str) -> None:
        """After :meth:`kill`: the node running again (and, on a cluster, back in it)."""
        node = self.nodes[name]
        self._spawn(node)
        self._wait_ping(node)

    def _spawn(self, node: Node) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisStartError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        node.socket.unlink(missing_ok=True)
        node.process = self.network.spawn(
            node.host,
            [binary, "--bind", node.ip, alias_of(node.ip), "--port", str(node.port),
             "--unixsocket", str(node.socket), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--protected-mode", "no",
             "--dir", str(node.folder), "--daemonize", "no", *self.node_args_for(node)],
            env=self.env, log=node.log,
        )  # fmt: skip

    def node_args_for(self, node: Node) -> list[str]:
        return []

    def _wait_ping(self, node: Node) -> None:
        def ready() -> bool:
            if not node.alive:
                raise RedisStartError(f"redis {node.name} exited; see {node.log}")
            return bool(node.socket.exists() and node.command("PING"))

        _wait(ready, _READY_S, f"redis {node.name} to answer; see {node.log}")


class SingleRedis(RedisNodes):
    hosts = ("redis",)

    def layout(self) -> Iterable[tuple[str, str, int]]:
        return [("redis", "redis", 6379)]

    def url(self) -> str:
        return f"redis://{self.nodes['redis'].address}/0"

    def victim(self, session_ids: Iterable[str]) -> str:
        return "redis"


class ClusterRedis(RedisNodes):
    hosts = ("r1", "r2", "r3")

    def layout(self) -> Iterable[tuple[str, str, int]]:
        return [(f"{h}{x}", h, port) for x, port in (("a", 7001), ("b", 7002)) for h in self.hosts]

    def node_args_for(self, node: Node) -> list[str]:
        return ["--cluster-enabled", "yes",
                "--cluster-config-file", str(node.folder / "nodes.conf"),
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--cluster-announce-ip", node.ip,
                # A full sync starts at once (Redis 7.0 waits 5 s for more replicas).
                "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]  # fmt: skip

    def url(self) -> str:
        return "redis+cluster://" + ",".join(n.address for n in self.nodes.values())

    def start(self) -> None:
        super().start()
        nodes = list(self.nodes.values())
        masters = [n for n in nodes if n.name.endswith("a")]
        replicas = [
            (self.nodes[f"{self.hosts[(index + 1) % len(self.hosts)]}b"], master)
            for index, master in enumerate(masters)
        ]
        form_cluster(
            nodes,
            masters,
            replicas,
            meet=lambda node: (node.ip, node.port),
            wait=lambda check, what: _wait(check, _READY_S, what),
        )

    def victim(self, session_ids: Iterable[str]) -> str:
        """The master serving the most of ``session_ids`` among those with a replica in sync
        (killing one without would leave its slots unserved for good)."""
        by_id = {n.node_id: n for n in self.nodes.values()}
        owners: dict[str, int] = {}
        for start, end, master, *_ in self._any_alive().command("CLUSTER", "SLOTS"):
            owner = by_id[str(master[2])]
            if owner.alive and _has_synced_replica(owner):
                owners.setdefault(owner.name, 0)
                owners[owner.name] += sum(
                    int(start) <= key_slot(f"{{s:{s}}}".encode()) <= int(end) for s in session_ids
                )
        if not owners:
            raise RedisStartError("no master has a replica in sync: nothing can fail over")
        return max(sorted(owners), key=lambda name: owners[name])

    def recover(self, name: str) -> None:
        """Once a replica has taken over the killed master's slots, start the node again and
        wait until it is a replica in sync and the cluster is ok everywhere."""
        node = self.nodes[name]

        def promoted() -> bool:
            for other in self.nodes.values():
                if not other.alive:
                    continue
                if cluster_info(other)["cluster_state"] != "ok":
                    return False
                slots = other.command("CLUSTER", "SLOTS")
                if any(str(entry[2][2]) == node.node_id for entry in slots):
                    return False
            return True

        _wait(promoted, _FAILOVER_S, f"a replica of {name} to be promoted")
        super().recover(name)
        _wait(lambda: synced_replica(node) and self._all_ok(), _REJOIN_S,
              f"{name} to rejoin as a replica in sync; see {node.log}")  # fmt: skip

    def _any_alive(self) -> Node:
        return next(n for n in self.nodes.values() if n.alive)

    def _all_ok(self) -> bool:
        return cluster_ok([n for n in self.nodes.values() if n.alive])


def _has_synced_replica(master: Node) -> bool:
    info = master.info("replication")
    return any(
        isinstance(value, dict) and value.get("state") == "online"
        for key, value in info.items()
        if key.startswith("slave")
    )


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RedisStartError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def make_redis(
    topology: str,
    network: Network,
    folder: Path,
    logs: Path,
    env: Mapping[str, str],
    sockets: Path | None = None,
) -> RedisNodes:
    """The nodes of ``topology`` (``cluster`` or ``single``), not started yet."""
    if topology == "cluster":
        return ClusterRedis(network, folder, logs, env, sockets)
    if topology == "single":
        return SingleRedis(network, folder, logs, env, sockets)
    raise ValueError(f"unknown Redis topology {topology!r}; known: {', '.join(TOPOLOGIES)}")
