"""Which LLM provider a worker uses, from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.config import Settings
from server.interviewer.offline_provider import OfflineProvider
from server.interviewer.provider import LLMProvider

if TYPE_CHECKING:
    import anthropic


def make_provider(
    settings: Settings, client: anthropic.AsyncAnthropic | None = None
) -> LLMProvider:
    """Claude when configured (an API key, or MENTARA_LLM_PROVIDER=anthropic), else offline;
    Claude through ``client`` (the worker's one) when given."""
    if settings.uses_claude:
        from server.interviewer.anthropic_provider import AnthropicProvider

        return AnthropicProvider(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            model=settings.llm_model,
            first_token_timeout_s=settings.llm_stall_timeout_s,
            stall_timeout_s=settings.llm_stall_timeout_s,
            backoff_base_s=settings.llm_backoff_s,
            client=client,
        )
    return OfflineProvider(
        tokens_per_s=settings.offline_tokens_per_s, tick_s=settings.coalesce_ms / 1000
    )


def describe_provider(settings: Settings) -> str:
    if settings.uses_claude:
        return f"interviewer: Claude ({settings.llm_model})"
    return "interviewer: offline script (no ANTHROPIC_API_KEY)"
