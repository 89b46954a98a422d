"""The Starlette application: routes, and the lifespan that owns every shared resource.

The lifespan opens, in order, the token verifier, the Postgres pool (migrations applied under
an advisory lock) and the Redis client, and closes them in reverse on shutdown: by then the
transport has already sent 1001 to every socket (see ``server.ws_transport``) and uvicorn has
waited for the handlers; the pool is closed with a timeout and terminated if that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from scoring.code_runner import CodeRunner, RunLimits
from server import metrics
from server.account_erasures import AccountErasures
from server.auth import TokenVerifier
from server.auth_settings import AuthSettings
from server.claude_client import make_claude_client
from server.client_socket import ClientSocket, Endpoint
from server.config import ConfigError, Settings, load_settings
from server.db import create_pool
from server.http_admin import ADMIN_ROUTES
from server.http_candidate import CANDIDATE_ROUTES
from server.http_contract import CONTRACT_ROUTES
from server.http_dev_token import dev_token_routes
from server.http_errors import EXCEPTION_HANDLERS, error_response
from server.http_me import ME_ROUTES
from server.http_sessions import SESSION_ROUTES
from server.http_webhooks import WEBHOOK_ROUTES
from server.hub.redis_client import connect as connect_redis
from server.interviewer.engine import EngineConfig
from server.interviewer.factory import make_provider
from server.plans import PlanRules
from server.push import OutboxDrainer, WebhookPushSender
from server.quota import Quota
from server.remote_runner import make_code_runner
from server.resources import Resources
from server.sessions.catalog import Catalog
from server.sessions.code_runs import CodeRunService
from server.sessions.event_writer import EventWriter
from server.sessions.manager import SessionConfig, SessionManager
from server.sessions.report_recovery import ReportRecovery
from server.sessions.store import SessionStore
from server.sessions.user_limits import UserLimits

log = logging.getLogger("mentara.app")

_PROBE_TIMEOUT_S = 2.0


def auth_settings(settings: Settings) -> AuthSettings:
    return AuthSettings(
        jwt_secret=settings.jwt_secret,
        jwks_url=settings.jwks_url,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        authorized_parties=settings.jwt_authorized_parties,
        role_claim=settings.role_claim,
        admin_role=settings.admin_role,
        leeway_s=settings.jwt_leeway_s,
    )


INTERVIEW_PATH = "/v1/interview"


def create_app(settings: Settings) -> Starlette:
    """The ASGI app for ``settings``; Postgres and Redis URLs must be set (see ``mentara serve``)."""
    if settings.database_url is None or settings.redis_url is None:
        raise ConfigError("DATABASE_URL and REDIS_URL must be set (mentara serve sets them)")
    if settings.jwt_secret is None and settings.jwks_url is None:
        raise ConfigError("set MENTARA_JWT_SECRET or MENTARA_JWKS_URL to authenticate clients")
    database_url, redis_url = settings.database_url, settings.redis_url

    catalog = Catalog()  # validates the question bank before the server takes traffic

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        verifier = TokenVerifier(auth_settings(settings))
        if settings.jwks_url:
            await verifier.prefetch_keys()
        pool = await create_pool(database_url, max_size=settings.db_pool_max)
        redis = connect_redis(redis_url, health_check_interval=30)
        store = SessionStore(pool)
        erasures = AccountErasures(pool)
        verifier.revocation = erasures.check  # tokens that predate their account's erasure
        limits = UserLimits(
            redis,
            settings.redis_prefix,
            live_sessions=settings.live_sessions_per_user,
            starts_per_min=settings.session_starts_per_min,
            runs_per_min=settings.code_runs_per_min,
        )
        batch_s = settings.write_batch_ms / 1000
        writer = EventWriter(store, max_delay_s=batch_s, lazy_delay_s=5 * batch_s)
        writer.start()
        # One Claude client (one connection pool) for the interviewer, judge and summary.
        claude = make_claude_client(settings) if settings.uses_claude else None
        provider = make_provider(settings, claude)
        judge = summary_writer = None
        if claude is not None:
            from server.judging.claude_judge import ClaudeJudge
            from server.judging.summary_writer import ClaudeSummaryWriter

            judge = ClaudeJudge(
                api_key=settings.anthropic_api_key,
                base_url=settings.anthropic_base_url,
                model=settings.judge_model,
                max_concurrent=settings.judge_concurrency,
                client=claude,
            )
            summary_writer = ClaudeSummaryWriter(
                api_key=settings.anthropic_api_key,
                base_url=settings.anthropic_base_url,
                model=settings.judge_model,
                client=claude,
            )
        runner = make_code_runner(settings)
        code_runs = CodeRunService(RunLimits(), per_user=1, runner=runner, user_limits=limits)
        if isinstance(runner, CodeRunner):
            sandbox = await runner.support()
            if not sandbox.isolated:
                # Loud on purpose: code.run is refused, or (opted in) runs unisolated.
                log.error("code sandbox: %s", sandbox.detail)
            app.state.sandbox_state = sandbox.state
        else:
            app.state.sandbox_state = "runner"  # isolated by the runner service
        quota = Quota(
            pool,
            PlanRules(
                entitlement=settings.paid_entitlement,
                free_limit=settings.free_interviews_per_month,
                paid_limit=settings.paid_interviews_per_month,
            ),
        )
        sessions = SessionManager(
            store=store,
            writer=writer,
            provider=provider,
            catalog=catalog,
            runner=code_runs,
            limits=limits,
            quota=quota,
            token_revoked=lambda sock: erasures.check(sock.principal),
            redis=redis,
            prefix=settings.redis_prefix,
            judge=judge,
            summary_writer=summary_writer,
            config=SessionConfig(
                lease_ms=settings.lease_ms,
                input_answer_s=settings.input_answer_s,
                stream_maxlen=settings.history_max_events,
                history_ttl_ms=settings.history_ttl_s * 1000,
                append_audit=settings.append_audit,
                unfenced_append=settings.test_unfenced_append,
                engine=EngineConfig(
                    max_tokens=settings.llm_max_tokens,
                    token_budget=settings.llm_token_budget,
                    coalesce_window_s=settings.coalesce_ms / 1000,
                    duration_s=settings.session_duration_s,
                ),
            ),
        )
        await sessions.start()
        reports = ReportRecovery(sessions, store, retry_after_s=settings.report_retry_s)
        reports.start()
        push_sender = (
            WebhookPushSender(settings.push_webhook_url) if settings.push_webhook_url else None
        )
        drainer = OutboxDrainer(pool, push_sender) if push_sender else None
        if drainer is not None:
            drainer.start()
        app.state.resources = Resources(settings, verifier, pool, redis, store, sessions, quota)
        app.state.gateway = sessions
        # Everything loaded so far (modules, the question bank, the app) lives as long as the
        # worker: move it out of the cycle collector's reach, so a full collection (a pause
        # of the event loop) scans only what serving created since.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await reports.close()
            if drainer is not None:
                await drainer.close()
            if push_sender is not None:
                await push_sender.aclose()
            await sessions.close()
            await writer.close(settings.shutdown_grace_s)
            await provider.aclose()
            for closable in (judge, summary_writer):
                if closable is not None:
                    await closable.aclose()
            if claude is not None:
                await claude.close()
            await verifier.aclose()
            try:
                await asyncio.wait_for(pool.close(), settings.shutdown_grace_s)
            except (TimeoutError, Exception):
                pool.terminate()
            await redis.aclose()

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
        WebSocketRoute(INTERVIEW_PATH, interview_socket),  # served by MentaraApp directly
        WebSocketRoute("/v1/admin/watch", admin_socket),
        *SESSION_ROUTES,
        *ME_ROUTES,
        *WEBHOOK_ROUTES,
        *ADMIN_ROUTES,
        *CANDIDATE_ROUTES,
        *CONTRACT_ROUTES,
        *dev_token_routes(settings),
    ]
    return MentaraApp(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)


class MentaraApp(Starlette):
    """The Starlette app, with the interview socket handed straight to its handler.

    An idle socket keeps every frame of the ASGI call chain it is served through alive for
    hours: Starlette's error and exception middleware, its router and route wrappers hold
    about 5 KiB per socket. The interview socket (the one there are tens of thousands of)
    skips them: its handler catches what it raises itself (``ClientSocket.run``), and what it
    does not reaches uvicorn as through Starlette (logged, close 1011). Everything else,
    the admin socket included, goes through Starlette as routed in ``create_app``.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope["path"] == INTERVIEW_PATH:
            scope["app"] = self
            await interview_socket(WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)


