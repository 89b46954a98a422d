"""Configuration: the environment, read once into an immutable :class:`Settings`.

:func:`load_settings` reads every variable of :data:`server.env_vars.ENV_VARS` (the table of
names, defaults and meanings the README is checked against) and refuses bad values with a
:class:`ConfigError` naming the variable; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from server.hub.redis_client import cluster_addresses, is_cluster_url


class ConfigError(ValueError):
    """An environment variable has a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    """The server's whole configuration, read once at start-up."""

    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path(".mentara")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    jwt_secret: str | None = None
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_authorized_parties: tuple[str, ...] = ()
    jwt_leeway_s: float = 5.0
    role_claim: str = "role"
    admin_role: str = "admin"
    auth_timeout_s: float = 5.0
    heartbeat_s: float = 20.0
    max_frame_bytes: int = 256 * 1024
    send_queue_bytes: int = 1024 * 1024
    rate_limit_per_s: float = 20.0
    rate_limit_burst: int = 40
    rate_limit_strikes: int = 50
    redis_prefix: str = "mentara:"
    lease_ms: int = 5000
    input_answer_s: float = 5.0
    history_max_events: int = 10_000
    history_ttl_s: int = 21_600
    db_pool_max: int = 10
    shutdown_grace_s: float = 10.0
    session_duration_s: int = 2700
    llm_provider: str = "auto"
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    #: Whether the environment sets an ``ANTHROPIC_OPEN_TELEMETRY*`` variable (the SDK then
    #: reads them; else ``server.claude_client`` turns the SDK's spans off).
    anthropic_telemetry_configured: bool = False
    llm_model: str = "claude-sonnet-4-6"
    judge_model: str = "claude-haiku-4-5"
    judge_concurrency: int = 16
    llm_max_tokens: int = 400
    llm_token_budget: int = 200_000
    llm_stall_timeout_s: float = 20.0
    llm_backoff_s: float = 0.5
    coalesce_ms: float = 30.0
    write_batch_ms: float = 10.0
    offline_tokens_per_s: float = 40.0
    sandbox: str = "bubblewrap"
    code_runs: int = 2
    runner_url: str | None = None
    runner_token: str | None = None
    code_runs_per_min: int = 20
    live_sessions_per_user: int = 5
    session_starts_per_min: int = 10
    header_timeout_s: float = 10.0
    max_header_bytes: int = 32 * 1024
    report_retry_s: float = 180.0
    push_webhook_url: str | None = None
    revenuecat_webhook_secret: str | None = None
    paid_entitlement: str = "pro"
    free_interviews_per_month: int = 3
    paid_interviews_per_month: int | None = None  # None: unlimited
    log_level: str = "info"
    log_format: str = "text"
    append_audit: bool = False
    test_unfenced_append: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def uses_claude(self) -> bool:
        if self.llm_provider == "auto":
            return self.anthropic_api_key is not None
        return self.llm_provider == "anthropic"

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _sandbox_mode(raw: str | None) -> str:
    mode = raw or "bubblewrap"
    if mode not in ("bubblewrap", "unsafe-no-isolation"):
        raise ConfigError(
            f"MENTARA_SANDBOX must be bubblewrap or unsafe-no-isolation, got {mode!r}"
        )
    return mode


