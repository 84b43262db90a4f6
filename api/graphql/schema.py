"""The schema: queries and mutations named by the contract in issue 3, assembled from
the feature modules (each declares its root fields on a Query or Mutation part)."""

from __future__ import annotations

import strawberry

from api.graphql.analytics import AnalyticsQuery
from api.graphql.audit import AuditQuery
from api.graphql.customers import CustomerMutation, CustomerQuery, InteractionMutation
from api.graphql.nodes import NodeQuery
from api.graphql.policy import PolicyMutation, PolicyQuery
from api.graphql.privacy import ConsentMutation, ConsentQuery
from api.graphql.requests import RequestMutation, RequestQuery
from api.graphql.segments import SegmentMutation, SegmentQuery
from api.graphql.webhooks import WebhookMutation, WebhookQuery

__all__ = ["Mutation", "Query", "build_schema"]


@strawberry.type(
    description="Reads. Every request names its purpose (X-Purpose); fields resolve under "
    "the caller's policy."
)
class Query(
    ConsentQuery,
    RequestQuery,
    SegmentQuery,
    AnalyticsQuery,
    WebhookQuery,
    CustomerQuery,
    AuditQuery,
    PolicyQuery,
    NodeQuery,
):
    """Every root query field; a field's order is its feature's place in the bases."""


@strawberry.type(
    description="Writes. Each root field is its own unit: if it fails, none of its writes remain."
)
class Mutation(
    ConsentMutation,
    RequestMutation,
    SegmentMutation,
    WebhookMutation,
    CustomerMutation,
    PolicyMutation,
    InteractionMutation,
):
    """Every root mutation field; a field's order is its feature's place in the bases."""


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation)
