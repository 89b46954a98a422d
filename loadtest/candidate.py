"""One virtual candidate: an explicit state machine that plays a whole interview.

    NEW ─▶ STARTING ─▶ ACTIVE ─▶ ENDING ─▶ VERIFYING ─▶ DONE
      └──────┴───────────┴─────────┴───────────┴──────▶ FAILED

- STARTING: connect (token for its own user), ``session.start``, wait for ``session.started``.
- ACTIVE: listen; after each interviewer turn, think, then answer (``candidate.message``);
  every few seconds a ``code.update`` with a growing buffer, now and then a ``code.run``
  (coding track); at ``resume_rate`` per minute drop the socket and ``session.resume`` on the
  next URL. A socket the server closes is resumed the same way when its close code says so.
- ENDING: at the end of the run, ``session.end``; wait for ``session.ended``.
- VERIFYING: fetch ``GET /v1/sessions/{id}`` and compare the stored transcript to the stream.

Every frame received goes through a :class:`StreamChecker`; issues are counted in the
worker's metrics as they happen. Frames sent with an ``id`` stay pending until acked and are
re-sent with the same ``id`` after a reconnect (the server applies an ``id`` once).

Contract: :meth:`VirtualCandidate.run` never raises but ``CancelledError`` (the worker's hard
stop); every wait in it has a timeout; its outcome is in the worker's metrics
(``sessions.*`` counters) and in :attr:`VirtualCandidate.phase`. Cancelling it is safe: the
socket is closed in ``finally``.

This module is the driver, the top of the candidate's layers: :class:`VirtualCandidate`
extends ``CandidateSocket`` (``candidate_socket.py``: connect, send, resume), which extends
``CandidateFrames`` (``candidate_frames.py``: what the server sends), which extends
``CandidateState`` (``candidate_state.py``: what the candidate knows, its phases).
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from loadtest.candidate_socket import CandidateSocket
from loadtest.candidate_state import NEVER, Phase, ReplyWatch, SessionLost
from loadtest.config import http_base
from protocol.client import new_id
from protocol.messages import CandidateMessage, CodeRun, CodeUpdate, SessionEnd, SessionStart

__all__ = ["VirtualCandidate"]

log = logging.getLogger("mentara.load")

START_TIMEOUT_S = 15.0
END_TIMEOUT_S = 20.0
CODE_RUN_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3
TRANSCRIPT_FETCHES = 4


class VirtualCandidate(CandidateSocket):
    """Candidate number ``index`` of the run, played on ``ctx``'s event loop."""

    # -- the whole interview ---------------------------------------------------------------

    async def run(self, start_at: float, end_at: float) -> None:
        """Play from ``start_at`` to ``end_at`` (event-loop times), then end and verify."""
        await asyncio.sleep(max(0.0, start_at - self._loop.time()))
        counted_active = False
        try:
            self._to(Phase.STARTING)
            await self._start()
            self._to(Phase.ACTIVE)
            self.metrics.count("sessions.started")
            self.ctx.active += 1
            counted_active = True
            await self._play(end_at)
            self._to(Phase.ENDING)
            await self._end()
            self.ctx.active -= 1
            counted_active = False
            await self._close_link()
            self._to(Phase.VERIFYING)
            await self._verify()
            self._to(Phase.DONE)
            self.metrics.count("sessions.completed")
        except SessionLost as lost:
            self.metrics.count(f"sessions.lost.{lost.reason}")
            self._fail()
        except Exception as exc:  # a harness bug must not stop the other candidates
            log.exception("load harness: candidate %s failed", self.user_id)
            self.metrics.count(f"harness.fault.{type(exc).__name__}")
            self._fail()
        finally:
            if counted_active:
                self.ctx.active -= 1
            await self._close_link()
            self.ctx.recorder.write(
                k="done", u=self.user_id, s=self.checker.session_id, phase=self.phase.value
            )

    async def _start(self) -> None:
        for attempt in range(START_ATTEMPTS):
            if attempt:
                await asyncio.sleep(0.5 * attempt)
            if await self._connect():
                break
            self.url_index = (self.url_index + 1) % len(self.urls)
        else:
            raise SessionLost("connect")
        ref = new_id()
        await self._send(SessionStart(id=ref, track=self.track), "session.start")
        ok = await self._until(
            lambda: (
                self.checker.session_id is not None
                or self._start_error is not None
                or not self._link_open()
            ),
            START_TIMEOUT_S,
        )
        if self.checker.session_id is None:
            if self._start_error is not None:
                raise SessionLost(f"start_error.{self._start_error}")
            raise SessionLost("start_timeout" if not ok else "start_closed")

    async def _play(self, end_at: float) -> None:
        config = self.ctx.config
        now = self._loop.time()
        next_code = now + self._every(config.code_every_s)
        next_run = now + self._every(config.run_every_s) if self.track == "coding" else NEVER
        next_resume = now + self.script.exponential(config.resume_rate)
        while True:
            now = self._loop.time()
            if now >= end_at or self._ended_at is not None:
                return
            if not self._link_open():
                await self._reconnect(planned=False)
                continue
            self._expire(now)
            if now >= next_resume:
                await self._reconnect(planned=True)
                next_resume = self._loop.time() + self.script.exponential(config.resume_rate)
                continue
            if self._reply_at is not None and now >= self._reply_at:
                self._reply_at = None
                if not self._speaking:
                    await self._say()
            if now >= next_code:
                await self._update_code()
                next_code = now + self._every(config.code_every_s)
            if now >= next_run:
                if self.code.lines == 0:
                    next_run = now + 1.0
                else:
                    await self._run_code()
                    next_run = now + self._every(config.run_every_s)
            due = min(end_at, next_resume, next_code, next_run, self._reply_at or NEVER)
            await self._until(lambda: not self._link_open(), due - self._loop.time())

    async def _end(self) -> None:
        if self._ended_at is None:
            self._end_sent_at = self._loop.time()
            await self._send(SessionEnd(id=new_id()), "session.end")
        deadline = self._loop.time() + END_TIMEOUT_S
        while self._ended_at is None:
            left = deadline - self._loop.time()
            if left <= 0:
                self.metrics.count("sessions.end_timeout")
                return
            if not self._link_open():
                await self._reconnect(planned=False)
                continue
            await self._until(lambda: self._ended_at is not None or not self._link_open(), left)
        if self._end_sent_at is not None:
            self.metrics.observe("end_ms", (self._ended_at - self._end_sent_at) * 1000)
        # The session.end ack says the ending is durable: wait briefly for it before reading.
        await self._until(lambda: not self._pending_kind("session.end"), 5.0)
        self.metrics.count("sessions.ended")

    async def _verify(self) -> None:
        session_id = self.checker.session_id
        if session_id is None:
            return
        url = f"{http_base(self.urls[self.url_index])}/v1/sessions/{session_id}"
        headers = {"Authorization": f"Bearer {self.token}"}
        check = first = None
        async with self.ctx.http_slots:
            for attempt in range(TRANSCRIPT_FETCHES):
                if attempt:
                    await asyncio.sleep(0.5)
                try:
                    response = await self.ctx.http.get(url, headers=headers, timeout=HTTP_TIMEOUT_S)
                except httpx.HTTPError as exc:
                    self.metrics.count(f"http.error.{type(exc).__name__}")
                    continue
                if response.status_code != 200:
                    self.metrics.count(f"http.status.{response.status_code}")
                    continue
                check = self.checker.compare_transcript(response.json().get("transcript", []))
                first = first or check
                if not check.issues:
                    break
                self.metrics.count("transcript.refetch")
        if check is not None and not check.issues and first is not None and first.issues:
            # Clean only on a later read: right after session.ended and the session.end ack,
            # the server's stored transcript did not yet hold what it had streamed.
            details = "; ".join(i.detail for i in first.issues[:3])
            self.ctx.observe_anomaly(
                "stale_transcript_after_end_ack", details, session_id, self.user_id
            )
        if check is None:
            self.metrics.count("transcript.unchecked")
            return
        self.metrics.count("transcript.sessions_checked")
        self.metrics.count("transcript.turns_verified", check.verified)
        self.metrics.count("transcript.turns_unverified", check.unverified)
        self._issues(check.issues)

    # -- actions ---------------------------------------------------------------------------

    async def _say(self) -> None:
        text = self.script.next_line()
        self.checker.expect_candidate_text(text)
        now = self._loop.time()
        self._reply = ReplyWatch(now, text)
        # Should the interviewer never answer (a failed turn), speak again after a while.
        self._reply_at = now + max(20.0, 4 * self.ctx.config.think_time_s)
        await self._send(CandidateMessage(id=new_id(), text=text), "candidate.message")

    async def _update_code(self) -> None:
        source = self.code.grow()
        self.checker.expect_code(source)
        frame = CodeUpdate(id=new_id(), language=self.code.language, source=source)
        await self._send(frame, "code.update")

    async def _run_code(self) -> None:
        if self._run_sent_at is not None:
            if self._loop.time() - self._run_sent_at < CODE_RUN_TIMEOUT_S:
                return  # one run at a time
            self.metrics.count("code_run.timeout")
        self._run_sent_at = self._loop.time()
        await self._send(CodeRun(id=new_id()), "code.run")
