"""A virtual candidate's socket: connect, send with ack tracking, drop and resume.

:class:`CandidateSocket` opens the socket (its frames go to the :class:`CandidateFrames`
handlers), sends frames with an ``id`` and keeps them pending until acked (re-sent with the
same ``id`` after a resume: the server applies an ``id`` once), and resumes on the next URL
after a planned drop or a close whose code says to come back (PROTOCOL.md §6). Every wait
has a timeout; a session that can no longer be reached raises :class:`SessionLost`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from websockets.exceptions import WebSocketException

from loadtest.candidate_frames import CandidateFrames
from loadtest.candidate_state import PendingFrame, ResumeAttempt, SessionLost
from loadtest.link import Link
from loadtest.record import text_digest
from protocol.client import ConnectionClosedByServer, InterviewClient, ServerErrorReply, new_id
from protocol.errors import ProtocolError
from protocol.messages import CandidateMessage, ClientFrame, SessionResume

__all__ = ["RESUMABLE_CLOSES", "CandidateSocket"]

CONNECT_TIMEOUT_S = 10.0
RESUME_TIMEOUT_S = 15.0
ACK_TIMEOUT_S = 30.0
SEND_TIMEOUT_S = 10.0
RECONNECT_ATTEMPTS = 5
MAX_PENDING = 256
RESUMABLE_CLOSES = frozenset({1001, 1006, 1011, 1012, 1013, 4001, 4003})
"""Close codes after which a client reconnects and resumes (PROTOCOL.md §6); 4001 with a
fresh token. Any other close ends the candidate's session."""


