"""GraphQL for funnels: customers reaching each step, suppressed under the analytics
minimum group (:mod:`vault.segments.analytics`); channel analytics sits with segments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from api.graphql.context import Ctx
from api.graphql.segments import GapInput
from api.graphql.types.insights import Funnel, funnel
from vault.segments.parse import parse_gap
from vault.segments.rules import Step
from vault.types import Channel as ChannelEnum
from vault.types import InteractionType as InteractionTypeEnum

__all__ = ["AnalyticsQuery", "FunnelStepInput"]


@strawberry.input(
    description="A funnel step: an interaction of these types on these channels (none: any)."
)
class FunnelStepInput:
    types: list[InteractionTypeEnum] | None = strawberry.field(
        default=None, description="Interactions of these types (none: any type)."
    )
    channels: list[ChannelEnum] | None = strawberry.field(
        default=None, description="Interactions on these channels (none: any channel)."
    )


def _window(gap: GapInput) -> dict[str, object]:
    return {
        unit: value
        for unit in ("days", "hours", "minutes")
        if (value := getattr(gap, unit)) is not None and value is not strawberry.UNSET
    }


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        description="Customers reaching each step (step 1 in the range, each next within "
        "the window of the previous), conversion rates and median times between steps; "
        "cells under the minimum group are null, a range covering fewer is refused."
    )
    def funnel(
        self,
        info: Ctx,
        *,
        steps: Annotated[
            list[FunnelStepInput], strawberry.argument(description="The steps, in order.")
        ],
        window: Annotated[
            GapInput, strawberry.argument(description="The most time between two steps.")
        ],
        since: Annotated[datetime, strawberry.argument(description="From (inclusive).")],
        until: Annotated[datetime, strawberry.argument(description="To (exclusive).")],
        channel: Annotated[
            ChannelEnum | None,
            strawberry.argument(description="Only interactions on this channel (every step)."),
        ] = None,
    ) -> Funnel:
        ctx = info.context
        parsed = [Step(tuple(s.types or ()), tuple(s.channels or ())) for s in steps]
        gap = parse_gap(_window(window), "window")
        service = ctx.vault.segments.analytics
        report = service.funnel(ctx.session, parsed, gap, since=since, until=until, channel=channel)
        return funnel(report, service.min_group)
