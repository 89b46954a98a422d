"""Auto-pipelining of the append script: every append issued in one turn of the event loop
goes to Redis in one pipeline (one round trip, one connection checkout).

Contract of :meth:`ScriptBatcher.call`: the same as calling the script (its result, or the
Redis error it raised, for this call alone); calls are sent in the order they were made; a
connection error fails every call of that pipeline (callers retry). Scripts flushed by a
Redis restart (``NOSCRIPT``) are loaded again and the affected calls re-sent once. At most
``max_batch`` calls go in one pipeline; the rest follow in the next.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as redis_errors


class ScriptBatcher:
    def __init__(self, redis: aioredis.Redis, script: str, *, max_batch: int = 512) -> None:
        self.redis = redis
        self.script = script
        self.max_batch = max_batch
        self._sha: str | None = None
        self._pending: list[tuple[list[Any], list[Any], asyncio.Future[Any]]] = []
        self._flushing = False
        self.pipelines = 0
        self.calls = 0

    async def __call__(self, *, keys: list[Any], args: list[Any]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((keys, args, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._start_flush)
        return await future

    def _start_flush(self) -> None:
        task = asyncio.ensure_future(self._flush())
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = (
                    self._pending[: self.max_batch],
                    self._pending[self.max_batch :],
                )
                await self._send(batch)
        finally:
            self._flushing = False
            if self._pending:  # arrived while the last pipeline was in flight
                self._flushing = True
                asyncio.get_running_loop().call_soon(self._start_flush)

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
            self._sha = None if isinstance(exc, redis_errors.ConnectionError) else self._sha
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.pipelines += 1
        self.calls += len(batch)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _pipeline(
        self, batch: list[tuple[list[Any], list[Any], asyncio.Future[Any]]]
    ) -> list[Any]:
        sha = self._sha
        assert sha is not None
        pipe = self.redis.pipeline(transaction=False)
        for keys, args, _ in batch:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))
