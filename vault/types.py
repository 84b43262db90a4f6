"""The vault's shared vocabulary, as string enums."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Channel",
    "ConsentChannel",
    "ConsentMethod",
    "ConsentState",
    "CustomerStatus",
    "DsrStatus",
    "DsrType",
    "InteractionType",
    "JobName",
    "PiiField",
]


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    RESTRICTED = "restricted"
    ERASED = "erased"
    MERGED = "merged"


class PiiField(StrEnum):
    """Customer fields that are encrypted one by one under the customer's data key."""

    EMAIL = "email"
    PHONE = "phone"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    BIRTH_DATE = "birth_date"
    ADDRESS = "address"


class Channel(StrEnum):
    WEB = "web"
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    SOCIAL = "social"
    CHAT = "chat"
    PHONE = "phone"
    STORE = "store"
    APP = "app"


class InteractionType(StrEnum):
    PAGE_VIEW = "page_view"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    EMAIL_BOUNCE = "email_bounce"
    SMS_CLICK = "sms_click"
    PUSH_OPEN = "push_open"
    CART_ADD = "cart_add"
    CART_ABANDON = "cart_abandon"
    PURCHASE = "purchase"
    REFUND = "refund"
    CHAT_MESSAGE = "chat_message"
    SOCIAL_LIKE = "social_like"
    SOCIAL_SHARE = "social_share"
    CALL = "call"
    STORE_VISIT = "store_visit"
    APP_OPEN = "app_open"
    SURVEY_RESPONSE = "survey_response"


# The field name an interaction payload is encrypted under (with the interaction id).
PAYLOAD_FIELD = "interaction.payload"

# Interaction types that carry money.
MONETARY_TYPES = frozenset({InteractionType.PURCHASE, InteractionType.REFUND})


class ConsentState(StrEnum):
    """A consent event, and the current state it leaves behind."""

    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    DENIED = "denied"


class ConsentChannel(StrEnum):
    """Where a consent was given or withdrawn."""

    WEB = "web"
    EMAIL = "email"
    SMS = "sms"
    APP = "app"
    STORE = "store"
    PHONE = "phone"
    API = "api"


class ConsentMethod(StrEnum):
    """How a consent was expressed."""

    FORM = "form"
    CHECKBOX = "checkbox"
    EMAIL_LINK = "email_link"
    VERBAL = "verbal"
    IMPORT = "import"


class DsrType(StrEnum):
    """Data subject requests (GDPR Art. 15-21)."""

    ACCESS = "access"
    PORTABILITY = "portability"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    RESTRICTION = "restriction"
    OBJECTION = "objection"


class DsrStatus(StrEnum):
    RECEIVED = "received"
    VERIFIED = "verified"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"


class JobName(StrEnum):
    """The jobs the server runs on a schedule (``vault.scheduling``), one process each."""

    AUDIT_SEQUENCER = "audit_sequencer"
    WEBHOOK_DELIVERY = "webhook_delivery"
    SEGMENT_REFRESH = "segment_refresh"
    METRICS_ROLLUP = "metrics_rollup"
    RETENTION = "retention"
    ANOMALY_SCAN = "anomaly_scan"
