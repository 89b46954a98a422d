"""``asyncio.wait_for`` that never loses a cancellation: Python 3.12's, on 3.11.

Python 3.11's ``wait_for`` runs its call in a task of its own; when a cancellation reaches
the caller in the step between that task finishing and the caller resuming, it returns the
result and the cancellation is gone (CPython gh-86296; 3.12 rewrote ``wait_for`` on
``asyncio.timeout``). redis-py sends every command through ``asyncio.wait_for`` (its default
``socket_timeout`` is 5 s), so a task cancelled while it talked to Redis ran on about a third
of the time: a lease keeper cancelled mid-renewal went back to sleep and the server's
shutdown waited for it forever (a CI run), a turn cut short could keep speaking.

:func:`install` puts :func:`wait_for` in place of ``asyncio.wait_for`` for the whole process
(redis-py looks it up on every call); it does nothing on 3.12 and later. Importing
:mod:`server.hub.redis_client` installs it, so every process of ours that talks to Redis
has it. tests/test_cancellation.py is the attack.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


async def wait_for(aw: Awaitable[T], timeout: float | None) -> T:
    """``asyncio.wait_for`` as Python 3.12 has it: the call runs in the caller's task under
    ``asyncio.timeout``; a timeout cancels it and raises ``TimeoutError``; a cancellation of
    the caller always propagates."""
    if timeout is not None and timeout <= 0:
        future = asyncio.ensure_future(aw)
        if future.done():
            return future.result()
        future.cancel()
        await asyncio.wait({future})
        try:
            return future.result()
        except asyncio.CancelledError as exc:
            raise TimeoutError from exc
    async with asyncio.timeout(timeout):
        return await aw


def install() -> None:
    """Use :func:`wait_for` as ``asyncio.wait_for`` in this process (Python < 3.12 only)."""
    if sys.version_info >= (3, 12):
        return
    patched: Any = wait_for
    asyncio.wait_for = patched
    asyncio.tasks.wait_for = patched
