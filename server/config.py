"""Configuration: every environment variable the server reads, in one table.

:data:`ENV_VARS` is the single list of variables, defaults and meanings; the README's
configuration table is checked against it by a test. :func:`load_settings` reads the
environment once into an immutable :class:`Settings`; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from server.hub.redis_client import cluster_addresses, is_cluster_url


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str
    meaning: str


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar(
        "DATABASE_URL",
        "(embedded)",
        "Postgres URL. Unset: an embedded Postgres under MENTARA_DATA_DIR.",
    ),
    EnvVar(
        "REDIS_URL",
        "(embedded)",
        "Redis URL. Unset: an embedded Redis under MENTARA_DATA_DIR. redis+cluster://127.0.0.1:7000,127.0.0.1:7001,... (or rediss+cluster://): a Redis Cluster (7.0 or later), started from any node named; sharded pub/sub (docs/scale-out.md).",
    ),
    EnvVar(
        "MENTARA_DATA_DIR",
        ".mentara",
        "Folder for the embedded Postgres and Redis, the generated dev secret and Postgres"
        " password, and metrics files.",
    ),
    EnvVar("MENTARA_HOST", "127.0.0.1", "Address `mentara serve` binds (`--host` overrides)."),
    EnvVar(
        "MENTARA_PORT",
        "8000",
        "Port `mentara serve` binds; 0 picks a free one (`--port` overrides).",
    ),
    EnvVar("MENTARA_WORKERS", "1", "Worker processes for `mentara serve` (`--workers` overrides)."),
    EnvVar(
        "MENTARA_JWT_SECRET",
        "(generated)",
        "HS256 secret for development tokens. Embedded mode generates one once and keeps it in the data folder.",
    ),
    EnvVar(
        "MENTARA_JWKS_URL",
        "",
        "Production: JWKS URL of the identity provider (Clerk); enables RS256 tokens.",
    ),
    EnvVar("MENTARA_JWT_ISSUER", "", "Required `iss` of tokens, when set."),
    EnvVar("MENTARA_JWT_AUDIENCE", "", "Required `aud` of tokens, when set."),
    EnvVar(
        "MENTARA_JWT_AUTHORIZED_PARTIES",
        "",
        "Comma-separated allowed `azp` values (Clerk), when set.",
    ),
    EnvVar("MENTARA_JWT_LEEWAY_S", "5", "Clock leeway for `exp`, `nbf` and `iat`, in seconds."),
    EnvVar(
        "MENTARA_ROLE_CLAIM",
        "role",
        "Dotted path of the claim that holds the user's role(s), e.g. `metadata.role`.",
    ),
    EnvVar("MENTARA_ADMIN_ROLE", "admin", "Role value that grants admin rights."),
    EnvVar(
        "MENTARA_AUTH_TIMEOUT_S",
        "5",
        "Seconds a socket has to authenticate before it is closed with 4001.",
    ),
    EnvVar(
        "MENTARA_HEARTBEAT_S",
        "20",
        "Seconds between WebSocket pings; a socket that misses two is dropped.",
    ),
    EnvVar(
        "MENTARA_MAX_FRAME_BYTES",
        "262144",
        "Largest inbound frame; larger frames close the socket with 1009.",
    ),
    EnvVar(
        "MENTARA_SEND_QUEUE_BYTES",
        "1048576",
        "Bytes a socket may have queued for sending before it is closed with 4003.",
    ),
    EnvVar("MENTARA_RATE_LIMIT_PER_S", "20", "Frames per second a socket may send on average."),
    EnvVar("MENTARA_RATE_LIMIT_BURST", "40", "Frames a socket may send in a burst."),
    EnvVar(
        "MENTARA_RATE_LIMIT_STRIKES",
        "50",
        "Rate-limited frames in a row after which the socket is closed with 1008.",
    ),
    EnvVar(
        "MENTARA_REDIS_PREFIX",
        "mentara:",
        "Prefix of every Redis key and channel (lets deployments share a Redis).",
    ),
    EnvVar(
        "MENTARA_LEASE_MS",
        "5000",
        "Session ownership lease; a dead owner's sessions are taken over after it expires.",
    ),
    EnvVar(
        "MENTARA_HISTORY_MAX_EVENTS",
        "10000",
        "Events kept per session in the Redis history stream (older ones replay from Postgres).",
    ),
    EnvVar(
        "MENTARA_HISTORY_TTL_S",
        "21600",
        "Seconds a session's Redis history outlives its last event.",
    ),
    EnvVar("MENTARA_DB_POOL_MAX", "10", "Largest Postgres connection pool per worker."),
    EnvVar(
        "MENTARA_SHUTDOWN_GRACE_S", "10", "Seconds sockets and handlers get to finish on shutdown."
    ),
    EnvVar(
        "MENTARA_SESSION_DURATION_S",
        "2700",
        "Time limit of an interview; a session past it ends with `time_up`.",
    ),
    EnvVar(
        "MENTARA_LLM_PROVIDER",
        "auto",
        "`anthropic`, `offline`, or `auto`: anthropic when ANTHROPIC_API_KEY is set, else offline.",
    ),
    EnvVar(
        "ANTHROPIC_API_KEY",
        "",
        "Claude API key (read by the anthropic SDK). Unset: the offline interviewer.",
    ),
    EnvVar(
        "ANTHROPIC_BASE_URL",
        "(SDK default)",
        "Claude API base URL, honoured as the SDK does (tests point it at a fake).",
    ),
    EnvVar("MENTARA_LLM_MODEL", "claude-sonnet-4-6", "Claude model for the interviewer."),
    EnvVar(
        "MENTARA_JUDGE_MODEL",
        "claude-haiku-4-5",
        "Small Claude model that labels evidence and writes report summaries.",
    ),
    EnvVar(
        "MENTARA_JUDGE_CONCURRENCY",
        "16",
        "Most evidence-judge calls in flight per worker; a session's later messages wait and "
        "are judged together in its next call.",
    ),
    EnvVar("MENTARA_LLM_MAX_TOKENS", "400", "Most tokens in one interviewer turn."),
    EnvVar(
        "MENTARA_LLM_TOKEN_BUDGET",
        "200000",
        "Most tokens (input and output) one session may spend; then `quota_exceeded`.",
    ),
    EnvVar(
        "MENTARA_COALESCE_MS",
        "30",
        "Window in which model tokens are gathered into one `interviewer.delta`.",
    ),
    EnvVar(
        "MENTARA_WRITE_BATCH_MS",
        "10",
        "Longest a Postgres write batch gathers while an input waits for its ack (acks wait"
        " for the commit); 5 times that for events nobody awaits.",
    ),
    EnvVar("MENTARA_OFFLINE_TOKENS_PER_S", "40", "Pace of the offline interviewer."),
    EnvVar(
        "MENTARA_SANDBOX",
        "bubblewrap",
        "How candidate code is isolated: `bubblewrap` (every run in its own namespaces; without"
        " a working `bwrap`, `code.run` answers `sandbox_unavailable`), or"
        " `unsafe-no-isolation` (a developer's laptop only: limits but no isolation; logged"
        " loudly).",
    ),
    EnvVar("MENTARA_CODE_RUNS", "2", "Candidate code runs allowed at once per worker."),
    EnvVar(
        "MENTARA_RUNNER_URL",
        "",
        "Where candidate code runs: the `mentara runner` at `tcp://runner:7000` (any host and"
        " port) or `unix:///path/to/socket`; it runs MENTARA_CODE_RUNS at once itself. Unset:"
        " in the server's own process.",
    ),
    EnvVar(
        "MENTARA_RUNNER_TOKEN",
        "",
        "Shared secret of the servers and `mentara runner` (at least 16 characters); both"
        " refuse to start without it when a runner is used.",
    ),
    EnvVar(
        "MENTARA_CODE_RUNS_PER_MIN",
        "20",
        "`code.run` per user in any 60 s, across workers; more: `rate_limited` (retryable).",
    ),
    EnvVar(
        "MENTARA_LIVE_SESSIONS_PER_USER",
        "5",
        "Sessions one user may have live (not ended) at once, across workers; another"
        " `session.start`: `rate_limited` (retryable) until one ends.",
    ),
    EnvVar(
        "MENTARA_SESSION_STARTS_PER_MIN",
        "10",
        "`session.start` per user in any 60 s, across workers; more: `rate_limited` (retryable).",
    ),
    EnvVar(
        "MENTARA_HEADER_TIMEOUT_S",
        "10",
        "Seconds a connection has to send a request's complete headers; then it is closed.",
    ),
    EnvVar(
        "MENTARA_MAX_HEADER_BYTES",
        "32768",
        "Largest request head (request line and headers) accepted; larger: 431 and closed.",
    ),
    EnvVar(
        "MENTARA_REPORT_RETRY_S",
        "180",
        "A session still without its report this long after it ended (its worker died or"
        " shut down while writing it) gets it from any worker.",
    ),
    EnvVar(
        "MENTARA_PUSH_WEBHOOK_URL",
        "",
        "Where report-ready push notifications are POSTed (a relay to APNs/FCM). Unset: they wait in the outbox.",
    ),
    EnvVar(
        "MENTARA_REVENUECAT_WEBHOOK_SECRET",
        "",
        "The `Authorization` header value RevenueCat sends to `POST /v1/webhooks/revenuecat`. Unset: the webhook answers 503.",
    ),
    EnvVar(
        "MENTARA_PAID_ENTITLEMENT",
        "pro",
        "The RevenueCat entitlement id that grants the paid plan (while its `expiration_at_ms`"
        " is in the future).",
    ),
    EnvVar(
        "MENTARA_FREE_INTERVIEWS_PER_MONTH",
        "3",
        "Interviews a user on the free plan may start per calendar month (UTC); another"
        " `session.start`: `quota_exceeded`.",
    ),
    EnvVar(
        "MENTARA_PAID_INTERVIEWS_PER_MONTH",
        "unlimited",
        "Interviews a user on the paid plan may start per calendar month (UTC): `unlimited`,"
        " or a number as a fair-use cap.",
    ),
    EnvVar("MENTARA_LOG_LEVEL", "info", "Log level: debug, info, warning, error."),
    EnvVar("MENTARA_LOG_FORMAT", "text", "`text` for people, `json` for log pipelines."),
    EnvVar(
        "MENTARA_APPEND_AUDIT",
        "0",
        "1: a log line (at info) per appended event with the fencing token it was appended"
        " under; `mentara chaos` turns it on to check one owner per session (docs/reliability.md).",
    ),
    EnvVar(
        "MENTARA_TEST_UNFENCED_APPEND",
        "0",
        "TEST ONLY, never in production: 1 removes the fence check from the append, so a"
        " stale owner can append; the chaos checker's test uses it to show it catches that.",
    ),
    EnvVar(
        "PROMETHEUS_MULTIPROC_DIR",
        "(set by serve)",
        "Folder for multi-process metrics; `mentara serve` sets it under the data folder.",
    ),
)


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
    history_max_events: int = 10_000
    history_ttl_s: int = 21_600
    db_pool_max: int = 10
    shutdown_grace_s: float = 10.0
    session_duration_s: int = 2700
    llm_provider: str = "auto"
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
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
    """Read :data:`ENV_VARS` from ``env`` (default ``os.environ``); raise ConfigError on bad values."""
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
        history_max_events=max(10, int(_number(env, "MENTARA_HISTORY_MAX_EVENTS", 10_000, int))),
        history_ttl_s=max(60, int(_number(env, "MENTARA_HISTORY_TTL_S", 21_600, int))),
        db_pool_max=max(2, int(_number(env, "MENTARA_DB_POOL_MAX", 10, int))),
        shutdown_grace_s=_number(env, "MENTARA_SHUTDOWN_GRACE_S", 10.0),
        session_duration_s=int(_number(env, "MENTARA_SESSION_DURATION_S", 2700, int)),
        llm_provider=provider,
        anthropic_api_key=_get(env, "ANTHROPIC_API_KEY"),
        anthropic_base_url=_get(env, "ANTHROPIC_BASE_URL"),
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
