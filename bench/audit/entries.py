"""The audit entries every measure writes, verifies or exports: varied and deterministic."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from audit.entries import AuditAction, AuditEntry, Outcome

_BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)

_PEOPLE = (
    [(f"agent-{i}", "support_agent", "support") for i in range(40)]
    + [(f"analyst-{i}", "marketing_analyst", "marketing") for i in range(8)]
    + [("svc-ingest", "service", "ingest"), ("officer-1", "compliance_officer", "compliance")]
)
_ACTIONS = [
    (AuditAction.PII_READ, 600), (AuditAction.INTERACTIONS_READ, 150),
    (AuditAction.CUSTOMER_UPDATE, 80), (AuditAction.CUSTOMER_CREATE, 50),
    (AuditAction.INTERACTIONS_RECORD, 50), (AuditAction.CUSTOMER_LOOKUP, 30),
    (AuditAction.CONSENT_CHANGE, 20), (AuditAction.ACCESS_DENIED, 10),
    (AuditAction.TOKEN_FAILURE, 5), (AuditAction.CUSTOMER_EXPORT, 5),
]  # fmt: skip
_PII = ("email", "phone", "first_name", "last_name", "birth_date", "address")
_RESOLUTIONS = ("clear", "clear", "clear", "masked", "hidden")
_CUSTOMERS = 100_000


def _customer(index: int) -> uuid.UUID:
    return uuid.UUID(int=(0x5A17 << 100) | index, version=4)


def make_entries(count: int, seed: int, start: int = 0) -> list[AuditEntry]:
    """Varied, deterministic entries (actors, actions, customers, fields, details)."""
    rng = random.Random(seed)
    actions = [a for a, _ in _ACTIONS]
    weights = [w for _, w in _ACTIONS]
    entries = []
    for n, action in enumerate(rng.choices(actions, weights, k=count), start=start):
        actor, role, purpose = _PEOPLE[rng.randrange(len(_PEOPLE))]
        customer: uuid.UUID | None = _customer(rng.randrange(_CUSTOMERS))
        fields: dict[str, str] = {}
        detail: dict[str, Any] = {}
        outcome = Outcome.SUCCESS
        if action is AuditAction.PII_READ:
            fields = {f: rng.choice(_RESOLUTIONS) for f in rng.sample(_PII, rng.randint(2, 6))}
        elif action in (AuditAction.CUSTOMER_UPDATE, AuditAction.CUSTOMER_CREATE):
            fields = {f: rng.choice(("written", "cleared")) for f in rng.sample(_PII, 2)}
        elif action in (AuditAction.INTERACTIONS_RECORD, AuditAction.INTERACTIONS_READ):
            detail = {"count": rng.randrange(1, 200)}
        elif action is AuditAction.CONSENT_CHANGE:
            detail = {
                "channel": rng.choice(("email", "sms", "phone")),
                "granted": rng.random() < 0.7,
            }
        elif action is AuditAction.ACCESS_DENIED:
            outcome, detail = Outcome.DENIED, {"reason": "policy", "rule": "p.support.address"}
        elif action is AuditAction.TOKEN_FAILURE:
            customer, outcome, detail = None, Outcome.FAILED, {"reason": "expired"}
        entries.append(
            AuditEntry(
                action=action,
                outcome=outcome,
                actor=actor,
                role=role,
                purpose=purpose,
                request_id=f"req-{rng.getrandbits(64):016x}",
                time=_BASE_TIME + timedelta(milliseconds=n),
                customer_id=customer,
                fields=fields,
                client=f"c:{rng.getrandbits(64):016x}",
                detail=detail,
                entry_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            )
        )
    return entries


def floor_row(e: AuditEntry) -> tuple[uuid.UUID, datetime, str, str, uuid.UUID | None, bytes]:
    """The columns of the floor's plain table, for one entry."""
    return (e.entry_id, e.time, e.actor, e.action.value, e.customer_id, e.canonical())
