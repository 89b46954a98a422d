"""Auto-pipelining of the append script: every append issued in one turn of the event loop
goes to Redis in one pipeline (one round trip, on the batcher's own connection).

Contract of :meth:`ScriptBatcher.call`: the same as calling the script (its result, or the
Redis error it raised, for this call alone); calls are sent in the order they were made; a
connection error fails every call of that pipeline (callers retry). Scripts flushed by a
Redis restart (``NOSCRIPT``) are loaded again and the affected calls re-sent once. At most
``max_batch`` calls go in one pipeline; the rest follow in the next.

The pipeline is written by hand: every ``EVALSHA`` is packed here straight into one RESP
buffer and the replies are read off a redis-py connection (its parser, hiredis when
installed) that the batcher keeps for itself: pipelines go one at a time anyway. redis-py's
``Pipeline`` costs about 30 µs of Python per command (argument encoding, per-command
bookkeeping), which on the owner is paid once per event.

A call that can wait (``submit(..., within_s=...)``: the events nobody waits for, such as a
score delta or a turn's end) does not start a pipeline of its own: it rides in the next
pipeline that leaves for another call (the process's tick sends every speaking session's
delta in one), or leaves on its own after ``within_s`` at the latest.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as redis_errors

from server import metrics


class ScriptBatcher:
    def __init__(
        self,
        redis: aioredis.Redis,
        script: str,
        *,
        max_batch: int = 512,
        timeout_s: float = 5.0,
    ) -> None:
        self.redis = redis
        self.script = script
        self.max_batch = max_batch
        self.timeout_s = timeout_s  # for one pipeline: its write and all its replies
        self._sha: str | None = None
        self._pending: list[tuple[list[Any], list[Any], asyncio.Future[Any]]] = []
        # One long-lived flusher task, woken through this future by the first call of a loop
        # turn (no task created per pipeline), and one connection of its own (no pool
        # checkout per pipeline; no redis-py per-write task: see ``_connection``).
        self._wakeup: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._due = False  # a call that cannot wait (or a waiting call's time) came
        self._later: asyncio.TimerHandle | None = None  # when the waiting calls leave alone
        self._conn: Any = None
        self.pipelines = 0
        self.calls = 0

    async def __call__(self, *, keys: list[Any], args: list[Any]) -> Any:
        return await self.submit(keys=keys, args=args)

    def submit(
        self, *, keys: list[Any], args: list[Any], within_s: float | None = None
    ) -> asyncio.Future[Any]:
        """The call, queued without waiting: its future resolves as awaiting the batcher would
        return or raise (for callers that must not wait: the process's tick,
        ``SessionLog.append_soon``). Sent in this loop turn's pipeline; with ``within_s``, in
        the next pipeline another call starts, or after ``within_s`` seconds at the latest."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, args, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_forever(), name="append-pipeline")
        if within_s is None:
            self._wake()
        elif self._later is None:
            self._later = loop.call_later(within_s, self._on_later)
        return future

    def _on_later(self) -> None:
        self._later = None
        self._wake()

    def _wake(self) -> None:
        self._due = True
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def aclose(self) -> None:
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        for _, _, future in self._pending:
            if not future.done():
                future.set_exception(redis_errors.ConnectionError("closed"))
        self._pending = []
        if self._conn is not None:
            await self._conn.disconnect(nowait=True)
            self._conn = None

    async def _flush_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not (self._pending and self._due):
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
            # Woken in the loop turn after the first call: every call made in that turn is
            # here by now and goes in this pipeline, with the calls that could wait.
            batch, self._pending = (
                self._pending[: self.max_batch],
                self._pending[self.max_batch :],
            )
            self._due = bool(self._pending)  # what did not fit goes next, whatever it is
            if self._later is not None:
                self._later.cancel()
                self._later = None
            batch = [call for call in batch if not call[2].done()]  # cancelled: never sent
            if not batch:
                continue
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(redis_errors.ConnectionError("closed"))
                raise

    async def _send(self, batch: list[tuple[list[Any], list[Any], asyncio.Future[Any]]]) -> None:
        try:
            if self._sha is None:
                self._sha = await self.redis.script_load(self.script)
            results = await self._pipeline(batch)
            retry = [i for i, r in enumerate(results) if isinstance(r, redis_errors.NoScriptError)]
            if retry:
                self._sha = await self.redis.script_load(self.script)
                again = await self._pipeline([batch[i] for i in retry])
                for i, result in zip(retry, again, strict=True):
                    results[i] = result
        except Exception as exc:
            if isinstance(exc, redis_errors.ConnectionError | OSError):
                self._sha = None
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.pipelines += 1
        self.calls += len(batch)
        metrics.REDIS_PIPELINES.inc()
        metrics.REDIS_APPENDS.inc(len(batch))
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _connection(self) -> Any:
        """The batcher's own connection, made by the client's pool factory (same address,
        credentials and parser). Its ``socket_timeout`` is unset: redis-py would otherwise
        run every write in a task of its own (``asyncio.wait_for``) and open a timeout
        context per reply; ``_pipeline`` bounds the whole round trip instead."""
        if self._conn is None:
            self._conn = self.redis.connection_pool.make_connection()  # type: ignore[no-untyped-call]
            self._conn.socket_timeout = None
        return self._conn

    async def _pipeline(
        self, batch: list[tuple[list[Any], list[Any], asyncio.Future[Any]]]
    ) -> list[Any]:
        """Send every call of ``batch`` in one write; return each reply or error, in order."""
        sha = self._sha
        assert sha is not None
        head = b"EVALSHA"
        sha_bytes = sha.encode() if isinstance(sha, str) else sha
        packed = b"".join(
            pack_command((head, sha_bytes, len(keys), *keys, *args)) for keys, args, _ in batch
        )
        connection = self._connection()
        try:
            async with asyncio.timeout(self.timeout_s):
                await connection.send_packed_command(packed, check_health=False)
                results: list[Any] = []
                for _ in batch:
                    try:
                        results.append(await connection.read_response())
                    except redis_errors.ResponseError as exc:  # this call's error; read on
                        results.append(exc)
            return results
        except BaseException as exc:
            # The replies still unread would be taken for the next command's: drop the
            # connection (the next pipeline connects again).
            await connection.disconnect(nowait=True)
            if isinstance(exc, TimeoutError):
                raise redis_errors.TimeoutError("append pipeline timed out") from exc
            raise


def _arg(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    raise TypeError(f"cannot send {type(value).__name__} to Redis")


def pack_command(args: tuple[Any, ...]) -> bytes:
    """One command as a RESP array of bulk strings (str as UTF-8, numbers in decimal)."""
    parts = [b"*%d\r\n" % len(args)]
    for value in args:
        data = _arg(value)
        parts.append(b"$%d\r\n" % len(data))
        parts.append(data)
        parts.append(b"\r\n")
    return b"".join(parts)
