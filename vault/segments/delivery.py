"""Delivery of segment enter/leave events to webhooks: fan-out, signed POSTs, retries.

Runs outside any request (the server's background loop, ``cvault webhooks deliver``).
Audit, per run (one request id shared by its entries):

* one ``webhook.delivered`` entry per delivered event, about its customer (GDPR Art.
  15(1)(c): the recipients of the customer's data). Actor ``webhook:<id>``, role
  ``system``, purpose the webhook's, fields ``{"segments": "disclosed"}``, detail the
  webhook, delivery and segment ids, the event type, the attempt and the HTTP status.
  Never the URL: a path or query may carry a token; the access history shows the
  recipient's host, looked up from the webhook id when it is read
  (:mod:`vault.audit_trail.queries`). The entries are appended in bulk in the same
  transaction that marks the deliveries delivered: no delivery is marked without its
  entry. The POST happens before that transaction, so if the commit fails the rows stay
  pending, the retry sends the same ``Idempotency-Key`` again and writes the entry then.
  A failed attempt (non-2xx, network error, timeout) writes no per-customer entry: the
  receiver did not accept the data; a timeout the receiver did act on is retried until
  it is acknowledged, and recorded then. A 2xx that arrives after the webhook was
  disabled mid-run is recorded as delivered all the same: the data was received.
* one ``webhook.delivery`` entry per run that did anything, under ``administration``:
  the batch summary (counts fanned out, attempted, delivered, retrying, failed, skipped),
  no customer.

* :meth:`WebhookDispatcher.fan_out` turns outbox rows (``segment_outbox``, written with
  the membership change) into one delivery row per webhook that follows the segment,
  was registered before the event, is enabled, and whose purpose may process the
  customer at that moment (consent, restriction, objection: :mod:`vault.privacy.processing`).
  The outbox row's ``delivered_at`` then says "handed to the webhooks of that time".
* :meth:`WebhookDispatcher.deliver_due` claims due deliveries (a lease moves their next
  attempt ahead, so a crashed run is retried and parallel runs never share a row),
  checks the purpose again and *skips* a delivery whose customer it may no longer
  process (``state`` skipped, ``last_error`` ``not_permitted``; ``webhook_disabled`` when
  the webhook was disabled), then POSTs the JSON body signed with HMAC-SHA256
  (:mod:`vault.crypto.webhooks`). A 2xx marks it delivered; anything else, a network
  error or a timeout schedules attempt n+1 at ``now + min(max_delay, base_delay *
  2**(n-1))`` scaled by a jitter in [0.5, 1]; after ``max_attempts`` it is failed.

The body is ``{"id", "type", "segment_id", "customer_id", "occurred_at"}``: pseudonymous
ids and a time, never a PII value. ``id`` is also the ``Idempotency-Key`` header and is
the same on every attempt, so a receiver drops duplicates by it. Events are not ordered
across attempts: order by ``occurred_at``.
"""

from __future__ import annotations

import json
import math
import random
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from audit.entries import AuditAction, AuditEntry, Outcome
from vault import telemetry
from vault.audit_trail.log import AuditLog
from vault.authorization.context import AccessContext
from vault.crypto.webhooks import WebhookSecrets, sign_payload
from vault.logs import get_logger
from vault.privacy.processing import ProcessingGate
from vault.storage.db import Database
from vault.storage.models import CustomerRow, SegmentOutboxRow, WebhookDeliveryRow, WebhookRow
from vault.storage.sql import id_in
from vault.types import CustomerStatus

__all__ = [
    "DISPATCH_CONTEXT",
    "DeliveryReport",
    "DeliveryState",
    "Send",
    "SkipReason",
    "WebhookDispatcher",
    "WebhookEventType",
    "http_send",
]

log = get_logger("vault.segments.webhooks")

Send = Callable[[str, bytes, Mapping[str, str]], int]
_BATCH = 1_000
_PROCESSABLE = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)
DISPATCH_CONTEXT = AccessContext.system("webhooks")


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after max_attempts
    SKIPPED = "skipped"  # not sent: the purpose may no longer process the customer


class SkipReason(StrEnum):
    NOT_PERMITTED = "not_permitted"
    WEBHOOK_DISABLED = "webhook_disabled"


