"""Interactions: bulk, idempotent ingest and a customer's timeline.

A batch is validated whole before anything is written and committed whole by
the caller's unit of work: either every new row lands or none does. Rows whose
external id is already stored are skipped and counted, never duplicated.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    Table,
    and_,
    bindparam,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from policies import AccessDenied, Action, Resolution
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import access_of, buffer_of
from vault.crypto import DataKey
from vault.errors import CustomerNotFound, InvalidInput
from vault.keys import DataKeys
from vault.logs import get_logger
from vault.money import check_currency, from_minor, to_minor
from vault.pagination import MAX_PAGE, Page, decode_cursor, encode_cursor
from vault.privacy.processing import ProcessingGate
from vault.storage.models import CustomerExternalIdRow, CustomerRow, InteractionRow
from vault.storage.sql import Prepared, id_in, id_in_param, new_ids
from vault.text import check_word
from vault.types import MONETARY_TYPES, PAYLOAD_FIELD, Channel, CustomerStatus, InteractionType

__all__ = [
    "MAX_BATCH",
    "IngestResult",
    "Interaction",
    "InteractionInput",
    "InteractionService",
    "Page",
]

MAX_BATCH = 1000
_MAX_PAYLOAD_BYTES = 65_536
log = get_logger("vault.interactions.service")


@dataclass(frozen=True, slots=True)
class InteractionInput:
    """One interaction to record. Name the customer by id or by an external id."""

    channel: str
    type: str
    occurred_at: datetime
    customer_id: uuid.UUID | None = None
    customer_source: str | None = None
    customer_external_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    external_id: str | None = None
    payload: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Interaction:
    id: uuid.UUID
    customer_id: uuid.UUID
    channel: Channel
    type: InteractionType
    occurred_at: datetime
    amount: Decimal | None
    currency: str | None
    external_id: str | None
    payload: dict[str, Any] | None = field(repr=False)
    recorded_at: datetime = field(repr=False)
    payload_hidden: bool = False  # True when the caller's policy withholds the payload


@dataclass(frozen=True, slots=True)
class IngestResult:
    inserted: int
    duplicates: int


_PAYLOAD_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _encode_payload(payload: Mapping[str, Any], where: str) -> bytes:
    if not isinstance(payload, Mapping):
        raise InvalidInput(where, "must be a JSON object")
    try:
        raw = _PAYLOAD_JSON.encode(payload).encode("utf-8")
    except (TypeError, ValueError):
        raise InvalidInput(where, "must be JSON-serialisable without NaN") from None
    if len(raw) > _MAX_PAYLOAD_BYTES:
        raise InvalidInput(where, f"must be at most {_MAX_PAYLOAD_BYTES} bytes as JSON")
    return raw


_COLUMNS = (
    "id", "customer_id", "channel", "type", "occurred_at", "amount_minor", "currency",
    "external_id", "payload_ct", "recorded_at",
)  # fmt: skip
_COPY_TYPES = (
    "uuid", "uuid", "varchar", "varchar", "timestamptz", "int8", "varchar", "varchar",
    "bytea", "timestamptz",
)  # fmt: skip
_STAGE = "cvault_interactions_stage"


def copy_insert_postgresql(conn: Any, rows: list[dict[str, Any]]) -> int:  # noqa: ANN401
    """Insert a batch with COPY on a psycopg connection; return how many rows landed.

    External ids already stored are looked up first and left out, then the rest
    is copied straight into the table inside a savepoint. If a concurrent writer
    stored one of them in between, the savepoint is rolled back and the batch
    goes through a staging table with ``INSERT ... ON CONFLICT DO NOTHING``.
    """
    import psycopg  # noqa: PLC0415 - only the PostgreSQL path needs the driver

    columns = ", ".join(_COLUMNS)
    with conn.cursor() as cur:
        wanted = [r["external_id"] for r in rows if r["external_id"] is not None]
        if wanted:
            cur.execute(
                "SELECT external_id FROM interactions WHERE external_id = ANY(%s)", (wanted,)
            )
            stored = {found for (found,) in cur.fetchall()}
            rows = [r for r in rows if r["external_id"] is None or r["external_id"] not in stored]
        if not rows:
            return 0
        try:
            with (
                conn.transaction(),
                cur.copy(f"COPY interactions ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(tuple(row[c] for c in _COLUMNS))
        except psycopg.errors.UniqueViolation:
            pass
        else:
            return len(rows)
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            "(LIKE interactions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cur.execute(f"DELETE FROM {_STAGE}")  # noqa: S608 - constant identifier
        with cur.copy(f"COPY {_STAGE} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(tuple(row[c] for c in _COLUMNS))
        cur.execute(
            f"INSERT INTO interactions ({columns}) SELECT {columns} FROM {_STAGE} "  # noqa: S608
            "ON CONFLICT (external_id) DO NOTHING"
        )
        inserted = int(cur.rowcount)
        cur.execute(f"DELETE FROM {_STAGE}")  # noqa: S608
    return inserted


_OWNERS = select(CustomerRow.id, CustomerRow.status, CustomerRow.merged_into_id)
_OWNERS_BY_IDS_PG = Prepared(_OWNERS.where(id_in_param(CustomerRow.id, "ids")))
_CHANNELS = {c.value: c for c in Channel}
_LIVE = frozenset({CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value})
_TYPES = {t.value: t for t in InteractionType}


class InteractionService:
    def __init__(
        self,
        keys: DataKeys,
        authz: Authorizer,
        *,
        clock: Callable[[], datetime],
        gate: ProcessingGate | None = None,
        on_recorded: Callable[[Session, Sequence[uuid.UUID]], object] | None = None,
    ) -> None:
        self._keys = keys
        self._authz = authz
        self._clock = clock
        self._gate = gate or ProcessingGate(authz, clock)
        # Derived state that follows new interactions (segment memberships, metrics), in
        # the same unit of work: the ingest and its consequences commit together.
        self._on_recorded = on_recorded

    def __repr__(self) -> str:
        return "InteractionService()"

    def record_many(self, session: Session, items: Sequence[InteractionInput]) -> IngestResult:
        """Validate and store a batch (at most ``MAX_BATCH``); idempotent on external id."""
        audit = buffer_of(session)
        if len(items) > MAX_BATCH:
            raise InvalidInput("interactions", f"at most {MAX_BATCH} per batch")
        wanted = ["interactions"]
        if any(item.payload is not None for item in items):
            wanted.append("interaction_payload")
        self._authz.check_writes(session, wanted)
        if not items:
            return IngestResult(0, 0)
        owners, statuses = self._resolve_customers(session, items)
        unique = list(dict.fromkeys(owners))
        self._gate.check(session, [(cid, statuses[cid][0]) for cid in unique])
        keys = self._keys.get_many(session, unique)
        now = self._clock()
        rows: list[dict[str, Any]] = []
        row_ids = new_ids(len(items))
        seen: set[str] = set()
        duplicates = 0
        for i, (item, owner) in enumerate(zip(items, owners, strict=True)):
            where = f"interactions[{i}]"
            row = self._validate(item, where)
            if row["external_id"] is not None:
                if row["external_id"] in seen:
                    duplicates += 1
                    continue
                seen.add(row["external_id"])
            row_id = row_ids[i]
            row["id"] = row_id
            row["customer_id"] = owner
            row["recorded_at"] = now
            payload = row.pop("payload")
            row["payload_ct"] = (
                None
                if payload is None
                else keys[owner].encrypt(payload, field=PAYLOAD_FIELD, record_id=row_id)
            )
            rows.append(row)
        inserted = self._insert(session, rows)
        result = IngestResult(inserted=inserted, duplicates=duplicates + len(rows) - inserted)
        if inserted and self._on_recorded is not None:
            self._on_recorded(session, unique)
        audit.add(
            AuditAction.INTERACTIONS_RECORD,
            fields={"interactions": "written"},
            detail={
                "inserted": result.inserted,
                "duplicates": result.duplicates,
                "customers": len(keys),
            },
        )
        log.info(
            "interactions.recorded",
            inserted=result.inserted,
            duplicates=result.duplicates,
            customers=len(keys),
        )
        return result

    def _insert(self, session: Session, rows: list[dict[str, Any]]) -> int:
        """Insert, skipping rows whose external id is stored; return how many landed."""
        if not rows:
            return 0
        connection = session.connection()
        dialect = connection.dialect.name
        if dialect == "postgresql":
            return copy_insert_postgresql(connection.connection.driver_connection, rows)
        if dialect != "sqlite":  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise RuntimeError(f"unsupported database dialect {dialect}")
        table = cast("Table", InteractionRow.__table__)
        stmt: Insert = sqlite_insert(table).on_conflict_do_nothing(index_elements=["external_id"])
        return int(connection.execute(stmt, rows).rowcount)

    def _validate(self, item: InteractionInput, where: str) -> dict[str, Any]:
        channel = _CHANNELS.get(item.channel) or check_word(
            Channel, item.channel, field=f"{where}.channel"
        )
        kind = _TYPES.get(item.type) or check_word(
            InteractionType, item.type, field=f"{where}.type"
        )
        if not isinstance(item.occurred_at, datetime) or item.occurred_at.tzinfo is None:
            raise InvalidInput(f"{where}.occurredAt", "must be a datetime with a time zone")
        occurred = item.occurred_at.astimezone(UTC)
        amount_minor = currency = None
        if item.amount is not None or item.currency is not None:
            if item.amount is None or item.currency is None:
                raise InvalidInput(f"{where}.amount", "amount and currency go together")
            currency = check_currency(item.currency, field=f"{where}.currency")
            amount_minor = to_minor(item.amount, currency, field=f"{where}.amount")
        elif kind in MONETARY_TYPES:
            raise InvalidInput(f"{where}.amount", "is required for purchases and refunds")
        ext = item.external_id
        if ext is not None and (not ext.strip() or len(ext) > 200):
            raise InvalidInput(f"{where}.externalId", "must be 1 to 200 characters")
        payload = (
            None if item.payload is None else _encode_payload(item.payload, f"{where}.payload")
        )
        return {
            "channel": channel.value,
            "type": kind.value,
            "occurred_at": occurred,
            "amount_minor": amount_minor,
            "currency": currency,
            "external_id": ext,
            "payload": payload,
        }

    def _resolve_customers(
        self, session: Session, items: Sequence[InteractionInput]
    ) -> tuple[list[uuid.UUID], dict[uuid.UUID, tuple[str, uuid.UUID | None]]]:
        """The owning customer of each item, following merges, and the status of each
        customer seen; unknown or erased ones raise."""
        wanted = self._named_customers(session, items)
        status = self._statuses(session, set(wanted))
        resolved: dict[uuid.UUID, uuid.UUID] = {}
        owners: list[uuid.UUID] = []
        for i, cid in enumerate(wanted):
            owner = resolved.get(cid)
            if owner is None:
                owner = resolved[cid] = self._follow_merges(session, cid, status, i)
            owners.append(owner)
        return owners, status

    def _named_customers(
        self, session: Session, items: Sequence[InteractionInput]
    ) -> list[uuid.UUID]:
        """Each item's customer id, looking up (source, external id) references in bulk."""
        refs = list(
            {
                (it.customer_source, it.customer_external_id)
                for it in items
                if it.customer_id is None and it.customer_external_id is not None
            }
        )
        by_ref: dict[tuple[str | None, str | None], uuid.UUID] = {}
        ext = CustomerExternalIdRow
        for start in range(0, len(refs), 500):
            pairs = tuple_(ext.source, ext.external_id).in_(refs[start : start + 500])
            for source, external_id, cid in session.execute(
                select(ext.source, ext.external_id, ext.customer_id).where(pairs)
            ):
                by_ref[(source, external_id)] = cid
        wanted: list[uuid.UUID] = []
        for i, it in enumerate(items):
            named = it.customer_id or by_ref.get((it.customer_source, it.customer_external_id))
            if named is None:
                raise InvalidInput(
                    f"interactions[{i}].customer",
                    "names no known customer (give customerId, or source and externalId)",
                )
            wanted.append(named)
        return wanted

    def _follow_merges(
        self,
        session: Session,
        customer_id: uuid.UUID,
        status: dict[uuid.UUID, tuple[str, uuid.UUID | None]],
        index: int,
    ) -> uuid.UUID:
        current = customer_id
        for _hop in range(16):
            state = status.get(current)
            if state is None or state[0] != CustomerStatus.MERGED.value or state[1] is None:
                break
            current = state[1]
            if current not in status:
                status.update(self._statuses(session, {current}))
        state = status.get(current)
        where = f"interactions[{index}].customerId"
        if state is None:
            raise InvalidInput(where, "names no known customer")
        if state[0] not in (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value):
            raise InvalidInput(where, f"customer is {state[0]}; nothing is recorded")
        return current

    def _statuses(
        self, session: Session, ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[str, uuid.UUID | None]]:
        out: dict[uuid.UUID, tuple[str, uuid.UUID | None]] = {}
        id_list = list(ids)
        dialect = session.get_bind().dialect.name
        for start in range(0, len(id_list), 1000):
            chunk = id_list[start : start + 1000]
            if dialect == "postgresql":
                rows = _OWNERS_BY_IDS_PG.rows(session, {"ids": chunk})
            else:
                rows = list(session.execute(_OWNERS.where(id_in(CustomerRow.id, chunk, dialect))))
            for cid, status, into in rows:
                out[cid] = (status, into)
        return out

    def timeline(
        self,
        session: Session,
        customer_id: uuid.UUID,
        *,
        first: int = 20,
        after: str | None = None,
        channel: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        with_payload: bool = True,
    ) -> Page[Interaction]:
        """One customer's interactions, newest first, keyset-paginated on (occurred_at, id)."""
        return self.timelines(
            session, [customer_id], first=first, after=after, channel=channel, type=type,
            since=since, until=until, with_payload=with_payload,
        )[customer_id]  # fmt: skip

    def timelines(
        self,
        session: Session,
        customer_ids: Sequence[uuid.UUID],
        *,
        first: int = 20,
        after: str | None = None,
        channel: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        with_payload: bool = True,
    ) -> dict[uuid.UUID, Page[Interaction]]:
        """The first page of several customers' timelines in one statement (a window
        function per customer), so a list of customers with their interactions costs a
        bounded number of queries. ``after`` applies to a single customer only."""
        audit = buffer_of(session)
        reads = self._authz.reads(session)
        ids = list(dict.fromkeys(customer_ids))
        for cid in ids:
            self._authz.check_owner(session, cid)
        if reads.get("interactions") == Resolution.HIDDEN:
            ctx = access_of(session)
            error = AccessDenied(ctx.actor.role, ctx.purpose, "interactions", Action.READ)
            raise self._authz.denied(session, error, ids[0] if len(ids) == 1 else None)
        with_payload = with_payload and reads.get("interaction_payload") == Resolution.CLEAR
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput("first", f"must be between 1 and {MAX_PAGE}")
        if after is not None and len(ids) != 1:
            raise InvalidInput("after", "applies to one customer's timeline at a time")
        filters = _timeline_filters(channel, type, since, until, after)
        rows: list[Any] = []
        if len(ids) == 1:
            # The status and the page in one statement; rows are used only if the gate
            # below lets this purpose process the customer.
            status, rows = _one_timeline(session, ids[0], filters, first, with_payload)
            known = {ids[0]: status}
        else:
            known = _statuses(session, ids)
        # An erased (or merged) customer has no timeline: rows waiting for the purge are
        # never read again.
        live = [cid for cid in ids if known[cid] in _LIVE]
        self._gate.check(session, [(cid, known[cid]) for cid in live])
        if len(ids) > 1 and live:
            rows = _ranked(session, live, filters, first, with_payload=with_payload)
        grouped: dict[uuid.UUID, list[Any]] = {cid: [] for cid in ids}
        for row in rows:
            grouped[row.customer_id].append(row)
        needs_keys = [c for c, rs in grouped.items() if any(r.payload_ct for r in rs[:first])]
        keys = self._keys.get_many(session, needs_keys) if needs_keys else {}
        pages: dict[uuid.UUID, Page[Interaction]] = {}
        for cid, group in grouped.items():
            shown = group[:first]
            key = keys.get(cid)
            items = [_interaction(r, key, hidden=not with_payload) for r in shown]
            end = encode_cursor(shown[-1].occurred_at, shown[-1].id) if shown else None
            pages[cid] = Page(items=items, end_cursor=end, has_next_page=len(group) > first)
            if known[cid] not in _LIVE:
                continue
            audit.read(
                cid,
                {
                    "interactions": "clear",
                    "interaction_payload": "clear" if with_payload else "hidden",
                },
                action=AuditAction.INTERACTIONS_READ,
            )
        return pages


