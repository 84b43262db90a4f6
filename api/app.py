"""The ASGI application: /graphql, the pages (/privacy, static files), health, readiness,
metrics and JWKS routes, request ids, the changes other processes made
(``api.propagation``: policy, erasures, trusted documents) and the scheduled jobs
(``vault.scheduling``: audit sequencing, webhook delivery, segment refresh, metrics
rollup, retention; each led by one process)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import LocalTokenIssuer, TokenVerifier
from api.graphql.endpoint import GraphQLEndpoint
from api.graphql.limits import Limits
from api.graphql.ratelimit import Limiter, rate_limiter_for
from api.graphql.schema import build_schema
from api.metrics import Metrics, MetricsMiddleware
from api.pages import Pages, PageSecurityMiddleware
from api.propagation import Propagation
from vault.config import Environment, Settings
from vault.logs import configure_logging, get_logger
from vault.runtime import Vault
from vault.scheduling import Schedule, start_scheduler
from vault.storage.db import StorageUnavailable
from vault.storage.inuse import InUse

__all__ = ["RequestIdMiddleware", "create_app", "create_app_from_env"]

log = get_logger("api.http")
_HEALTHY = b'{"status":"ok"}'
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Gives every request an id (or keeps a well-formed ``X-Request-ID``), binds it to
    the log context, returns it in the response, and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        # 32 random hex digits, as uuid4().hex without building a UUID object.
        request_id = given if _REQUEST_ID.match(given) else os.urandom(16).hex()
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                log.info(
                    "request",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )


def token_verifier(settings: Settings) -> tuple[TokenVerifier, LocalTokenIssuer | None]:
    """A JWKS URL when one is configured; otherwise the vault's local signing key."""
    if settings.jwks_url:
        verifier = TokenVerifier(
            issuer=settings.jwt_issuer, audience=settings.jwt_audience, jwks_url=settings.jwks_url
        )
        return verifier, None
    issuer = LocalTokenIssuer.load_or_create(
        settings.jwt_signing_key, settings.jwt_issuer, settings.jwt_audience
    )
    return issuer.verifier(), issuer


def _status_routes(vault: Vault) -> list[Route]:
    """``/`` (what is served where), ``/healthz`` (the process) and ``/readyz`` (the
    database, and the erasures a restored backup undid)."""

    async def healthz(_request: Request) -> Response:
        return Response(_HEALTHY, media_type="application/json")

    async def readyz(_request: Request) -> JSONResponse:
        from sqlalchemy import text  # noqa: PLC0415 - readiness is the only raw ping

        try:
            with vault.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            # Customers a restored backup brought back although erased (no query unless
            # the start-up scan or a reader found some): `cvault erasure reapply`.
            waiting = vault.erasure.awaiting_reapply(vault.db)
        except Exception:  # noqa: BLE001 - any failure means not ready
            log.warning("readiness check failed", check="database")
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse(
            {"status": "ready", "database": vault.db.dialect, "erasures_to_reapply": waiting}
        )

    async def index(_request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "service": "customer-vault",
                "graphql": "/graphql",
                "privacy": "/privacy",
                "health": "/healthz",
                "ready": "/readyz",
            }
        )

    return [Route("/", index), Route("/healthz", healthz), Route("/readyz", readyz)]


def create_app(
    vault: Vault,
    *,
    sequence_every: float | None = 0.5,
    policy_every: float | None = None,
    webhook_every: float | None = 2.0,
    verifier: TokenVerifier | None = None,
    local_issuer: LocalTokenIssuer | None = None,
    limits: Limits | None = None,
    rate_limiter: Limiter | None = None,
    listen: bool | None = None,
    schedule: Schedule | None = None,
) -> Starlette:
    """The app of one server process. ``schedule``: the scheduled jobs it may lead (see
    ``vault.scheduling``); by default only the audit sequencer every ``sequence_every``
    and webhook delivery every ``webhook_every`` seconds (None: off), as tests want;
    ``cvault serve`` passes every job as the settings say."""
    settings = vault.settings
    if verifier is None:
        verifier, local_issuer = token_verifier(settings)
    graphql = GraphQLEndpoint(
        vault,
        build_schema()._schema,
        verifier,
        limits=limits,
        rate_limiter=rate_limiter or rate_limiter_for(vault),
        graphiql=settings.environment is Environment.DEVELOPMENT,
        introspection=not settings.production,
        max_body_bytes=settings.max_body_bytes,
        threads=settings.graphql_threads,
        trusted_documents=settings.trusted_documents,
    )
    issuer = local_issuer
    metrics = Metrics(vault)
    changes = Propagation(
        vault, graphql.trusted, metrics.registry, every=policy_every, listen=listen
    )
    metrics.before_scrape.append(changes.count_cached)
    in_use = InUse(vault.db.direct)
    pages = Pages(vault)

    async def jwks(_request: Request) -> JSONResponse:
        if issuer is None:
            return JSONResponse({"keys": []})
        return JSONResponse(issuer.public_jwks())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Held while the server runs (refused while a restore runs): `cvault restore`
        # will not replace a vault in use.
        await asyncio.to_thread(in_use.share)
        await asyncio.to_thread(vault.policies.refresh)  # serve the stored policy, or fail
        await graphql.start()  # the trusted documents, loaded once; the event-loop pool
        # Erasures a restored backup undid: one warning naming `cvault erasure reapply`;
        # such customers read as erased meanwhile, and /readyz counts them.
        await asyncio.to_thread(vault.erasure.scan_restored, vault.db)
        # What start-up built lives as long as the process: move it out of the cyclic
        # collector's reach, so full collections under load walk only request garbage
        # (halves the collector's time per request, bench/request_cost.py).
        gc.collect()
        gc.freeze()
        vault.start_writer()  # group-committed audit appends (vault/audit_trail/writer.py)
        tasks = [
            *changes.start(),  # policy, erasures, trusted documents: api/propagation.py
        ]
        # The scheduled jobs, each run by the one process that leads it (vault.scheduling).
        scheduler = start_scheduler(
            vault, schedule or Schedule.default(sequence_every, webhook_every)
        )
        try:
            yield
        finally:
            await scheduler.stop()  # a run in progress finishes first; leads are given up
            metrics.close()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            # Operations in flight finish first, each once its audit batch committed (the
            # writer itself stops in vault.close, after the queue is written); then the pool.
            await graphql.stop()
            await asyncio.to_thread(pages.close)  # sign-in messages queued are sent
            try:
                await asyncio.to_thread(vault.audit.sequence, vault.db)
            except StorageUnavailable as exc:  # pending entries wait for the next start
                log.warning("audit entries left pending at shutdown", reason=exc.reason)
            in_use.release()
            vault.close()

    app = Starlette(
        routes=[
            *_status_routes(vault),
            Route("/graphql", graphql.handle, methods=["GET", "POST"]),
            Route("/.well-known/jwks.json", jwks),
            Route("/metrics", metrics.endpoint),
            *pages.routes(),
        ],
        lifespan=lifespan,
    )
    app.state.vault = vault
    app.state.graphql = graphql
    app.state.pages = pages
    app.state.changes = changes
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-purpose", "x-request-id"],
        )
    app.add_middleware(PageSecurityMiddleware, production=settings.production)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
    return app


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory``: each worker process opens its own vault."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(Vault.open(settings), schedule=Schedule.of(settings))
