"""The nemesis: faults injected into a running :class:`~chaos.stack.Stack`, one at a time,
then several at once, on a schedule that fills the run.

Each :class:`Fault` has a ``begin`` and an ``end`` (which undoes it: heal, wake, restart)
and a hold time scaled to the lease (a partition or a freeze lasts longer than a lease, so
the session's ownership really moves). The faults:

| name | what it does |
|---|---|
| ``redis_partition`` | a server host loses every Redis node (both ways) for 3 leases |
| ``pg_partition`` | a server host loses Postgres for 3 leases |
| ``freeze_owner`` | the server owning the most sessions is frozen (SIGSTOP) for 3 leases, then woken |
| ``kill_redis_master`` | cluster: the master serving the most sessions is killed (SIGKILL), its replica promoted, and the old one started again (empty: no persistence) as a replica; one Redis: it is killed and started again empty |
| ``kill_server`` | the server owning the most sessions is killed (SIGKILL) and started again |
| ``slow_link`` | 200 ms each way and 5% loss on one server host's link to Redis (``chaos.delay_proxy``) |
| ``partition_heals`` | a server host is cut from every other host, then the partition heals |

:meth:`Nemesis.undo` ends whatever is still active (the run's ``finally`` calls it), so no
host stays frozen or cut when the run stops early.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.stack import SERVERS, SLOW_LINK_HOST, Stack

__all__ = ["COMBINED", "FAULTS", "Nemesis"]

_LEASE_LINE = re.compile(r'"msg": "lease taken: session (\S+) token')


@dataclass
class Fault:
    name: str
    hold_leases: float
    """How long it lasts, in leases (a floor of 1 s)."""
    begin: Callable[[Stack, str], None]
    end: Callable[[Stack, str], None]
    pick: str = "owner"
    """``owner``: the server owning the most sessions; ``any``: a server not yet in use;
    ``slow``: the slow link's host; ``redis``: the Redis master serving the most sessions."""


def _peers(stack: Stack, host: str, others: str) -> tuple[str, ...]:
    """``redis``: every Redis host; ``pg``; ``all``: every host but ``host``."""
    if others == "redis":
        return stack.redis.hosts
    if others == "all":
        return tuple(h for h in stack.hosts if h != host)
    return (others,)


def _cut_from(others: str) -> Callable[[Stack, str], None]:
    def begin(stack: Stack, host: str) -> None:
        stack.network.cut([host], _peers(stack, host, others))

    return begin


def _heal_from(others: str) -> Callable[[Stack, str], None]:
    def end(stack: Stack, host: str) -> None:
        peers = _peers(stack, host, others)
        stack.network.heal([(a, b) for p in peers for a, b in ((host, p), (p, host))])

    return end


def _freeze(stack: Stack, host: str) -> None:
    stack.signal_server(host, signal.SIGSTOP)


def _wake(stack: Stack, host: str) -> None:
    stack.signal_server(host, signal.SIGCONT)


def _kill_redis(stack: Stack, node: str) -> None:
    stack.redis.kill(node)


def _recover_redis(stack: Stack, node: str) -> None:
    """Cluster: once its replica is promoted, back as a replica in sync."""
    stack.redis.recover(node)


def _kill_server(stack: Stack, host: str) -> None:
    stack.kill_server(host)


def _restart_server(stack: Stack, host: str) -> None:
    stack.start_server(host)
    stack.wait_serving(host)


def _slow(stack: Stack, host: str) -> None:
    stack.slow_link_control.write_text(json.dumps({"delay_ms": 200, "loss": 0.05}))


