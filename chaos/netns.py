"""Hosts on this machine: network namespaces joined by veth pairs to a bridge (iproute2, root).

A :class:`Network` named by a unique prefix (``mc<pid in hex>x<2 hex>``) holds one namespace
per host plus a ``-sw`` namespace with the bridge, so nothing of it touches the machine's own
network: a host reaches only the other hosts of its network. Contracts:

- every namespace, and every process started in one (:meth:`Network.spawn`), is recorded the
  moment it exists, and :meth:`Network.destroy` removes them all (processes killed first,
  by process group and then by whatever ``ip netns pids`` still finds), also after a failure
  half-way through :meth:`Network.build`; it is idempotent;
- :func:`remove_stale` removes what an earlier run left (its process died: a crash, a
  SIGKILL), found by the prefix's pid; a live run's network is never touched;
- :meth:`Network.cut` makes traffic between two sets of hosts vanish silently, both ways, as
  a firewall's DROP would: each side's neighbour entry for the other is pinned to a MAC
  address nobody has, so frames leave and are never received (the kernel here has no
  ``netem``, ``gact`` or iptables; see docs/reliability.md). New connections hang until
  their timeout, established ones retransmit into the void. :meth:`Network.heal` restores
  the real entries. A cut covers every address of a host (its :meth:`Network.add_alias`
  addresses too);
- :meth:`Network.add_local` gives a host another host's address on its loopback, without
  answering ARP for it: that host's traffic to the address stays inside it (a proxy there
  stands in for the link, the slow_link fault), while every other host still reaches the
  real one.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["Host", "Network", "NetworkError", "available", "remove_stale"]

SUBNET = "10.200.0"
_NOWHERE_MAC = "02:00:00:00:de:ad"
_PREFIX = re.compile(r"^(mc([0-9a-f]+)x[0-9a-f]{2})-")


class NetworkError(RuntimeError):
    """A namespace, link or address could not be set up (the command's error inside)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def available() -> str | None:
    """None when this process can build networks here; else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    try:
        _ip("netns", "list")
    except (OSError, NetworkError) as exc:
        return f"`ip netns` does not work here: {exc}"
    return None


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    ip: str
    aliases: tuple[str, ...] = ()
    """More addresses on its ``eth0`` (:meth:`Network.add_alias`)."""

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.ip, *self.aliases)


@dataclass
class Network:
    prefix: str
    hosts: dict[str, Host] = field(default_factory=dict)
    _namespaces: list[str] = field(default_factory=list)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _cuts: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def new(cls) -> Network:
        return cls(prefix=f"mc{os.getpid():x}x{secrets.token_hex(1)}")

    # -- building and removing ------------------------------------------------------------

    def build(self, names: Iterable[str]) -> None:
        """The switch namespace with its bridge, then one host per name (``10.200.0.<n>``,
        in order from .11). Raises NetworkError; :meth:`destroy` still removes what was made."""
        switch = self._add_namespace(f"{self.prefix}-sw")
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for index, name in enumerate(names):
            netns = self._add_namespace(f"{self.prefix}-{name}")
            outer, inner = f"{self.prefix}{index}", f"{self.prefix}{index}i"
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            try:
                _ip("link", "set", outer, "netns", switch)
                _ip("link", "set", inner, "netns", netns)
            except NetworkError:
                _ip("link", "del", outer, check=False)
                raise
            _ip("-n", switch, "link", "set", outer, "master", "br0", "up")
            _ip("-n", netns, "link", "set", inner, "name", "eth0")
            ip = f"{SUBNET}.{11 + index}"
            _ip("-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            self.hosts[name] = Host(name, netns, ip)

    def _add_namespace(self, name: str) -> str:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        return name

    def add_alias(self, host: str, ip: str) -> None:
        """One more address on ``host``'s ``eth0``, reachable from every host."""
        h = self.hosts[host]
        _ip("-n", h.netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        self.hosts[host] = Host(h.name, h.netns, h.ip, (*h.aliases, ip))

    def add_local(self, host: str, ips: Iterable[str]) -> None:
        """``ips`` (other hosts' addresses) on ``host``'s loopback: connections from ``host``
        to them end inside ``host``. ``host`` stops answering ARP for addresses that are not
        on the interface asked (``arp_ignore``), so the others still reach the real hosts."""
        netns = self.hosts[host].netns
        for key, value in (("arp_ignore", "1"), ("arp_announce", "2")):
            for dev in ("all", "eth0"):
                self.run(host, ["sysctl", "-q", "-w", f"net.ipv4.conf.{dev}.{key}={value}"])
        for ip in ips:
            _ip("-n", netns, "addr", "add", f"{ip}/32", "dev", "lo")

    def destroy(self) -> None:
        """Kill every process started here, then delete every namespace (and so its links)."""
        for proc in self._procs:
            _kill_group(proc)
        for netns in reversed(self._namespaces):
            _kill_namespace_pids(netns)
            _ip("netns", "del", netns, check=False)
        self._namespaces.clear()
        self._procs.clear()

    # -- processes ------------------------------------------------------------------------

    def spawn(
        self,
        host: str,
        argv: list[str],
        *,
        env: Mapping[str, str],
        log: Path,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside ``host`` in a process group of its own (so it can be frozen,
        killed and cleaned up as a whole), its output appended to ``log``."""
        runas = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"] if user else []
        out: IO[bytes] = log.open("ab")
        try:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.hosts[host].netns, *runas, *argv],
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            out.close()
        self._procs.append(proc)
        return proc

    def run(self, host: str, argv: list[str], *, timeout: float = 30.0) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.hosts[host].netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise NetworkError(f"{argv[0]} on {host}: {(done.stderr or done.stdout).strip()}")
        return done.stdout

    # -- faults ---------------------------------------------------------------------------

    def cut(self, side_a: Iterable[str], side_b: Iterable[str]) -> list[tuple[str, str]]:
        """Drop all traffic between every host of ``side_a`` and every host of ``side_b``;
        returns the cut (for :meth:`heal`)."""
        pairs = []
        for a in side_a:
            for b in side_b:
                for src, dst in ((a, b), (b, a)):
                    for ip in self.hosts[dst].addresses:
                        _ip("-n", self.hosts[src].netns, "neigh", "replace", ip,
                            "lladdr", _NOWHERE_MAC, "dev", "eth0", "nud", "permanent")  # fmt: skip
                    self._cuts.add((src, dst))
                    pairs.append((src, dst))
        return pairs

    def heal(self, pairs: Iterable[tuple[str, str]] | None = None) -> None:
        """Undo a :meth:`cut` (all of them by default): the neighbours are learned again by
        ARP."""
        for src, dst in sorted(self._cuts if pairs is None else set(pairs)):
            for ip in self.hosts[dst].addresses:
                _ip("-n", self.hosts[src].netns, "neigh", "del", ip, "dev", "eth0", check=False)
            self._cuts.discard((src, dst))

    def reaches(self, src: str, dst: str, port: int, timeout: float = 1.0) -> bool:
        """Whether a TCP connection from ``src`` to ``dst:port`` is accepted (a probe run
        inside ``src``)."""
        probe = (
            "import socket,sys\n"
            "try:\n"
            f" socket.create_connection(({self.hosts[dst].ip!r},{port}),timeout={timeout}).close()\n"
            "except OSError:\n"
            " sys.exit(1)\n"
        )
        done = subprocess.run(
            ["ip", "netns", "exec", self.hosts[src].netns, "python3", "-c", probe],
            capture_output=True,
            timeout=timeout + 10,
        )
        return done.returncode == 0


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGCONT)  # a frozen group dies only once running
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _kill_namespace_pids(netns: str) -> None:
    """Whatever still runs in ``netns`` (a grandchild that left its group, say)."""
    for _ in range(3):
        done = _ip("netns", "pids", netns, check=False)
        pids = [int(p) for p in done.stdout.split() if p.isdigit()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def remove_stale() -> list[str]:
    """Delete the namespaces (and kill the processes in them) of runs whose process is gone;
    returns the namespaces removed."""
    if available() is not None:
        return []
    removed = []
    for line in _ip("netns", "list").stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        match = _PREFIX.match(name)
        if match is None:
            continue
        pid = int(match.group(2), 16)
        if _alive(pid):
            continue
        _kill_namespace_pids(name)
        _ip("netns", "del", name, check=False)
        removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
