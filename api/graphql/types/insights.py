"""Insights' types: a customer's metrics (RFM, lifetime value, engagement) and the
per-channel analytics across customers, with money in major units."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from vault.money import from_minor
from vault.segments.metrics import ChannelStats as ChannelStatsRecord
from vault.segments.metrics import CustomerMetrics as CustomerMetricsRecord
from vault.types import Channel as ChannelEnum

__all__ = ["ChannelStats", "CustomerMetrics", "Money", "channel_stats", "customer_metrics"]


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


@strawberry.type(description="One channel over a time range, across customers; no PII.")
class ChannelStats:
    channel: ChannelEnum = strawberry.field(description="The channel.")
    interactions: int = strawberry.field(description="Interactions on it in the range.")
    customers: int = strawberry.field(description="Customers who interacted on it.")
    conversions: int = strawberry.field(description="Purchases on it.")
    converting_customers: int = strawberry.field(description="Customers who purchased on it.")
    conversion_rate: float = strawberry.field(
        description="Converting customers over customers (0 to 1)."
    )
    revenue: list[Money] = strawberry.field(description="Purchase amounts, per currency.")


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


def channel_stats(stats: ChannelStatsRecord) -> ChannelStats:
    return ChannelStats(
        channel=stats.channel,
        interactions=stats.interactions,
        customers=stats.customers,
        conversions=stats.conversions,
        converting_customers=stats.converting_customers,
        conversion_rate=stats.conversion_rate,
        revenue=[
            Money(currency=c, amount=from_minor(minor, c))
            for c, minor in sorted(stats.revenue_minor.items())
        ],
    )
