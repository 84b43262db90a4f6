"""PostgreSQL two-role set-up: the application role cannot rewrite the audit trail."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from tests.conftest import CTX, POSTGRES_URL
from vault.config import Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.db import Database, make_engine
from vault.storage.migrate import upgrade
from vault.storage.roles import app_role_grants


def test_grants_refuse_bad_identifiers() -> None:
    """Role and schema names are checked before they reach SQL."""
    with pytest.raises(ValueError, match="role"):
        app_role_grants("app; DROP TABLE x")


def test_app_role_works_but_cannot_change_audit_rows(
    database_url: tuple[str, str | None],
    settings: Settings,
    session_keyring: Keyring,
    audit_signer: Ed25519Signer,
) -> None:
    """With the grants applied, the application role runs the vault (customers, audit
    entries, sequencing), yet UPDATE and DELETE on audit tables are refused by privilege
    even when the owner has switched the triggers off."""
    url, schema = database_url
    if schema is None:  # SQLite has no roles: the triggers are its only guard
        assert app_role_grants("cvault_app")[0] == "GRANT USAGE ON SCHEMA public TO cvault_app"
        return
    role = f"cvault_app_{uuid.uuid4().hex[:8]}"
    owner = make_engine(url, schema=schema)
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        upgrade(owner)  # an owner-run migration, as in production
        with owner.begin() as conn:
            for statement in app_role_grants(role, schema):
                conn.execute(text(statement))
        app_url = POSTGRES_URL.replace("postgres@", f"{role}@")
        app_vault = Vault.open(
            settings,
            keyring=session_keyring,
            signer=audit_signer,
            database=Database(make_engine(app_url, schema=schema)),
        )
        with app_vault.unit(CTX) as s:
            app_vault.customers.create(s, CustomerInput(first_name="Grant"))
        assert app_vault.audit.sequence(app_vault.db) == 1
        with owner.begin() as conn:
            conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
        refused = []
        for statement in ("UPDATE audit_entries SET actor = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(ProgrammingError), app_vault.db.engine.begin() as conn:
                conn.execute(text(statement))
            refused.append(statement.split()[0])
        assert refused == ["UPDATE", "DELETE"]
        app_vault.close()
    finally:
        owner.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()
