"""The policy vocabulary, as string enums: purposes, roles, resources, actions, resolutions.

``policies`` is a bottom layer and imports nothing from the rest of the vault,
so the words it decides on are defined here. The values are the strings that
appear in policy lines, tokens and the ``X-Purpose`` header; renaming one is a
data migration, not a refactoring.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Action", "Operation", "Purpose", "Resolution", "Resource", "Role"]


class Purpose(StrEnum):
    """Why a caller touches customer data; every request names exactly one."""

    SUPPORT = "support"
    MARKETING_EMAIL = "marketing_email"
    MARKETING_SMS = "marketing_sms"
    PERSONALIZATION = "personalization"
    ANALYTICS = "analytics"
    COMPLIANCE = "compliance"
    ADMINISTRATION = "administration"
    SERVICE_DELIVERY = "service_delivery"
    SELF = "self"


class Role(StrEnum):
    """Who is asking, as carried by the ``role`` claim of a bearer token."""

    SUPPORT_AGENT = "support_agent"
    MARKETING = "marketing"
    ANALYST = "analyst"
    COMPLIANCE_OFFICER = "compliance_officer"
    ADMIN = "admin"
    INGEST_SERVICE = "ingest_service"
    DATA_SUBJECT = "data_subject"


class Resource(StrEnum):
    """What a policy line is about: a customer field, or a customer's interactions."""

    EMAIL = "email"
    PHONE = "phone"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    BIRTH_DATE = "birth_date"
    ADDRESS = "address"
    INTERACTIONS = "interactions"
    INTERACTION_PAYLOAD = "interaction_payload"
    PROFILE = "profile"  # the clear attributes: locale, tier, tags, custom attributes


# Resources that reads resolve (clear, masked, hidden); the profile is written, never masked.
READ_RESOURCES: tuple[Resource, ...] = tuple(r for r in Resource if r is not Resource.PROFILE)


class Action(StrEnum):
    """What a caller wants to do with a resource."""

    READ = "read"
    WRITE = "write"


class Operation(StrEnum):
    """The action column of a policy line: one grantable step.

    Reading comes in two levels so that the clear/masked decision stays inside
    Casbin: a line grants (or denies) ``read:clear`` or ``read:masked``. A line
    may name ``read:*`` (both levels) or ``*`` (everything): Casbin's
    ``keyMatch`` treats a trailing ``*`` as "any suffix".
    """

    READ_CLEAR = "read:clear"
    READ_MASKED = "read:masked"
    WRITE = "write"


class Resolution(StrEnum):
    """How one field reaches a caller."""

    CLEAR = "clear"
    MASKED = "masked"
    HIDDEN = "hidden"
