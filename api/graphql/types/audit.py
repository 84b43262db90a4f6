"""The audit trail's types: entries and their pages, checkpoints, inclusion proofs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import ClassVar, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.types.common import PageInfo, page_info
from api.graphql.types.node import Node
from vault.audit_trail.queries import AuditRecord
from vault.pagination import Page

__all__ = [
    "AuditCheckpoint",
    "AuditEntry",
    "AuditEntryConnection",
    "AuditEntryEdge",
    "AuditFilterInput",
    "AuditInclusionProof",
    "audit_connection",
]


@strawberry.type(description="One entry of the audit trail: who did what, when, why.")
class AuditEntry(Node):
    record: strawberry.Private[AuditRecord]
    NODE_TYPE: ClassVar[str] = "AuditEntry"

    def node_uuid(self) -> uuid.UUID:
        return self.record.entry_id

    @strawberry.field(description="The entry's id (a UUID), as exports and proofs name it.")
    def entry_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.record.entry_id))

    @strawberry.field(description="Log position; null until the sequencer has ordered it.")
    def position(self) -> int | None:
        return self.record.position

    @strawberry.field
    def time(self) -> datetime:
        return self.record.time

    @strawberry.field
    def actor(self) -> str:
        return self.record.actor

    @strawberry.field
    def role(self) -> str:
        return self.record.role

    @strawberry.field
    def purpose(self) -> str:
        return self.record.purpose

    @strawberry.field
    def action(self) -> str:
        return self.record.action

    @strawberry.field
    def outcome(self) -> str:
        return self.record.outcome

    @strawberry.field
    def customer_id(self) -> strawberry.ID | None:
        cid = self.record.customer_id
        return None if cid is None else strawberry.ID(str(cid))

    @strawberry.field(description="Field names and how each resolved (clear, masked, hidden).")
    def fields(self) -> JSON:
        return cast(JSON, self.record.fields)

    @strawberry.field
    def request_id(self) -> str:
        return self.record.request_id


@strawberry.type
class AuditEntryEdge:
    node: AuditEntry
    cursor: str


@strawberry.type
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], int]]

    @strawberry.field(
        description="How many entries the whole list holds (the same filter), counted "
        "without reading any; audited as audit.count."
    )
    def total_count(self) -> int:
        return self.counter()


def audit_connection(page: Page[AuditRecord], counter: Callable[[], int]) -> AuditEntryConnection:
    return AuditEntryConnection(
        edges=[
            AuditEntryEdge(node=AuditEntry(record=r), cursor=page.cursor(n))
            for n, r in enumerate(page.items)
        ],
        page_info=page_info(page),
        counter=counter,
    )


@strawberry.type
class AuditCheckpoint:
    tree_size: int
    root_hash: str = strawberry.field(description="Base64 SHA-256 tree head.")
    note: str = strawberry.field(description="The C2SP signed note, verifiable offline.")
    created_at: datetime
    public_key: str = strawberry.field(description="The signed-note verifier key.")


@strawberry.type
class AuditInclusionProof:
    entry_id: strawberry.ID
    position: int
    tree_size: int
    leaf_hash: str
    proof: list[str]
    checkpoint: str


@strawberry.input
class AuditFilterInput:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    customer_id: strawberry.ID | None = None
    action: str | None = None