def _number(env: Mapping[str, str], name: str, default: float, kind: type = float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return float(value) if kind is float else value


RUNNER_TOKEN_MIN_CHARS = 16


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read :data:`server.env_vars.ENV_VARS` from ``env`` (default ``os.environ``); raise ConfigError on bad values."""
    env = os.environ if env is None else env
    parties = tuple(
        p.strip()
        for p in (_get(env, "MENTARA_JWT_AUTHORIZED_PARTIES") or "").split(",")
        if p.strip()
    )
    log_format = (_get(env, "MENTARA_LOG_FORMAT") or "text").lower()
    if log_format not in {"text", "json"}:
        raise ConfigError(f"MENTARA_LOG_FORMAT must be text or json, got {log_format!r}")
    provider = (_get(env, "MENTARA_LLM_PROVIDER") or "auto").lower()
    if provider not in {"auto", "anthropic", "offline"}:
        raise ConfigError(
            f"MENTARA_LLM_PROVIDER must be auto, anthropic or offline, got {provider!r}"
        )
    runner_url, runner_token = _runner(env)
    return Settings(
        database_url=_get(env, "DATABASE_URL"),
        redis_url=_redis_url(env),
        data_dir=Path(_get(env, "MENTARA_DATA_DIR") or ".mentara").resolve(),
        host=_get(env, "MENTARA_HOST") or "127.0.0.1",
        port=int(_number(env, "MENTARA_PORT", 8000, int)),
        workers=max(1, int(_number(env, "MENTARA_WORKERS", 1, int))),
        jwt_secret=_get(env, "MENTARA_JWT_SECRET"),
        jwks_url=_get(env, "MENTARA_JWKS_URL"),
        jwt_issuer=_get(env, "MENTARA_JWT_ISSUER"),
        jwt_audience=_get(env, "MENTARA_JWT_AUDIENCE"),
        jwt_authorized_parties=parties,
        jwt_leeway_s=_number(env, "MENTARA_JWT_LEEWAY_S", 5.0),
        role_claim=_get(env, "MENTARA_ROLE_CLAIM") or "role",
        admin_role=_get(env, "MENTARA_ADMIN_ROLE") or "admin",
        auth_timeout_s=_number(env, "MENTARA_AUTH_TIMEOUT_S", 5.0),
        heartbeat_s=_number(env, "MENTARA_HEARTBEAT_S", 20.0),
        max_frame_bytes=int(_number(env, "MENTARA_MAX_FRAME_BYTES", 256 * 1024, int)),
        send_queue_bytes=int(_number(env, "MENTARA_SEND_QUEUE_BYTES", 1024 * 1024, int)),
        rate_limit_per_s=_number(env, "MENTARA_RATE_LIMIT_PER_S", 20.0),
        rate_limit_burst=int(_number(env, "MENTARA_RATE_LIMIT_BURST", 40, int)),
        rate_limit_strikes=int(_number(env, "MENTARA_RATE_LIMIT_STRIKES", 50, int)),
        redis_prefix=_get(env, "MENTARA_REDIS_PREFIX") or "mentara:",
        lease_ms=max(300, int(_number(env, "MENTARA_LEASE_MS", 5000, int))),
        input_answer_s=max(0.1, _number(env, "MENTARA_INPUT_ANSWER_S", 5.0)),
        history_max_events=max(10, int(_number(env, "MENTARA_HISTORY_MAX_EVENTS", 10_000, int))),
        history_ttl_s=max(60, int(_number(env, "MENTARA_HISTORY_TTL_S", 21_600, int))),
        db_pool_max=max(2, int(_number(env, "MENTARA_DB_POOL_MAX", 10, int))),
        shutdown_grace_s=_number(env, "MENTARA_SHUTDOWN_GRACE_S", 10.0),
        session_duration_s=int(_number(env, "MENTARA_SESSION_DURATION_S", 2700, int)),
        llm_provider=provider,
        anthropic_api_key=_get(env, "ANTHROPIC_API_KEY"),
        anthropic_base_url=_get(env, "ANTHROPIC_BASE_URL"),
        anthropic_telemetry_configured=any(
            name.startswith("ANTHROPIC_OPEN_TELEMETRY") for name in env
        ),
        llm_model=_get(env, "MENTARA_LLM_MODEL") or "claude-sonnet-4-6",
        judge_model=_get(env, "MENTARA_JUDGE_MODEL") or "claude-haiku-4-5",
        judge_concurrency=max(1, int(_number(env, "MENTARA_JUDGE_CONCURRENCY", 16, int))),
        llm_max_tokens=max(1, int(_number(env, "MENTARA_LLM_MAX_TOKENS", 400, int))),
        llm_token_budget=int(_number(env, "MENTARA_LLM_TOKEN_BUDGET", 200_000, int)),
        llm_stall_timeout_s=_number(env, "MENTARA_LLM_STALL_S", 20.0),
        llm_backoff_s=_number(env, "MENTARA_LLM_BACKOFF_S", 0.5),
        coalesce_ms=_number(env, "MENTARA_COALESCE_MS", 30.0),
        write_batch_ms=_number(env, "MENTARA_WRITE_BATCH_MS", 10.0),
        offline_tokens_per_s=_number(env, "MENTARA_OFFLINE_TOKENS_PER_S", 40.0),
        sandbox=_sandbox_mode(_get(env, "MENTARA_SANDBOX")),
        code_runs=max(1, int(_number(env, "MENTARA_CODE_RUNS", 2, int))),
        runner_url=runner_url,
        runner_token=runner_token,
        code_runs_per_min=max(1, int(_number(env, "MENTARA_CODE_RUNS_PER_MIN", 20, int))),
        live_sessions_per_user=max(1, int(_number(env, "MENTARA_LIVE_SESSIONS_PER_USER", 5, int))),
        session_starts_per_min=max(1, int(_number(env, "MENTARA_SESSION_STARTS_PER_MIN", 10, int))),
        header_timeout_s=max(0.1, _number(env, "MENTARA_HEADER_TIMEOUT_S", 10.0)),
        max_header_bytes=max(1024, int(_number(env, "MENTARA_MAX_HEADER_BYTES", 32 * 1024, int))),
        report_retry_s=max(1.0, _number(env, "MENTARA_REPORT_RETRY_S", 180.0)),
        push_webhook_url=_get(env, "MENTARA_PUSH_WEBHOOK_URL"),
        revenuecat_webhook_secret=_get(env, "MENTARA_REVENUECAT_WEBHOOK_SECRET"),
        paid_entitlement=_get(env, "MENTARA_PAID_ENTITLEMENT") or "pro",
        free_interviews_per_month=int(_number(env, "MENTARA_FREE_INTERVIEWS_PER_MONTH", 3, int)),
        paid_interviews_per_month=_cap(env, "MENTARA_PAID_INTERVIEWS_PER_MONTH"),
        log_level=(_get(env, "MENTARA_LOG_LEVEL") or "info").lower(),
        log_format=log_format,
        append_audit=_get(env, "MENTARA_APPEND_AUDIT") == "1",
        test_unfenced_append=_get(env, "MENTARA_TEST_UNFENCED_APPEND") == "1",
    )


def _cap(env: Mapping[str, str], name: str) -> int | None:
    """A per-period cap: ``unlimited`` (or unset) is None, else a number."""
    raw = _get(env, name)
    if raw is None or raw.lower() == "unlimited":
        return None
    return int(_number(env, name, 0, int))


def _redis_url(env: Mapping[str, str]) -> str | None:
    """``REDIS_URL``; a cluster URL must name its nodes as host:port pairs."""
    url = _get(env, "REDIS_URL")
    if url is not None and is_cluster_url(url):
        try:
            cluster_addresses(url)
        except ValueError as exc:
            raise ConfigError(f"REDIS_URL: {exc}") from None
    return url


def _runner(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    url, token = _get(env, "MENTARA_RUNNER_URL"), _get(env, "MENTARA_RUNNER_TOKEN")
    if url is not None:
        if not url.startswith(("tcp://", "unix://")):
            raise ConfigError(f"MENTARA_RUNNER_URL must start with tcp:// or unix://, got {url!r}")
        if token is None:
            raise ConfigError("MENTARA_RUNNER_URL is set: set MENTARA_RUNNER_TOKEN too")
    if token is not None and len(token) < RUNNER_TOKEN_MIN_CHARS:
        raise ConfigError(
            f"MENTARA_RUNNER_TOKEN must have at least {RUNNER_TOKEN_MIN_CHARS} characters"
        )
    return url, token
