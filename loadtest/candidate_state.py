"""What one virtual candidate knows, and the phases it goes through (drawn in candidate.py).

:class:`CandidateState` is the bottom of the candidate's layers (state, then
``candidate_frames.py``, ``candidate_socket.py``, ``candidate.py``): its identity (user,
token, track, script, code buffer), its socket and URLs, its :class:`StreamChecker`, the
frames pending an ack, and the watches the frame handlers fill in. It does no I/O. A phase
change other than those drawn above raises ``RuntimeError`` (a harness bug).
"""

from __future__ import annotations

import asyncio
import enum
import random
from dataclasses import dataclass

from loadtest.config import interview_url
from loadtest.context import WorkerContext
from loadtest.integrity import IntegrityIssue, StreamChecker
from loadtest.link import Link
from loadtest.scenario import CandidateScript, CodeBuffer, pick_track
from protocol.codec import JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL
from protocol.messages import ClientFrame
from server.dev_tokens import mint_dev_token

__all__ = [
    "NEVER",
    "CandidateState",
    "PendingFrame",
    "Phase",
    "ReplyWatch",
    "ResumeAttempt",
    "SessionLost",
]

NEVER = float("inf")


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
class PendingFrame:
    """A frame sent with an ``id``, kept until its ack (or resent after a resume)."""

    kind: str
    frame: ClientFrame
    sent_at: float
    resent: bool = False


@dataclass
class ReplyWatch:
    """Times one candidate message to the first delta of the interviewer's answer."""

    sent_at: float
    text: str
    said: bool = False
    turn_id: str | None = None


@dataclass
class ResumeAttempt:
    """One ``session.resume`` in flight: done once its replay is in, or its error."""

    started_at: float
    ref: str
    replay_left: int | None = None
    done: bool = False
    error: str | None = None


class CandidateState:
    """Candidate number ``index`` of the run, played on ``ctx``'s event loop: its state."""

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
        self.pending: dict[str, PendingFrame] = {}
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._speaking = False
        self._reply_at: float | None = None
        self._reply: ReplyWatch | None = None
        self._run_sent_at: float | None = None
        self._resume: ResumeAttempt | None = None
        self._start_error: str | None = None
        self._ended_at: float | None = None
        self._end_sent_at: float | None = None

    def _fail(self) -> None:
        if self.phase not in (Phase.DONE, Phase.FAILED):
            self.phase = Phase.FAILED

    def _to(self, phase: Phase) -> None:
        if phase not in _NEXT[self.phase]:
            raise RuntimeError(f"candidate {self.user_id}: {self.phase.value} -> {phase.value}")
        self.phase = phase

    def _issues(self, issues: list[IntegrityIssue]) -> None:
        if issues:
            self.ctx.record_issues(issues, self.user_id)

    def _every(self, mean_s: float) -> float:
        return self.script.jitter(mean_s, 0.3) if mean_s > 0 else NEVER

    def _mint(self) -> str:
        config = self.ctx.config
        ttl = int(config.deadline_s + 3600)
        return mint_dev_token(config.token_secret, self.user_id, ttl_s=ttl)
