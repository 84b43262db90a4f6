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


# -- no lockout (issue 13, item 1) ----------------------------------------------------


def _stored_versions(vault: Vault) -> int:
    with vault.unit(ADMIN) as s:
        return len(vault.policies.history(s))


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        ([], "no p2 line grants it"),
        (["# only a comment"], "no p2 line grants it"),
        (
            [*default_policy_lines(), "p2, admin, administration, deny"],
            "(p2, admin, administration, deny) denies it",
        ),
        ([*default_policy_lines(), "p2, *, *, deny"], "(p2, *, *, deny) denies it"),
    ],
    ids=["empty", "comments only", "admin denied", "everyone denied"],
)
def test_a_policy_that_locks_the_administrator_out_is_refused(
    vault: Vault, lines: list[str], named: str
) -> None:
    """A policy that takes the administration purpose away from the admin role would leave
    no one able to change it again: it is refused, naming why, and nothing is stored."""
    with vault.unit(ADMIN) as s, pytest.raises(InvalidInput) as refused:
        vault.policies.replace(s, lines)
    assert (refused.value.field, named in refused.value.rule) == ("lines", True)
    assert _stored_versions(vault) == 0
    with vault.unit(ADMIN) as s:
        assert vault.policies.current(s)[0] == 0


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("p, auditor, email, read:clear, support, allow", "unknown role 'auditor'"),
        ("p, support_agent, shoe_size, read:clear, support, allow", "unknown resource 'shoe_size'"),
        ("p, support_agent, email, read:clear, gossip, allow", "unknown purpose 'gossip'"),
        ("p2, support_agent, gossip, allow", "unknown purpose 'gossip'"),
    ],
)
def test_a_policy_naming_unknown_roles_fields_or_purposes_is_refused(
    vault: Vault, line: str, named: str
) -> None:
    """Unknown names are refused with the rule that carries them (its text, too)."""
    with vault.unit(ADMIN) as s, pytest.raises(InvalidInput) as refused:
        vault.policies.replace(s, [*default_policy_lines(), line])
    rule = refused.value.rule
    assert (named in rule, f"({line})" in rule) == (True, True)
    assert _stored_versions(vault) == 0


def test_reset_stores_the_default_as_a_new_audited_version(vault: Vault) -> None:
    """`reset` after a change stores the shipped default as the next version: history
    lists both, the default is in force again, and both changes are audited."""
    with vault.unit(ADMIN) as s:
        vault.policies.replace(s, [*default_policy_lines(), HIDE_EMAIL])
    with vault.unit(ADMIN) as s:
        version = vault.policies.reset(s)
    with vault.unit(ADMIN) as s:
        history = [(v.version, v.actor) for v in vault.policies.history(s)]
        in_force = vault.policies.current(s)
        default = vault.policies.lines_of(s, 0)
    with vault.db.transaction() as s:
        changes = s.scalars(
            select(AuditEntryRow.canonical).where(AuditEntryRow.action == "policy.change")
        ).all()
    assert version == 2
    assert history == [(2, "admin-1"), (1, "admin-1")]
    assert in_force == (2, default)
    assert [json.loads(c)["detail"]["version"] for c in changes] == [1, 2]
