"""``WebhookService.rotate_secret``: a new secret, returned once and derived (never
stored), for the webhook's own purpose only; audited with ids and the version. On SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from audit.entries import AuditAction
from policies import AccessDenied
from tests.conftest import CTX
from tests.vault.test_webhooks import EMAIL, SMS
from vault.runtime import Vault
from vault.segments.webhooks import WebhookNotFound
from vault.storage.models import AuditEntryRow

GOLD = {"attribute": {"field": "tier", "op": "eq", "value": "gold"}}


def test_rotation_gives_a_new_secret_for_the_webhooks_own_purpose(vault: Vault) -> None:
    """Each rotation returns the secret of the next version, never an earlier one; a
    caller of another purpose is refused, an unknown id is not found; the audit entry
    holds the webhook id, the operation and the version, not the secret."""
    with vault.unit(CTX) as s:
        segment = vault.segments.create(s, name="gold", definition=GOLD)
        new = vault.webhooks.create(
            s, url="http://h.example/", segment_ids=[segment.id], purpose="marketing_email"
        )
    hook = new.webhook.id
    with vault.unit(EMAIL) as s:
        second = vault.webhooks.rotate_secret(s, hook)
    with vault.unit(CTX) as s:
        third = vault.webhooks.rotate_secret(s, hook)
    secrets = vault.webhooks.secrets
    assert [new.secret, second.secret, third.secret] == [
        secrets.secret(hook, 1), secrets.secret(hook, 2), secrets.secret(hook, 3),
    ]  # fmt: skip
    assert len({new.secret, second.secret, third.secret}) == 3
    assert second.secret not in repr(second)
    with pytest.raises(AccessDenied), vault.unit(SMS) as s:
        vault.webhooks.rotate_secret(s, hook)
    with pytest.raises(WebhookNotFound), vault.unit(CTX) as s:
        vault.webhooks.rotate_secret(s, uuid.uuid4())
    with vault.db.transaction() as s:
        entries = [
            json.loads(c)["detail"]
            for c in s.scalars(
                select(AuditEntryRow.canonical)
                .where(AuditEntryRow.action == AuditAction.WEBHOOK_CHANGE.value)
                .order_by(AuditEntryRow.id)
            )
        ]
    assert [e for e in entries if e["op"] == "rotate_secret"] == [
        {"webhook": str(hook), "op": "rotate_secret", "version": 2},
        {"webhook": str(hook), "op": "rotate_secret", "version": 3},
    ]
    assert all(third.secret not in json.dumps(e) for e in entries)
