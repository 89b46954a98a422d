"""The interviewer engine: one per live session, an explicit state machine.

    IDLE --turn due--> SPEAKING --turn ended--> IDLE ... --finish()--> ENDING --> ENDED

Phases advance with the interview: ``intro`` (greeting turn) → ``problem`` (the problem is
presented) → ``coding`` (first code update) → ``followup`` (the code passes its tests, or the
candidate has talked it through) → ``wrapup`` (the end).

Contract:
- One speaker task runs turns one at a time. A candidate message heard while the interviewer
  speaks is queued: when the turn ends, one reply answers everything said meanwhile.
- :meth:`interrupt` ends the current turn with ``stop_reason: interrupted``; the turn is
  stored as exactly the deltas delivered before it (see ``coalesce``).
- A provider failure ends the turn with ``stop_reason: error``, tells the sockets
  ``error{llm_unavailable, retryable}``, and leaves the engine IDLE: the next message works.
- Turns never exceed ``max_tokens``; the session stops calling the model once its token
  budget is spent (``error{quota_exceeded}``).
- Hints are graded and given one at a time; the script never contains the solution.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from protocol.errors import ErrorCode
from protocol.messages import (
    InterviewerTurnEnd,
    InterviewerTurnStart,
    PhaseChanged,
    SessionEnded,
)
from scoring.followups import PROBES, covered_signals, evidence_of, next_probe
from scoring.question_bank import Question
from scoring.transcript import Role
from server.interviewer.prompt import (
    SYSTEM_PROMPT,
    TranscriptTurn,
    build_messages,
    focus_note,
    guidance,
)
from server.interviewer.provider import LLMProvider, LLMUnavailable, TurnIntent, TurnRequest
from server.interviewer.tick_speech import TickSpeech
from server.sessions.log import LoggedEvent, SessionLog, now_ms

log = logging.getLogger("mentara.engine")

PHASES = ("intro", "problem", "coding", "followup", "wrapup")
# When each phase is expected to end, as a fraction of the session's duration.
_PHASE_END = {"intro": 0.05, "problem": 0.15, "coding": 0.7, "followup": 0.9, "wrapup": 1.0}

_FIRST_SENTENCE = re.compile(r".*?[.!](?=\s|$)")

_STUCK = re.compile(
    r"\b(stuck|hint|no idea|not sure|don'?t know|do not know|confused|help me|lost)\b", re.I
)


_PROBE_RULE = (
    " (Ask about this kind of case only: never name an input, a test, or say that tests fail.)"
)


class EngineState(enum.Enum):
    IDLE = "idle"
    SPEAKING = "speaking"
    ENDING = "ending"
    ENDED = "ended"


@dataclass(frozen=True)
class InterviewScript:
    """What the interviewer can say without a model, and the material it draws on.

    ``question`` (the bank's question) lets replies of the talk-only tracks end with the
    follow-up the evidence calls for (:mod:`scoring.followups`); without it, or for coding,
    a reply is the next acknowledgement line."""

    intro: str
    present: str
    acknowledgements: tuple[str, ...]
    hints: tuple[str, ...]
    followups: tuple[str, ...]
    closing: str
    question: Question | None = None


@dataclass(frozen=True)
class EngineConfig:
    max_tokens: int = 400
    token_budget: int = 200_000
    coalesce_window_s: float = 0.03
    duration_s: int = 45 * 60


@dataclass
class _Turn:
    turn_id: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stopped_as: str = "interrupted"  # the stop_reason when ``stop`` ends the turn


class InterviewerEngine:
    def __init__(
        self,
        *,
        session_id: str,
        log: SessionLog,
        provider: LLMProvider,
        script: InterviewScript,
        context: str,
        config: EngineConfig,
        started_at_ms: int,
        notify: Callable[[ErrorCode, str, bool], None],
        transcript: list[TranscriptTurn] | None = None,
        phase: str = "intro",
        turns_spoken: int = 0,
    ) -> None:
        self.session_id = session_id
        self.log = log
        self.provider = provider
        self.script = script
        self.context = context
        self.config = config
        self.started_at_ms = started_at_ms
        self.notify = notify
        self.state = EngineState.IDLE
        self.phase = phase
        self.transcript: list[TranscriptTurn] = list(transcript or [])
        self.code: tuple[str, str] | None = None
        self.hints_given = 0
        self.followups_asked = 0
        self.acks_said = 0
        self._edge_probe: str | None = None
        self.turns_spoken = turns_spoken
        self.tokens_used = 0
        self._current: _Turn | None = None
        self._due: list[TurnIntent] = []
        self._reply_due = False
        self._wake = asyncio.Event()
        self._speaker: asyncio.Task[None] | None = None

    # -- inputs ----------------------------------------------------------------------------

    def start(self, *, introduce: bool) -> None:
        """Start the speaker; ``introduce`` queues the greeting and the problem."""
        if introduce:
            self._due += [TurnIntent.INTRO, TurnIntent.PRESENT]
        self._speaker = asyncio.create_task(self._speak_loop(), name=f"engine-{self.session_id}")
        self._wake.set()

    def heard(self, text: str) -> None:
        """The candidate said ``text`` (already appended to the log)."""
        self.transcript.append(TranscriptTurn("candidate", text))
        if self.state in (EngineState.ENDING, EngineState.ENDED):
            return
        self._reply_due = True
        self._wake.set()

    def interrupt(self, stop_reason: str = "interrupted") -> bool:
        """End the current turn now; False when the interviewer is not speaking."""
        if self._current is None or self._current.stop.is_set():
            return False
        self._current.stopped_as = stop_reason
        self._current.stop.set()
        return True

    def code_updated(self, language: str, source: str) -> None:
        self.code = (language, source)

    async def advance_phase(self, name: str) -> None:
        """Move to phase ``name`` if it lies ahead of the current one."""
        if PHASES.index(name) <= PHASES.index(self.phase):
            return
        self.phase = name
        duration_ms = self.config.duration_s * 1000
        deadline = self.started_at_ms + int(duration_ms * _PHASE_END[name])
        await self.log.append(PhaseChanged(name=name, deadline_ts=deadline, seq=0, ts=0))  # type: ignore[arg-type]

    async def code_passed(self, *, probe: str | None = None) -> None:
        """The candidate's code passed its visible tests: time for follow-ups. ``probe``, a
        question about a kind of edge case its hidden tests fail (never an input), is asked
        first, as the very next turn; the question's own follow-ups then come as replies."""
        if probe is not None and self.state in (EngineState.IDLE, EngineState.SPEAKING):
            self._edge_probe = probe
            self._due.append(TurnIntent.FOLLOWUP)
            self._wake.set()
        if self.phase == "coding":
            await self.advance_phase("followup")
            if probe is None and self.followups_asked < len(self.script.followups):
                self._due.append(TurnIntent.FOLLOWUP)
                self._wake.set()

    async def finish(self, reason: str) -> LoggedEvent | None:
        """End the interview: stop the current turn, close, append ``session.ended`` (which is
        returned; None when the engine was already ending)."""
        if self.state in (EngineState.ENDING, EngineState.ENDED):
            return None
        self.state = EngineState.ENDING
        self.interrupt()
        self._wake.set()
        if self._speaker is not None:
            await asyncio.gather(self._speaker, return_exceptions=True)
        await self.advance_phase("wrapup")
        if reason in ("candidate_ended", "time_up"):
            await self._turn(TurnIntent.CLOSING, reason=reason.replace("_", " "))
        ended = await self.log.append(
            SessionEnded(reason=reason, seq=0, ts=0),  # type: ignore[arg-type]
        )
        self.state = EngineState.ENDED
        return ended

    async def close(self) -> None:
        """Stop without ending the session (shutdown, hand-over): a turn in progress ends with
        ``stop_reason: error`` (the candidate did not interrupt it), stored as delivered."""
        self.state = EngineState.ENDING
        self.interrupt("error")
        self._wake.set()
        if self._speaker is not None:
            await asyncio.gather(self._speaker, return_exceptions=True)

    # -- the speaker -----------------------------------------------------------------------

    async def _speak_loop(self) -> None:
        while self.state is not EngineState.ENDING:
            if not self._due and not self._reply_due:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._due:
                intent = self._due.pop(0)
            else:
                self._reply_due = False
                intent = self._reply_intent()
            try:
                await self._turn(intent)
            except Exception:
                log.exception("interviewer turn failed", extra={"session_id": self.session_id})
            if intent is TurnIntent.INTRO:
                await self.advance_phase("problem")

    def _reply_intent(self) -> TurnIntent:
        last = next((t.text for t in reversed(self.transcript) if t.role == "candidate"), "")
        if _STUCK.search(last) and self.hints_given < len(self.script.hints):
            return TurnIntent.HINT
        if self.phase == "followup" and self.followups_asked < len(self.script.followups):
            return TurnIntent.FOLLOWUP
        return TurnIntent.REPLY

    def _script_for(self, intent: TurnIntent) -> tuple[str, dict[str, str]]:
        s = self.script
        match intent:
            case TurnIntent.INTRO:
                return s.intro, {}
            case TurnIntent.PRESENT:
                return s.present, {}
            case TurnIntent.HINT:
                hint = s.hints[self.hints_given]
                self.hints_given += 1
                return f"Here's a nudge: {hint}", {"hint": hint}
            case TurnIntent.FOLLOWUP if self._edge_probe is not None:
                probe, self._edge_probe = self._edge_probe, None
                return probe, {"followup": probe + _PROBE_RULE}
            case TurnIntent.FOLLOWUP:
                question = s.followups[self.followups_asked]
                self.followups_asked += 1
                return question, {"followup": question}
            case TurnIntent.CLOSING:
                return s.closing, {}
            case TurnIntent.REPLY:
                said = s.acknowledgements[self.acks_said % len(s.acknowledgements)]
                self.acks_said += 1
                if s.question is not None and s.question.track in PROBES:
                    return self._reply_from_evidence(s.question, said)
                return said, {}
        raise AssertionError(intent)

    def _reply_from_evidence(self, question: Question, said: str) -> tuple[str, dict[str, str]]:
        """A reply that follows up where the evidence is thinnest: the acknowledgement's
        first sentence, then the probe :func:`scoring.followups.next_probe` picks (never one
        already asked, nor one for what the candidate has already said); the question's own
        follow-ups once every probe is used. Claude gets the same as guidance."""
        turns = [(cast(Role, t.role), t.text) for t in self.transcript]
        book = evidence_of(question, turns)
        spoken = [t.text for t in self.transcript if t.role == "interviewer"]
        asked = {p.text for p in PROBES[question.track] if any(p.text in x for x in spoken)}
        lead = _FIRST_SENTENCE.match(said)
        opener = lead.group(0).strip() if lead else said
        probe = next_probe(book, asked)
        if probe is None:
            if self.followups_asked < len(self.script.followups):
                question_text = self.script.followups[self.followups_asked]
                self.followups_asked += 1
                return f"{opener} {question_text}", {}
            return f"{opener} Is there anything you would like to add?", {}
        rubric = book.rubric
        covered = [rubric.signal(sid).description for sid in sorted(covered_signals(book))]
        title = rubric.dimension(probe.dimension).title.lower()
        return f"{opener} {probe.text}", {"focus": focus_note(title, probe.text, covered[:8])}

    async def _turn(self, intent: TurnIntent, **values: str) -> None:
        """One interviewer turn, start to end; always appends ``interviewer.turn.end``."""
        if self.tokens_used >= self.config.token_budget:
            self.notify(
                ErrorCode.QUOTA_EXCEEDED, "this session's interviewer budget is spent", False
            )
            return
        script, guide_values = self._script_for(intent)
        guide_values.update(values)
        request = TurnRequest(
            session_id=self.session_id,
            intent=intent,
            system=SYSTEM_PROMPT,
            question_context=self.context,
            messages=build_messages(
                self.transcript,
                phase=self.phase,
                code=self.code,
                instruction=guidance(intent, **guide_values),
            ),
            max_tokens=self.config.max_tokens,
            script=script,
        )
        self.turns_spoken += 1
        turn = _Turn(f"i{self.turns_spoken}")
        self._current = turn
        previous_state = self.state
        if self.state is EngineState.IDLE:
            self.state = EngineState.SPEAKING
        await self.log.append(InterviewerTurnStart(turn_id=turn.turn_id, seq=0, ts=0))
        reason = "end_turn"
        # The turn's deltas are appended on the process's ticks, with every speaking
        # session's, while this task sleeps until the turn ends (tick_speech.py).
        speech = TickSpeech(
            self.provider.stream_turn(request),
            log=self.log,
            turn_id=turn.turn_id,
            stop=turn.stop,
            window_s=self.config.coalesce_window_s,
        )
        delivered = speech.delivered
        try:
            await speech.run()
            if turn.stop.is_set():
                reason = turn.stopped_as
            elif speech.finished is not None:
                reason = speech.finished.stop_reason
                self.tokens_used += speech.finished.input_tokens + speech.finished.output_tokens
        except LLMUnavailable as exc:
            reason = "error"
            log.warning("llm unavailable: %s", exc, extra={"session_id": self.session_id})
            self.notify(
                ErrorCode.LLM_UNAVAILABLE,
                "the interviewer could not answer; send your message again",
                exc.retryable,
            )
        finally:
            self._current = None
            if self.state is EngineState.SPEAKING:
                self.state = previous_state
        text = "".join(delivered)
        self.transcript.append(TranscriptTurn("interviewer", text))
        # Its transcript row (the deltas delivered) is projected by the log.
        await self.log.append(
            InterviewerTurnEnd(turn_id=turn.turn_id, stop_reason=reason, seq=0, ts=0),  # type: ignore[arg-type]
        )


def phase_deadline(started_at_ms: int, duration_s: int, phase: str) -> int:
    return started_at_ms + int(duration_s * 1000 * _PHASE_END[phase])


def elapsed_ms(started_at_ms: int) -> int:
    return now_ms() - started_at_ms
