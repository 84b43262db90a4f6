"""The policy vocabulary, as string enums: purposes, roles, resources, actions, resolutions.

``policies`` is a bottom layer and imports nothing from the rest of the vault,
so the words it decides on are defined here. The values are the strings that
appear in policy lines, tokens and the ``X-Purpose`` header; renaming one is a
data migration, not a refactoring.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources

__all__ = [
    "CLEAR_ONLY",
    "DIRECT_MARKETING",
    "READ_RESOURCES",
    "Action",
    "LegalBasis",
    "Operation",
    "Purpose",
    "PurposeInfo",
    "RegistryError",
    "Resolution",
    "Resource",
    "Role",
    "load_registry",
    "marketing_purposes",
    "purpose_info",
    "registry",
]


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
    # Writing the clear profile: locale, tier, tags and the non-PII custom attributes (a
    # PII attribute is written under its own resource, ``attr:<name>``).
    PROFILE = "profile"
    # Reading the clear profile, one resource each: clear or hidden, never masked.
    LOCALE = "locale"
    TIER = "tier"
    TAGS = "tags"
    ATTRIBUTES = "attributes"  # the declared non-PII custom attributes (policies/attributes.toml)
    # Attributes stored before they had to be declared, or whose declaration was removed:
    # they may hold anything, so only the data subject and the administrator see them.
    UNDECLARED_ATTRIBUTES = "undeclared_attributes"
    CONSENT = "consent"  # a customer's consent ledger: read it, record a change
    DATA_REQUESTS = "data_requests"  # data subject requests: file, verify, process, decide
    SEGMENTS = "segments"  # segment definitions, previews and member ids; metrics, analytics


# Resources that reads resolve per customer field (clear, masked, hidden); the profile is
# written, never masked, and consent, data requests and segments are granted, not masked.
# Each PII custom attribute adds a read resource of its own, ``attr:<name>``
# (policies/attributes.py), which the enforcer resolves like these.
READ_RESOURCES: tuple[Resource, ...] = tuple(
    r
    for r in Resource
    if r not in (Resource.PROFILE, Resource.CONSENT, Resource.DATA_REQUESTS, Resource.SEGMENTS)
)

# Read resources that have no mask: shown in clear or not at all. A ``read:masked`` grant
# alone leaves them hidden, and a policy line granting exactly that is refused.
CLEAR_ONLY: frozenset[str] = frozenset(
    {
        Resource.LOCALE,
        Resource.TIER,
        Resource.TAGS,
        Resource.ATTRIBUTES,
        Resource.UNDECLARED_ATTRIBUTES,
    }
)


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


class LegalBasis(StrEnum):
    """The lawful basis a purpose rests on (GDPR Art. 6(1))."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate_interest"
    LEGAL_OBLIGATION = "legal_obligation"


# A notice version is stored in a 64-character column (consent_events.notice_version).
_NOTICE_CHARS = 64

# The scope of an objection to direct marketing as a whole (Art. 21(2)).
DIRECT_MARKETING = "direct_marketing"


@dataclass(frozen=True, slots=True)
class PurposeInfo:
    """One entry of the purpose registry (``policies/purposes.toml``)."""

    name: Purpose
    legal_basis: LegalBasis
    description: str
    direct_marketing: bool = False
    during_restriction: bool = False
    data_categories: tuple[str, ...] = ()
    # The current version of the notice a consent to this purpose is asked under; a
    # consent event that names no version of its own takes it (None: every event must).
    notice_version: str | None = None

    @property
    def needs_consent(self) -> bool:
        return self.legal_basis is LegalBasis.CONSENT

    @property
    def objectable(self) -> bool:
        """Whether an objection can stop it: direct marketing, or a legitimate interest."""
        return self.direct_marketing or self.legal_basis is LegalBasis.LEGITIMATE_INTEREST


class RegistryError(ValueError):
    """The purpose registry file is malformed (names the purpose and the rule)."""


def load_registry(text: str) -> dict[Purpose, PurposeInfo]:
    """Parse a registry document; every purpose of :class:`Purpose` must be described."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"purpose registry is not valid TOML ({exc})") from None
    entries = data.get("purposes")
    if not isinstance(entries, dict):
        raise RegistryError("purpose registry needs a [purposes.NAME] table per purpose")
    out: dict[Purpose, PurposeInfo] = {}
    for name, entry in entries.items():
        try:
            purpose = Purpose(name)
        except ValueError:
            raise RegistryError(f"purpose registry names an unknown purpose {name!r}") from None
        if not isinstance(entry, dict):
            raise RegistryError(f"purposes.{name} must be a table")
        try:
            basis = LegalBasis(str(entry.get("legal_basis")))
        except ValueError:
            allowed = ", ".join(b.value for b in LegalBasis)
            raise RegistryError(f"purposes.{name}.legal_basis must be one of: {allowed}") from None
        description = entry.get("description")
        if not isinstance(description, str) or not description.strip():
            raise RegistryError(f"purposes.{name}.description must be a non-empty string")
        flags = {k: entry.get(k, False) for k in ("direct_marketing", "during_restriction")}
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise RegistryError(f"purposes.{name}.{key} must be true or false")
        categories = entry.get("data_categories", [])
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise RegistryError(f"purposes.{name}.data_categories must be a list of names")
        notice = _notice_version(name, entry.get("notice_version"))
        known = {"legal_basis", "description", "data_categories", "notice_version", *flags}
        unknown = set(entry) - known
        if unknown:
            raise RegistryError(f"purposes.{name} has unknown keys: {', '.join(sorted(unknown))}")
        out[purpose] = PurposeInfo(
            purpose,
            basis,
            description.strip(),
            data_categories=tuple(categories),
            notice_version=notice,
            **flags,
        )
    missing = [p.value for p in Purpose if p not in out]
    if missing:
        raise RegistryError(f"purpose registry does not describe: {', '.join(missing)}")
    return out


def _notice_version(name: str, value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > _NOTICE_CHARS
        or not value.isprintable()
    ):
        raise RegistryError(
            f"purposes.{name}.notice_version must be a non-empty string of at most "
            f"{_NOTICE_CHARS} printable characters"
        )
    return value.strip()


@cache
def registry() -> dict[Purpose, PurposeInfo]:
    """The registry shipped in ``policies/purposes.toml``."""
    text = resources.files("policies").joinpath("purposes.toml").read_text(encoding="utf-8")
    return load_registry(text)


def purpose_info(purpose: str) -> PurposeInfo:
    """The registry entry of a purpose; raises :class:`RegistryError` for an unknown one."""
    try:
        return registry()[Purpose(purpose)]
    except ValueError:
        raise RegistryError(f"unknown purpose {purpose!r}") from None


def marketing_purposes() -> tuple[Purpose, ...]:
    """Every purpose an objection to direct marketing blocks."""
    return tuple(p for p, info in registry().items() if info.direct_marketing)
