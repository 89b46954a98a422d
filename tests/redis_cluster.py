"""A real Redis Cluster for tests: ``redis-server`` processes on loopback, torn down always.

:func:`start_cluster` starts ``masters`` masters with ``replicas`` replicas each (Debian's
``redis-server``, 7.0 or later: sharded pub/sub), joins them with ``CLUSTER MEET``, spreads
the 16384 slots evenly over the masters (``CLUSTER ADDSLOTSRANGE``), attaches each replica
(``CLUSTER REPLICATE``) and returns once every node reports ``cluster_state:ok`` and every
replica is in sync. The :class:`RedisClusterHandle` it returns names the nodes (their
addresses, the ``redis+cluster://`` URL the server takes) and acts on them: kill a node,
promote a replica (``CLUSTER FAILOVER``), move a slot to another master while clients use it.

Reusable outside this suite's fixtures (the chaos harness starts its nodes on addresses of its
own): pass ``host`` and ``ports``. Use :func:`running_cluster` (a context manager) or call
:meth:`RedisClusterHandle.stop` in a ``finally``: every process it started is killed.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from chaos.cluster_forming import form_cluster


class ClusterStartError(RuntimeError):
    """The cluster did not come up (``redis-server`` missing, a port taken, a timeout)."""


@dataclass
class ClusterNode:
    host: str
    port: int
    bus_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""
    frozen: bool = False  # SIGSTOPped: its sockets stay open, nothing answers

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self, timeout_s: float = 5.0) -> redis.Redis:
        return redis.Redis(
            host=self.host, port=self.port, socket_timeout=timeout_s, decode_responses=True
        )

    def command(self, *args: str | int, timeout_s: float = 5.0) -> object:
        with self.client(timeout_s) as client:
            return client.execute_command(*args)

    @property
    def alive(self) -> bool:
        """Running and answering (not killed, not frozen)."""
        return self.process is not None and self.process.poll() is None and not self.frozen


@dataclass
class RedisClusterHandle:
    nodes: list[ClusterNode]
    masters_at_start: int
    folder: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL naming every node (the server needs any one)."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    def info(self, node: ClusterNode, section: str = "") -> dict[str, object]:
        with node.client() as client:
            result = client.info(section) if section else client.info()
        return dict(result)

    def role_of(self, node: ClusterNode) -> str:
        return str(self.info(node, "replication")["role"])

    def masters(self) -> list[ClusterNode]:
        """The live nodes that are masters now (failovers change which)."""
        return [n for n in self.nodes if n.alive and self.role_of(n) == "master"]

    def replicas_of(self, master: ClusterNode) -> list[ClusterNode]:
        return [
            n
            for n in self.nodes
            if n.alive
            and n is not master
            and self.role_of(n) == "slave"
            and int(str(self.info(n, "replication")["master_port"])) == master.port
        ]

    def node_of_slot(self, slot: int) -> ClusterNode:
        """The master serving ``slot``, as the live nodes agree."""
        for node in self.nodes:
            if not node.alive:
                continue
            for start, end, master, *_ in node.command("CLUSTER", "SLOTS"):  # type: ignore[attr-defined]
                if int(start) <= slot <= int(end):
                    return self._by_port(int(master[1]))
        raise ClusterStartError(f"no node serves slot {slot}")

    def key_slot(self, key: str) -> int:
        return int(str(self.masters()[0].command("CLUSTER", "KEYSLOT", key)))

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL ``node``: what it acknowledged but had not yet sent its replicas is lost."""
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(10)

    def freeze(self, node: ClusterNode) -> None:
        """SIGSTOP ``node``: to its peers and clients, a node cut off by a partition (its
        connections stay open; nothing answers)."""
        assert node.process is not None
        node.process.send_signal(signal.SIGSTOP)
        node.frozen = True

    def thaw(self, node: ClusterNode) -> None:
        """SIGCONT a frozen node."""
        assert node.process is not None
        node.process.send_signal(signal.SIGCONT)
        node.frozen = False

    def failover(self, replica: ClusterNode, *, timeout_s: float = 30.0) -> None:
        """``CLUSTER FAILOVER`` on ``replica`` (a coordinated hand-over: no write lost);
        returns once it is a master that the other nodes agree on."""
        replica.command("CLUSTER", "FAILOVER")
        self.wait_master(replica, timeout_s=timeout_s)

    def wait_master(self, node: ClusterNode, *, timeout_s: float = 30.0) -> None:
        """Wait until ``node`` is a master, every live node says so, and the cluster is ok
        on every live node."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError, OSError):
                if self.role_of(node) == "master" and self._all_ok() and self._agree(node):
                    return
            time.sleep(0.05)
        raise ClusterStartError(f"{node.address} did not become a master in {timeout_s}s")

    def migrate_slot(
        self,
        slot: int,
        target: ClusterNode,
        *,
        pause_s: float = 0.0,
        key_pause_s: float = 0.0,
        settle_s: float = 0.0,
    ) -> int:
        """Move ``slot`` to master ``target`` the way ``redis-cli --cluster reshard`` does
        (IMPORTING / MIGRATING, ``MIGRATE`` of the keys, ``SETSLOT NODE`` everywhere), while
        clients go on using it. The pauses stretch the windows clients must handle:
        ``pause_s`` after the marking; ``key_pause_s`` after each key, moved one at a time
        (a multi-key command whose keys are split meets ``TRYAGAIN``); ``settle_s`` once every
        key moved, before the slot is handed over (every command meets ``ASK``). Returns the
        number of keys moved."""
        source = self.node_of_slot(slot)
        if source is target:
            return 0
        target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        time.sleep(pause_s)
        moved = 0
        while True:
            count = 1 if key_pause_s else 100
            keys = source.command("CLUSTER", "GETKEYSINSLOT", slot, count)
            assert isinstance(keys, list)
            if not keys:
                break
            source.command(
                "MIGRATE", target.host, target.port, "", 0, 10_000, "KEYS", *keys, timeout_s=15
            )
            moved += len(keys)
            time.sleep(key_pause_s)
        time.sleep(settle_s)
        for node in [target, source, *self.masters()]:
            node.command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        return moved

    def stop(self) -> None:
        """Kill every node this handle started (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        for node in self.nodes:
            if node.frozen:
                self.thaw(node)
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.kill()
        for node in self.nodes:
            if node.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(10)

    def _by_port(self, port: int) -> ClusterNode:
        return next(n for n in self.nodes if n.port == port)

    def _agree(self, master: ClusterNode) -> bool:
        """Every live node's view of the cluster has ``master`` as a master."""
        for node in self.nodes:
            if not node.alive:
                continue
            for line in str(node.command("CLUSTER", "NODES")).splitlines():
                fields = line.split()
                if fields and fields[0] == master.node_id and "master" not in fields[2]:
                    return False
        return True

    def _all_ok(self) -> bool:
        for node in self.nodes:
            if node.alive and "cluster_state:ok" not in str(node.command("CLUSTER", "INFO")):
                return False
        return True


def free_port_pairs(host: str, count: int) -> list[tuple[int, int]]:
    """``count`` (client port, cluster bus port) pairs free on ``host`` right now."""
    pairs: list[tuple[int, int]] = []
    held: list[socket.socket] = []
    try:
        while len(pairs) < count:
            ports = []
            for _ in range(2):
                sock = socket.socket()
                sock.bind((host, 0))
                held.append(sock)
                ports.append(sock.getsockname()[1])
            pairs.append((ports[0], ports[1]))
    finally:
        for sock in held:
            sock.close()
    return pairs


def start_cluster(
    folder: Path,
    *,
    masters: int = 3,
    replicas: int = 1,
    host: str = "127.0.0.1",
    ports: list[tuple[int, int]] | None = None,
    node_timeout_ms: int = 1000,
    timeout_s: float = 60.0,
    redis_server: str | None = None,
) -> RedisClusterHandle:
    """Start a cluster of ``masters * (1 + replicas)`` nodes on ``host``; see the module
    docstring. ``ports``: (client, bus) port pairs, masters first; free ones by default.
    ``node_timeout_ms`` is how long a silent master takes to be failed over. Raises
    :class:`ClusterStartError`; nothing is left running then."""
    binary = redis_server or shutil.which("redis-server")
    if binary is None:
        raise ClusterStartError("redis-server is not installed (python3 dev.py test installs it)")
    count = masters * (1 + replicas)
    pairs = ports or free_port_pairs(host, count)
    if len(pairs) != count:
        raise ClusterStartError(f"{count} port pairs needed, {len(pairs)} given")
    nodes = []
    for port, bus in pairs:
        node_folder = folder / f"node-{port}"
        node_folder.mkdir(parents=True, exist_ok=True)
        nodes.append(ClusterNode(host, port, bus, node_folder))
    handle = RedisClusterHandle(nodes, masters, folder)
    try:
        for node in nodes:
            node.process = subprocess.Popen(
                [
                    binary,
                    "--bind",
                    host,
                    "--port",
                    str(node.port),
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    str(node.bus_port),
                    "--cluster-config-file",
                    str(node.folder / "nodes.conf"),
                    "--cluster-node-timeout",
                    str(node_timeout_ms),
                    "--dir",
                    str(node.folder),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "no",
                    "--logfile",
                    str(node.folder / "redis.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout_s
        for node in nodes:
            _wait(lambda n=node: n.command("PING") in (True, "PONG"), deadline, f"{node.address}")
        form_cluster(
            nodes,
            nodes[:masters],
            [(node, nodes[index % masters]) for index, node in enumerate(nodes[masters:])],
            meet=lambda node: (node.host, node.port, node.bus_port),
            wait=lambda check, what: _wait(check, deadline, what),
        )
    except BaseException:
        handle.stop()
        raise
    return handle


def _wait(check: object, deadline: float, what: str) -> None:
    assert callable(check)
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise ClusterStartError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def running_cluster(folder: Path, **options: object) -> Iterator[RedisClusterHandle]:
    """:func:`start_cluster` as a context manager: the nodes are killed on the way out."""
    handle = start_cluster(folder, **options)  # type: ignore[arg-type]
    try:
        yield handle
    finally:
        handle.stop()
