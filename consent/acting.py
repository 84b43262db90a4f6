"""Running part of a unit of work under another access context, with its own audit trail.

The DSR desk executes a verified request on the requester's behalf: the export
reads the customer's data as the data subject would (purpose ``self``, the
subject's own record only), a rectification writes as the desk itself. Those
reads and writes pass the same policy checks and leave audit entries under the
context they ran as, in the same transaction as the rest of the unit; a refusal
among them is kept and written even if the unit rolls back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.orm import Session

from policies import Purpose, Role
from vault.audit_trail.log import AuditBuffer, AuditLog
from vault.authorization.authorizer import SYSTEM_ROLE
from vault.authorization.context import AccessContext, Actor, access_of, bind, buffer_of

__all__ = ["acting_as", "desk_context", "owner_context"]


def owner_context(session: Session, request_id: uuid.UUID, customer_id: uuid.UUID) -> AccessContext:
    """The data subject's own context for one request (role data_subject, purpose self),
    tied to the caller's request id so the audit trail links both."""
    outer = access_of(session)
    return AccessContext(
        actor=Actor(f"dsr:{request_id}", Role.DATA_SUBJECT.value, customer_id),
        purpose=Purpose.SELF.value,
        request_id=outer.request_id,
        client=outer.client,
    )


def desk_context(session: Session, request_id: uuid.UUID) -> AccessContext:
    """The desk executing a verified request (purpose compliance): it may write what the
    request asks for, which no caller's own grants need to cover."""
    outer = access_of(session)
    return AccessContext(
        actor=Actor(f"dsr:{request_id}", SYSTEM_ROLE),
        purpose=Purpose.COMPLIANCE.value,
        request_id=outer.request_id,
        client=outer.client,
    )


@contextmanager
def acting_as(
    session: Session, context: AccessContext, *, audit: AuditLog, clock: Callable[[], datetime]
) -> Iterator[None]:
    """Bind ``context`` to the session for the block; its audit entries are written in the
    session's transaction when the block ends, its refusals handed to the outer unit."""
    outer_context, outer_buffer = access_of(session), buffer_of(session)
    buffer = AuditBuffer(context, clock)
    bind(session, context, buffer)
    try:
        yield
    finally:
        bind(session, outer_context, outer_buffer)
        outer_buffer.denials.extend(buffer.denials)
        buffer.denials = []
    audit.write(session, buffer.drain())
