"""The vault's domain metrics (Prometheus), with every label value from a fixed vocabulary.

What is measured: audit appends (latency, entries per append), field decryptions (opened,
refused), refusals by error code, access anomaly alerts by kind, webhook delivery
failures, segment refresh duration, and the scheduler (which job this process leads,
runs by outcome, run duration). The edge (``api.metrics``) exposes them beside the HTTP
metrics and the figures read from the database at scrape time (overdue data subject
requests, last job runs).

No label value ever comes from input: each labelled metric declares its vocabulary in
:data:`VOCABULARY`, and :func:`_label` maps anything outside it to ``other``, so an id,
a name or a query text can never become a time series. Under ``cvault serve`` the values
live in prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``), so every
server process's counts add up whichever process answers a scrape.

Global state lives here and nowhere else: the metric objects and the decryption counts
already reported.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from vault.crypto import decryption_counts
from vault.types import JobName

__all__ = [
    "OTHER",
    "REFUSAL_CODES",
    "REGISTRY",
    "VOCABULARY",
    "alert_raised",
    "audit_appended",
    "flush",
    "job_ran",
    "leading",
    "refused",
    "segment_refreshed",
    "webhook_failed",
]

OTHER = "other"

# Every error code a refusal can carry: the gateway's (api.graphql) and the domain's.
REFUSAL_CODES = frozenset(
    {
        "AMBIGUOUS",
        "BAD_REQUEST",
        "BATCH_LIMIT",
        "CONSENT_REQUIRED",
        "CUSTOMER_ERASED",
        "DUPLICATE",
        "FORBIDDEN",
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "LEGAL_HOLD",
        "METHOD_NOT_ALLOWED",
        "NOT_FOUND",
        "OBJECTION_IN_FORCE",
        "PAYLOAD_TOO_LARGE",
        "PERSISTED_QUERY_HASH_MISMATCH",
        "PERSISTED_QUERY_NOT_FOUND",
        "PERSISTED_QUERY_NOT_SUPPORTED",
        "PROCESSING_REFUSED",
        "PROCESSING_RESTRICTED",
        "PURPOSE_REQUIRED",
        "QUERY_TOO_COMPLEX",
        "RATE_LIMITED",
        "TRUSTED_DOCUMENT_REQUIRED",
        "UNAUTHENTICATED",
        "UNKNOWN_PURPOSE",
        "UNSUPPORTED_MEDIA_TYPE",
        "VERIFICATION_FAILED",
    }
)
_JOBS = frozenset(JobName)
_SCOPES = frozenset({"all", "one", "customers"})
_FAILURES = frozenset({"http_status", "transport", "gave_up"})
_RUN_OUTCOMES = frozenset({"ok", "failed", "busy"})
_DECRYPTION_OUTCOMES = frozenset({"opened", "refused"})
_ALERT_KINDS = frozenset({"distinct_customers", "refusals", "export_off_hours"})

# metric name -> label -> the values it may take (OTHER is always allowed)
VOCABULARY: Mapping[str, Mapping[str, frozenset[str]]] = {
    "cvault_decryptions": {"outcome": _DECRYPTION_OUTCOMES},
    "cvault_refusals": {"code": REFUSAL_CODES},
    "cvault_webhook_failures": {"kind": _FAILURES},
    "cvault_segment_refresh_seconds": {"scope": _SCOPES},
    "cvault_scheduler_leader": {"job": _JOBS},
    "cvault_scheduler_runs": {"job": _JOBS, "outcome": _RUN_OUTCOMES},
    "cvault_scheduler_run_seconds": {"job": _JOBS},
    "cvault_access_alerts": {"kind": _ALERT_KINDS},
}

REGISTRY = CollectorRegistry()

_AUDIT_SECONDS = Histogram(
    "cvault_audit_append_seconds", "Time to insert one unit of work's audit entries",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
    registry=REGISTRY,
)  # fmt: skip
_AUDIT_ENTRIES = Histogram(
    "cvault_audit_append_entries", "Audit entries inserted per append (one unit of work)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 512, 2048),
    registry=REGISTRY,
)  # fmt: skip
_DECRYPTIONS = Counter(
    "cvault_decryptions", "Field tokens opened, and refused (wrong key, tampered, shredded)",
    ["outcome"], registry=REGISTRY,
)  # fmt: skip
_REFUSALS = Counter(
    "cvault_refusals", "Requests and domain operations refused, by error code",
    ["code"], registry=REGISTRY,
)  # fmt: skip
_WEBHOOK_FAILURES = Counter(
    "cvault_webhook_failures",
    "Webhook delivery attempts that failed (http_status: a non-2xx answer, transport: no "
    "answer) and deliveries given up after the last attempt (gave_up)",
    ["kind"], registry=REGISTRY,
)  # fmt: skip
_SEGMENT_SECONDS = Histogram(
    "cvault_segment_refresh_seconds",
    "Segment membership refresh duration (all segments, one, or the customers a write touched)",
    ["scope"], buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
    registry=REGISTRY,
)  # fmt: skip
_LEADER = Gauge(
    "cvault_scheduler_leader", "1 while this server leads the job (runs it on its schedule)",
    ["job"], multiprocess_mode="livesum", registry=REGISTRY,
)  # fmt: skip
_RUNS = Counter(
    "cvault_scheduler_runs", "Scheduled job runs by outcome (busy: a command was running it)",
    ["job", "outcome"], registry=REGISTRY,
)  # fmt: skip
_RUN_SECONDS = Histogram(
    "cvault_scheduler_run_seconds", "Scheduled job run duration",
    ["job"], buckets=(0.001, 0.01, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 7200),
    registry=REGISTRY,
)  # fmt: skip
_ALERTS = Counter(
    "cvault_access_alerts",
    "Access anomaly alerts raised (distinct customers read, refusals, exports off hours)",
    ["kind"], registry=REGISTRY,
)  # fmt: skip


def _label(metric: str, label: str, value: str) -> str:
    """``value`` if the metric's vocabulary has it, else ``other``."""
    return value if value in VOCABULARY[metric][label] else OTHER


