"""The table of every environment variable the server reads: name, default, meaning.

:data:`ENV_VARS` is the single list of variables, defaults and meanings; the README's
configuration table is checked against it by a test, and every variable in it (but
``PROMETHEUS_MULTIPROC_DIR``, read by prometheus-client) is read by
:func:`server.config.load_settings`. Data only: nothing here reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        "MENTARA_INPUT_ANSWER_S",
        "5",
        "Seconds a `candidate.message`, `code.update` or `interviewer.interrupt` waits for Redis"
        " and Postgres before it is answered with a retryable error (it goes on being applied;"
        " sent again with its `id`, it is applied once).",
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
    EnvVar(
        "ANTHROPIC_OPEN_TELEMETRY",
        "(unset: off)",
        "The SDK's OpenTelemetry spans of Claude calls: off unless an "
        "`ANTHROPIC_OPEN_TELEMETRY*` variable is set (`true` turns them on; the others as the "
        "SDK documents). Off because the server installs no tracer provider: each request "
        "would build a span only to drop it.",
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
