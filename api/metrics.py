"""Prometheus metrics at ``/metrics``: the HTTP metrics (labels are route templates,
methods and status codes only: never an id, a query text or any value a caller sent),
the domain metrics of :mod:`vault.telemetry`, and figures read from the database at
scrape time (overdue data subject requests, the scheduled jobs' last runs).

Under ``cvault serve`` (``PROMETHEUS_MULTIPROC_DIR`` set, :mod:`api.multiprocess`) every
worker writes its values to files in one folder and a scrape adds them all up, so the
answer is the same whichever worker gives it; a worker that stops is marked dead (its
live gauges leave the sum), and so is one found killed at a scrape."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consent import Privacy
from vault import telemetry
from vault.authorization.context import AccessContext
from vault.logs import get_logger
from vault.runtime import Vault
from vault.scheduling import RECORDED, last_runs

__all__ = ["Metrics", "MetricsMiddleware", "VaultState", "multiprocess_folder"]

log = get_logger("api.metrics")
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def multiprocess_folder() -> Path | None:
    """The multiprocess folder when this process writes its values there, else None."""
    if values.ValueClass is values.MutexValue:
        return None
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(folder) if folder else None


def _reap(folder: Path) -> None:
    """Mark dead the workers whose live gauges are still on file: killed (``kill -9``)
    before their shutdown could."""
    for path in folder.iterdir():
        found = _LIVE_GAUGE_FILE.match(path.name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
        except PermissionError:  # alive, someone else's
            continue


class VaultState(Collector):
    """Figures read from the database at each scrape, the same whichever process
    answers: overdue data subject requests and the recorded jobs' last runs. Read as the
    system actor ``system:metrics``; counts only, so nothing is audited as read."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._privacy: Privacy | None = None

    def __repr__(self) -> str:
        return "VaultState()"

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        if self._privacy is None:
            self._privacy = Privacy.of(self._vault)
        try:
            with self._vault.unit(AccessContext.system("metrics")) as session:
                overdue = self._privacy.desk.overdue_count(session)
            runs = last_runs(self._vault.db)
        except Exception as exc:  # noqa: BLE001 - the rest of the scrape still answers
            log.warning("metrics from the database unavailable", error=type(exc).__name__)
            yield GaugeMetricFamily(
                "cvault_state_up", "1 when the figures read from the database are shown", 0
            )
            return
        yield GaugeMetricFamily(
            "cvault_state_up", "1 when the figures read from the database are shown", 1
        )
        yield GaugeMetricFamily(
            "cvault_dsr_requests_overdue",
            "Open data subject requests past their due date",
            overdue,
        )
        started = GaugeMetricFamily(
            "cvault_job_last_run_started_timestamp_seconds",
            "When a recorded scheduled job (or the command running it) last started",
            labels=["job"],
        )
        failed = GaugeMetricFamily(
            "cvault_job_last_run_failed",
            "1 when the job's last finished run failed, or its runner died during it",
            labels=["job"],
        )
        for job in sorted(RECORDED):
            run = runs.get(job)
            if run is None:
                continue
            started.add_metric([job.value], run.started_at.timestamp())
            failed.add_metric([job.value], 0 if run.outcome in ("ok", "running") else 1)
        yield started
        yield failed


class Metrics:
    def __init__(self, vault: Vault | None = None) -> None:
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
        self._state = None if vault is None else VaultState(vault)
        # Gauges of this process's own state, set just before a scrape: a function gauge
        # is not written to the multiprocess folder, a gauge set here is.
        self.before_scrape: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return "Metrics()"

    def exposition(self) -> bytes:
        """The text exposition: this server's processes together in multiprocess mode,
        this process's own otherwise."""
        telemetry.flush()
        for refresh in self.before_scrape:
            refresh()
        state = CollectorRegistry()
        if self._state is not None:
            state.register(self._state)
        folder = multiprocess_folder()
        if folder is None:
            parts = (self.registry, telemetry.REGISTRY, state)
            return b"".join(generate_latest(registry) for registry in parts)
        _reap(folder)
        MultiProcessCollector(state, str(folder))  # type: ignore[no-untyped-call]
        return generate_latest(state)

    async def endpoint(self, _request: Request) -> Response:
        body = await asyncio.to_thread(self.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    def close(self) -> None:
        """At a worker's shutdown: its live gauges leave the sum (multiprocess mode)."""
        telemetry.flush()
        folder = multiprocess_folder()
        if folder is not None:
            mark_process_dead(os.getpid(), str(folder))  # type: ignore[no-untyped-call]


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

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
            key = (route, scope.get("method", ""), status)
            children = self._children.get(key)
            if children is None:  # prometheus' labels() validates and locks: once per key
                children = (self.metrics.requests.labels(key[0], key[1], str(status)),
                            self.metrics.latency.labels(route))  # fmt: skip
                if len(self._children) < 4096:  # routes are templates: a bounded set
                    self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


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
