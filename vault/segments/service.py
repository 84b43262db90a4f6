"""Segments as a domain service: definitions, previews, materialised membership, members.

Every method runs in the caller's ``Vault.unit(context)``, checks the policy on the
``segments`` resource (reads need ``read:clear``, definitions and refreshes need
``write``; the operator's ``system`` role passes) and writes its audit entry: ids and
counts only, never a rule's values or a customer's data.

Membership is purpose-independent: :meth:`SegmentService.refresh` computes it for
every active customer with one compiled statement per segment and
:mod:`vault.segments.membership` turns it into stays and outbox rows, all in the
caller's transaction. Reading members goes through
:meth:`vault.privacy.processing.ProcessingGate.clause`: a caller acting for
``marketing_email`` sees only the members who consented to it, right now, even before
the next refresh.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from policies.attributes import AttributeRegistry, default_attributes
from policies.purposes import Resource
from vault import telemetry
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import buffer_of
from vault.crypto.handles import Handles
from vault.errors import CustomerNotFound, InvalidInput, VaultError
from vault.pagination import Page, Window
from vault.privacy.processing import ProcessingGate
from vault.segments import membership
from vault.segments.analytics import DEFAULT_MIN_GROUP, Analytics, ChannelReport
from vault.segments.compile import compile_rule, uses_metrics
from vault.segments.metrics import CustomerMetrics, MetricsRollup
from vault.segments.models import RefreshResult, Segment
from vault.segments.parse import parse_rule, rule_to_json
from vault.segments.rules import (
    Resolver,
    Rule,
    SegmentRef,
    any_node,
    check_attributes,
    check_references,
)
from vault.storage.models import CustomerRow, SegmentRow
from vault.storage.sql import id_in
from vault.types import CustomerStatus

__all__ = ["SegmentNotFound", "SegmentService"]

_RESOURCE = Resource.SEGMENTS.value
_MAX_NAME = 200
_MAX_DESCRIPTION = 2_000


class SegmentNotFound(VaultError):
    code = "NOT_FOUND"

    def __init__(self, segment_id: uuid.UUID) -> None:
        super().__init__(f"segment {segment_id} not found")
        self.segment_id = segment_id


def _segment(row: SegmentRow) -> Segment:
    return Segment(
        id=row.id,
        name=row.name,
        description=row.description,
        definition=row.definition,
        rule=parse_rule(row.definition),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        refreshed_at=row.refreshed_at,
    )


def _text(value: str | None, field: str, limit: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    stripped = value.strip()
    if (required and not stripped) or len(stripped) > limit:
        raise InvalidInput(field, f"must be 1-{limit} characters")
    return stripped or None


class SegmentService:
    def __init__(
        self,
        authz: Authorizer,
        gate: ProcessingGate,
        clock: Callable[[], datetime],
        rollup: MetricsRollup | None = None,
        *,
        handles: Handles,
        attributes: AttributeRegistry | None = None,
        min_group: int = DEFAULT_MIN_GROUP,
    ) -> None:
        self._authz = authz
        self._handles = handles
        self._attributes = attributes if attributes is not None else default_attributes()
        self._gate = gate
        self._clock = clock
        self.rollup = rollup if rollup is not None else MetricsRollup()
        self.analytics = Analytics(authz, gate, self.rollup, clock, min_group)

    def __repr__(self) -> str:
        return f"SegmentService(rollup={self.rollup!r})"

    # -- policy and audit -----------------------------------------------------------

    def _may_read(self, session: Session) -> None:
        self._authz.check_listing(session)
        self._authz.check_reads(session, _RESOURCE)

    def _may_write(self, session: Session) -> None:
        self._authz.check_listing(session)
        self._authz.check_writes(session, [_RESOURCE])

    @staticmethod
    def _audit(
        session: Session,
        action: AuditAction,
        detail: Mapping[str, Any],
        customer_id: uuid.UUID | None = None,
    ) -> None:
        buffer_of(session).add(action, customer_id=customer_id, detail=detail)

    # -- definitions ----------------------------------------------------------------

    def _row(self, session: Session, segment_id: uuid.UUID) -> SegmentRow:
        row = session.get(SegmentRow, segment_id)
        if row is None or row.deleted_at is not None:
            raise SegmentNotFound(segment_id)
        return row

    def resolver(self, session: Session) -> Resolver:
        """Segment id -> its rule (live segments only), cached for one call."""
        cache: dict[uuid.UUID, Rule | None] = {}

        def resolve(segment_id: uuid.UUID) -> Rule | None:
            if segment_id not in cache:
                row = session.get(SegmentRow, segment_id)
                alive = row is not None and row.deleted_at is None
                cache[segment_id] = parse_rule(row.definition) if alive and row else None
            return cache[segment_id]

        return resolve

    def create(
        self,
        session: Session,
        *,
        name: str,
        definition: Mapping[str, Any],
        description: str | None = None,
    ) -> Segment:
        """Save a new segment definition (validated, references checked for cycles)."""
        self._may_write(session)
        clean_name = _text(name, "name", _MAX_NAME, required=True)
        about = _text(description, "description", _MAX_DESCRIPTION, required=False)
        rule = parse_rule(definition)
        check_attributes(rule, self._attributes)
        segment_id = uuid.uuid4()
        check_references(rule, self.resolver(session), own_id=segment_id)
        now = self._clock()
        row = SegmentRow(
            id=segment_id,
            name=clean_name,
            description=about,
            definition=rule_to_json(rule),
            version=1,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        self._audit(
            session, AuditAction.SEGMENT_CHANGE, {"segment": str(segment_id), "op": "create"}
        )
        return _segment(row)

    def update(
        self,
        session: Session,
        segment_id: uuid.UUID,
        *,
        name: str | None = None,
        definition: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> Segment:
        """Change a definition; the version goes up. Membership follows at the next refresh."""
        self._may_write(session)
        row = self._row(session, segment_id)
        if name is not None:
            row.name = _text(name, "name", _MAX_NAME, required=True) or row.name
        if description is not None:
            row.description = _text(description, "description", _MAX_DESCRIPTION, required=False)
        if definition is not None:
            rule = parse_rule(definition)
            check_attributes(rule, self._attributes)
            check_references(rule, self.resolver(session), own_id=segment_id)
            row.definition = rule_to_json(rule)
        row.version += 1
        row.updated_at = self._clock()
        session.flush()
        self._audit(
            session,
            AuditAction.SEGMENT_CHANGE,
            {"segment": str(segment_id), "op": "update", "version": row.version},
        )
        return _segment(row)

    def delete(self, session: Session, segment_id: uuid.UUID) -> int:
        """Delete a segment: every open stay ends now (with its ``left`` event); the
        definition and history stay for the record. Refused while another segment refers
        to it. Returns how many members left."""
        self._may_write(session)
        row = self._row(session, segment_id)
        resolve = self.resolver(session)
        for other in self._live(session):
            if other.id != segment_id and _refers_to(
                parse_rule(other.definition), segment_id, resolve
            ):
                raise InvalidInput("id", f"segment {other.id} refers to this segment")
        now = self._clock()
        current = membership.open_members(session, segment_id, None)
        membership.close_stays(session, segment_id, sorted(current), now)
        row.deleted_at = now
        row.updated_at = now
        session.flush()
        self._audit(
            session,
            AuditAction.SEGMENT_CHANGE,
            {"segment": str(segment_id), "op": "delete", "left": len(current)},
        )
        return len(current)

    def get(self, session: Session, segment_id: uuid.UUID) -> Segment:
        self._may_read(session)
        segment = _segment(self._row(session, segment_id))
        self._audit(session, AuditAction.SEGMENT_READ, {"segment": str(segment_id)})
        return segment

    def list_segments(self, session: Session) -> list[Segment]:
        self._may_read(session)
        out = [_segment(r) for r in self._live(session)]
        self._audit(session, AuditAction.SEGMENT_READ, {"listed": len(out)})
        return out

    @staticmethod
    def _any_live(session: Session) -> bool:
        found = session.execute(
            select(SegmentRow.id).where(SegmentRow.deleted_at.is_(None)).limit(1)
        ).first()
        return found is not None

    @staticmethod
    def _live(session: Session) -> list[SegmentRow]:
        return list(
            session.scalars(
                select(SegmentRow)
                .where(SegmentRow.deleted_at.is_(None))
                .order_by(SegmentRow.created_at, SegmentRow.id)
            )
        )

    # -- evaluation -----------------------------------------------------------------

    def statement(
        self,
        session: Session,
        rule: Rule,
        now: datetime | None = None,
        among: Sequence[uuid.UUID] | None = None,
    ) -> Any:  # noqa: ANN401 - a Select of customer ids
        """The rule's compiled statement: for every customer, or in the batch shape for
        the customers ``among`` only (see :mod:`vault.segments.compile`)."""
        dialect = session.get_bind().dialect.name
        return compile_rule(
            rule,
            now=now or self._clock(),
            dialect=dialect,
            resolve=self.resolver(session),
            among=among,
        )

    def preview(self, session: Session, definition: Mapping[str, Any]) -> int:
        """How many customers match the rule right now that the caller's purpose may
        process (metric conditions read the rollup as last refreshed)."""
        self._may_read(session)
        rule = parse_rule(definition)
        check_attributes(rule, self._attributes)
        matching = self.statement(session, rule).where(self._gate.clause(session)).subquery()
        count = int(session.scalar(select(func.count()).select_from(matching)) or 0)
        self._audit(session, AuditAction.SEGMENT_READ, {"preview": True, "count": count})
        return count

    def size(self, session: Session, segment_id: uuid.UUID) -> int:
        """Current members the caller's purpose may process."""
        self._may_read(session)
        self._row(session, segment_id)
        count = membership.count_members(session, segment_id, self._gate.clause(session))
        self._audit(session, AuditAction.SEGMENT_READ, {"segment": str(segment_id), "size": count})
        return count

    def members(
        self,
        session: Session,
        segment_id: uuid.UUID,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Page[uuid.UUID]:
        """A page of member ids (ordered by id) that the caller's purpose may process,
        in either direction (see :class:`~vault.pagination.Window`; 50 by default)."""
        self._may_read(session)
        window = Window.of(first=first, after=after, last=last, before=before, default=50)
        self._row(session, segment_id)
        clause = self._gate.clause(session)
        page = membership.member_page(
            session, segment_id, clause, handles=self._handles, window=window
        )
        self._audit(
            session,
            AuditAction.SEGMENT_READ,
            {"segment": str(segment_id), "members": len(page.items)},
        )
        return page

    def segments_of(self, session: Session, customer_id: uuid.UUID) -> list[Segment]:
        """The segments a customer is in now (for ``Customer.segments``); refused like any
        read of that customer for the caller's purpose."""
        self._authz.check_reads(session, _RESOURCE, customer_id)
        self._gate.check(session, self._statuses(session, [customer_id]))
        out = [_segment(r) for r in membership.segments_of(session, customer_id)]
        self._audit(
            session, AuditAction.SEGMENT_READ, {"segments": len(out)}, customer_id=customer_id
        )
        return out

    @staticmethod
    def _statuses(session: Session, ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, str]]:
        dialect = session.get_bind().dialect.name
        rows = session.execute(
            select(CustomerRow.id, CustomerRow.status).where(id_in(CustomerRow.id, ids, dialect))
        )
        found: dict[uuid.UUID, str] = {row.id: row.status for row in rows}
        for cid in ids:
            if cid not in found or found[cid] in (CustomerStatus.ERASED, CustomerStatus.MERGED):
                raise CustomerNotFound(cid)
        return [(cid, found[cid]) for cid in ids]

    # -- metrics and analytics ------------------------------------------------------------

    def metrics(self, session: Session, customer_id: uuid.UUID) -> CustomerMetrics | None:
        """The customer's rollup row (None before the first refresh); audited."""
        self._authz.check_reads(session, _RESOURCE, customer_id)
        self._gate.check(session, self._statuses(session, [customer_id]))
        result = self.rollup.get(session, customer_id, self._clock())
        self._audit(
            session, AuditAction.INSIGHTS_READ, {"metrics": result is not None}, customer_id
        )
        return result

    def channel_analytics(
        self, session: Session, since: datetime, until: datetime
    ) -> list[ChannelReport]:
        """Counts and revenue per channel, suppressed under k (:mod:`.analytics`)."""
        return self.analytics.channel_analytics(session, since, until)

    def refresh_metrics(self, session: Session) -> int:
        """Rebuild the metrics rollup for every active customer."""
        self._may_write(session)
        rows = self.rollup.refresh_all(session, self._clock())
        self._audit(session, AuditAction.SEGMENT_REFRESH, {"metrics": rows})
        return rows

    # -- membership -----------------------------------------------------------------------

    def refresh(
        self,
        session: Session,
        segment_id: uuid.UUID | None = None,
        *,
        metrics: bool | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[RefreshResult]:
        """Recompute the membership of one segment (or all): one statement each, a diff
        against the open stays, outbox rows for every entry and leave. ``metrics``:
        rebuild the rollup first (default: when a rule reads it). ``progress`` hears of
        each segment done."""
        self._may_write(session)
        started = time.perf_counter()
        rows = [self._row(session, segment_id)] if segment_id else self._live(session)
        resolve = self.resolver(session)
        rules = [(row, parse_rule(row.definition)) for row in rows]
        now = self._clock()
        if metrics or (metrics is None and any(uses_metrics(r, resolve) for _, r in rules)):
            self.rollup.refresh_all(session, now)
        results = []
        for row, rule in rules:
            result = membership.refresh_segment(
                session, row.id, self.statement(session, rule, now), now
            )
            row.refreshed_at = now
            results.append(result)
            if progress is not None:
                progress(1)
            self._audit(
                session,
                AuditAction.SEGMENT_REFRESH,
                {
                    "segment": str(row.id),
                    "members": result.members,
                    "entered": result.entered,
                    "left": result.left,
                },
            )
        session.flush()
        telemetry.segment_refreshed("one" if segment_id else "all", time.perf_counter() - started)
        return results

    def refresh_customers(
        self, session: Session, customer_ids: Iterable[uuid.UUID]
    ) -> list[RefreshResult]:
        """The incremental update when these customers' interactions (or attributes,
        consents, status) change: their metrics row, then their membership of every
        segment, in the caller's unit of work. Needs ``write`` on segments."""
        self._may_write(session)
        return self._changed(session, customer_ids, metrics=True)

    def on_customers_changed(
        self, session: Session, customer_ids: Iterable[uuid.UUID]
    ) -> list[RefreshResult]:
        """The hook for the domain's own write paths (interaction ingest, profile updates):
        the same as :meth:`refresh_customers` without a policy check of its own, since the
        write that triggers it was authorised already. Still only inside ``Vault.unit``
        and audited (``segment.refresh``). Cheap when nothing follows: with no segment it
        does nothing, and the customers' metrics rows are recomputed only when a live rule
        reads metrics (otherwise ``Customer.metrics`` is as of the last metrics refresh)."""
        return self._changed(session, customer_ids, metrics=False)

    def _changed(
        self, session: Session, customer_ids: Iterable[uuid.UUID], *, metrics: bool
    ) -> list[RefreshResult]:
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return []
        if not metrics and not self._any_live(session):
            return []  # nothing follows these customers: one cheap look, per ingest batch
        started = time.perf_counter()
        live = self._live(session)
        now = self._clock()
        resolve = self.resolver(session)
        rules = [(row, parse_rule(row.definition)) for row in live]
        if metrics or any(uses_metrics(rule, resolve) for _row, rule in rules):
            self.rollup.refresh_customers(session, now, ids)
        if not rules:  # nothing follows these customers
            return []
        results = []
        for row, rule in rules:
            stmt = self.statement(session, rule, now, among=ids)
            result = membership.refresh_among(session, row.id, stmt, ids, now)
            if result.entered or result.left:
                results.append(result)
        self._audit(
            session,
            AuditAction.SEGMENT_REFRESH,
            {"customers": len(ids), "changed": sum(r.entered + r.left for r in results)},
        )
        telemetry.segment_refreshed("customers", time.perf_counter() - started)
        return results

    def forget_customer(self, session: Session, customer_id: uuid.UUID) -> None:
        """For erasure: drop the customer's segment memberships (open and past), its
        events not yet handed to webhooks (an erased customer is no one's audience) and
        its metrics row."""
        membership.forget_customer(session, customer_id)
        self.rollup.forget(session, [customer_id])


def _refers_to(rule: Rule, segment_id: uuid.UUID, resolve: Resolver) -> bool:
    """Whether ``rule`` refers to ``segment_id``, directly or through other segments."""
    return any_node(
        rule, lambda node: isinstance(node, SegmentRef) and node.segment_id == segment_id, resolve
    )
