"""What the append's seq floor costs: the append script with the floor against the one before
it (``INCR`` alone), on the same Redis, in one run, interleaved.

Run against a Redis of its own (it resets the server's command statistics)::

    python -m bench.append_floor redis://127.0.0.1:PORT/0 [--sessions 200] [--rounds 6]

Each round appends ``--per-session`` events to each of ``--sessions`` sessions through the
server's own append pipeline (:class:`server.hub.batcher.ScriptBatcher`), once with each
script, and reads Redis's CPU per script call from ``INFO commandstats`` (``EVALSHA``
``usec_per_call``) and the client's wall time per append. Prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import redis.asyncio as aioredis

from server.hub import scripts
from server.hub.batcher import ScriptBatcher
from server.hub.keys import session_keys

#: The append as it was before the floor: the counter alone says the next seq.
APPEND_WITHOUT_FLOOR = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED')
end
local seq = redis.call('INCR', KEYS[2])
local event = '{"seq":' .. seq .. ',"ts":' .. ARGV[2] .. ',' .. string.sub(ARGV[3], 2)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], seq .. '-0', 'e', event)
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[7], seq)
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
redis.call('PUBLISH', ARGV[6], event)
return seq
"""

BODY = b'{"type":"interviewer.delta","turn_id":"i1","text":" a few tokens of text"}'


async def one_round(
    redis: aioredis.Redis, script: str, sessions: int, per_session: int
) -> tuple[float, float]:
    """(Redis µs per call, client µs per append) for one script."""
    prefix = f"floorbench{uuid.uuid4().hex[:6]}:"
    batcher = ScriptBatcher(redis, script)
    token = "w:1"
    keys = [session_keys(prefix, f"s{i}") for i in range(sessions)]
    for k in keys:
        await redis.set(k.lease, token)
    last = [0] * sessions
    await redis.config_resetstat()
    started = time.perf_counter()
    for _ in range(per_session):

        async def append(i: int) -> None:
            k = keys[i]
            last[i] = int(
                await batcher(
                    keys=[k.lease, k.seq, k.stream, k.inputs],
                    args=[token, 1, BODY, 100, 60_000, k.channel, "", last[i]],
                )
            )

        await asyncio.gather(*(append(i) for i in range(sessions)))
    wall = time.perf_counter() - started
    stats = await redis.info("commandstats")
    await batcher.aclose()
    for k in keys:
        await redis.delete(k.lease, k.seq, k.stream)
    evalsha = stats["cmdstat_evalsha"]
    return float(evalsha["usec_per_call"]), wall / (sessions * per_session) * 1e6


async def main(url: str, sessions: int, per_session: int, rounds: int) -> None:
    redis = aioredis.from_url(url)
    scripts_by_name = {
        "floor": scripts.append_script(sharded=False),
        "incr": APPEND_WITHOUT_FLOOR,
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in scripts_by_name}
    try:
        for _ in range(rounds):
            for name, script in scripts_by_name.items():
                results[name].append(await one_round(redis, script, sessions, per_session))
    finally:
        await redis.aclose()
    medians = {
        name: (
            statistics.median(r[0] for r in rows),
            statistics.median(r[1] for r in rows),
        )
        for name, rows in results.items()
    }
    for name, (server_us, client_us) in medians.items():
        print(f"{name:6} redis {server_us:6.2f} µs/append   client wall {client_us:6.2f} µs/append")
    floor, incr = medians["floor"], medians["incr"]
    print(
        f"ratio floor/incr: redis {floor[0] / incr[0]:.2f}, client wall {floor[1] / incr[1]:.2f}"
        f" ({sessions} sessions x {per_session} appends x {rounds} rounds)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--per-session", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6)
    options = parser.parse_args()
    asyncio.run(main(options.url, options.sessions, options.per_session, options.rounds))