class WebhookEventType(StrEnum):
    ENTERED = "segment.entered"
    LEFT = "segment.left"


_EVENT_TYPES = {"entered": WebhookEventType.ENTERED, "left": WebhookEventType.LEFT}


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one run did: events fanned out into deliveries, then attempts and outcomes."""

    events: int = 0  # outbox rows consumed
    fanned_out: int = 0  # delivery rows created from them
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            *(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__)
        )

    def counts(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answers itself; a redirect is a non-2xx answer, never followed."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:  # noqa: ANN401
        return None


def http_send(timeout: float = 5.0) -> Send:
    """POST with urllib: the status code of the answer (3xx not followed); a network
    error or a timeout raises. The response body is never read beyond 1 KiB."""
    opener = urllib.request.build_opener(_NoRedirect)

    def send(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - http(s) only, checked at registration
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read(1024)
                return int(response.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code)

    return send


def _error_name(exc: BaseException) -> str:
    """A short class name for ``last_error`` (``URLError:ConnectionRefusedError``): never
    a message, which could echo a URL or a response."""
    name = type(exc).__name__
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        name = f"{name}:{type(reason).__name__}"
    return name[:64]


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: uuid.UUID
    webhook_id: uuid.UUID
    purpose: str
    url: str
    secret_version: int
    body: bytes
    attempts: int


class WebhookDispatcher:
    def __init__(
        self,
        secrets: WebhookSecrets,
        gate: ProcessingGate,
        audit: AuditLog,
        *,
        send: Send | None = None,
        clock: Callable[[], datetime],
        max_attempts: int = 8,
        base_delay: float = 2.0,
        max_delay: float = 3600,
        timeout: float = 5.0,
        concurrency: int = 8,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        if max_attempts < 1 or base_delay <= 0 or max_delay < base_delay or concurrency < 1:
            raise ValueError("max_attempts >= 1, 0 < base_delay <= max_delay, concurrency >= 1")
        self._secrets = secrets
        self._gate = gate
        self._audit = audit
        self._send = send if send is not None else http_send(timeout)
        self._clock = clock
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._timeout = timeout
        self._concurrency = concurrency
        self._jitter = jitter if jitter is not None else random.SystemRandom().random

    def __repr__(self) -> str:
        return f"WebhookDispatcher(max_attempts={self.max_attempts})"

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt, before jitter."""
        return timedelta(seconds=min(self.max_delay, self.base_delay * 2 ** (attempts - 1)))

    # -- fan-out ------------------------------------------------------------------------

    def fan_out(self, db: Database) -> int:
        """Outbox rows -> delivery rows (one per permitted, subscribed webhook); marks the
        outbox rows handed over. Returns how many deliveries were created."""
        return self._fan_out(db)[1]

    def _fan_out(self, db: Database) -> tuple[int, int]:
        events = created = 0
        while True:
            with db.transaction() as session:
                consumed, made = self._fan_out_batch(session)
            events += consumed
            created += made
            if consumed < _BATCH:
                return events, created

    def _fan_out_batch(self, session: Session) -> tuple[int, int]:
        o = SegmentOutboxRow
        stmt = select(o).where(o.delivered_at.is_(None)).order_by(o.id).limit(_BATCH)
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        events = list(session.scalars(stmt))
        if not events:
            return 0, 0
        hooks = list(session.scalars(select(WebhookRow).where(WebhookRow.disabled_at.is_(None))))
        following: dict[uuid.UUID, list[WebhookRow]] = {}
        for hook in hooks:
            for segment in hook.segment_ids:
                following.setdefault(uuid.UUID(segment), []).append(hook)
        wanted = [
            (e, h) for e in events for h in following.get(e.segment_id, ()) if e.at >= h.created_at
        ]
        permitted: dict[str, set[uuid.UUID]] = {}
        for purpose in {h.purpose for _e, h in wanted}:
            ids = sorted({e.customer_id for e, h in wanted if h.purpose == purpose})
            permitted[purpose] = self._permitted(session, purpose, ids)
        now = self._clock()
        rows = [
            {
                "id": uuid.uuid4(),
                "webhook_id": h.id,
                "outbox_id": e.id,
                "segment_id": e.segment_id,
                "customer_id": e.customer_id,
                "event": e.event,
                "occurred_at": e.at,
                "state": DeliveryState.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
            }
            for e, h in wanted
            if e.customer_id in permitted[h.purpose]
        ]
        if rows:
            session.execute(insert(WebhookDeliveryRow), rows)
        session.execute(
            update(o)
            .where(o.id.in_([e.id for e in events]))
            .values(delivered_at=now)
            .execution_options(synchronize_session=False)
        )
        return len(events), len(rows)

    def _permitted(
        self, session: Session, purpose: str, ids: Sequence[uuid.UUID]
    ) -> set[uuid.UUID]:
        """The customers among ``ids`` that ``purpose`` may process right now."""
        if not ids:
            return set()
        dialect = session.get_bind().dialect.name
        return set(
            session.scalars(
                select(CustomerRow.id).where(
                    id_in(CustomerRow.id, ids, dialect),
                    CustomerRow.status.in_(_PROCESSABLE),
                    self._gate.clause(session, purpose),
                )
            )
        )

    # -- delivery -----------------------------------------------------------------------

    def deliver_due(self, db: Database, *, limit: int = 500) -> DeliveryReport:
        """Send what is due (up to ``limit``), record each outcome: one entry per delivered
        event and customer, one summary entry for the run."""
        run = _run_context()
        report = self._deliver(db, limit, run.request_id)
        self._record(db, run, report)
        return report

    def run_once(self, db: Database) -> DeliveryReport:
        """Fan out, then deliver what is due; audited as :meth:`deliver_due`."""
        run = _run_context()
        events, created = self._fan_out(db)
        report = DeliveryReport(events=events, fanned_out=created)
        report += self._deliver(db, 500, run.request_id)
        self._record(db, run, report)
        return report

    def _deliver(self, db: Database, limit: int, request_id: str) -> DeliveryReport:
        claimed, skipped = self._claim(db, limit)
        if not claimed:
            return DeliveryReport(skipped=skipped)
        with ThreadPoolExecutor(max_workers=min(self._concurrency, len(claimed))) as pool:
            results = list(pool.map(self._attempt, claimed))
        outcome = self._settle(db, claimed, results, request_id)
        return outcome + DeliveryReport(attempted=len(claimed), skipped=skipped)

    def _claim(self, db: Database, limit: int) -> tuple[list[_Claimed], int]:
        """Due deliveries that may still be sent, their lease taken; the rest skipped."""
        d, w = WebhookDeliveryRow, WebhookRow
        with db.transaction() as session:
            now = self._clock()
            stmt = (
                select(d, w)
                .join(w, w.id == d.webhook_id)
                .where(d.state == DeliveryState.PENDING.value, d.next_attempt_at <= now)
                .order_by(d.next_attempt_at, d.id)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True, of=d)
            due = [(row, hook) for row, hook in session.execute(stmt)]
            permitted: dict[str, set[uuid.UUID]] = {}
            for purpose in {hook.purpose for _row, hook in due}:
                ids = sorted({row.customer_id for row, hook in due if hook.purpose == purpose})
                permitted[purpose] = self._permitted(session, purpose, ids)
            waves = math.ceil(max(len(due), 1) / self._concurrency)
            lease = now + timedelta(seconds=(self._timeout + 1) * waves + 30)
            claimed: list[_Claimed] = []
            skipped = 0
            for row, hook in due:
                reason = None
                if hook.disabled_at is not None:
                    reason = SkipReason.WEBHOOK_DISABLED
                elif row.customer_id not in permitted[hook.purpose]:
                    reason = SkipReason.NOT_PERMITTED
                if reason is not None:
                    row.state, row.skipped_at, row.last_error = (
                        DeliveryState.SKIPPED.value, now, reason.value,
                    )  # fmt: skip
                    skipped += 1
                    continue
                row.next_attempt_at = lease
                claimed.append(
                    _Claimed(
                        row.id,
                        hook.id,
                        hook.purpose,
                        hook.url,
                        hook.secret_version,
                        _body(row),
                        row.attempts,
                    )
                )
        return claimed, skipped

    def _attempt(self, item: _Claimed) -> tuple[int | None, str | None]:
        """One POST: (status, None) or (None, error class name)."""
        secret = self._secrets.secret(item.webhook_id, item.secret_version)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": str(item.id),
            "User-Agent": "customer-vault-webhooks/1",
            **sign_payload(secret, item.body, int(self._clock().timestamp())),
        }
        try:
            return self._send(item.url, item.body, headers), None
        except Exception as exc:  # noqa: BLE001 - any failure to send is retried
            return None, _error_name(exc)

    def _settle(
        self,
        db: Database,
        claimed: Sequence[_Claimed],
        results: Sequence[tuple[int | None, str | None]],
        request_id: str,
    ) -> DeliveryReport:
        """Record each attempt's outcome, and the delivered events' audit entries in one
        bulk append, in one transaction."""
        delivered = retrying = failed = refused = unanswered = 0
        entries: list[AuditEntry] = []
        with db.transaction() as session:
            now = self._clock()
            for item, (status, error) in zip(claimed, results, strict=True):
                row = session.get(WebhookDeliveryRow, item.id)
                ok = status is not None and 200 <= status < 300
                if row is None or row.state not in _SETTLEABLE[ok]:
                    continue  # disabled meanwhile and not received: stays skipped
                row.attempts = item.attempts + 1
                row.last_status, row.last_error = status, error
                if ok:
                    row.state, row.delivered_at = DeliveryState.DELIVERED.value, now
                    row.skipped_at = None
                    entries.append(_delivered_entry(item, row, request_id, now))
                    delivered += 1
                    continue
                refused += status is not None
                unanswered += status is None
                log.warning(
                    "webhook delivery attempt failed",
                    webhook=str(item.webhook_id),
                    delivery=str(item.id),
                    attempt=row.attempts,
                    status=status,
                    error=error,
                )
                if row.attempts >= self.max_attempts:
                    row.state, row.failed_at = DeliveryState.FAILED.value, now
                    failed += 1
                else:
                    wait = self.backoff(row.attempts) * (0.5 + 0.5 * self._jitter())
                    row.next_attempt_at = now + wait
                    retrying += 1
            self._audit.write(session, entries)
        telemetry.webhook_failed("http_status", refused)
        telemetry.webhook_failed("transport", unanswered)
        telemetry.webhook_failed("gave_up", failed)
        return DeliveryReport(delivered=delivered, retrying=retrying, failed=failed)

    def _record(self, db: Database, run: AccessContext, report: DeliveryReport) -> None:
        """One ``webhook.delivery`` audit entry per run that created, sent or skipped a
        delivery (counts only); consuming events no webhook follows is not recorded."""
        counts = report.counts()
        if any(value for key, value in counts.items() if key != "events"):
            self._audit.record_now(db, run, AuditAction.WEBHOOK_DELIVERY, detail=counts)


