"""GraphQL for webhooks: the endpoints that hear segment enter/leave events (create,
list, disable, rotate the signing secret)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from api.graphql.context import Ctx, atomic
from api.graphql.types.common import IdArg, parse_id
from vault.segments.webhooks import Webhook as WebhookRecord

__all__ = ["NewWebhookEndpoint", "WebhookEndpoint", "WebhookMutation", "WebhookQuery"]


@strawberry.type(description="An endpoint that hears segment enter/leave events.")
class WebhookEndpoint:
    id: strawberry.ID = strawberry.field(description="The webhook's id.")
    url: str = strawberry.field(description="Where events are sent.")
    purpose: str = strawberry.field(description="The purpose it hears for.")
    segment_ids: list[strawberry.ID] = strawberry.field(description="The segments it follows.")
    created_at: datetime = strawberry.field(description="When it was registered.")
    disabled_at: datetime | None = strawberry.field(description="When deliveries stopped.")


@strawberry.type(description="A new webhook and its signing secret, shown this once.")
class NewWebhookEndpoint:
    webhook: WebhookEndpoint = strawberry.field(description="The webhook.")
    secret: str = strawberry.field(description="The HMAC-SHA256 signing secret (shown once).")


def _webhook(record: WebhookRecord) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=strawberry.ID(str(record.id)),
        url=record.url,
        purpose=record.purpose,
        segment_ids=[strawberry.ID(str(s)) for s in record.segment_ids],
        created_at=record.created_at,
        disabled_at=record.disabled_at,
    )


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Webhooks of the caller's purpose.")
    def webhooks(self, info: Ctx) -> list[WebhookEndpoint]:
        ctx = info.context
        return [_webhook(w) for w in ctx.vault.webhooks.list(ctx.session)]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description="Register an endpoint for enter/leave events of these segments; it only "
        "ever hears of customers its purpose may process. Signed with HMAC-SHA256."
    )
    def create_webhook(
        self,
        info: Ctx,
        url: Annotated[str, strawberry.argument(description="HTTPS in production.")],
        segment_ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="The segments to follow.")
        ],
        purpose: Annotated[str, strawberry.argument(description="The purpose it serves.")],
    ) -> NewWebhookEndpoint | None:
        ctx = info.context
        ids = [parse_id(ctx, s, "segmentIds", "segment") for s in segment_ids]
        with atomic(info) as session:
            made = ctx.vault.webhooks.create(session, url=url, segment_ids=ids, purpose=purpose)
        return NewWebhookEndpoint(webhook=_webhook(made.webhook), secret=made.secret)

    @strawberry.mutation(
        description="Give a webhook a new signing secret, shown this once: every delivery "
        "sent from now on, retries included, is signed with it; the old secret signs nothing more."
    )
    def rotate_webhook_secret(self, info: Ctx, id: IdArg) -> NewWebhookEndpoint | None:
        ctx = info.context
        with atomic(info) as session:
            made = ctx.vault.webhooks.rotate_secret(session, parse_id(ctx, id, kind="webhook"))
        return NewWebhookEndpoint(webhook=_webhook(made.webhook), secret=made.secret)

    @strawberry.mutation(description="Stop deliveries to a webhook.")
    def disable_webhook(self, info: Ctx, id: IdArg) -> WebhookEndpoint | None:
        ctx = info.context
        with atomic(info) as session:
            return _webhook(ctx.vault.webhooks.disable(session, parse_id(ctx, id, kind="webhook")))
