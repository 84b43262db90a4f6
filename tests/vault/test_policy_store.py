"""The access policy lives in the database: administrators change it, every process
picks the change up, bad policies are refused whole, and every change is audited."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from policies import AccessDenied, default_policy_lines
from tests.conftest import CTX
from vault.authorization.context import AccessContext, Actor
from vault.config import Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer
from vault.customers import CustomerInput
from vault.errors import InvalidInput
from vault.runtime import Vault
from vault.storage.db import Database
from vault.storage.models import AuditEntryRow

ADMIN = AccessContext(Actor(subject="admin-1", role="admin"), purpose="administration")
SUPPORT = AccessContext(Actor(subject="agent-1", role="support_agent"), purpose="support")
HIDE_EMAIL = "p, *, email, read:*, *, deny"


def test_a_change_applies_to_the_next_request_and_is_audited(vault: Vault) -> None:
    """After an admin adds a deny line, support no longer sees the email, even masked;
    the change is stored as version 1 and leaves a policy.change entry."""
    with vault.unit(CTX) as s:
        person = vault.customers.create(s, CustomerInput(email="ann@example.com"))
    with vault.unit(SUPPORT) as s:
        assert vault.customers.get(s, person.id).resolutions["email"] == "masked"
    with vault.unit(ADMIN) as s:
        version = vault.policies.replace(s, [*default_policy_lines(), HIDE_EMAIL])
    with vault.unit(SUPPORT) as s:
        assert vault.customers.get(s, person.id).resolutions["email"] == "hidden"
    with vault.unit(ADMIN) as s:
        assert vault.policies.current(s)[0] == version == 1
    with vault.db.transaction() as s:
        changes = s.scalars(
            select(AuditEntryRow.canonical).where(AuditEntryRow.action == "policy.change")
        ).all()
    assert [json.loads(c)["detail"] for c in changes] == [
        {"lines": len(default_policy_lines()) + 1, "version": 1}
    ]


def test_another_process_picks_the_change_up(
    vault: Vault, database: Database, settings: Settings, session_keyring: Keyring,
    audit_signer: Ed25519Signer,
) -> None:  # fmt: skip
    """A second vault on the same database (another server process) serves the old policy
    until refresh() sees the new version, then the new one."""
    other = Vault.open(settings, keyring=session_keyring, database=database, signer=audit_signer)
    with vault.unit(CTX) as s:
        person = vault.customers.create(s, CustomerInput(email="bo@example.com"))
    with vault.unit(ADMIN) as s:
        vault.policies.replace(s, [*default_policy_lines(), HIDE_EMAIL])
    with other.unit(SUPPORT) as s:
        before = other.customers.get(s, person.id).resolutions["email"]
    assert other.policies.refresh() is True
    with other.unit(SUPPORT) as s:
        after = other.customers.get(s, person.id).resolutions["email"]
    assert (before, after, other.policies.refresh()) == ("masked", "hidden", False)


def test_a_bad_policy_is_refused_whole(vault: Vault) -> None:
    """A line of an unknown type is refused with its line number; nothing is stored."""
    with pytest.raises(InvalidInput) as info, vault.unit(ADMIN) as s:
        vault.policies.replace(s, ["p2, admin, administration, allow", "q, nonsense"])
    assert "line 2" in str(info.value)
    with vault.unit(ADMIN) as s:
        assert vault.policies.current(s)[0] == 0


def test_only_administrators_change_or_read_the_policy(vault: Vault) -> None:
    """Support may neither read nor replace the policy; the refusal is audited."""
    with pytest.raises(AccessDenied), vault.unit(SUPPORT) as s:
        vault.policies.replace(s, default_policy_lines())
    with pytest.raises(AccessDenied), vault.unit(SUPPORT) as s:
        vault.policies.current(s)
    with vault.db.transaction() as s:
        denied = s.scalars(
            select(AuditEntryRow.action).where(AuditEntryRow.action == "access.denied")
        ).all()
    assert len(denied) == 2
