"""The one Claude API client of a worker process.

The interviewer, the evidence judge and the report summary writer each need their own
timeout and retry count, but not their own connection pool: they take
``client.with_options(...)`` of this one client, which shares its HTTP connection pool
(HTTP/1.1 keep-alive connections and TLS sessions to the API). Only the lifespan closes it.

The SDK's OpenTelemetry spans are off unless the environment sets one of its
``ANTHROPIC_OPEN_TELEMETRY*`` variables (``ANTHROPIC_OPEN_TELEMETRY=true`` turns them on, as
the SDK documents): the server installs no tracer provider, so each request would build a
span's attributes only to drop them (about 2.5% of a worker's CPU on the Claude path, from
the bench's profile).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from server.config import Settings

if TYPE_CHECKING:
    import anthropic

__all__ = ["make_claude_client"]


def make_claude_client(settings: Settings) -> anthropic.AsyncAnthropic:
    """The worker's client, for ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` (the SDK is
    imported only here: a worker with the offline interviewer never loads it)."""
    import anthropic

    options: dict[str, Any] = {}
    if not settings.anthropic_telemetry_configured:
        options["open_telemetry"] = {"traces": False}  # given: the SDK reads no variable
    return anthropic.AsyncAnthropic(
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url,
        http_client=anthropic.DefaultAioHttpClient(),
        **options,
    )
