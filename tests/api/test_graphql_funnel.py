"""The funnel query over GraphQL (issue 18, item 3): steps, a window and a range give
counts, rates and medians; a range covering fewer customers than k is refused with
BAD_USER_INPUT. The k-anonymity rules themselves: tests/vault/test_analytics.py."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from policies import Role
from tests.api.test_graphql_policy import Gateway, gateway
from tests.conftest import CTX, FrozenClock
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault

__all__ = ["gateway"]

FUNNEL = """query($s: DateTime!, $u: DateTime!) {
  funnel(steps: [{types: [PAGE_VIEW]}, {types: [PURCHASE]}], window: {hours: 2},
         since: $s, until: $u) {
    population minGroup steps { index suppressed customers conversionFromPrevious
                                medianSecondsFromPrevious } } }"""


def _shop(vault: Vault, clock: FrozenClock, viewers: int, buyers: int) -> None:
    """``viewers`` customers view a page a day ago; the first ``buyers`` buy 30 minutes
    later."""
    at = clock.now - timedelta(days=1)
    with vault.unit(CTX) as s:
        ids = [vault.customers.create(s, CustomerInput()).id for _ in range(viewers)]
        rows = [InteractionInput(customer_id=c, channel="web", type="page_view", occurred_at=at)
                for c in ids]  # fmt: skip
        rows += [
            InteractionInput(customer_id=c, channel="web", type="purchase",
                             occurred_at=at + timedelta(minutes=30), amount=Decimal(5),
                             currency="EUR")
            for c in ids[:buyers]
        ]  # fmt: skip
        vault.interactions.record_many(s, rows)


def _funnel(gw: Gateway, clock: FrozenClock) -> dict[str, Any]:
    body: dict[str, Any] = gw.post(
        FUNNEL,
        {"s": (clock.now - timedelta(days=7)).isoformat(), "u": clock.now.isoformat()},
        role=Role.ANALYST,
        purpose="analytics",
    ).json()
    return body


def test_a_funnel_over_graphql_suppresses_the_small_step(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """12 viewers, 4 of whom buy 30 minutes later; k=10: step 1 is shown (12), step 2
    is suppressed with its rate and median."""
    _shop(vault, clock, 12, 4)
    assert _funnel(gateway, clock)["data"]["funnel"] == {
        "population": 12,
        "minGroup": 10,
        "steps": [
            {"index": 1, "suppressed": False, "customers": 12, "conversionFromPrevious": 1.0,
             "medianSecondsFromPrevious": None},
            {"index": 2, "suppressed": True, "customers": None, "conversionFromPrevious": None,
             "medianSecondsFromPrevious": None},
        ],
    }  # fmt: skip
    vault.segments.analytics.min_group = 2
    step = _funnel(gateway, clock)["data"]["funnel"]["steps"][1]
    assert (
        step["customers"], step["conversionFromPrevious"], step["medianSecondsFromPrevious"]
    ) == (4, 4 / 12, 1800.0)  # fmt: skip


def test_a_funnel_over_too_few_customers_is_refused(
    vault: Vault, gateway: Gateway, clock: FrozenClock
) -> None:
    """3 viewers, k=10: BAD_USER_INPUT, and no data."""
    _shop(vault, clock, 3, 1)
    body = _funnel(gateway, clock)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
