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
    computed_at: datetime
    currency: str
    first_interaction_at: datetime | None
    last_interaction_at: datetime | None
    last_purchase_at: datetime | None
    recency_days: int | None
    days_since_last_interaction: int | None
    frequency: int
    monetary: Decimal
    lifetime_value: Decimal
    purchase_count: int
    engagement_score: int
    r_score: int
    f_score: int
    m_score: int


@strawberry.type
class Money:
    currency: str
    amount: Decimal


@strawberry.type(description="One channel over a time range, across customers; no PII.")
class ChannelStats:
    channel: ChannelEnum
    interactions: int
    customers: int
    conversions: int
    converting_customers: int
    conversion_rate: float
    revenue: list[Money]


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