def _fast(stack: Stack, host: str) -> None:
    stack.slow_link_control.write_text("{}")


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("redis_partition", 3, _cut_from("redis"), _heal_from("redis"), "owner"),
        Fault("pg_partition", 3, _cut_from("pg"), _heal_from("pg"), "any"),
        Fault("freeze_owner", 3, _freeze, _wake, "owner"),
        Fault("kill_redis_master", 0.7, _kill_redis, _recover_redis, "redis"),
        Fault("kill_server", 1, _kill_server, _restart_server, "owner"),
        Fault("slow_link", 4, _slow, _fast, "slow"),
        Fault("partition_heals", 3, _cut_from("all"), _heal_from("all"), "any"),
    )
}
COMBINED: tuple[tuple[str, ...], ...] = (
    ("freeze_owner", "slow_link"),
    ("kill_redis_master", "pg_partition"),
    ("redis_partition", "kill_server", "slow_link"),
    ("partition_heals", "freeze_owner"),
    ("kill_redis_master", "freeze_owner", "pg_partition"),
    ("kill_redis_master", "redis_partition"),
)


@dataclass
class Nemesis:
    stack: Stack
    rest_s: float = 2.5
    say: Callable[[str], None] = print
    injected: Counter[str] = field(default_factory=Counter)
    _active: list[tuple[Fault, str]] = field(default_factory=list)

    def run(self, until: float, faults: list[str] | None = None) -> Counter[str]:
        """Inject faults until the monotonic time ``until``: each of ``faults`` (default: all)
        alone, then the combinations of them, over and over; returns the count per fault."""
        names = list(FAULTS) if faults is None else faults
        rounds: list[tuple[str, ...]] = [(n,) for n in names]
        rounds += [c for c in COMBINED if all(n in names for n in c)]
        lease_s = self.stack.settings.lease_ms / 1000
        i = 0
        while True:
            chosen = rounds[i % len(rounds)]
            hold = max(max(1.0, FAULTS[n].hold_leases * lease_s) for n in chosen)
            if time.monotonic() + hold + self.rest_s > until:
                return self.injected
            self.inject(chosen, hold)
            time.sleep(self.rest_s)
            i += 1

    def inject(self, names: tuple[str, ...], hold_s: float) -> None:
        used: set[str] = set()
        for name in names:
            fault = FAULTS[name]
            host = self._target(fault, used)
            used.add(host)
            self.say(f"nemesis: {time.strftime('%H:%M:%S')} {name} {host}".rstrip())
            fault.begin(self.stack, host)
            self._active.append((fault, host))
            self.injected[name] += 1
        time.sleep(hold_s)
        self.undo()

    def undo(self) -> None:
        """End every active fault, the last begun first."""
        while self._active:
            fault, host = self._active.pop()
            try:
                fault.end(self.stack, host)
            finally:
                self.say(f"nemesis: {time.strftime('%H:%M:%S')} {fault.name} {host} ended")

    def _target(self, fault: Fault, used: set[str]) -> str:
        free = [h for h in SERVERS if h not in used]
        if fault.pick == "redis":
            return self.stack.redis.victim(self.sessions())
        if fault.pick == "slow":
            return SLOW_LINK_HOST
        if fault.pick == "owner":
            owned = self.owned_sessions()
            return max(free, key=lambda h: (owned[h], h))
        return free[self.injected.total() % len(free)]

    def owned_sessions(self) -> Counter[str]:
        """Sessions per server host whose latest lease line (of the whole run) is that host's."""
        return Counter(host for _, host in self._latest_leases().values())

    def sessions(self) -> list[str]:
        """Every session a lease was taken for so far."""
        return sorted(self._latest_leases())

    def _latest_leases(self) -> dict[str, tuple[float, str]]:
        latest: dict[str, tuple[float, str]] = {}
        for host in SERVERS:
            log = self.stack.server_log(host)
            if not log.exists():
                continue
            for line in log.read_text(errors="replace").splitlines():
                if m := _LEASE_LINE.search(line):
                    ts = float(line.split('"ts": ', 1)[1].split(",", 1)[0])
                    if m.group(1) not in latest or latest[m.group(1)][0] <= ts:
                        latest[m.group(1)] = (ts, host)
        return latest
