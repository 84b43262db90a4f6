"""Stored attributes against the declarations in force, for the operator
(``cvault attributes``): which stored names are not declared (and how many customers hold
each), which names declared PII still hold values in clear (stored before they were
declared PII), and sealing those values under each customer's data key.

Names are counted, values are never read out: the report holds names and numbers only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from policies.attributes import AttributeRegistry, attribute_resource
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import buffer_of
from vault.customers.custom_attributes import seal_value
from vault.customers.models import READABLE
from vault.keys import DataKeys
from vault.storage.models import CustomerRow

__all__ = ["AttributeCensus", "census", "seal_clear_pii"]

_BATCH = 500


@dataclass(frozen=True, slots=True)
class AttributeCensus:
    """Per name, how many live customers hold it: undeclared names, and names declared
    PII whose values are still in clear."""

    undeclared: dict[str, int]
    clear_pii: dict[str, int]


def census(session: Session, registry: AttributeRegistry) -> AttributeCensus:
    """Count the stored attribute names the declarations do not cover."""
    undeclared: Counter[str] = Counter()
    clear_pii: Counter[str] = Counter()
    rows = session.execute(
        select(CustomerRow.attributes, CustomerRow.sealed_attributes).where(
            CustomerRow.status.in_(READABLE)
        )
    ).yield_per(_BATCH)
    for clear, sealed in rows:
        for name in {*(clear or {}), *(sealed or {})}:
            info = registry.get(name)
            if info is None:
                undeclared[name] += 1
            elif info.pii and name in (clear or {}):
                clear_pii[name] += 1
    return AttributeCensus(dict(sorted(undeclared.items())), dict(sorted(clear_pii.items())))


def seal_clear_pii(
    session: Session, registry: AttributeRegistry, keys: DataKeys, authz: Authorizer
) -> int:
    """Seal every clear value of an attribute declared PII (moved from ``attributes`` to
    ``sealed_attributes``, a sealed value already there wins); audited per customer.
    Returns how many customers changed."""
    pii = set(registry.pii_names)
    authz.check_writes(session, [attribute_resource(n) for n in sorted(pii)])
    changed = 0
    candidates = session.scalars(
        select(CustomerRow).where(CustomerRow.status.in_(READABLE)).with_for_update()
    ).all()
    for row in candidates:
        names = sorted(pii & set(row.attributes or {}))
        if not names:
            continue
        key = keys.get(session, row.id)
        sealed = dict(row.sealed_attributes or {})
        for name in names:
            sealed.setdefault(name, seal_value(key, name, row.attributes[name]))
        row.attributes = {k: v for k, v in row.attributes.items() if k not in pii}
        row.sealed_attributes = sealed
        buffer_of(session).add(
            AuditAction.CUSTOMER_UPDATE,
            customer_id=row.id,
            fields={attribute_resource(n): "sealed" for n in names},
        )
        changed += 1
    session.flush()
    return changed
