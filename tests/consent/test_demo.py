"""Demo consents: a seeded, repeatable share of demo customers grants marketing purposes."""

from __future__ import annotations

from sqlalchemy import func, select

from consent import Privacy
from consent.demo import grant_demo_consents
from tests.conftest import CTX
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.models import ConsentEventRow


def test_demo_consents_are_granted_once_through_the_ledger(vault: Vault) -> None:
    """Roughly the configured share consents, marketing then sees exactly those customers,
    and a second run leaves customers that already have a ledger alone."""
    with vault.unit(CTX) as s:
        for i in range(60):
            vault.customers.create(s, CustomerInput(first_name=f"Demo{i}"))
    ledger = Privacy.of(vault).ledger
    first = grant_demo_consents(vault, ledger, seed=7)
    again = grant_demo_consents(vault, ledger, seed=7)
    assert first.customers == 60
    assert 30 <= first.granted <= 120
    assert again.granted == 0  # the same seed decides the same way for the same customer
    with vault.db.transaction() as s:
        events = s.scalar(select(func.count()).select_from(ConsentEventRow))
    assert events == first.granted + first.withdrawn + again.granted + again.withdrawn
    marketing = AccessContext(Actor("m-1", "marketing"), "marketing_email")
    with vault.unit(marketing) as s:
        listed = {c.id for c in vault.customers.page(s, first=100).items}
    with vault.unit(CTX) as s:
        effective = {
            c.id
            for c in vault.customers.page(s, first=100).items
            if any(
                st.purpose == "marketing_email" and st.effective for st in ledger.status(s, c.id)
            )
        }
    assert listed == effective
    assert listed
