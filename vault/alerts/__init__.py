"""Access anomaly alerts: a detector over the audit trail for threat monitoring.

Owns: ``rules`` (the kinds of alert, thresholds from the settings, the watched audit
actions, export hours), ``detector`` (``AccessAlerts``: reads the ordered audit log from
its high-water mark, counts per principal and hour in SQL, raises each alert once per
kind, principal and hour as a ``security.alert`` audit entry, a metric and a row in
``access_alerts``) and ``delivery`` (the alert, HMAC-signed, to the security endpoint,
at least once, with retries). docs/alerts.md tells operators and receivers the rest.

May import: ``audit_trail``, ``authorization`` and the kernel (config, telemetry,
storage, crypto, logs). The scheduler runs it as the ``anomaly_scan`` job; ``cvault
alerts`` runs it by hand.
"""

from vault.alerts.delivery import DeliveryReport, Send, http_send
from vault.alerts.detector import AccessAlerts, Alert, ScanReport
from vault.alerts.rules import AlertKind, Thresholds

__all__ = [
    "AccessAlerts",
    "Alert",
    "AlertKind",
    "DeliveryReport",
    "ScanReport",
    "Send",
    "Thresholds",
    "http_send",
]