def create_app_from_env() -> Starlette:
    """uvicorn's factory for worker processes: settings from the environment."""
    from server.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    checks: dict[str, str] = {}

    async def probe(name: str, check: object) -> None:
        try:
            await asyncio.wait_for(check, _PROBE_TIMEOUT_S)  # type: ignore[arg-type]
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unreachable: {type(exc).__name__}"

    await asyncio.gather(
        probe("postgres", resources.pool.fetchval("SELECT 1")),
        probe("redis", resources.redis.ping()),
    )
    if all(v == "ok" for v in checks.values()):
        # Code runs are one feature among many: a host that cannot isolate them still serves
        # interviews (code.run answers sandbox_unavailable), so this never makes it unready.
        sandbox = request.app.state.sandbox_state
        return JSONResponse({"status": "ready", **checks, "sandbox": sandbox})
    failing = ", ".join(k for k, v in checks.items() if v != "ok")
    response = error_response(503, "internal", f"not ready: {failing} unreachable")
    return response


async def metrics_endpoint(request: Request) -> Response:
    body, content_type = metrics.render_metrics()
    return Response(body, media_type=content_type)


async def _serve_socket(ws: WebSocket, endpoint: Endpoint) -> None:
    resources: Resources = ws.app.state.resources
    sock = ClientSocket(ws, endpoint, resources.settings, resources.verifier, ws.app.state.gateway)
    await sock.run()


async def interview_socket(ws: WebSocket) -> None:
    await _serve_socket(ws, Endpoint.INTERVIEW)


async def admin_socket(ws: WebSocket) -> None:
    await _serve_socket(ws, Endpoint.ADMIN)
