"""Mask formats in the vault (issue 18, item 4), on SQLite and PostgreSQL: a stored policy
version names formats per role and field, every read shows them, the default policy
shows today's masks, and a bad format is refused whole, naming its line."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import uuid
from typing import Final

import pytest
from structlog.testing import capture_logs

from policies import default_policy_lines
from tests.conftest import CTX, grant_all_consents
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput
from vault.customers.addresses import PostalAddress
from vault.errors import InvalidInput
from vault.runtime import Vault

ADMIN: Final = AccessContext(Actor(subject="admin-1", role="admin"), purpose="administration")
SUPPORT: Final = AccessContext(Actor(subject="agent-1", role="support_agent"), purpose="support")
COMPLIANCE: Final = AccessContext(
    Actor(subject="officer-1", role="compliance_officer"), purpose="compliance"
)
MARKETING_EMAIL: Final = AccessContext(
    Actor(subject="mk-1", role="marketing"), purpose="marketing_email"
)
FORMATS: Final = [
    "p3, support_agent, phone, support, country_code",
    "p3, support_agent, email, support, local_hidden",
    "p3, support_agent, address, support, country_only",
    "p3, compliance_officer, first_name, compliance, initials",
    "p3, compliance_officer, last_name, compliance, initials",
    "p3, compliance_officer, email, compliance, first_letter",
    "p3, compliance_officer, phone, compliance, last4",
    "p3, marketing, birth_date, marketing_email, year_only",
]
PERSON: Final = CustomerInput(
    email="zahra.chitpakdee@example.ir",
    phone="+98 912 345 6789",
    first_name="زهرا",  # Persian
    last_name="จิตรภักดี",  # Thai: the first letter carries a vowel mark
    birth_date="1990-04-17",
    address=PostalAddress(street="خیابان ولیعصر، پلاک ۱۲", city="تهران", country="IR"),
)
SHOWN: Final = ("email", "phone", "first_name", "last_name", "birth_date", "address")


def _person(vault: Vault, data: CustomerInput = PERSON) -> uuid.UUID:
    with vault.unit(CTX) as s:
        made = vault.customers.create(s, data)
    grant_all_consents(vault, made.id)
    return made.id


def _seen(vault: Vault, ctx: AccessContext, cid: uuid.UUID) -> dict[str, object]:
    with vault.unit(ctx) as s:
        customer = vault.customers.get(s, cid)
    return {name: getattr(customer, name) for name in SHOWN}


def test_the_default_policy_shows_todays_masks(vault: Vault) -> None:
    """With no p3 line (the shipped default) each role sees exactly today's masks."""
    cid = _person(vault)
    assert {
        "email": "z***@e***.ir", "phone": "***6789", "first_name": "زهرا",
        "last_name": "จิตรภักดี", "birth_date": None, "address": "تهران, IR",
    } == _seen(vault, SUPPORT, cid)  # fmt: skip
    assert {
        "email": "z***@e***.ir", "phone": "***6789", "first_name": "ز***",
        "last_name": "จิ***", "birth_date": None, "address": None,
    } == _seen(vault, COMPLIANCE, cid)  # fmt: skip


def test_a_stored_version_shows_each_role_its_formats(vault: Vault) -> None:
    """After a version with p3 lines, support sees the country code, the domain and the
    country; compliance initials (Persian, Thai), the first letter and the last four
    digits; marketing the birth year; the resolutions recorded stay ``masked``."""
    cid = _person(vault)
    with vault.unit(ADMIN) as s:
        version = vault.policies.replace(s, [*default_policy_lines(), *FORMATS])
    with vault.unit(SUPPORT) as s:
        support = vault.customers.get(s, cid)
    assert 1 == version
    assert {
        "email": "***@example.ir", "phone": "+98 ***", "first_name": "زهرا",
        "last_name": "จิตรภักดี", "birth_date": None, "address": "IR",
    } == {name: getattr(support, name) for name in SHOWN}  # fmt: skip
    shown = support.postal_address
    assert (None, "IR") == (shown and shown.city, shown and shown.country)
    assert "masked" == support.resolutions["phone"]
    assert {
        "email": "z***@example.ir", "phone": "***6789", "first_name": "ز.",
        "last_name": "จิ.", "birth_date": None, "address": None,
    } == _seen(vault, COMPLIANCE, cid)  # fmt: skip
    assert "1990" == _seen(vault, MARKETING_EMAIL, cid)["birth_date"]