# The states a claimed delivery may be settled from: a 2xx is recorded even if the webhook
# was disabled while the POST was in flight (the data was received); a failure is not.
_SETTLEABLE = {
    True: (DeliveryState.PENDING.value, DeliveryState.SKIPPED.value),
    False: (DeliveryState.PENDING.value,),
}


def _run_context() -> AccessContext:
    """The dispatcher's context with a request id of its own for one run."""
    return replace(DISPATCH_CONTEXT, request_id=uuid.uuid4().hex)


def _delivered_entry(
    item: _Claimed, row: WebhookDeliveryRow, request_id: str, now: datetime
) -> AuditEntry:
    """The disclosure of one customer's event to one webhook: ids only, never the URL."""
    return AuditEntry(
        action=AuditAction.WEBHOOK_DELIVERED,
        outcome=Outcome.SUCCESS,
        actor=f"webhook:{item.webhook_id}",
        role=DISPATCH_CONTEXT.actor.role,
        purpose=item.purpose,
        request_id=request_id,
        time=now,
        customer_id=row.customer_id,
        fields={"segments": "disclosed"},
        detail={
            "webhook": str(item.webhook_id),
            "delivery": str(row.id),
            "segment": str(row.segment_id),
            "event": _EVENT_TYPES[row.event].value,
            "attempt": row.attempts,
            "status": row.last_status,
        },
    )


def _body(row: WebhookDeliveryRow) -> bytes:
    message = {
        "id": str(row.id),
        "type": _EVENT_TYPES[row.event].value,
        "segment_id": str(row.segment_id),
        "customer_id": str(row.customer_id),
        "occurred_at": row.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode("utf-8")
