"""The one Claude API client of a worker process.

The interviewer, the evidence judge and the report summary writer each need their own
timeout and retry count, but not their own connection pool: they take
``client.with_options(...)`` of this one client, which shares its HTTP connection pool
(HTTP/1.1 keep-alive connections and TLS sessions to the API). Only the lifespan closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.config import Settings

if TYPE_CHECKING:
    import anthropic

__all__ = ["make_claude_client"]


def make_claude_client(settings: Settings) -> anthropic.AsyncAnthropic:
    """The worker's client, for ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` (the SDK is
    imported only here: a worker with the offline interviewer never loads it)."""
    import anthropic

    return anthropic.AsyncAnthropic(
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url,
        http_client=anthropic.DefaultAioHttpClient(),
    )