def test_lists_and_searches_use_the_same_formats(vault: Vault) -> None:
    """A page of customers shows the same formats as one customer."""
    cid = _person(vault)
    with vault.unit(ADMIN) as s:
        vault.policies.replace(s, [*default_policy_lines(), *FORMATS])
    with vault.unit(SUPPORT) as s:
        many = vault.customers.get_many(s, [cid])
    assert ["+98 ***"] == [c.phone for c in many]


def test_versions_carry_their_formats_and_reset_brings_todays_masks_back(vault: Vault) -> None:
    """A stored version keeps its p3 lines (history, lines_of); resetting stores the default
    and the masks are today's again; another process picks the formats up on refresh."""
    cid = _person(vault)
    with vault.unit(ADMIN) as s:
        vault.policies.replace(s, [*default_policy_lines(), *FORMATS])
        stored = vault.policies.lines_of(s, 1)
    with_formats = _seen(vault, SUPPORT, cid)["phone"]
    with vault.unit(ADMIN) as s:
        vault.policies.reset(s)
    assert [line for line in stored if line.startswith("p3")] == FORMATS
    assert ("+98 ***", "***6789") == (with_formats, _seen(vault, SUPPORT, cid)["phone"])


def test_a_bad_format_is_refused_whole_naming_its_line(vault: Vault) -> None:
    """A version with an unknown format, or a format on the wrong field, is refused with
    its line number and text; nothing is stored and the formats in force stay."""
    lines = [*default_policy_lines(), *FORMATS]
    with vault.unit(ADMIN) as s:
        vault.policies.replace(s, lines)
    refused = []
    for bad in ("p3, support_agent, phone, support, stars", "p3, admin, email, *, year_only"):
        with pytest.raises(InvalidInput) as info, vault.unit(ADMIN) as s:
            vault.policies.replace(s, [*lines, bad])
        refused.append(str(info.value))
    n = len(lines) + 1
    assert [
        f"lines: policy line {n} (p3, support_agent, phone, support, stars): unknown mask "
        "format 'stars'; phone takes default, redacted, last4, country_code",
        f"lines: policy line {n} (p3, admin, email, *, year_only): mask format 'year_only' "
        "is not for email; email takes default, redacted, first_letter, local_hidden, "
        "domain_only",
    ] == refused
    with vault.unit(ADMIN) as s:
        assert 1 == vault.policies.current(s)[0]
    assert "+98 ***" == _seen(vault, SUPPORT, _person(vault))["phone"]


def test_explain_names_the_format_through_the_authorizer(vault: Vault) -> None:
    """explain (administrators, compliance officers) names the format of the version in
    force and the p3 line that names it."""
    with vault.unit(ADMIN) as s:
        vault.policies.replace(s, [*default_policy_lines(), *FORMATS])
    with vault.unit(COMPLIANCE) as s:
        found = vault.authz.explain(s, "support_agent", "phone", "support")
    assert ("country_code", ("p3", "support_agent", "phone", "support", "country_code")) == (
        found.mask_format,
        found.format_rule,
    )


def test_no_value_or_mask_reaches_a_log_line(vault: Vault) -> None:
    """Reading under formats logs no PII value and no mask of one."""
    cid = _person(vault)
    with vault.unit(ADMIN) as s:
        vault.policies.replace(s, [*default_policy_lines(), *FORMATS])
    with capture_logs() as logs:
        seen = _seen(vault, SUPPORT, cid) | _seen(vault, COMPLIANCE, cid)
    text = repr(logs)
    leaked = [v for v in [*seen.values(), "9123456789", "example.ir"] if v and str(v) in text]
    assert [] == leaked
