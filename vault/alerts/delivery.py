"""Alerts to the security endpoint (``CVAULT_SECURITY_WEBHOOK_URL``): JSON, signed with
HMAC-SHA256 as webhooks are (``X-CVault-Timestamp``, ``X-CVault-Signature: v1=...``;
the secret derived by the key provider, ``cvault alerts secret``), an ``Idempotency-Key``
(the alert's id), at least once: an answer other than 2xx, or none, is tried again after
30 s, 1 min, 2 min, ... (at most an hour apart), up to :data:`MAX_ATTEMPTS` times.

The payload holds the alert's facts only: kind, principal, hour, count, threshold,
baseline and ids; never a customer id, never PII. Log lines name the alert and the
error's class, never the URL (it may carry a token) or the answer.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from vault.crypto.webhooks import sign_payload
from vault.logs import get_logger
from vault.storage.db import Database
from vault.storage.models import AccessAlertRow

__all__ = ["MAX_ATTEMPTS", "AlertDelivery", "DeliveryReport", "Send", "http_send"]

log = get_logger("vault.alerts")
MAX_ATTEMPTS = 12
_FIRST_RETRY = 30.0
_LONGEST_WAIT = 3600.0
_BATCH = 100

# POST body with headers to a URL; the HTTP status of the answer (an error raises).
Send = Callable[[str, bytes, Mapping[str, str]], int]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:  # noqa: ANN401
        return None


def http_send(timeout: float = 5.0) -> Send:
    """POST with urllib; a redirect is an answer (not followed); the body read is 1 KiB."""
    opener = urllib.request.build_opener(_NoRedirect)

    def send(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - http(s) only, checked in the settings
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read(1024)
                return int(response.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code)

    return send


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    gave_up: int = 0


def payload(row: AccessAlertRow) -> bytes:
    """The JSON body announcing one alert (sorted keys, compact)."""
    body = {
        "type": "security.alert",
        "alert": str(row.id),
        "kind": row.kind,
        "principal": row.principal,
        "hour": row.hour.isoformat(),
        "count": row.count,
        "threshold": row.threshold,
        "baseline": row.baseline,
        "raised_at": row.raised_at.isoformat(),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


class AlertDelivery:
    """Sends undelivered alerts to the security endpoint, if one is configured."""

    def __init__(
        self,
        url: str | None,
        secret: Callable[[], str],
        *,
        clock: Callable[[], datetime],
        send: Send | None = None,
    ) -> None:
        self.url = url
        self._secret = secret
        self._clock = clock
        self._send = send or http_send()

    def __repr__(self) -> str:
        return f"AlertDelivery(configured={self.url is not None})"

    def deliver(self, db: Database) -> DeliveryReport:
        """Send every alert that is due; record each outcome in its own transaction."""
        if self.url is None:
            return DeliveryReport()
        now = self._clock()
        with db.transaction() as session:
            due = [
                (row.id, payload(row))
                for row in session.scalars(
                    select(AccessAlertRow)
                    .where(AccessAlertRow.delivered_at.is_(None))
                    .where(AccessAlertRow.attempts < MAX_ATTEMPTS)
                    .where(AccessAlertRow.next_attempt_at <= now)
                    .order_by(AccessAlertRow.raised_at)
                    .limit(_BATCH)
                )
            ]
        sent = retrying = gave_up = 0
        secret = self._secret() if due else ""
        for alert_id, body in due:
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": str(alert_id),
                **sign_payload(secret, body, int(self._clock().timestamp())),
            }
            error: str | None = None
            try:
                status = self._send(self.url, body, headers)
                if not 200 <= status < 300:
                    error = f"http_{status}"
            except Exception as exc:  # noqa: BLE001 - any failure to send is retried
                error = type(exc).__name__[:64]
            with db.transaction() as session:
                row = session.get(AccessAlertRow, alert_id)
                if row is None:
                    continue
                row.attempts += 1
                if error is None:
                    row.delivered_at, row.last_error = self._clock(), None
                    sent += 1
                    continue
                row.last_error = error
                wait = min(_FIRST_RETRY * 2 ** (row.attempts - 1), _LONGEST_WAIT)
                row.next_attempt_at = self._clock() + timedelta(seconds=wait)
                if row.attempts >= MAX_ATTEMPTS:
                    gave_up += 1
                    log.error("access alert not delivered; given up", alert=str(alert_id),
                              error=error)  # fmt: skip
                else:
                    retrying += 1
                    log.warning("access alert delivery failed; retrying", alert=str(alert_id),
                                error=error, attempts=row.attempts)  # fmt: skip
        return DeliveryReport(sent, retrying, gave_up)
