"""Prometheus metrics. Labels are route templates, methods, status codes and operation
kinds only: never an id, a query text or any value a caller sent."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cvault_http_requests", "HTTP requests", ["route", "method", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "cvault_http_request_seconds", "HTTP request latency", ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )  # fmt: skip

    def __repr__(self) -> str:
        return "Metrics()"

    async def endpoint(self, _request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = _route_of(scope)
        status = 500
        started = time.perf_counter()

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self.metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


# Paths that fully matched a route, and its template: only the app's own routes get in.
_MATCHED: dict[tuple[int, str, str], str] = {}


def _route_of(scope: Scope) -> str:
    """The matched route's path template, or "other": never the raw path."""
    app = scope.get("app")
    key = (id(app), scope.get("method", ""), scope.get("path", ""))
    known = _MATCHED.get(key)
    if known is not None:
        return known
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", []):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            template = str(getattr(route, "path", "other"))
            if template == key[2] and len(_MATCHED) < 1024:  # no path parameters in it
                _MATCHED[key] = template
            return template
    return "other"
