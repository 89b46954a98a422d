"""One socket of a virtual candidate: the reference client plus the task that reads it.

A :class:`Link` reads every frame as soon as it arrives (so delivery lag is measured on
arrival, not when the candidate gets round to it) and hands it to a callback, stamped with
the arrival time. Sending goes straight through the client (``send`` may run alongside the
reader, per ``protocol.client``).

Contracts:

- ``on_frame`` runs in the reader task, once per frame, in arrival order; it must not block
  and must not raise (an exception from it is counted as a harness fault and ends the link).
- ``closed`` is set once the reader has stopped, whatever the reason; ``close_code`` is then
  the code received (1006 when the connection dropped without one), ``by_client`` whether
  this side closed first.
- :meth:`close` is bounded (``timeout``; then the transport is aborted) and idempotent; it
  is safe to call from a ``finally`` while the caller is being cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from protocol.client import ConnectionClosedByServer, InterviewClient
from protocol.errors import FrameError
from protocol.messages import ServerFrame

__all__ = ["FrameHandler", "Link"]

log = logging.getLogger("mentara.load")

FrameHandler = Callable[[ServerFrame, float], None]
"""``(frame, arrived_ms)``: ``arrived_ms`` is wall-clock Unix milliseconds at arrival."""

_ABNORMAL = 1006


class Link:
    """A connected, authenticated socket and its reader; see the module contract."""

    def __init__(self, client: InterviewClient, url: str, on_frame: FrameHandler) -> None:
        self.client = client
        self.url = url
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.by_client = False
        self.fault: str | None = None
        """Why the reader stopped other than a close: an undecodable frame, a handler error."""
        self._on_frame = on_frame
        self._reader = asyncio.create_task(self._read(), name=f"load-reader-{url}")

    @property
    def is_open(self) -> bool:
        return not self.closed.is_set()

    async def close(self, timeout: float = 3.0) -> None:
        """Close from this side (if still open) and wait for the reader to stop."""
        if self.is_open:
            self.by_client = True
            try:
                async with asyncio.timeout(timeout):
                    await self.client.close()
            except TimeoutError:
                self.abort()
        if not self._reader.done():
            self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    def abort(self) -> None:
        """Drop the TCP connection at once, without a closing handshake."""
        self.by_client = True
        transport = self.client.connection.transport
        if transport is not None:
            transport.abort()

    async def _read(self) -> None:
        try:
            while True:
                frame = await self.client.recv(timeout=None)
                self._on_frame(frame, time.time() * 1000.0)
        except ConnectionClosedByServer as exc:
            self.close_code = exc.code
        except FrameError as exc:
            self.fault = f"undecodable frame from the server: {exc.code.value}"
            await self._drop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("load harness: frame handler failed")
            self.fault = f"harness fault: {type(exc).__name__}"
            await self._drop()
        finally:
            if self.close_code is None:
                self.close_code = self.client.close_code or _ABNORMAL
            self.closed.set()

    async def _drop(self) -> None:
        self.by_client = True
        try:
            async with asyncio.timeout(2.0):
                await self.client.close()
        except TimeoutError:
            self.abort()