def _columns(with_payload: bool) -> list[Any]:
    t = InteractionRow
    return [
        t.id, t.customer_id, t.channel, t.type, t.occurred_at, t.amount_minor, t.currency,
        t.external_id, t.payload_ct if with_payload else literal(None).label("payload_ct"),
        t.recorded_at, t.payload_ct.is_not(None).label("has_payload"),
    ]  # fmt: skip


def _newest(with_payload: bool, filters: Sequence[ColumnElement[bool]] = ()) -> Select[Any]:
    """One customer's status and newest interactions (``:id``, at most ``:n``): the
    customer left-joined to its matching rows, so an empty page still has a row (with
    a null interaction). Rows of a customer who is not live are not joined."""
    t, c = InteractionRow, CustomerRow
    joined = and_(t.customer_id == c.id, c.status.in_(sorted(_LIVE)), *filters)
    return (
        select(c.status.label("customer_status"), *_columns(with_payload))
        .select_from(c.__table__.outerjoin(t.__table__, joined))
        .where(c.id == bindparam("id"))
        .order_by(t.occurred_at.desc(), t.id.desc())
        .limit(bindparam("n"))
    )


# The statements of the common case, built once (see vault/customers/queries.py).
_NEWEST = {True: Prepared(_newest(True)), False: Prepared(_newest(False))}
_STATUS_OF_ONE = select(CustomerRow.id, CustomerRow.status).where(CustomerRow.id == bindparam("id"))


