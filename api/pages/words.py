"""The vocabulary the pages show for the vault's enum words, marked for translation.

Each mapping covers every value of its enum (a test checks), so a new channel or
request type cannot reach a page untranslated. Templates call ``_(words.x[value])``.
Purpose descriptions come from ``policies/purposes.toml`` and are extracted from there
into the catalogs (:mod:`api.pages.catalogs`).
"""

from __future__ import annotations

from typing import Final


def _(message: str) -> str:
    """Marks a message for extraction."""
    return message


PURPOSES: Final = {
    "support": _("Customer support"),
    "marketing_email": _("Marketing e-mail"),
    "marketing_sms": _("Marketing text messages"),
    "personalization": _("Personalisation"),
    "analytics": _("Analytics"),
    "compliance": _("Compliance"),
    "administration": _("Administration"),
    "service_delivery": _("Service delivery"),
    "self": _("You, on this page"),
}
LEGAL_BASES: Final = {
    "consent": _("Your consent"),
    "contract": _("Our contract with you"),
    "legitimate_interest": _("Our legitimate interest"),
    "legal_obligation": _("A legal obligation"),
}
CONSENT_STATES: Final = {
    "granted": _("Given"),
    "withdrawn": _("Withdrawn"),
    "denied": _("Refused"),
    "": _("Not asked yet"),
}
CHANNELS: Final = {
    "web": _("Web"),
    "email": _("E-mail"),
    "sms": _("Text message"),
    "push": _("Push notification"),
    "social": _("Social media"),
    "chat": _("Chat"),
    "phone": _("Phone"),
    "store": _("Store"),
    "app": _("App"),
}
INTERACTIONS: Final = {
    "page_view": _("Page view"),
    "email_open": _("E-mail opened"),
    "email_click": _("E-mail link clicked"),
    "email_bounce": _("E-mail not delivered"),
    "sms_click": _("Text message link clicked"),
    "push_open": _("Notification opened"),
    "cart_add": _("Added to cart"),
    "cart_abandon": _("Cart left"),
    "purchase": _("Purchase"),
    "refund": _("Refund"),
    "chat_message": _("Chat message"),
    "social_like": _("Social media like"),
    "social_share": _("Social media share"),
    "call": _("Phone call"),
    "store_visit": _("Store visit"),
    "app_open": _("App opened"),
    "survey_response": _("Survey answer"),
}
REQUEST_TYPES: Final = {
    "access": _("A copy of your data"),
    "portability": _("Your data to take elsewhere"),
    "erasure": _("Erasure"),
    "rectification": _("Correction"),
    "restriction": _("Restriction of processing"),
    "objection": _("Objection"),
}
REQUEST_STATES: Final = {
    "received": _("Received"),
    "verified": _("Accepted, being handled"),
    "awaiting_approval": _("Waiting for approval by our privacy team"),
    "in_progress": _("In progress"),
    "completed": _("Done"),
    "rejected": _("Rejected"),
}
ACTIONS: Final = {
    "pii.access": _("Read your details"),
    "pii.read": _("Read your details"),
    "interactions.read": _("Read your activity"),
    "interactions.count": _("Counted your activity"),
    "customer.export": _("Exported your data"),
    "customer.update": _("Changed your details"),
    "customer.merge": _("Merged a duplicate record into yours"),
    "access.denied": _("Tried to read your data and was refused"),
    "webhook.delivered": _("Sent to another service"),
}
WEBHOOK_EVENTS: Final = {
    "segment.entered": _("You joined a customer group"),
    "segment.left": _("You left a customer group"),
}
ROLES: Final = {
    "support_agent": _("Support agent"),
    "marketing": _("Marketing"),
    "analyst": _("Analyst"),
    "compliance_officer": _("Privacy team"),
    "admin": _("Administrator"),
    "ingest_service": _("Data import service"),
    "data_subject": _("You"),
    "system": _("The vault itself"),
}
FIELDS: Final = {
    "email": _("E-mail address"),
    "phone": _("Phone number"),
    "first_name": _("First name"),
    "last_name": _("Last name"),
    "birth_date": _("Date of birth"),
    "address": _("Address"),
    "street": _("Street"),
    "city": _("City"),
    "region": _("Region"),
    "postal_code": _("Postal code"),
    "country": _("Country"),
    "locale": _("Language and region"),
    "tier": _("Tier"),
    "tags": _("Tags"),
    "attributes": _("Other details"),
    "interactions": _("Activity"),
    "interaction_payload": _("Activity details"),
    "consent": _("Consents"),
    "data_requests": _("Requests"),
    "profile": _("Profile"),
    "status": _("Status"),
    "access_history": _("Access history"),
    "customer": _("Your record"),
    "customers": _("Customer list"),
    "segments": _("The customer groups you are in"),
}


class Words:
    """The vocabularies as one value to hand to templates (``words.FIELDS[name]``)."""

    PURPOSES = PURPOSES
    LEGAL_BASES = LEGAL_BASES
    CONSENT_STATES = CONSENT_STATES
    CHANNELS = CHANNELS
    INTERACTIONS = INTERACTIONS
    REQUEST_TYPES = REQUEST_TYPES
    REQUEST_STATES = REQUEST_STATES
    ACTIONS = ACTIONS
    WEBHOOK_EVENTS = WEBHOOK_EVENTS
    ROLES = ROLES
    FIELDS = FIELDS
