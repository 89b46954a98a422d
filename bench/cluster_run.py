"""``mentara load`` against two servers on a real 3-master Redis Cluster, with a master
killed half-way: the figures of docs/scale-out.md ("Redis Cluster, measured").

Run from the checkout (it starts the cluster with ``tests/redis_cluster.py``; Debian's
``redis-server`` 7 must be installed)::

    python -m bench.cluster_run --database-url postgresql://USER@HOST:5432/postgres \\
        [--sessions 80] [--duration 180] [--kill-at 90] [--out DIR]

What it does: starts 3 masters + 3 replicas on loopback, a database of its own, two
``mentara serve`` workers on the cluster, then ``mentara load`` over both; samples every
node's ``INFO`` each ``--sample-every`` seconds (appends = ``EVALSHA`` calls, sharded
publishes, bytes sent, CPU); SIGKILLs the master that serves the most sessions at
``--kill-at`` seconds and measures, with a probe writing a key of each of its slots'
ranges every 10 ms, how long writes to that shard failed (the failover pause). Prints a table
per node, the pause, and the load run's verdict; exits with the load run's status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis
from redis.cluster import RedisCluster

SECRET = "cluster-run-secret-" + "x" * 32


@dataclass
class NodeSample:
    at: float
    appends: int  # XADD calls: one per append (scripts' own calls are counted)
    evalsha: int  # every script call: appends, lease renewals and takes, user limits
    spublish: int
    net_out: int
    cpu_s: float


@dataclass
class Probe:
    failing_since: float | None = None
    longest_s: float = 0.0
    failures: int = 0
    errors: list[str] = field(default_factory=list)


def sample(port: int) -> NodeSample | None:
    try:
        with redis.Redis(port=port, socket_timeout=2) as client:
            stats = client.info("commandstats")
            info = client.info()
    except (redis.RedisError, OSError):
        return None
    return NodeSample(
        at=time.monotonic(),
        appends=int(stats.get("cmdstat_xadd", {}).get("calls", 0)),
        evalsha=int(stats.get("cmdstat_evalsha", {}).get("calls", 0)),
        spublish=int(stats.get("cmdstat_spublish", {}).get("calls", 0)),
        net_out=int(info["total_net_output_bytes"]),
        cpu_s=float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
    )


def probe_loop(url_nodes: list[tuple[str, int]], key: str, probe: Probe, stop: list[bool]) -> None:
    """Write ``key`` every 10 ms through a cluster client; record the longest failing run."""
    client = RedisCluster(
        startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in url_nodes],  # type: ignore[no-untyped-call]
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
    )
    while not stop[0]:
        now = time.monotonic()
        try:
            client.set(key, str(now))
            if probe.failing_since is not None:
                probe.longest_s = max(probe.longest_s, now - probe.failing_since)
                probe.failing_since = None
        except Exception as exc:
            probe.failures += 1
            probe.errors.append(type(exc).__name__)
            if probe.failing_since is None:
                probe.failing_since = now
        time.sleep(0.01)
    client.close()


async def main(options: argparse.Namespace) -> int:
    from tests.redis_cluster import running_cluster
    from tests.support import serving

    folder = Path(options.out)
    db_name = f"mentara_clusterrun_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(options.database_url)
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    database_url = options.database_url.rsplit("/", 1)[0] + "/" + db_name
    status = 3
    try:
        with running_cluster(folder / "cluster", node_timeout_ms=options.node_timeout_ms) as c:
            env = {k: v for k, v in os.environ.items() if not k.startswith("MENTARA_")}
            env.update(
                DATABASE_URL=database_url,
                REDIS_URL=c.url,
                MENTARA_JWT_SECRET=SECRET,
                MENTARA_LOG_LEVEL="warning",
                MENTARA_DATA_DIR=str(folder / "data"),
            )
            with serving(env=env) as (proc_a, port_a), serving(env=env) as (proc_b, port_b):
                try:
                    status = await drive(options, c, folder, port_a, port_b)
                finally:
                    for name, proc in (("a", proc_a), ("b", proc_b)):
                        lines = getattr(proc, "output_lines", [])
                        (folder / f"server-{name}.log").write_text("".join(lines))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()
    return status


async def drive(
    options: argparse.Namespace, cluster: object, folder: Path, port_a: int, port_b: int
) -> int:
    from tests.redis_cluster import RedisClusterHandle

    assert isinstance(cluster, RedisClusterHandle)
    masters = cluster.masters()
    load = await asyncio.create_subprocess_exec(
        sys.executable, *["-m", "server.cli", "load",
         "--url", f"ws://127.0.0.1:{port_a}", "--url", f"ws://127.0.0.1:{port_b}",
         "--sessions", str(options.sessions), "--duration", str(options.duration),
         "--ramp-up", str(options.ramp_up), "--token-secret", SECRET,
         "--resume-rate", str(options.resume_rate),
         "--processes", "1", "--out", str(folder / "load")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert load.stdout is not None
    reading = asyncio.create_task(load.stdout.read())
    samples: dict[int, list[NodeSample]] = {n.port: [] for n in cluster.nodes}
    started = time.monotonic()
    killed = None
    killed_at: float | None = None
    probe = Probe()
    stop = [False]
    probe_task = None
    while load.returncode is None:
        await asyncio.sleep(options.sample_every)
        for node in cluster.nodes:
            if node.alive:
                got = await asyncio.to_thread(sample, node.port)
                if got is not None:
                    samples[node.port].append(got)
        elapsed = time.monotonic() - started
        if killed is None and elapsed >= options.kill_at:
            # The busiest master: the one that ran the most appends so far.
            killed = max(masters, key=lambda n: samples[n.port][-1].appends)
            key = _key_on(cluster, killed)
            probe_task = asyncio.create_task(
                asyncio.to_thread(
                    probe_loop, [(n.host, n.port) for n in cluster.nodes if n is not killed],
                    key, probe, stop,
                )
            )  # fmt: skip
            await asyncio.sleep(0.5)
            print(f"t={elapsed:.0f}s: SIGKILL master {killed.address}", flush=True)
            cluster.kill(killed)
            killed_at = time.monotonic()
    output = (await reading).decode()
    await load.wait()
    stop[0] = True
    if probe_task is not None:
        await probe_task
    if probe.failing_since is not None:
        probe.longest_s = max(probe.longest_s, time.monotonic() - probe.failing_since)
    print(output)
    report(samples, killed_at, getattr(killed, "port", None), probe, folder)
    return load.returncode or 0


def _key_on(cluster: object, node: object) -> str:
    from tests.redis_cluster import RedisClusterHandle

    assert isinstance(cluster, RedisClusterHandle)
    for i in range(100_000):
        key = f"probe:{i}"
        if cluster.node_of_slot(redis.crc.key_slot(key.encode())) is node:
            return key
    raise RuntimeError("no key found for the node")


def rates(got: list[NodeSample], t0: float, t1: float) -> dict[str, float] | None:
    """A node's rates between the first and last samples within [t0, t1]."""
    inside = [s for s in got if t0 <= s.at <= t1]
    if len(inside) < 2:
        return None
    first, last = inside[0], inside[-1]
    span = last.at - first.at
    return {
        "span_s": round(span, 1),
        "appends_per_s": round((last.appends - first.appends) / span, 1),
        "scripts_per_s": round((last.evalsha - first.evalsha) / span, 1),
        "spublish_per_s": round((last.spublish - first.spublish) / span, 1),
        "net_out_kib_per_s": round((last.net_out - first.net_out) / span / 1024, 1),
        "cpu_percent": round((last.cpu_s - first.cpu_s) / span * 100, 2),
    }


