"""Insights' types: a customer's metrics (RFM, lifetime value, engagement) and the
per-channel analytics across customers, with money in major units."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from vault.money import from_minor
from vault.segments.analytics import ChannelReport, FunnelReport
from vault.segments.metrics import CustomerMetrics as CustomerMetricsRecord
from vault.types import Channel as ChannelEnum

__all__ = [
    "ChannelStats",
    "CustomerMetrics",
    "Funnel",
    "FunnelStep",
    "Money",
    "channel_stats",
    "customer_metrics",
    "funnel",
]


@strawberry.type(description="A customer's metrics, as last computed (see docs).")
class CustomerMetrics:
    computed_at: datetime = strawberry.field(description="When the metrics were computed.")
    currency: str = strawberry.field(description="The ISO 4217 currency of the amounts.")
    first_interaction_at: datetime | None = strawberry.field(
        description="The customer's first interaction."
    )
    last_interaction_at: datetime | None = strawberry.field(
        description="The customer's last interaction."
    )
    last_purchase_at: datetime | None = strawberry.field(description="The last purchase.")
    recency_days: int | None = strawberry.field(
        description="Whole days since the last purchase (RFM recency)."
    )
    days_since_last_interaction: int | None = strawberry.field(
        description="Whole days since the last interaction of any kind."
    )
    frequency: int = strawberry.field(description="Purchases in the last 365 days (RFM frequency).")
    monetary: Decimal = strawberry.field(
        description="Purchases less refunds in the last 365 days (RFM monetary)."
    )
    lifetime_value: Decimal = strawberry.field(description="Purchases less refunds, ever.")
    purchase_count: int = strawberry.field(description="Purchases, ever.")
    engagement_score: int = strawberry.field(
        description="The last 90 days' interactions weighted by kind (a purchase 5, a view 1)."
    )
    r_score: int = strawberry.field(description="Recency quintile, 1 (lowest) to 5.")
    f_score: int = strawberry.field(description="Frequency quintile, 1 (lowest) to 5.")
    m_score: int = strawberry.field(description="Monetary quintile, 1 (lowest) to 5.")


@strawberry.type(description="An amount of one currency, in major units.")
class Money:
    currency: str = strawberry.field(description="ISO 4217 code.")
    amount: Decimal = strawberry.field(description="The amount, in major units (12.50).")


_OLD = "0 when suppressed (see suppressed); use {} instead."


@strawberry.type(
    description="One channel over a time range, across customers; no PII. Cells of fewer "
    "customers than the analytics minimum group are null (docs/segments.md)."
)
class ChannelStats:
    channel: ChannelEnum = strawberry.field(description="The channel.")
    suppressed: bool = strawberry.field(
        description="Its customers are under the minimum group (or it hides a complement): "
        "every figure is null."
    )
    conversions_suppressed: bool = strawberry.field(
        description="Its converting customers are under the minimum group: the conversion "
        "figures and revenue are null."
    )
    interaction_count: int | None = strawberry.field(
        description="Interactions on it in the range; null when suppressed."
    )
    customer_count: int | None = strawberry.field(
        description="Customers who interacted on it; null when suppressed."
    )
    conversion_count: int | None = strawberry.field(
        description="Purchases on it; null when suppressed."
    )
    converting_customer_count: int | None = strawberry.field(
        description="Customers who purchased on it; null when suppressed."
    )
    conversion_ratio: float | None = strawberry.field(
        description="Converting customers over customers (0 to 1); null when suppressed."
    )
    revenue_by_currency: list[Money] | None = strawberry.field(
        description="Purchase amounts, per currency; null when suppressed."
    )
    interactions: int = strawberry.field(
        description="Interactions on it in the range.",
        deprecation_reason=_OLD.format("interactionCount"),
    )
    customers: int = strawberry.field(
        description="Customers who interacted on it.",
        deprecation_reason=_OLD.format("customerCount"),
    )
    conversions: int = strawberry.field(
        description="Purchases on it.", deprecation_reason=_OLD.format("conversionCount")
    )
    converting_customers: int = strawberry.field(
        description="Customers who purchased on it.",
        deprecation_reason=_OLD.format("convertingCustomerCount"),
    )
    conversion_rate: float = strawberry.field(
        description="Converting customers over customers (0 to 1).",
        deprecation_reason=_OLD.format("conversionRatio"),
    )
    revenue: list[Money] = strawberry.field(
        description="Purchase amounts, per currency.",
        deprecation_reason="Empty when suppressed (see suppressed); use revenueByCurrency.",
    )


@strawberry.type(description="One step of a funnel; null figures are suppressed.")
class FunnelStep:
    index: int = strawberry.field(description="The step's place, from 1.")
    suppressed: bool = strawberry.field(
        description="Its customers are under the minimum group: its figures are null."
    )
    customers: int | None = strawberry.field(description="Customers who reached it.")
    conversion_from_previous: float | None = strawberry.field(
        description="Its customers over the previous step's (0 to 1; 1 for step 1)."
    )
    conversion_from_start: float | None = strawberry.field(
        description="Its customers over step 1's (0 to 1)."
    )
    median_seconds_from_previous: float | None = strawberry.field(
        description="The median over its customers of the shortest time from the previous "
        "step, in seconds (null for step 1)."
    )


@strawberry.type(description="Customers reaching each step of a funnel; no PII.")
class Funnel:
    population: int = strawberry.field(
        description="Customers who did step 1 in the range (0, or at least the minimum group)."
    )
    min_group: int = strawberry.field(
        description="The minimum group: cells of fewer customers are suppressed."
    )
    steps: list[FunnelStep] = strawberry.field(description="The steps, in order.")


def customer_metrics(record: CustomerMetricsRecord) -> CustomerMetrics:
    money = record.currency
    return CustomerMetrics(
        computed_at=record.computed_at,
        currency=money,
        first_interaction_at=record.first_interaction_at,
        last_interaction_at=record.last_interaction_at,
        last_purchase_at=record.last_purchase_at,
        recency_days=record.recency_days,
        days_since_last_interaction=record.days_since_last_interaction,
        frequency=record.frequency,
        monetary=from_minor(record.monetary_minor, money),
        lifetime_value=from_minor(record.lifetime_value_minor, money),
        purchase_count=record.purchase_count,
        engagement_score=record.engagement_score,
        r_score=record.r_score,
        f_score=record.f_score,
        m_score=record.m_score,
    )


def _money(minor: dict[str, int] | None) -> list[Money] | None:
    if minor is None:
        return None
    return [Money(currency=c, amount=from_minor(m, c)) for c, m in sorted(minor.items())]


def channel_stats(stats: ChannelReport) -> ChannelStats:
    return ChannelStats(
        channel=stats.channel,
        suppressed=stats.suppressed,
        conversions_suppressed=stats.conversions_suppressed,
        interaction_count=stats.interactions,
        customer_count=stats.customers,
        conversion_count=stats.conversions,
        converting_customer_count=stats.converting_customers,
        conversion_ratio=stats.conversion_rate,
        revenue_by_currency=_money(stats.revenue_minor),
        interactions=stats.interactions or 0,
        customers=stats.customers or 0,
        conversions=stats.conversions or 0,
        converting_customers=stats.converting_customers or 0,
        conversion_rate=stats.conversion_rate or 0.0,
        revenue=_money(stats.revenue_minor) or [],
    )


def funnel(report: FunnelReport, min_group: int) -> Funnel:
    return Funnel(
        population=report.population,
        min_group=min_group,
        steps=[
            FunnelStep(
                index=s.index,
                suppressed=s.suppressed,
                customers=s.customers,
                conversion_from_previous=s.conversion_from_previous,
                conversion_from_start=s.conversion_from_start,
                median_seconds_from_previous=s.median_seconds_from_previous,
            )
            for s in report.steps
        ],
    )