def _one_timeline(
    session: Session,
    customer_id: uuid.UUID,
    filters: list[ColumnElement[bool]],
    first: int,
    with_payload: bool,
) -> tuple[str, list[Any]]:
    params = {"id": customer_id, "n": first + 1}
    if filters:
        found = list(session.execute(_newest(with_payload, filters), params).all())
    else:
        found = _NEWEST[with_payload].rows(session, params)
    if not found:
        raise CustomerNotFound(customer_id)
    return found[0].customer_status, [r for r in found if r.id is not None]


def _statuses(session: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each customer's status; an unknown id raises :class:`CustomerNotFound`."""
    if len(ids) == 1:
        found = session.execute(_STATUS_OF_ONE, {"id": ids[0]}).all()
    else:
        dialect = session.get_bind().dialect.name
        statuses = select(CustomerRow.id, CustomerRow.status)
        found = session.execute(statuses.where(id_in(CustomerRow.id, ids, dialect))).all()
    known: dict[uuid.UUID, str] = {row.id: row.status for row in found}
    for cid in ids:
        if cid not in known:
            raise CustomerNotFound(cid)
    return known


def _ranked(
    session: Session,
    customer_ids: list[uuid.UUID],
    filters: list[ColumnElement[bool]],
    first: int,
    *,
    with_payload: bool,
) -> list[Any]:
    """The first ``first + 1`` interactions of each customer, newest first, in one
    statement (a window function per customer)."""
    t = InteractionRow
    dialect = session.get_bind().dialect.name
    rank = (
        func.row_number()
        .over(partition_by=t.customer_id, order_by=(t.occurred_at.desc(), t.id.desc()))
        .label("rank")
    )
    where = [id_in(t.customer_id, customer_ids, dialect), *filters]
    ranked = select(*_columns(with_payload), rank).where(*where).subquery()
    return list(
        session.execute(
            select(ranked)
            .where(ranked.c.rank <= first + 1)
            .order_by(ranked.c.customer_id, ranked.c.rank)
        ).all()
    )


def _timeline_filters(
    channel: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
    after: str | None,
) -> list[ColumnElement[bool]]:
    t = InteractionRow
    where: list[ColumnElement[bool]] = []
    if channel is not None:
        where.append(t.channel == check_word(Channel, channel, field="channel").value)
    if kind is not None:
        where.append(t.type == check_word(InteractionType, kind, field="type").value)
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and bound.tzinfo is None:
            raise InvalidInput(name, "must be a datetime with a time zone")
    if since is not None:
        where.append(t.occurred_at >= since)
    if until is not None:
        where.append(t.occurred_at < until)
    if after is not None:
        when, row_id = decode_cursor(after)
        where.append(tuple_(t.occurred_at, t.id) < tuple_(when, row_id))
    return where


def _interaction(row: Any, key: DataKey | None, *, hidden: bool) -> Interaction:  # noqa: ANN401
    payload = None
    if key is not None and row.payload_ct is not None:
        payload = json.loads(key.decrypt(row.payload_ct, field=PAYLOAD_FIELD, record_id=row.id))
    amount = None
    if row.amount_minor is not None and row.currency is not None:
        amount = from_minor(row.amount_minor, row.currency)
    return Interaction(
        id=row.id,
        customer_id=row.customer_id,
        channel=Channel(row.channel),
        type=InteractionType(row.type),
        occurred_at=row.occurred_at,
        amount=amount,
        currency=row.currency,
        external_id=row.external_id,
        payload=payload,
        recorded_at=row.recorded_at,
        payload_hidden=hidden and bool(row.has_payload),
    )
