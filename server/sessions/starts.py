"""``session.start`` on one worker: a new session created, owned here, and begun.

:meth:`SessionStarts.start` refuses the admin socket and a token its user's erasure revoked;
admits the start against the user's limits across workers (live sessions, starts per minute)
and, in the transaction that creates the session row, the plan's quota; then owns the session
here, attaches the socket as its owner, opens it (``session.started`` and the first phase:
:mod:`server.sessions.opening`), acks with the first seq once durable, arms the time limit and
starts the engine. A repeated start (same ``id``) re-attaches to its session and is acked with
seq 1, at the limit too; a start that created no session no longer counts against its user's
live sessions. A start that fails after creating the row and before its opening is durable
leaves the session owned by no one: sent again, it attaches, and the take-over completes the
opening and introduces.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from protocol.messages import SessionStart
from server.client_socket import ClientSocket, Endpoint
from server.errors import Forbidden, MentaraError
from server.sessions.assembly import SessionConfig
from server.sessions.catalog import Catalog
from server.sessions.local_channels import LocalChannels
from server.sessions.log import now_ms
from server.sessions.opening import open_session
from server.sessions.ownership import Ownership
from server.sessions.store import SessionRow, SessionStore
from server.sessions.user_limits import UserLimits

if TYPE_CHECKING:
    from server.quota import Quota

__all__ = ["SessionStarts"]


class SessionStarts:
    """Starts sessions on this worker (see the module docstring). ``attach`` attaches a
    socket to an existing session (a repeated start); ``spawn`` runs a task supervised."""

    def __init__(
        self,
        *,
        store: SessionStore,
        catalog: Catalog,
        config: SessionConfig,
        ownership: Ownership,
        local: LocalChannels,
        attach: Callable[[ClientSocket, SessionRow, int], Awaitable[None]],
        spawn: Callable[[Awaitable[object]], None],
        limits: UserLimits | None = None,
        quota: Quota | None = None,
        token_revoked: Callable[[ClientSocket], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.config = config
        self.ownership = ownership
        self.local = local
        self._attach = attach
        self._spawn = spawn
        self.limits = limits
        self.quota = quota
        # Raises Unauthorized when the socket's token predates its user's erasure.
        self.token_revoked = token_revoked

    async def start(self, sock: ClientSocket, frame: SessionStart) -> None:
        if sock.endpoint is Endpoint.ADMIN:
            raise Forbidden("the admin socket is read-only")
        question = self.catalog.pick(
            frame.track, frame.question_id if isinstance(frame.question_id, str) else None
        )
        language = frame.language if isinstance(frame.language, str) else None
        if language is None and frame.track == "coding":
            language = "python"
        if self.token_revoked is not None:
            await self.token_revoked(sock)
        started = now_ms()
        duration_s = self.config.engine.duration_s
        session_id = uuid.uuid4().hex
        deadline_ts = started + duration_s * 1000
        if self.limits is not None:
            try:
                await self.limits.admit_start(sock.user_id, session_id, deadline_ts)
            except MentaraError:
                # A repeated start re-attaches to its session, at the limit too.
                existing = await self.store.started_session(sock.user_id, frame.id)
                if existing is None:
                    raise
                await self._attach(sock, existing, 0)
                sock.ack(frame.id, 1)
                return
        try:
            row, created = await self.store.create_session(
                session_id=session_id,
                user_id=sock.user_id,
                track=frame.track,
                language=language,
                question_id=question.id,
                start_input_id=frame.id,
                deadline_ts=deadline_ts,
                admit=self._admit(sock.user_id),
            )
        except BaseException:
            self._spawn(self._not_live(sock.user_id, session_id))
            raise
        if not created:
            self._spawn(self._not_live(sock.user_id, session_id))
            await self._attach(sock, row, 0)
            sock.ack(frame.id, 1)
            return
        session = await self.ownership.own_new(row, started_at_ms=started)
        try:
            await self.local.attach_owner(sock, row.id)  # the owner needs no subscription
            first = await open_session(
                session, self.catalog, started_ms=started, duration_s=duration_s
            )
            assert first is not None  # a new session's log is empty
            if first.durable is not None:
                await first.durable
        except BaseException:
            # Owned by no one from here (the row stays: the quota counted it); the start
            # sent again attaches, and the take-over completes the opening and introduces
            # (server.sessions.opening).
            await self.local.detach(sock)
            await self.ownership.abandon_new(session)
            raise
        sock.ack(frame.id, first.seq)
        session.arm_deadline()
        session.engine.start(introduce=True)

    def _admit(self, user_id: str) -> Callable[[Any], Awaitable[None]] | None:
        """The quota's check-and-count, run where the session row is created (atomic)."""
        quota = self.quota
        if quota is None:
            return None

        async def admit(conn: Any) -> None:
            await quota.admit(conn, user_id)

        return admit

    async def _not_live(self, user_id: str, session_id: str) -> None:
        """The session no longer counts against its user's live sessions."""
        if self.limits is not None:
            await self.limits.session_over(user_id, session_id)
