"""Loading the demo dataset: a plan written through the customer and interaction
services, one transaction per chunk of customers.

Loading is idempotent for one seed: a second run finds everything present and adds
nothing. A customer whose external id already exists is reused as it is (whatever seed
created it); only interactions missing so far are recorded for it. A customer erased
since an earlier load gets nothing recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import islice

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.authorization.context import AccessContext
from vault.demo.plan import DEMO_SOURCE, plan_demo
from vault.interactions import MAX_BATCH, InteractionInput
from vault.runtime import Vault
from vault.storage.models import CustomerExternalIdRow, CustomerRow
from vault.types import CustomerStatus

__all__ = ["CHUNK_CUSTOMERS", "DEMO_TABLES", "DemoSummary", "load_demo"]

CHUNK_CUSTOMERS = 100
# The tables a demo load (with its consents) fills: ``cvault demo`` analyses them after.
DEMO_TABLES = (
    "customers",
    "customer_external_ids",
    "interactions",
    "consent_events",
    "consent_state",
)
_LIVE = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What a load added: new customers and newly recorded interactions."""

    customers: int
    interactions: int


# -- loading -----------------------------------------------------------------


def load_demo(
    vault: Vault,
    *,
    customers: int,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Write the dataset for ``seed``: one transaction per ``CHUNK_CUSTOMERS`` customers,
    interactions in batches of at most ``MAX_BATCH``. ``progress(n)`` follows each commit.

    Returns what was added; loading the same seed again adds nothing.
    """
    plan = plan_demo(customers, seed, vault.clock())
    created = recorded = 0
    while chunk := list(islice(plan, CHUNK_CUSTOMERS)):
        with vault.unit(AccessContext.system("demo")) as session:
            known = _known_customers(session, [c.external_id.external_id for c in chunk])
            items: list[InteractionInput] = []
            for planned in chunk:
                found = known.get(planned.external_id.external_id)
                if found is None:
                    # Random demo phones may repeat: kept, as real data has them (listed by
                    # `cvault customers duplicates`), rather than failing the load.
                    made = vault.customers.create(session, planned.data, check_duplicates=False)
                    customer_id = made.id
                    created += 1
                elif found[1] in _LIVE:
                    customer_id = found[0]
                else:  # erased since an earlier load: nothing is recorded for it
                    continue
                items.extend(
                    replace(
                        i, customer_id=customer_id, customer_source=None, customer_external_id=None
                    )
                    for i in planned.interactions
                )
            for start in range(0, len(items), MAX_BATCH):
                batch = items[start : start + MAX_BATCH]
                recorded += vault.interactions.record_many(session, batch).inserted
        if progress is not None:
            progress(len(chunk))
    return DemoSummary(customers=created, interactions=recorded)


def _known_customers(
    session: Session, external_ids: Sequence[str]
) -> dict[str, tuple[uuid.UUID, str]]:
    """Demo customers already stored: external id -> (customer id, status)."""
    rows = session.execute(
        select(CustomerExternalIdRow.external_id, CustomerRow.id, CustomerRow.status)
        .join(CustomerRow, CustomerRow.id == CustomerExternalIdRow.customer_id)
        .where(
            CustomerExternalIdRow.source == DEMO_SOURCE,
            CustomerExternalIdRow.external_id.in_(external_ids),
        )
    ).all()
    return {ext: (cid, status) for ext, cid, status in rows}
