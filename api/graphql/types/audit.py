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
from vault.audit_trail.queries import AuditRecord, Recipient
from vault.pagination import Page

__all__ = [
    "AuditCheckpoint",
    "AuditEntry",
    "AuditEntryConnection",
    "AuditEntryEdge",
    "AuditFilterInput",
    "AuditInclusionProof",
    "AuditRecipient",
    "audit_connection",
]


@strawberry.type(
    description="Who received a customer's data (GDPR Art. 15(1)(c)): a webhook, by id, "
    "with its purpose and the host of its URL (never the rest of the URL)."
)
class AuditRecipient:
    recipient: strawberry.Private[Recipient]

    @strawberry.field(description="The webhook's id (a UUID).")
    def webhook_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.recipient.webhook_id))

    @strawberry.field(description="The purpose the webhook receives data for.")
    def purpose(self) -> str:
        return self.recipient.purpose

    @strawberry.field(description="The host the data was sent to; null if unknown.")
    def host(self) -> str | None:
        return self.recipient.host


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

    @strawberry.field(description="When it happened (UTC).")
    def time(self) -> datetime:
        return self.record.time

    @strawberry.field(description="Who acted: a token subject, or system:<command>.")
    def actor(self) -> str:
        return self.record.actor

    @strawberry.field(description="The actor's role.")
    def role(self) -> str:
        return self.record.role

    @strawberry.field(description="The purpose the request named (X-Purpose).")
    def purpose(self) -> str:
        return self.record.purpose

    @strawberry.field(description="What was done, e.g. pii.read, customer.update.")
    def action(self) -> str:
        return self.record.action

    @strawberry.field(description="success, denied or failed.")
    def outcome(self) -> str:
        return self.record.outcome

    @strawberry.field(description="The customer concerned, if any.")
    def customer_id(self) -> strawberry.ID | None:
        cid = self.record.customer_id
        return None if cid is None else strawberry.ID(str(cid))

    @strawberry.field(description="Field names and how each resolved (clear, masked, hidden).")
    def fields(self) -> JSON:
        return cast(JSON, self.record.fields)

    @strawberry.field(description="The request the entry belongs to (X-Request-ID).")
    def request_id(self) -> str:
        return self.record.request_id

    @strawberry.field(
        description="On a webhook.delivered entry: who received the data; null otherwise."
    )
    def recipient(self) -> AuditRecipient | None:
        found = self.record.recipient
        return None if found is None else AuditRecipient(recipient=found)


@strawberry.type(description="An audit entry in a page, with its cursor.")
class AuditEntryEdge:
    node: AuditEntry = strawberry.field(description="The entry.")
    cursor: str = strawberry.field(description="Pass it as `after` to read on from here.")


@strawberry.type(description="A page of audit entries.")
class AuditEntryConnection:
    edges: list[AuditEntryEdge] = strawberry.field(description="The entries of this page.")
    page_info: PageInfo = strawberry.field(description="Whether more entries follow.")
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


@strawberry.type(description="A signed tree head of the audit log (RFC 6962, C2SP note).")
class AuditCheckpoint:
    tree_size: int = strawberry.field(description="How many entries the tree covers.")
    root_hash: str = strawberry.field(description="Base64 SHA-256 tree head.")
    note: str = strawberry.field(description="The C2SP signed note, verifiable offline.")
    created_at: datetime = strawberry.field(description="When it was signed.")
    public_key: str = strawberry.field(description="The signed-note verifier key.")


@strawberry.type(description="Proof that an entry is in the signed log (RFC 6962).")
class AuditInclusionProof:
    entry_id: strawberry.ID = strawberry.field(description="The entry proven.")
    position: int = strawberry.field(description="Its position in the log.")
    tree_size: int = strawberry.field(description="The size of the tree proven against.")
    leaf_hash: str = strawberry.field(description="Base64 leaf hash of the entry's bytes.")
    proof: list[str] = strawberry.field(description="Base64 sibling hashes, leaf to root.")
    checkpoint: str = strawberry.field(description="The signed checkpoint of that tree size.")


@strawberry.input(description="Which audit entries to list; every given condition holds.")
class AuditFilterInput:
    since: datetime | None = strawberry.field(default=None, description="At or after.")
    until: datetime | None = strawberry.field(default=None, description="Before.")
    actor: str | None = strawberry.field(default=None, description="This actor only.")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="About this customer only."
    )
    action: str | None = strawberry.field(
        default=None, description="This action only, e.g. pii.read."
    )
