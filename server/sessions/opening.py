"""A session's opening: its first two events, ``session.started`` and the ``intro`` phase.

:func:`open_session` appends what of them a session owned here lacks. Two callers, one
outcome (seq 1 is ``session.started``, seq 2 the phase, then the introduction):

- :class:`~server.sessions.starts.SessionStarts`, right after creating the session;
- a take-over (:meth:`~server.sessions.ownership.Ownership.take_over`) of a session whose
  start did not finish: it got past the row's insert and no further than the opening (Redis
  or Postgres failed under it, the socket went, or its worker died). The client was answered
  with a retryable error, or nothing; its ``session.start`` sent again with the same ``id``
  is acked with seq 1 and attaches, and whichever worker takes the session over completes
  the opening and introduces (as it does for any session whose log ends at the opening).

Both derive the events from the stored row alone (track, language, question, deadline), so
the two openings of one row are the same events.
"""

from __future__ import annotations

from typing import cast

from protocol.messages import Limits, PhaseChanged, Rubric, SessionStarted, Track
from server.interviewer.engine import phase_deadline
from server.sessions.catalog import Catalog
from server.sessions.live import LiveSession
from server.sessions.logged_event import LoggedEvent

__all__ = ["OPENING_SEQ", "open_session", "started_at_ms"]

#: The opening's last seq: ``session.started`` is seq 1, the ``intro`` phase seq 2. A session
#: whose log ends there has not been introduced yet.
OPENING_SEQ = 2


def started_at_ms(deadline_ts: int | None, created_at_ms: int, duration_s: int) -> int:
    """When the session began, for its phase deadlines: its deadline less its duration
    (what :class:`SessionStarts` set them from), else its row's creation."""
    return created_at_ms if deadline_ts is None else deadline_ts - duration_s * 1000


async def open_session(
    session: LiveSession, catalog: Catalog, *, started_ms: int, duration_s: int
) -> LoggedEvent | None:
    """Append what the session's opening lacks: ``session.started`` (seq 1) and the ``intro``
    phase (seq 2), or the phase alone when seq 1 is there. Returns ``session.started`` when
    appended here (its ``durable`` resolves once Postgres has it), else None."""
    row = session.row
    first = None
    if session.log.last_seq == 0:
        question = catalog.get(row.question_id)
        rubric = catalog.rubric(row.track)
        first = await session.log.append(
            SessionStarted(
                session_id=row.id,
                track=cast(Track, row.track),
                language=row.language or "",
                question=question.public,
                rubric=Rubric(dimensions=list(rubric.dimensions), scale=list(rubric.scale)),
                limits=Limits(duration_s=duration_s),
                seq=0,
                ts=0,
            )
        )
    if session.log.last_seq == 1:
        await session.log.append(
            PhaseChanged(
                name="intro",
                deadline_ts=phase_deadline(started_ms, duration_s, "intro"),
                seq=0,
                ts=0,
            )
        )
    return first
