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
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from websockets.exceptions import WebSocketException

from loadtest.config import http_base, interview_url
from loadtest.context import WorkerContext
from loadtest.integrity import IntegrityIssue, StreamChecker
from loadtest.link import Link
from loadtest.record import event_digest, text_digest
from loadtest.scenario import CandidateScript, CodeBuffer, pick_track
from protocol.client import ConnectionClosedByServer, InterviewClient, ServerErrorReply, new_id
from protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from protocol.errors import ProtocolError
from protocol.messages import (
    Ack,
    CandidateMessage,
    CandidateSaid,
    ClientFrame,
    CodeResult,
    CodeRun,
    CodeUpdate,
    Error,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    Resumed,
    ServerFrame,
    SessionEnd,
    SessionEnded,
    SessionEvent,
    SessionResume,
    SessionStart,
    SessionStarted,
    Snapshot,
)
from server.auth import mint_dev_token

__all__ = ["Phase", "VirtualCandidate"]

log = logging.getLogger("mentara.load")

CONNECT_TIMEOUT_S = 10.0
START_TIMEOUT_S = 15.0
RESUME_TIMEOUT_S = 15.0
END_TIMEOUT_S = 20.0
ACK_TIMEOUT_S = 30.0
CODE_RUN_TIMEOUT_S = 60.0
SEND_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3
RECONNECT_ATTEMPTS = 5
TRANSCRIPT_FETCHES = 4
MAX_PENDING = 256
INPUT_KINDS = frozenset({"session.start", "session.resume", "candidate.message", "code.update"})
"""Frames whose ack latency goes into ``ack_ms``: acked once stored. ``code.run`` and
``session.end`` are acked only after the run or the closing turn; they have their own
``ack_ms.<kind>`` histograms."""
RESUMABLE_CLOSES = frozenset({1001, 1006, 1011, 1012, 1013, 4001, 4003})
"""Close codes after which a client reconnects and resumes (PROTOCOL.md §6); 4001 with a
fresh token. Any other close ends the candidate's session."""


class Phase(enum.Enum):
    NEW = "new"
    STARTING = "starting"
    ACTIVE = "active"
    ENDING = "ending"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"


_NEXT: dict[Phase, frozenset[Phase]] = {
    Phase.NEW: frozenset({Phase.STARTING, Phase.FAILED}),
    Phase.STARTING: frozenset({Phase.ACTIVE, Phase.FAILED}),
    Phase.ACTIVE: frozenset({Phase.ENDING, Phase.FAILED}),
    Phase.ENDING: frozenset({Phase.VERIFYING, Phase.FAILED}),
    Phase.VERIFYING: frozenset({Phase.DONE, Phase.FAILED}),
    Phase.DONE: frozenset(),
    Phase.FAILED: frozenset(),
}


class SessionLost(Exception):
    """The candidate can no longer reach its session; ``reason`` is the counter suffix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Pending:
    kind: str
    frame: ClientFrame
    sent_at: float
    resent: bool = False


@dataclass
class _ReplyWatch:
    """Times one candidate message to the first delta of the interviewer's answer."""

    sent_at: float
    text: str
    said: bool = False
    turn_id: str | None = None


@dataclass
class _Resume:
    started_at: float
    ref: str
    replay_left: int | None = None
    done: bool = False
    error: str | None = None


