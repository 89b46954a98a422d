"""A TCP relay on 127.0.0.1:0, the base of the tests' proxies (``CuttableProxy`` in
tests/browser_support.py, ``LinkProxy`` in tests/outage_support.py).

Each accepted connection gets an upstream connection (:meth:`TcpRelay.open_upstream`) and two
pumps copying bytes each way, each chunk through :meth:`TcpRelay.forward` (which subclasses
extend to inspect, hold or delay). :meth:`TcpRelay.cut` drops every open connection at once,
without a close handshake, as a network drop would.

Its contract on exit: every socket it opened or accepted is closed before the exit returns,
including those of a connection half-made as it exits (a client reconnecting as the test
ends: its handler is still opening the upstream one). A socket left open would be found by
the garbage collector after the test's loop has closed, an unraisable ``ResourceWarning``
failing whichever later test it lands in.
"""

from __future__ import annotations

import asyncio
import contextlib
from asyncio import StreamReader as Reader
from asyncio import StreamWriter as Writer
from typing import Self

__all__ = ["Reader", "TcpRelay", "Writer"]

_EXIT_WAIT_S = 5.0


class TcpRelay:
    """See the module docstring. An async context manager; :attr:`port` is where it listens."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[object]] = set()

    async def open_upstream(self) -> tuple[Reader, Writer]:
        """The upstream connection for one accepted connection (OSError: none)."""
        raise NotImplementedError

    async def _pump(self, reader: Reader, writer: Writer, client: Writer | None) -> None:
        """Copy ``reader`` to ``writer`` until either side closes (``client``: see forward)."""
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self.forward(data, writer, client)

    async def forward(self, data: bytes, writer: Writer, client: Writer | None) -> None:
        """Write one chunk on (the hook subclasses extend). ``client``: the accepted
        connection's writer when the chunk comes from it (going upstream), else None."""
        writer.write(data)
        await writer.drain()

    def cut(self) -> None:
        """Drop every open connection at once (no close handshake)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        # Each handler is let finish (its connections cut, its pumps cancelled, again until
        # none is left) rather than cancelled while it connects, which could drop a connected
        # upstream socket on the floor; cancelled only past the deadline.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _EXIT_WAIT_S
        while self._handlers or self._pumps:
            self.cut()
            for task in list(self._pumps):
                task.cancel()
            await asyncio.gather(*self._pumps, return_exceptions=True)
            if self._handlers:
                await asyncio.wait(self._handlers, timeout=0.05)
            if loop.time() > deadline:
                for handler in list(self._handlers):
                    handler.cancel()
                await asyncio.gather(*self._handlers, return_exceptions=True)
                break
        await self._server.wait_closed()
        await asyncio.sleep(0)  # the aborted transports close on the loop's next pass

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            await self._relay(reader, writer)
        finally:
            self._handlers.discard(handler)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await self.open_upstream()
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, writer)),
            asyncio.create_task(self._pump(up_reader, writer, None)),
        ]
        self._pumps.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._pumps.difference_update(pumps)
            self.connection_closed(writer)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    def connection_closed(self, client: asyncio.StreamWriter) -> None:
        """One relayed connection is over (the hook subclasses extend)."""
