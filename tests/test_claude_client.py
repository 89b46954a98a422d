"""One Claude client per worker: the interviewer, judge and summary writer share its pool."""

from __future__ import annotations

from server.claude_client import make_claude_client
from server.config import Settings, load_settings
from server.interviewer.anthropic_provider import AnthropicProvider
from server.interviewer.factory import make_provider
from server.judging.claude_judge import ClaudeJudge
from server.judging.summary_writer import ClaudeSummaryWriter


async def test_the_three_users_share_one_connection_pool_and_keep_their_own_options() -> None:
    settings = Settings(anthropic_api_key="sk-test", anthropic_base_url="http://127.0.0.1:9")
    client = make_claude_client(settings)
    provider = make_provider(settings.with_(llm_provider="anthropic"), client)
    assert isinstance(provider, AnthropicProvider)
    judge = ClaudeJudge(api_key=None, base_url=None, timeout_s=7.0, client=client)
    summary = ClaudeSummaryWriter(api_key=None, base_url=None, model="m", client=client)
    pools = {id(c._client._client) for c in (provider, judge, summary)}  # the httpx client
    assert pools == {id(client._client)}
    assert judge._client.timeout == 7.0
    assert str(provider._client.base_url).startswith("http://127.0.0.1:9")
    # Closing a user leaves the shared client open; its owner closes it.
    for user in (provider, judge, summary):
        await user.aclose()
    assert not client.is_closed()
    await client.close()
    assert client.is_closed()


async def test_the_sdks_spans_are_off_unless_the_environment_asks_for_them() -> None:
    env = {"ANTHROPIC_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    client = make_claude_client(load_settings(env))
    assert client._tracer is None  # no span is built per request
    await client.close()
    client = make_claude_client(load_settings(env | {"ANTHROPIC_OPEN_TELEMETRY": "true"}))
    assert client.open_telemetry["traces"]["enabled"]  # left to the SDK (its default: on)
    await client.close()