def report(
    samples: dict[int, list[NodeSample]],
    killed_at: float | None,
    killed_port: int | None,
    probe: Probe,
    folder: Path,
) -> None:
    cut = killed_at if killed_at is not None else float("inf")
    windows = {"before the kill": (0.0, cut), "after the kill": (cut + 10, float("inf"))}
    out: dict[str, dict[int, dict[str, float]]] = {}
    for title, (t0, t1) in windows.items():
        print(f"-- {title}")
        print(
            f"{'node':>6} {'appends/s':>10} {'scripts/s':>10} {'spublish/s':>11}"
            f" {'out KiB/s':>10} {'CPU %':>7}"
        )
        out[title] = {}
        for port, got in samples.items():
            row = rates(got, t0, t1)
            if row is None:
                continue
            out[title][port] = row
            mark = " (killed)" if port == killed_port else ""
            print(
                f"{port:>6} {row['appends_per_s']:>10} {row['scripts_per_s']:>10}"
                f" {row['spublish_per_s']:>11} "
                f"{row['net_out_kib_per_s']:>10} {row['cpu_percent']:>7}{mark}"
            )
    print(
        f"failover: writes to the killed master's shard failed for {probe.longest_s:.2f}s "
        f"({probe.failures} failed probes)"
    )
    (folder / "cluster-run.json").write_text(
        json.dumps({"windows": out, "failover_pause_s": probe.longest_s, "killed": killed_port})
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--sessions", type=int, default=80)
    parser.add_argument("--duration", type=float, default=180)
    parser.add_argument("--ramp-up", type=float, default=20)
    parser.add_argument("--kill-at", type=float, default=90)
    parser.add_argument("--resume-rate", type=float, default=1.0)
    parser.add_argument("--sample-every", type=float, default=5)
    parser.add_argument("--node-timeout-ms", type=int, default=2000)
    parser.add_argument("--out")
    parsed = parser.parse_args()
    parsed.out = parsed.out or tempfile.mkdtemp(prefix="cluster-run-")
    Path(parsed.out).mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(main(parsed)))
