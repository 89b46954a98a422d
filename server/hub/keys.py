"""Redis key and channel names.

Every key of one session shares the hash tag ``{s:<id>}``, so a Redis Cluster keeps them on one
shard and the append script (which touches several) stays a single-slot operation.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SessionKeys:
    lease: str  # "<worker>:<fence>" of the owner; expires unless renewed
    fence: str  # fencing-token counter, incremented by every acquisition
    seq: str  # the last seq assigned
    stream: str  # history: one entry per event, id "<seq>-0", field "e" = the event's JSON
    channel: str  # pub/sub: every event's JSON, as appended
    inputs: str  # hash: client input id -> seq of its event (idempotency across owners)


def session_keys(prefix: str, session_id: str) -> SessionKeys:
    base = f"{prefix}{{s:{session_id}}}:"
    return SessionKeys(
        lease=base + "lease",
        fence=base + "fence",
        seq=base + "seq",
        stream=base + "log",
        channel=base + "ch",
        inputs=base + "in",
    )


def worker_channel(prefix: str, worker_id: str) -> str:
    """The channel a worker listens on for inputs forwarded to the sessions it owns."""
    return f"{prefix}w:{worker_id}"


def erase_channel(prefix: str) -> str:
    """The channel every worker listens on for account deletions (``server.sessions.erasure``)."""
    return f"{prefix}erase"


def session_id_of_channel(prefix: str, channel: str) -> str | None:
    head = f"{prefix}{{s:"
    if channel.startswith(head) and channel.endswith("}:ch"):
        return channel[len(head) : -len("}:ch")]
    return None


@dataclass(frozen=True)
class UserKeys:
    live: str  # sorted set: the user's live session ids, scored by their deadline (ms)
    starts: str  # sorted set: one member per session start, scored by its time (ms)
    runs: str  # sorted set: one member per code run admitted, scored by its time (ms)


def user_keys(prefix: str, user_id: str) -> UserKeys:
    """The per-user limit keys (``server.sessions.user_limits``); one hash tag per user."""
    base = f"{prefix}{{u:{user_id}}}:"
    return UserKeys(live=base + "live", starts=base + "starts", runs=base + "runs")