def audit_appended(seconds: float, entries: int) -> None:
    _AUDIT_SECONDS.observe(seconds)
    _AUDIT_ENTRIES.observe(entries)


def refused(code: str) -> None:
    """One refusal with this error code (an unknown code counts as ``other``)."""
    _REFUSALS.labels(_label("cvault_refusals", "code", code)).inc()


def webhook_failed(kind: str, count: int = 1) -> None:
    if count:
        _WEBHOOK_FAILURES.labels(_label("cvault_webhook_failures", "kind", kind)).inc(count)


def segment_refreshed(scope: str, seconds: float) -> None:
    _SEGMENT_SECONDS.labels(_label("cvault_segment_refresh_seconds", "scope", scope)).observe(
        seconds
    )


def alert_raised(kind: str) -> None:
    """One access anomaly alert of this kind raised."""
    _ALERTS.labels(_label("cvault_access_alerts", "kind", kind)).inc()


def leading(job: JobName, led: bool) -> None:
    """Whether this process leads ``job`` now."""
    _LEADER.labels(_label("cvault_scheduler_leader", "job", job)).set(1 if led else 0)


def job_ran(job: JobName, outcome: str, seconds: float | None) -> None:
    name = _label("cvault_scheduler_runs", "job", job)
    _RUNS.labels(name, _label("cvault_scheduler_runs", "outcome", outcome)).inc()
    if seconds is not None:
        _RUN_SECONDS.labels(name).observe(seconds)


_reported = [0, 0]  # decryptions (opened, refused) already added to the counter
_flushing = threading.Lock()


def flush() -> None:
    """Add the decryptions counted since the last flush to the metric: once per unit of
    work and per scrape rather than once per field (a multiprocess counter's increment
    costs a lock and a write to a shared file)."""
    with _flushing:
        for index, (total, outcome) in enumerate(
            zip(decryption_counts(), ("opened", "refused"), strict=True)
        ):
            delta = total - _reported[index]
            if delta > 0:
                _DECRYPTIONS.labels(outcome).inc(delta)
                _reported[index] = total