class CandidateSocket(CandidateFrames):
    """The socket of a virtual candidate, its pending frames and its resumes."""

    async def _connect(self) -> bool:
        """Open a socket to the current URL and authenticate; count how it failed if not."""
        url = self.urls[self.url_index]
        started = self._loop.time()
        try:
            client = await InterviewClient.connect(
                url,
                token=self.token,
                subprotocol=self.subprotocol,
                open_timeout=CONNECT_TIMEOUT_S,
                welcome_timeout=CONNECT_TIMEOUT_S,
            )
        except ServerErrorReply as exc:
            self.metrics.count(f"error.{exc.error.code.value}")
            self.metrics.count("connect.refused")
            return False
        except ConnectionClosedByServer as exc:
            self.metrics.count(f"close.{exc.code}")
            self.metrics.count("connect.closed")
            return False
        except (OSError, TimeoutError, ProtocolError, WebSocketException) as exc:
            self.metrics.count(f"connect.failed.{type(exc).__name__}")
            return False
        self.metrics.observe("connect_ms", (self._loop.time() - started) * 1000)
        self.metrics.count("connect.ok")
        self.link = Link(client, url, self._on_frame)
        return True

    async def _reconnect(self, *, planned: bool) -> None:
        """Drop the socket (``planned``) or note how it closed, then resume on the next URL.

        Raises SessionLost when the close code says not to come back, or after
        RECONNECT_ATTEMPTS failed attempts.
        """
        link = self.link
        if planned:
            self.metrics.count("resume.planned")
            await self._close_link()
        elif link is not None:
            code = link.close_code or 1006
            if link.fault is not None:
                self.metrics.count("harness.link_fault")
            if code not in RESUMABLE_CLOSES and link.fault is None:
                raise SessionLost(f"closed_{code}")
            if code == 4001:
                self.token = self._mint()
            self.metrics.count("resume.after_close")
        await self._close_link()
        for attempt in range(RECONNECT_ATTEMPTS):
            if attempt:
                await asyncio.sleep(min(3.0, 0.2 * 2**attempt) * random.uniform(0.5, 1.0))
            self.url_index = (self.url_index + 1) % len(self.urls)
            if await self._resume_once():
                return
        raise SessionLost("resume")

    async def _resume_once(self) -> bool:
        started = self._loop.time()
        if not await self._connect():
            return False
        session_id = self.checker.session_id
        assert session_id is not None
        ref = new_id()
        resume = self._resume = ResumeAttempt(started, ref)
        self.checker.begin_resume()
        frame = SessionResume(id=ref, session_id=session_id, last_seq=self.checker.last_seq)
        await self._send(frame, "session.resume")
        await self._until(
            lambda: resume.done or resume.error is not None or not self._link_open(),
            RESUME_TIMEOUT_S,
        )
        self._resume = None
        if resume.done:
            self.metrics.observe("resume_ms", (self._loop.time() - started) * 1000)
            self.metrics.count("resume.ok")
            await self._resend()
            return True
        self.pending.pop(ref, None)
        if resume.error is not None:
            self.metrics.count(f"resume.error.{resume.error}")
        elif self._link_open():
            self.metrics.count("resume.timeout")
        else:
            self.metrics.count("resume.closed")
        await self._close_link()
        return False

    async def _resend(self) -> None:
        """Send again, with the same ``id``, every frame that was not acked.

        Not ``session.start``: a repeated start re-attaches with the whole history, which
        this socket has already resumed."""
        for ref, pending in list(self.pending.items()):
            if pending.kind in ("session.start", "session.resume"):
                # Its ack went to the socket that is gone; the session's events prove it.
                del self.pending[ref]
                self.metrics.count(f"ack.abandoned.{pending.kind}")
                continue
            pending.resent = True
            self.metrics.count("sent.again")
            await self._write(pending.frame)

    async def _close_link(self) -> None:
        """Close the socket if open; count how it closed (``close.<code>`` when the server
        or the network closed it first, ``client_closes`` when this side did)."""
        link, self.link = self.link, None
        if link is None:
            return
        if link.is_open:
            self.metrics.count("client_closes")
            await link.close()
        else:
            await link.close()
            if not link.by_client:
                self.metrics.count(f"close.{link.close_code}")

    def _link_open(self) -> bool:
        return self.link is not None and self.link.is_open

    async def _send(self, frame: ClientFrame, kind: str) -> None:
        """Send a frame with an ``id`` and track it until acked; a frame that cannot be sent
        now stays pending and goes out again after the next resume."""
        ref = frame.id
        assert isinstance(ref, str)
        if len(self.pending) >= MAX_PENDING:
            oldest = min(self.pending, key=lambda r: self.pending[r].sent_at)
            self._expire_one(oldest)
        self.pending[ref] = PendingFrame(kind, frame, self._loop.time())
        self.metrics.count(f"sent.{kind}")
        if self.ctx.recorder.enabled:
            text = frame.text if isinstance(frame, CandidateMessage) else None
            digest = None if text is None else text_digest(text)
            self.ctx.recorder.write(k="sent", u=self.user_id, ref=ref, kind=kind, h=digest)
        await self._write(frame)

    async def _write(self, frame: ClientFrame) -> None:
        link = self.link
        if link is None or not link.is_open:
            return
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await link.client.send(frame)
        except ConnectionClosedByServer:
            pass  # the reader has seen the close too
        except TimeoutError:
            self.metrics.count("send.timeout")
            link.abort()

    def _expire(self, now: float) -> None:
        for ref in [r for r, p in self.pending.items() if now - p.sent_at > ACK_TIMEOUT_S]:
            self._expire_one(ref)

    def _expire_one(self, ref: str) -> None:
        pending = self.pending.pop(ref)
        self.metrics.count(f"ack_timeout.{pending.kind}")
        if pending.kind == "code.run":
            self._run_sent_at = None

    def _pending_kind(self, kind: str) -> bool:
        return any(p.kind == kind for p in self.pending.values())

    async def _until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``done()`` (re-checked at every wake-up) or ``timeout`` seconds."""
        deadline = self._loop.time() + max(0.0, timeout)
        while not done():
            left = deadline - self._loop.time()
            if left <= 0:
                return False
            self._wake.clear()
            link = self.link
            waits = [asyncio.ensure_future(self._wake.wait())]
            if link is not None and link.is_open:
                waits.append(asyncio.ensure_future(link.closed.wait()))
            try:
                await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waits:
                    waiter.cancel()
        return True
