"""Funnels and channel analytics under k-anonymity (issue 18, item 3), on SQLite and
PostgreSQL: cells under k suppressed, the complement rule, the refusal of small
populations, funnel counts, rates and medians against a brute-force computation in
Python, the policy gate, and audit entries without customer ids."""

from __future__ import annotations

import itertools
import random
import statistics
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from audit.entries import AuditAction
from policies import AccessDenied
from tests.conftest import CTX
from vault.authorization.context import AccessContext, Actor
from vault.customers import CustomerInput
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.segments.analytics import ChannelReport, GroupTooSmall
from vault.segments.rules import Gap, GapUnit, Step
from vault.storage.models import AuditEntryRow
from vault.types import Channel, InteractionType

DAY = timedelta(days=1)
ANALYST = AccessContext(Actor("analyst-1", "analyst"), "analytics")
SUPPORT = AccessContext(Actor("agent-1", "support_agent"), "support")
Touch = tuple[str, str, datetime]  # (type, channel, occurred_at)


def _people(vault: Vault, n: int) -> list[uuid.UUID]:
    with vault.unit(CTX) as s:
        return [vault.customers.create(s, CustomerInput()).id for _ in range(n)]


def _record(vault: Vault, touches: dict[uuid.UUID, list[Touch]]) -> None:
    with vault.unit(CTX) as s:
        vault.interactions.record_many(
            s,
            [
                InteractionInput(
                    customer_id=cid,
                    type=kind,
                    channel=channel,
                    occurred_at=at,
                    amount=Decimal(10) if kind == "purchase" else None,
                    currency="EUR" if kind == "purchase" else None,
                )
                for cid, rows in touches.items()
                for kind, channel, at in rows
            ],
        )


def _channels(vault: Vault, since: datetime, until: datetime) -> dict[Channel, ChannelReport]:
    with vault.unit(ANALYST) as s:
        return {r.channel: r for r in vault.segments.channel_analytics(s, since, until)}


def test_a_channel_under_k_is_suppressed_and_so_is_the_next_smallest(vault: Vault) -> None:
    """k=10: web 12 customers, email 11, sms 3. sms is suppressed (null figures); since
    the total could be learned elsewhere, the next smallest row (email) is suppressed too;
    web is shown, but its 2 buyers are under k, so its conversion figures are null."""
    now = vault.clock()
    people = _people(vault, 26)
    web, email, sms = people[:12], people[12:23], people[23:]
    touches: dict[uuid.UUID, list[Touch]] = {c: [("page_view", "web", now - DAY)] for c in web}
    touches.update({c: [("email_open", "email", now - DAY)] for c in email})
    touches.update({c: [("sms_click", "sms", now - DAY)] for c in sms})
    for c in web[:2]:
        touches[c].append(("purchase", "web", now - DAY))
    _record(vault, touches)
    rows = _channels(vault, now - 7 * DAY, now)
    got = {ch: (r.suppressed, r.customers, r.interactions) for ch, r in rows.items()}
    assert got == {
        Channel.WEB: (False, 12, 14),
        Channel.EMAIL: (True, None, None),
        Channel.SMS: (True, None, None),
    }
    shown = rows[Channel.WEB]
    assert (
        shown.conversions_suppressed, shown.conversions, shown.converting_customers,
        shown.conversion_rate, shown.revenue_minor,
    ) == (True, None, None, None, None)  # fmt: skip


def test_two_channels_12_and_3_suppress_sms_and_its_complement(vault: Vault) -> None:
    """The brief's case: web 12, sms 3, k=10. sms is under k; web alone would equal the
    total minus sms, so it is suppressed as well: nobody's channel can be inferred."""
    now = vault.clock()
    people = _people(vault, 15)
    touches = {c: [("page_view", "web", now - DAY)] for c in people[:12]}
    touches.update({c: [("sms_click", "sms", now - DAY)] for c in people[12:]})
    _record(vault, touches)
    rows = _channels(vault, now - 7 * DAY, now)
    assert {ch: r.suppressed for ch, r in rows.items()} == {Channel.WEB: True, Channel.SMS: True}


def test_a_window_isolating_fewer_than_k_customers_is_refused(vault: Vault) -> None:
    """12 customers in the week but 3 on the last day: the day is refused (BAD_USER_INPUT,
    no count in the message), the week answered; an empty window is answered (empty)."""
    now = vault.clock()
    people = _people(vault, 12)
    touches = {c: [("page_view", "web", now - 3 * DAY)] for c in people}
    for c in people[:3]:
        touches[c].append(("page_view", "web", now - DAY / 2))
    _record(vault, touches)
    with pytest.raises(GroupTooSmall) as refused, vault.unit(ANALYST) as s:
        vault.segments.channel_analytics(s, now - DAY, now)
    assert refused.value.code == "BAD_USER_INPUT"
    assert "3" not in str(refused.value)
    assert list(_channels(vault, now - 7 * DAY, now)) == [Channel.WEB]
    assert _channels(vault, now - 30 * DAY, now - 20 * DAY) == {}
    steps = [Step((InteractionType.PAGE_VIEW,))]
    with pytest.raises(GroupTooSmall), vault.unit(ANALYST) as s:
        vault.segments.analytics.funnel(s, steps, Gap(1, GapUnit.DAYS), since=now - DAY, until=now)


# -- funnels against a brute-force reference --------------------------------------------


