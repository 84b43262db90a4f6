"""What the detector looks for, and the thresholds it holds each principal to."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from audit.entries import AuditAction
from vault.config import Settings

__all__ = [
    "EXPORT_ACTIONS",
    "READ_ACTIONS",
    "REFUSAL_ACTIONS",
    "SYSTEM_PREFIX",
    "AlertKind",
    "Thresholds",
]

# Actions that read one customer's data (one entry per customer per request).
READ_ACTIONS = frozenset(
    {
        AuditAction.PII_ACCESS.value,
        AuditAction.PII_READ.value,
        AuditAction.INTERACTIONS_READ.value,
        AuditAction.CUSTOMER_EXPORT.value,
        AuditAction.INSIGHTS_READ.value,
    }
)
REFUSAL_ACTIONS = frozenset({AuditAction.ACCESS_DENIED.value})
# Bulk exports: of the audit trail (console downloads, GraphQL, `cvault audit export`)
# and of a customer's data. A page of the console's audit search (audit.search: 25
# entries shown, nothing downloaded) is not one.
EXPORT_ACTIONS = frozenset({AuditAction.AUDIT_EXPORT.value, AuditAction.CUSTOMER_EXPORT.value})
# The vault's own jobs read and refuse on purpose; only their exports are watched.
SYSTEM_PREFIX = "system:"


class AlertKind(StrEnum):
    DISTINCT_CUSTOMERS = "distinct_customers"  # more customers read in an hour than allowed
    REFUSALS = "refusals"  # more refusals in an hour than allowed
    EXPORT_OFF_HOURS = "export_off_hours"  # an export outside the configured hours


@dataclass(frozen=True, slots=True)
class Thresholds:
    """``distinct_floor``: customers a principal may read in one hour whatever its habits;
    above it, a principal whose trailing 7-day hourly median (of its active hours) is
    ``baseline`` may read up to ``factor`` x ``baseline``. ``export_hours``: (from, to)
    in ``time_zone``, to 24 at most, wrapping past midnight when from > to; None: any
    hour is fine."""

    distinct_floor: int = 200
    factor: float = 3.0
    refusals: int = 20
    export_hours: tuple[int, int] | None = None
    time_zone: str = "UTC"

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        return cls(
            distinct_floor=settings.alert_distinct_customers_per_hour,
            factor=settings.alert_baseline_factor,
            refusals=settings.alert_refusals_per_hour,
            export_hours=settings.alert_export_hours,
            time_zone=settings.alert_time_zone,
        )

    def distinct_limit(self, baseline: int) -> int:
        """The most distinct customers allowed in one hour with this baseline."""
        return max(self.distinct_floor, math.ceil(self.factor * baseline))

    def off_hours(self, moment: datetime) -> bool:
        """Whether an export at ``moment`` falls outside the configured hours."""
        if self.export_hours is None:
            return False
        start, end = self.export_hours
        hour = moment.astimezone(ZoneInfo(self.time_zone)).hour
        inside = start <= hour < end if start < end else hour >= start or hour < end
        return not inside


def baseline_of(hourly_counts: Iterable[int]) -> int:
    """The median of a principal's counts over the hours it was active (0 if never)."""
    counts = [c for c in hourly_counts if c > 0]
    return math.ceil(statistics.median(counts)) if counts else 0
