"""Lag-tolerant reads (issue 17 item 7): which GraphQL operations run in a read unit,
that a read unit is read-only on PostgreSQL, writes its audit entries, and fails
closed when they cannot be written. The replica itself: tests/reliability/test_replica.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse
from sqlalchemy import func, select, text

from api.graphql.routing import tolerates_lag
from audit.entries import AuditAction
from policies import Role
from tests.api.test_graphql_audit import LOG, Api
from tests.conftest import CTX
from vault.config import ConfigError, Settings
from vault.runtime import Vault
from vault.storage.db import StorageUnavailable
from vault.storage.models import AuditEntryRow


def _operation(document: str) -> OperationDefinitionNode:
    found = parse(document).definitions[0]
    assert isinstance(found, OperationDefinitionNode)
    return found


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("query { previewSegment(rule: {}) }", True),
        ("{ segments { name } __typename }", True),
        ("{ channelAnalytics(since: 1, until: 2) { channel } funnel { steps } }", True),
        ("{ auditLog { edges { cursor } } }", True),
        ("{ auditLog { edges { cursor } } customer(id: 1) { email } }", False),
        ("{ customer(id: 1) { email } }", False),
        ("{ ... on Query { auditLog { edges { cursor } } } }", False),
        ("{ __typename }", False),
        ("mutation { refreshSegments { segment } }", False),
    ],
)
def test_only_queries_of_lag_tolerant_fields_alone_go_to_the_read_unit(
    document: str, expected: bool
) -> None:
    """Segment preview and members, analytics, funnels and the audit log search tolerate
    lag; a query mixing in a profile read, a root fragment, a mutation do not."""
    assert tolerates_lag(_operation(document)) is expected


def test_a_read_unit_writes_its_audit_entries(vault: Vault, tmp_path: Path) -> None:
    """An auditLog search runs in a read unit and its own audit entry (audit.export) is
    written all the same."""
    api = Api(vault, tmp_path)
    body = api.ask(Role.COMPLIANCE_OFFICER, "compliance", LOG, first=5)
    with vault.unit(CTX) as s:
        written = s.scalar(
            select(func.count()).where(AuditEntryRow.action == AuditAction.AUDIT_EXPORT.value)
        )
    assert body.get("errors") is None
    assert written == 1


def test_a_failed_audit_append_fails_the_read_and_returns_no_data(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail-closed: when the audit entries of a read unit cannot be written, the request
    answers SERVICE_UNAVAILABLE and no entry of the log."""
    api = Api(vault, tmp_path)

    def broken(*_args: object) -> None:
        raise StorageUnavailable("disk full")

    monkeypatch.setattr(vault.audit, "write_now", broken)
    token = api.issuer.issue("officer-1", Role.COMPLIANCE_OFFICER)
    response = api.client.post(
        "/graphql",
        json={"query": LOG, "variables": {"first": 5}},
        headers={"Authorization": f"Bearer {token}", "X-Purpose": "compliance"},
    )
    assert response.status_code == 503
    assert "edges" not in response.text


def test_a_read_unit_on_postgresql_refuses_writes(vault: Vault) -> None:
    """On PostgreSQL the read unit's transaction is READ ONLY (with or without a replica):
    a write in it raises (SQLSTATE 25006: read-only storage). SQLite has no read-only
    transaction: there the read unit reads."""
    if vault.db.dialect != "postgresql":
        with vault.read_unit(CTX) as s:
            assert s.execute(text("SELECT 1")).scalar() == 1
        return
    with pytest.raises(StorageUnavailable) as raised, vault.read_unit(CTX) as s:
        s.execute(text("CREATE TABLE read_only_probe (x int)"))
    assert raised.value.reason == "read-only storage"


@pytest.mark.parametrize("name", ["CVAULT_DATABASE_DIRECT_URL", "CVAULT_DATABASE_REPLICA_URL"])
def test_a_second_database_url_needs_postgresql(name: str, tmp_path: Path) -> None:
    """A direct or replica URL beside a SQLite database, or naming SQLite, is refused with
    the setting's name; beside PostgreSQL it is kept (mapped onto psycopg 3)."""
    base = {"CVAULT_DATA_DIR": str(tmp_path)}
    pg = {**base, "CVAULT_DATABASE_URL": "postgresql://db/vault"}
    with pytest.raises(ConfigError) as beside_sqlite:
        Settings.from_env({**base, name: "postgresql://db/vault"})
    with pytest.raises(ConfigError):
        Settings.from_env({**pg, name: "sqlite:///x.db"})
    kept = Settings.from_env({**pg, name: "postgresql://other/vault"})
    assert name in str(beside_sqlite.value)
    attribute = "database_direct_url" if "DIRECT" in name else "database_replica_url"
    assert getattr(kept, attribute) == "postgresql+psycopg://other/vault"