def _reference(
    data: dict[uuid.UUID, list[Touch]],
    kinds: list[str],
    window: timedelta,
    since: datetime,
    until: datetime,
) -> list[tuple[int, float | None]]:
    """Every chain of distinct interactions, tried one by one: per step, the customers
    reaching it and the median of their shortest gap from the previous step."""
    out: list[tuple[int, float | None]] = []
    for depth in range(1, len(kinds) + 1):
        gaps = []
        for rows in data.values():
            best: float | None = None
            for chain in itertools.permutations(range(len(rows)), depth):
                picked = [rows[i] for i in chain]
                if any(p[0] != kinds[j] for j, p in enumerate(picked)):
                    continue
                if not since <= picked[0][2] < until or any(p[2] >= until for p in picked):
                    continue
                pairs = list(itertools.pairwise(picked))
                if any(not a[2] <= b[2] <= a[2] + window for a, b in pairs):
                    continue
                gap = (picked[-1][2] - picked[-2][2]).total_seconds() if depth > 1 else 0.0
                best = gap if best is None else min(best, gap)
            if best is not None:
                gaps.append(best)
        out.append((len(gaps), statistics.median(gaps) if gaps and depth > 1 else None))
    return out


def _shop(vault: Vault, n: int, seed: int) -> dict[uuid.UUID, list[Touch]]:
    """n customers with random views, carts and purchases over 20 days (to the µs)."""
    rng = random.Random(seed)
    now = vault.clock()
    data: dict[uuid.UUID, list[Touch]] = {}
    for cid in _people(vault, n):
        rows: list[Touch] = []
        for kind, most in (("page_view", 4), ("cart_add", 3), ("purchase", 2)):
            for _ in range(rng.randint(0 if kind != "page_view" else 1, most)):
                at = now - timedelta(microseconds=rng.randint(0, 20 * 86_400 * 10**6))
                rows.append((kind, "web", at))
        data[cid] = rows
    _record(vault, data)
    return data


KINDS = ["page_view", "cart_add", "purchase"]
STEPS = [Step((InteractionType(k),)) for k in KINDS]


def test_funnel_counts_rates_and_medians_match_a_brute_force_computation(vault: Vault) -> None:
    """With k=1 nothing is hidden: per step the customers, the rates and the median of
    the shortest gaps equal the Python reference (to the microsecond)."""
    data = _shop(vault, 25, seed=7)
    vault.segments.analytics.min_group = 1
    now = vault.clock()
    since, until = now - 15 * DAY, now - DAY
    with vault.unit(ANALYST) as s:
        report = vault.segments.analytics.funnel(
            s, STEPS, Gap(3, GapUnit.DAYS), since=since, until=until
        )
    expected = _reference(data, KINDS, 3 * DAY, since, until)
    assert expected == [(st.customers, st.median_seconds_from_previous) for st in report.steps]
    assert expected[0][0] > expected[1][0] > expected[2][0] > 0  # the data exercises it
    counts = [n for n, _ in expected]
    assert [1.0, counts[1] / counts[0], counts[2] / counts[1]] == [
        st.conversion_from_previous for st in report.steps
    ]
    assert [c / counts[0] for c in counts] == [st.conversion_from_start for st in report.steps]


def test_funnel_steps_under_k_are_suppressed_with_their_rates_and_medians(
    vault: Vault,
) -> None:
    """k=10 on the same kind of data: the steps with 10 or more customers are shown as
    computed; a step with 1-9 is null and suppressed, and so are its rates and median."""
    data = _shop(vault, 25, seed=7)
    now = vault.clock()
    since, until = now - 15 * DAY, now - DAY
    expected = _reference(data, KINDS, 3 * DAY, since, until)
    with vault.unit(ANALYST) as s:
        report = vault.segments.analytics.funnel(
            s, STEPS, Gap(3, GapUnit.DAYS), since=since, until=until
        )
    got = [(st.suppressed, st.customers, st.median_seconds_from_previous) for st in report.steps]
    want = [(True, None, None) if 0 < n < 10 else (False, n, median) for n, median in expected]
    assert want == got
    assert any(flag for flag, _, _ in want)  # suppression happened
    assert not want[0][0]
    hidden = [st for st in report.steps if st.suppressed]
    assert all(st.conversion_from_start is None for st in hidden)


def test_funnel_and_channel_analytics_are_behind_the_segments_read_grant(vault: Vault) -> None:
    """A support agent (no segments grant) is refused both; the analyst is not."""
    now = vault.clock()
    with pytest.raises(AccessDenied), vault.unit(SUPPORT) as s:
        vault.segments.analytics.funnel(s, STEPS, Gap(1, GapUnit.DAYS), since=now - DAY, until=now)
    with pytest.raises(AccessDenied), vault.unit(SUPPORT) as s:
        vault.segments.channel_analytics(s, now - DAY, now)
    with vault.unit(ANALYST) as s:
        assert (
            vault.segments.analytics.funnel(
                s, STEPS, Gap(1, GapUnit.DAYS), since=now - DAY, until=now
            ).population
            == 0
        )


def test_analytics_reads_are_audited_as_aggregates_without_customer_ids(vault: Vault) -> None:
    """The insights.read entries carry counts only: no customer id, in the column or in
    the signed entry."""
    data = _shop(vault, 12, seed=3)
    now = vault.clock()
    with vault.unit(ANALYST) as s:
        vault.segments.analytics.funnel(
            s, STEPS, Gap(3, GapUnit.DAYS), since=now - 30 * DAY, until=now
        )
        vault.segments.channel_analytics(s, now - 30 * DAY, now)
    with vault.unit(CTX) as s:
        rows = s.execute(
            select(AuditEntryRow.customer_id, AuditEntryRow.canonical).where(
                AuditEntryRow.action == AuditAction.INSIGHTS_READ.value
            )
        ).all()
    assert len(rows) == 2
    assert [cid for cid, _ in rows] == [None, None]
    for _, canonical in rows:
        assert not any(str(cid).encode() in canonical or cid.hex.encode() in canonical
                       for cid in data)  # fmt: skip
