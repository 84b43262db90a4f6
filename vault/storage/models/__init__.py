"""SQLAlchemy models. PII columns hold field tokens (``*_ct``) and blind indexes only.

Every table carries the customer id, so a customer's rows can live together on
a sharded cluster. ``__repr__`` shows ids only.

One module per feature's tables, over ``base`` (the declarative base and shared column
types) and ``append_only`` (the triggers of the audit trail and the consent ledger).
Importing this package defines every table on ``Base.metadata``.
"""

from vault.storage.models.alerts import AccessAlertRow, AlertScanRow
from vault.storage.models.append_only import (
    APPEND_ONLY_TABLES,
    RetentionUnlockRow,
    append_only,
    append_only_ddl,
    retention_unlocked,
)
from vault.storage.models.audit import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditLogRow,
    AuditPendingRow,
)
from vault.storage.models.base import (
    NAMING_CONVENTION,
    Base,
    BigId,
    JsonType,
    UTCDateTime,
    in_enum,
)
from vault.storage.models.consent import (
    ConsentEventRow,
    ConsentStateRow,
    DsrEventRow,
    DsrRequestRow,
    LegalHoldRow,
    ObjectionRow,
)
from vault.storage.models.counters import RateLimitCounterRow
from vault.storage.models.customers import CustomerExternalIdRow, CustomerRow, DataKeyRow
from vault.storage.models.documents import TrustedDocumentEventRow, TrustedDocumentRow
from vault.storage.models.interactions import InteractionRow
from vault.storage.models.jobs import JobRunRow
from vault.storage.models.policy import PolicyVersionRow
from vault.storage.models.segments import (
    CustomerMetricsRow,
    SegmentMembershipRow,
    SegmentOutboxRow,
    SegmentRow,
    WebhookDeliveryRow,
    WebhookRow,
)
from vault.storage.models.sign_in import PageSessionRow, SignInCodeRow

__all__ = [
    "APPEND_ONLY_TABLES",
    "NAMING_CONVENTION",
    "AccessAlertRow",
    "AlertScanRow",
    "AuditCheckpointRow",
    "AuditEntryRow",
    "AuditLogRow",
    "AuditPendingRow",
    "Base",
    "BigId",
    "ConsentEventRow",
    "ConsentStateRow",
    "CustomerExternalIdRow",
    "CustomerMetricsRow",
    "CustomerRow",
    "DataKeyRow",
    "DsrEventRow",
    "DsrRequestRow",
    "InteractionRow",
    "JobRunRow",
    "JsonType",
    "LegalHoldRow",
    "ObjectionRow",
    "PageSessionRow",
    "PolicyVersionRow",
    "RateLimitCounterRow",
    "RetentionUnlockRow",
    "SegmentMembershipRow",
    "SegmentOutboxRow",
    "SegmentRow",
    "SignInCodeRow",
    "TrustedDocumentEventRow",
    "TrustedDocumentRow",
    "UTCDateTime",
    "WebhookDeliveryRow",
    "WebhookRow",
    "append_only",
    "append_only_ddl",
    "in_enum",
    "retention_unlocked",
]
