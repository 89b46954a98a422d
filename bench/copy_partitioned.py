"""What hash-partitioning ``session_events`` costs Postgres per event written.

``python -m bench.copy_partitioned --dsn postgresql://postgres@127.0.0.1:5432/postgres``
makes a scratch database with two tables of ``session_events``' shape (migration 0008): one
hash-partitioned by session id into 16 partitions, one plain; each with its foreign key to a
``sessions`` table. It then writes the same batches to each, alternating, the way the event
writer does (binary COPY, ``--rows`` rows per batch from ``--sessions`` sessions, the
benchmark's ~50), and reads the Postgres backend's own CPU time from ``/proc`` (the backend
must run on this machine) around each table's batches. It prints the backend's CPU per
batch and per row for each table, and their ratio; the scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import uuid

import asyncpg

__all__ = ["main"]

_TABLE = """CREATE TABLE {name} (
    session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    type text NOT NULL,
    ts bigint NOT NULL,
    body jsonb NOT NULL,
    PRIMARY KEY (session_id, seq)
){partitioned}"""
_COLUMNS = ("session_id", "seq", "type", "ts", "body")


def _backend_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (a Postgres backend), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def _setup(conn: asyncpg.Connection, sessions: list[str]) -> None:
    await conn.execute("CREATE TABLE sessions (id text PRIMARY KEY)")
    await conn.executemany("INSERT INTO sessions (id) VALUES ($1)", [(s,) for s in sessions])
    await conn.execute(_TABLE.format(name="events_plain", partitioned=""))
    await conn.execute(
        _TABLE.format(name="events_hashed", partitioned=" PARTITION BY HASH (session_id)")
    )
    for r in range(16):
        await conn.execute(
            f"CREATE TABLE events_hashed_p{r:02d} PARTITION OF events_hashed "
            f"FOR VALUES WITH (MODULUS 16, REMAINDER {r})"
        )


async def _run(dsn: str, args: argparse.Namespace) -> dict[str, float]:
    scratch = f"mentara_copybench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE DATABASE {scratch}")
    try:
        conn = await asyncpg.connect(dsn, database=scratch)
        try:
            sessions = [uuid.uuid4().hex for _ in range(args.sessions)]
            await _setup(conn, sessions)
            pid = conn.get_server_pid()
            body = json.dumps({"turn_id": "t1", "text": "a few words of the interviewer"})
            seqs = dict.fromkeys(sessions, 0)
            spent: dict[str, list[float]] = {"events_plain": [], "events_hashed": []}
            for batch in range(args.batches):
                rows = []
                for i in range(args.rows):
                    session = sessions[(batch * args.rows + i) % len(sessions)]
                    seqs[session] += 1
                    rows.append((session, seqs[session], "interviewer.delta", 0, body))
                order = ("events_plain", "events_hashed")
                for table in order if batch % 2 else order[::-1]:  # alternate who goes first
                    before = _backend_cpu_s(pid)
                    await conn.copy_records_to_table(table, records=rows, columns=_COLUMNS)
                    spent[table].append(_backend_cpu_s(pid) - before)
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE {scratch} WITH (FORCE)")
        await admin.close()
    return {table: sum(values) / len(values) for table, values in spent.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.copy_partitioned", description=__doc__)
    p.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--rows", type=int, default=50, help="rows per COPY batch")
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--batches", type=int, default=2000, help="batches per table")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    rounds = [asyncio.run(_run(args.dsn, args)) for _ in range(args.rounds)]
    plain = statistics.median(r["events_plain"] for r in rounds)
    hashed = statistics.median(r["events_hashed"] for r in rounds)
    print(
        f"{args.batches} batches of {args.rows} rows per table, {args.rounds} rounds (median): "
        f"plain {plain * 1e6:.0f} us per batch ({plain / args.rows * 1e6:.1f} us per row), "
        f"hash-partitioned {hashed * 1e6:.0f} us ({hashed / args.rows * 1e6:.1f} us per row): "
        f"{hashed / plain:.2f}x"
    )


if __name__ == "__main__":
    main()
