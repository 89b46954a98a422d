"""The Lua scripts: each a single atomic Redis step.

``APPEND`` is the heart of ARCHITECTURE.md invariants 1 and 2: it checks the caller's lease
(the fencing token), assigns the next seq, adds the event to the session's history stream
(bounded length, TTL) and publishes it, all at once. A stale owner gets ``FENCED`` and
appends nothing.
"""

from __future__ import annotations

# KEYS: lease, seq, stream, inputs. ARGV: owner token, ts, body (event JSON without seq/ts),
# stream max length, ttl ms, channel, client input id ("" for none), the owner's last seq.
# Returns the new seq, or the error FENCED. The input id is recorded with the event, in the
# same step: an owner that dies before its write-behind reaches Postgres leaves the id where
# the next owner finds it, so the client's re-sent input is not applied a second time.
#
# The seq is the owner's last seq + 1, never the counter + 1 alone: replication is
# asynchronous, so a failover can bring back a counter (and history) older than what the owner
# already assigned, delivered and wrote behind to Postgres; counting on from it would give a
# second event a seq clients and Postgres already hold (docs/scale-out.md, "Failover").
# A counter *past* the owner's last seq is an append of this owner whose reply was lost (one
# append at a time per session, under this owner's token): when the entry there is this very
# event, re-sent, its seq is answered again; otherwise the new event goes after it.
APPEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED')
end
local last = tonumber(ARGV[8])
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
local tail = ',"ts":' .. ARGV[2] .. ',' .. string.sub(ARGV[3], 2)
if counter > last then
  local entry = redis.call('XRANGE', KEYS[3], counter .. '-0', counter .. '-0')
  if entry[1] and entry[1][2][2] == '{"seq":' .. counter .. tail then
    return counter
  end
  last = counter
end
local seq = last + 1
redis.call('SET', KEYS[2], seq, 'PX', ARGV[5])
local event = '{"seq":' .. seq .. tail
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], seq .. '-0', 'e', event)
redis.call('PEXPIRE', KEYS[3], ARGV[5])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[7], seq)
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
redis.call('PUBLISH', ARGV[6], event)
return seq
"""

# TEST ONLY (MENTARA_TEST_UNFENCED_APPEND): APPEND without its fence check, so a stale owner
# appends. Never configured in production; the chaos checker's own test uses it to show that
# the checker catches two owners appending to one session (tests/test_chaos.py).
APPEND_UNFENCED = APPEND.replace(
    """if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED')
end
""",
    "",
)
assert APPEND_UNFENCED != APPEND


def append_script(*, sharded: bool, unfenced: bool = False) -> str:
    """:data:`APPEND`, publishing with ``SPUBLISH`` when ``sharded`` (a Redis Cluster: the
    event goes to the subscribers of its shard only) or classic ``PUBLISH`` (one Redis; the
    embedded Redis 6.2 has no sharded pub/sub). ``unfenced``: TEST ONLY, :data:`APPEND_UNFENCED`."""
    script = APPEND_UNFENCED if unfenced else APPEND
    return script.replace("'PUBLISH'", "'SPUBLISH'") if sharded else script


# KEYS: lease, fence, seq. ARGV: worker id, lease ms, floor seq (the last seq Postgres has),
# ttl ms, and for a re-take the last seq the caller appended ("" otherwise). Acquires the lease
# if free or released; raises the seq counter to at least the floor (after a Redis restart or
# expiry the counter is recovered, never rewound). Returns {token, seq} or {false, current
# holder}. A re-take (a former owner whose lease vanished) is refused with {false, 'advanced'}
# when the counter is past the caller's last seq: the lease did not vanish with Redis's data,
# another owner appended since (and its lease then expired), and the caller's state is stale.
ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= 'released' then
  return {false, holder}
end
if ARGV[5] ~= '' and tonumber(redis.call('GET', KEYS[3]) or '0') > tonumber(ARGV[5]) then
  return {false, 'advanced'}
end
local fence = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local token = ARGV[1] .. ':' .. fence
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
if seq < tonumber(ARGV[3]) then
  seq = tonumber(ARGV[3])
  redis.call('SET', KEYS[3], seq, 'PX', ARGV[4])
end
return {token, seq}
"""

# KEYS: lease. ARGV: token, lease ms. 1 when renewed, 0 when the lease is no longer ours.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: token, ms. Hands the session over if the lease is still ours: the
# value "released" tells other workers they may take it at once (a lease that merely vanished
# may belong to an owner that is about to take it back after a Redis restart).
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'released', 'PX', ARGV[2])
  return 1
end
return 0
"""