class VirtualCandidate:
    """Candidate number ``index`` of the run, played on ``ctx``'s event loop."""

    def __init__(self, index: int, ctx: WorkerContext) -> None:
        config = ctx.config
        self.index = index
        self.ctx = ctx
        self.metrics = ctx.metrics
        self.user_id = f"load-{config.run_id}-{index}"
        rng = random.Random(config.seed * 1_000_003 + index)
        self.track = pick_track(rng, config.mix)
        self.script = CandidateScript(rng, self.track)
        self.code = CodeBuffer(self.user_id, self.track)
        self.urls = [interview_url(u) for u in config.urls]
        self.url_index = index % len(self.urls)
        self.subprotocol = {
            "json": JSON_SUBPROTOCOL,
            "msgpack": MSGPACK_SUBPROTOCOL,
            "mixed": (JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL)[index % 2],
        }[config.subprotocol]
        self.checker = StreamChecker()
        self.phase = Phase.NEW
        self.link: Link | None = None
        self.token = self._mint()
        self.pending: dict[str, _Pending] = {}
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._speaking = False
        self._reply_at: float | None = None
        self._reply: _ReplyWatch | None = None
        self._run_sent_at: float | None = None
        self._resume: _Resume | None = None
        self._start_error: str | None = None
        self._ended_at: float | None = None
        self._end_sent_at: float | None = None

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

    def _fail(self) -> None:
        if self.phase not in (Phase.DONE, Phase.FAILED):
            self.phase = Phase.FAILED

    def _to(self, phase: Phase) -> None:
        if phase not in _NEXT[self.phase]:
            raise RuntimeError(f"candidate {self.user_id}: {self.phase.value} -> {phase.value}")
        self.phase = phase

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
        next_run = now + self._every(config.run_every_s) if self.track == "coding" else _NEVER
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
            due = min(end_at, next_resume, next_code, next_run, self._reply_at or _NEVER)
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
        self._reply = _ReplyWatch(now, text)
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

    # -- sockets ---------------------------------------------------------------------------

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
        resume = self._resume = _Resume(started, ref)
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
        self.pending[ref] = _Pending(kind, frame, self._loop.time())
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

    # -- frames ----------------------------------------------------------------------------

    def _on_frame(self, frame: ServerFrame, arrived_ms: float) -> None:
        match frame:
            case Ack():
                self._on_ack(frame)
            case Error():
                self._on_error(frame)
            case Resumed():
                self._issues(self.checker.on_resumed(frame))
                if self._resume is not None:
                    self._resume.replay_left = frame.replayed
                    self._resume.done = frame.replayed == 0
                    self._wake.set()
            case Snapshot():
                self.metrics.count("resume.snapshot")
                self._issues(self.checker.on_snapshot(frame))
                if self._resume is not None:
                    self._resume.done = True
                    self._wake.set()
            case _ if isinstance(frame, SessionEvent):
                self._on_event(frame, arrived_ms)
            case _:
                pass  # welcome, pong

    def _on_event(self, event: SessionEvent, arrived_ms: float) -> None:
        replayed = False
        resume = self._resume
        if resume is not None and resume.replay_left:
            replayed = True
            resume.replay_left -= 1
            if resume.replay_left == 0:
                resume.done = True
                self._wake.set()
        second = self.ctx.second()
        if replayed:
            self.metrics.count("events.replayed")
        else:
            self.metrics.count("events.live")
            self.metrics.events_per_s[second] += 1
            self.metrics.observe("lag_ms", arrived_ms - event.ts, second)
        self._issues(self.checker.on_event(event))
        if self.ctx.recorder.enabled:
            self.ctx.recorder.write(
                k="ev",
                u=self.user_id,
                s=self.checker.session_id,
                q=event.seq,
                t=event.__struct_config__.tag,
                h=event_digest(event),
            )
        now = self._loop.time()
        match event:
            case SessionStarted():
                self._wake.set()
            case CandidateSaid(text=text):
                if self._reply is not None and self._reply.text == text:
                    self._reply.said = True
            case InterviewerTurnStart(turn_id=turn_id):
                self._speaking = True
                self._reply_at = None
                if self._reply is not None and self._reply.said and self._reply.turn_id is None:
                    self._reply.turn_id = turn_id
            case InterviewerDelta(turn_id=turn_id):
                watch = self._reply
                if watch is not None and watch.turn_id == turn_id:
                    self._reply = None
                    if replayed:
                        self.metrics.count("first_delta.unmeasured")
                    else:
                        self.metrics.observe("first_delta_ms", (now - watch.sent_at) * 1000, second)
            case InterviewerTurnEnd():
                self._speaking = False
                if self.phase is Phase.ACTIVE:
                    self._reply_at = now + self.script.jitter(self.ctx.config.think_time_s)
                    self._wake.set()
            case CodeResult():
                if self._run_sent_at is not None:
                    if replayed:
                        self.metrics.count("code_run.unmeasured")
                    else:
                        self.metrics.observe("code_run_ms", (now - self._run_sent_at) * 1000)
                    self._run_sent_at = None
            case SessionEnded(reason=reason):
                self._ended_at = now
                self.metrics.count(f"ended.{reason}")
                self._wake.set()
            case _:
                pass

    def _on_ack(self, ack: Ack) -> None:
        pending = self.pending.pop(ack.ref, None)
        if pending is None:
            self.metrics.count("ack.unmatched")
            return
        if self.ctx.recorder.enabled:
            self.ctx.recorder.write(
                k="ack",
                u=self.user_id,
                s=self.checker.session_id,
                ref=ack.ref,
                kind=pending.kind,
                q=ack.seq if isinstance(ack.seq, int) else None,
            )
        if not pending.resent:
            ms = (self._loop.time() - pending.sent_at) * 1000
            if pending.kind in INPUT_KINDS:
                self.metrics.observe("ack_ms", ms, self.ctx.second())
            self.metrics.observe(f"ack_ms.{pending.kind}", ms)
        if pending.kind in ("session.end", "session.resume"):
            self._wake.set()

    def _on_error(self, error: Error) -> None:
        code = error.code.value
        self.metrics.count(f"error.{code}")
        ref = error.ref if isinstance(error.ref, str) else None
        pending = self.pending.pop(ref, None) if ref is not None else None
        if pending is None:
            return
        self.metrics.count(f"error_reply.{pending.kind}.{code}")
        match pending.kind:
            case "session.start":
                self._start_error = code
            case "session.resume":
                if self._resume is not None and self._resume.ref == ref:
                    self._resume.error = code
            case "code.run":
                self._run_sent_at = None
            case "session.end" if code == "session_ended" and self._ended_at is None:
                self._ended_at = self._loop.time()  # it had ended already (time_up)
                self._end_sent_at = None
            case _:
                pass
        self._wake.set()

    def _issues(self, issues: list[IntegrityIssue]) -> None:
        if issues:
            self.ctx.record_issues(issues, self.user_id)

    # -- helpers ---------------------------------------------------------------------------

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

    def _every(self, mean_s: float) -> float:
        return self.script.jitter(mean_s, 0.3) if mean_s > 0 else _NEVER

    def _mint(self) -> str:
        config = self.ctx.config
        ttl = int(config.deadline_s + 3600)
        return mint_dev_token(config.token_secret, self.user_id, ttl_s=ttl)


_NEVER = float("inf")
