"""Demo consents: a realistic share of the demo customers granted marketing purposes.

Without them a marketing caller would see no demo customer at all. Each grant goes
through the ledger (event, state, signed receipt, audit entry) with method ``import``,
decided by a seeded generator per customer so the same seed gives the same consents.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import exists, select

from consent.ledger import ConsentChange, ConsentLedger
from vault.authorization.context import AccessContext
from vault.runtime import Vault
from vault.storage.models import ConsentEventRow, CustomerRow
from vault.types import ConsentChannel, ConsentMethod, ConsentState, CustomerStatus

__all__ = ["DEMO_RATES", "DemoConsents", "grant_demo_consents"]

# Share of customers who granted each purpose, and of those who later withdrew it.
DEMO_RATES: dict[str, tuple[float, float]] = {
    "marketing_email": (0.6, 0.08),
    "marketing_sms": (0.25, 0.05),
    "personalization": (0.45, 0.05),
}
_NOTICE = "demo-2026-11"


@dataclass(frozen=True, slots=True)
class DemoConsents:
    customers: int
    granted: int
    withdrawn: int


def grant_demo_consents(vault: Vault, ledger: ConsentLedger, *, seed: int) -> DemoConsents:
    """Give every live customer without any consent event its demo consents."""
    context = AccessContext.system("demo")
    with vault.db.transaction() as session:
        ids = session.scalars(
            select(CustomerRow.id)
            .where(CustomerRow.status == CustomerStatus.ACTIVE.value)
            .where(~exists().where(ConsentEventRow.customer_id == CustomerRow.id))
            .order_by(CustomerRow.created_at, CustomerRow.id)
        ).all()
    granted = withdrawn = 0
    for start in range(0, len(ids), 500):
        with vault.unit(context) as session:
            for cid in ids[start : start + 500]:
                rng = random.Random(f"{seed}:{cid}")  # noqa: S311 - demo data, not secrets
                for purpose, (grant_rate, withdraw_rate) in DEMO_RATES.items():
                    if rng.random() >= grant_rate:
                        continue
                    ledger.record(session, cid, _change(purpose, ConsentState.GRANTED))
                    granted += 1
                    if rng.random() < withdraw_rate:
                        ledger.record(session, cid, _change(purpose, ConsentState.WITHDRAWN))
                        withdrawn += 1
    return DemoConsents(customers=len(ids), granted=granted, withdrawn=withdrawn)


def _change(purpose: str, state: ConsentState) -> ConsentChange:
    return ConsentChange(
        purpose=purpose,
        state=state.value,
        source_channel=ConsentChannel.WEB.value,
        notice_version=_NOTICE,
        method=ConsentMethod.IMPORT.value,
    )
