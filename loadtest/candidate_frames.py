"""A virtual candidate's handling of what the server sends: acks, errors, resumes, events.

:class:`CandidateFrames` is called by the candidate's :class:`Link` for every frame, in
order, on the event loop. It never sends nor awaits: it feeds the :class:`StreamChecker`
(issues go to the worker's context), counts and times (ack, first delta, code run, lag)
into the worker's metrics, records digests when recording, updates the candidate's state,
and sets the wake-up event so the waiting driver re-checks its condition.
"""

from __future__ import annotations

from loadtest.candidate_state import CandidateState, Phase
from loadtest.record import event_digest
from protocol.messages import (
    Ack,
    CandidateSaid,
    CodeResult,
    Error,
    InterviewerDelta,
    InterviewerTurnEnd,
    InterviewerTurnStart,
    Resumed,
    ServerFrame,
    SessionEnded,
    SessionEvent,
    SessionStarted,
    Snapshot,
)

__all__ = ["INPUT_KINDS", "CandidateFrames"]

INPUT_KINDS = frozenset({"session.start", "session.resume", "candidate.message", "code.update"})
"""Frames whose ack latency goes into ``ack_ms``: acked once stored. ``code.run`` and
``session.end`` are acked only after the run or the closing turn; they have their own
``ack_ms.<kind>`` histograms."""


class CandidateFrames(CandidateState):
    """The frame handlers of a virtual candidate."""

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
