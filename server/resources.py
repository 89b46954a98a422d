"""What the app's lifespan owns, in one place the HTTP routes can name without importing the
app (``app.state.resources``)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from server.auth import TokenVerifier
from server.config import Settings
from server.hub.redis_client import RedisClient
from server.quota import Quota
from server.sessions.manager import SessionManager
from server.sessions.store import SessionStore

__all__ = ["Resources"]


@dataclass
class Resources:
    """What the lifespan owns; reachable from handlers as ``app.state.resources``. Valid
    from start-up until shutdown; the lifespan closes each of them, in order."""

    settings: Settings
    verifier: TokenVerifier
    pool: asyncpg.Pool
    redis: RedisClient
    store: SessionStore
    sessions: SessionManager
    quota: Quota
