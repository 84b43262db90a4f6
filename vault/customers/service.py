"""Customers: create, read, update, look up by email or phone, merge duplicates.

Each PII field is encrypted on its own under the customer's data key; email
and phone also get a blind index for exact lookup, re-checked after decryption.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Final

from sqlalchemy import Row, Select, bindparam, func, select, tuple_, update
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from policies import Resolution
from policies.masking import mask, mask_postal_address
from vault.authorization.authorizer import PROFILE, Authorizer
from vault.authorization.context import buffer_of
from vault.crypto import DataKey
from vault.customers.addresses import PostalAddress, address_text, parse_address
from vault.customers.normalize import normalise_email, normalise_phone, parse_birth_date
from vault.errors import Conflict, CustomerNotFound, InvalidInput
from vault.keys import DataKeys
from vault.logs import get_logger
from vault.pagination import MAX_PAGE, Page, decode_cursor, encode_cursor
from vault.privacy.processing import ProcessingGate
from vault.storage.models import (
    ConsentStateRow,
    CustomerExternalIdRow,
    CustomerRow,
    InteractionRow,
    ObjectionRow,
)
from vault.storage.sql import Prepared, id_in
from vault.text import check_text
from vault.types import PAYLOAD_FIELD, ConsentState, CustomerStatus, PiiField

__all__ = [
    "UNSET",
    "Customer",
    "CustomerFilter",
    "CustomerInput",
    "CustomerPatch",
    "CustomerService",
    "ExternalId",
    "MergeResult",
]


class _Unset(Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_MAX_TAGS = 100
_MAX_ATTRIBUTES_BYTES = 16_384
_READABLE = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)
# Reads run these statements, built once: building and cache-keying a statement on every
# call cost as much as running it (bench/request_cost.py).
_CUSTOMERS = CustomerRow.__table__.c
_EXT = CustomerExternalIdRow.__table__.c


def _row_by_id(dialect: str) -> Select[Any]:
    """A customer's columns by ``:id``, with its external ids as a JSON array of
    ``[source, id]`` pairs (unordered; null or empty when it has none)."""
    if dialect == "postgresql":
        pairs = func.json_agg(func.json_build_array(_EXT.source, _EXT.external_id))
    else:
        pairs = func.json_group_array(func.json_array(_EXT.source, _EXT.external_id))
    ext = select(pairs).where(_EXT.customer_id == _CUSTOMERS.id).scalar_subquery()
    return select(*_CUSTOMERS, ext.label("external_id_pairs")).where(
        _CUSTOMERS.id == bindparam("id")
    )


_ROW_BY_ID = {name: Prepared(_row_by_id(name)) for name in ("postgresql", "sqlite")}


def _pairs(value: object) -> list[ExternalId]:
    found = json.loads(value) if isinstance(value, str) else value
    if not isinstance(found, list):
        return []
    return [ExternalId(str(source), str(ext)) for source, ext in sorted(found)]


_PII = tuple(f.value for f in PiiField)
_HIDDEN = Resolution.HIDDEN.value
log = get_logger("vault.customers.service")


@dataclass(frozen=True, slots=True)
class ExternalId:
    """An id from a source system, e.g. ``ExternalId("shopify", "8812")``."""

    source: str
    external_id: str


@dataclass(frozen=True, slots=True)
class CustomerInput:
    email: str | None = field(default=None, repr=False)
    phone: str | None = field(default=None, repr=False)
    first_name: str | None = field(default=None, repr=False)
    last_name: str | None = field(default=None, repr=False)
    birth_date: date | str | None = field(default=None, repr=False)
    address: str | PostalAddress | None = field(default=None, repr=False)
    locale: str | None = None
    tier: str | None = None
    tags: Sequence[str] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    external_ids: Sequence[ExternalId] = ()


@dataclass(frozen=True, slots=True)
class CustomerPatch:
    """A partial update: ``UNSET`` leaves a field alone, ``None`` clears it."""

    email: str | _Unset | None = field(default=UNSET, repr=False)
    phone: str | _Unset | None = field(default=UNSET, repr=False)
    first_name: str | _Unset | None = field(default=UNSET, repr=False)
    last_name: str | _Unset | None = field(default=UNSET, repr=False)
    birth_date: date | str | _Unset | None = field(default=UNSET, repr=False)
    address: str | PostalAddress | _Unset | None = field(default=UNSET, repr=False)
    locale: str | _Unset | None = UNSET
    tier: str | _Unset | None = UNSET
    tags: Sequence[str] | _Unset = UNSET
    attributes: Mapping[str, Any] | _Unset = UNSET
    add_external_ids: Sequence[ExternalId] = ()


@dataclass(frozen=True, slots=True)
class Customer:
    """A decrypted customer. Its repr shows the id and status only."""

    id: uuid.UUID
    status: CustomerStatus
    email: str | None = field(repr=False)
    phone: str | None = field(repr=False)
    first_name: str | None = field(repr=False)
    last_name: str | None = field(repr=False)
    birth_date: str | None = field(repr=False)  # ISO date, or "--MM-DD" when masked
    address: str | None = field(repr=False)  # one line when clear, "City, CC" when masked
    locale: str | None = field(repr=False)
    tier: str | None = field(repr=False)
    tags: list[str] = field(repr=False)
    attributes: dict[str, Any] = field(repr=False)
    external_ids: list[ExternalId] = field(repr=False)
    created_at: datetime = field(repr=False)
    updated_at: datetime = field(repr=False)
    # How each PII field reached the caller: clear, masked or hidden (then it is None).
    resolutions: dict[str, str] = field(default_factory=dict, repr=False)
    # The address's parts when it was given in parts: all of them in clear, the city and
    # country only when masked.
    postal_address: PostalAddress | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    tier: str | None = None
    locale: str | None = None
    tag: str | None = None
    statuses: Sequence[CustomerStatus] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class MergeResult:
    customer: Customer
    merged_id: uuid.UUID
    moved_interactions: int
    moved_external_ids: int
    filled_fields: list[str]


def utc_now() -> datetime:
    return datetime.now(UTC)


class CustomerService:
    """Customer operations. Every method takes the unit of work's session."""

    def __init__(
        self,
        keys: DataKeys,
        authz: Authorizer,
        *,
        clock: Callable[[], datetime] = utc_now,
        phone_region: str | None = None,
        gate: ProcessingGate | None = None,
    ) -> None:
        self._keys = keys
        self._authz = authz
        self._gate = gate or ProcessingGate(authz, clock)
        self._bidx = keys.keyring.blind_indexer
        self._clock = clock
        self._region = phone_region

    def __repr__(self) -> str:
        return "CustomerService()"

    # -- validation -------------------------------------------------------

    def _check_pii(self, name: PiiField, value: object) -> tuple[str, int | None]:
        """Validate one PII value; return the text to encrypt and its blind index."""
        if name is PiiField.EMAIL:
            text = check_text(_as_str(value, name), field=name, max_length=320)
            return text.strip(), self._bidx.index(name, normalise_email(text))
        if name is PiiField.PHONE:
            e164 = normalise_phone(_as_str(value, name), region=self._region)
            return e164, self._bidx.index(name, e164)
        if name is PiiField.BIRTH_DATE:
            if not isinstance(value, date | str):
                raise InvalidInput(name, "must be an ISO date (YYYY-MM-DD)")
            born = parse_birth_date(value)
            if born > self._clock().date() or born.year < 1900:
                raise InvalidInput(name, "must be a past date after 1900")
            return born.isoformat(), None
        if name is PiiField.ADDRESS and isinstance(value, PostalAddress):
            return address_text(value, name), None
        limit = 2000 if name is PiiField.ADDRESS else 200
        return check_text(_as_str(value, name), field=name, max_length=limit), None

    def _set_pii(self, row: CustomerRow, key: DataKey, name: PiiField, value: object) -> None:
        if value is None:
            setattr(row, f"{name}_ct", None)
            if name in (PiiField.EMAIL, PiiField.PHONE):
                setattr(row, f"{name}_bidx", None)
            return
        text, index = self._check_pii(name, value)
        setattr(row, f"{name}_ct", key.encrypt_text(text, field=name))
        if name in (PiiField.EMAIL, PiiField.PHONE):
            setattr(row, f"{name}_bidx", index)

    def validate(self, data: CustomerInput) -> None:
        """Apply every rule ``create`` applies, without writing; raises InvalidInput."""
        for name in PiiField:
            value = getattr(data, name.value)
            if value is not None:
                self._check_pii(name, value)
        _check_locale(data.locale)
        _check_tier(data.tier)
        _check_tags(data.tags)
        _check_attributes(data.attributes)
        for ref in data.external_ids:
            _check_external_id(ref)

    # -- create / read ----------------------------------------------------

    def create(self, session: Session, data: CustomerInput) -> Customer:
        audit = buffer_of(session)
        self._authz.check_writes(session, _written_resources(data))
        reads = self._authz.reads(session)
        now = self._clock()
        customer_id = uuid.uuid4()
        row = CustomerRow(
            id=customer_id,
            status=CustomerStatus.ACTIVE.value,
            locale=_check_locale(data.locale),
            tier=_check_tier(data.tier),
            tags=_check_tags(data.tags),
            attributes=_check_attributes(data.attributes),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        key = self._keys.create(session, customer_id, now)
        for name in PiiField:
            value = getattr(data, name.value)
            if value is not None:
                self._set_pii(row, key, name, value)
        self._add_external_ids(session, customer_id, data.external_ids)
        session.flush()
        log.debug("customer.created", customer_id=str(customer_id))
        written = {n.value: "written" for n in PiiField if getattr(data, n.value) is not None}
        audit.add(AuditAction.CUSTOMER_CREATE, customer_id=customer_id, fields=written)
        return self._decrypt(session, row, key, reads=reads)

    def get(self, session: Session, customer_id: uuid.UUID) -> Customer:
        """The customer, following a merge to the surviving record."""
        audit = buffer_of(session)
        reads = self._authz.reads(session)
        row = self._read(session, customer_id)
        self._authz.check_owner(session, row.id)
        if row.status in _READABLE:
            self._gate.check(session, [(row.id, row.status)])
        key = self._key_for(session, row, reads)
        customer = self._decrypt(session, row, key, _pairs(row.external_id_pairs), reads=reads)
        audit.read(customer.id, customer.resolutions)
        return customer

    def get_many(self, session: Session, customer_ids: Sequence[uuid.UUID]) -> list[Customer]:
        """Customers in the order asked, in a bounded number of statements; unknown ids raise."""
        audit = buffer_of(session)
        reads = self._authz.reads(session)
        dialect = session.get_bind().dialect.name
        rows = {
            r.id: r
            for r in session.execute(
                select(*_CUSTOMERS).where(id_in(CustomerRow.id, customer_ids, dialect))
            )
        }
        for cid in customer_ids:
            if cid not in rows:
                raise CustomerNotFound(cid)
        for cid in customer_ids:
            self._authz.check_owner(session, cid)
        live = [r.id for r in rows.values() if r.status in _READABLE]
        self._gate.check(session, [(cid, rows[cid].status) for cid in live])
        keys = self._keys.get_many(session, live) if _needs_keys(reads) else {}
        ext = self._external_ids(session, list(rows))
        found = [
            self._decrypt(session, rows[c], keys.get(c), ext.get(c, []), reads=reads)
            for c in customer_ids
        ]
        for customer in found:
            audit.read(customer.id, customer.resolutions)
        return found

    def find_by_email(self, session: Session, email: str) -> list[Customer]:
        wanted = normalise_email(email)
        return self._by_blind_index(
            session, PiiField.EMAIL, wanted, lambda value: normalise_email(value) == wanted
        )

    def find_by_phone(self, session: Session, phone: str) -> list[Customer]:
        wanted = normalise_phone(phone, region=self._region)
        return self._by_blind_index(session, PiiField.PHONE, wanted, lambda value: value == wanted)

    def _by_blind_index(
        self,
        session: Session,
        field: PiiField,
        normalised: str,
        matches: Callable[[str], bool],
    ) -> list[Customer]:
        """Customers whose field equals the value: candidates share its blind index and are
        re-checked on the decrypted value inside the vault (whatever the caller may see),
        then returned as the caller's policy lets them see them. The lookup is audited."""
        self._authz.check_listing(session)
        self._authz.reads(session)
        column = CustomerRow.email_bidx if field is PiiField.EMAIL else CustomerRow.phone_bidx
        token_column = CustomerRow.email_ct if field is PiiField.EMAIL else CustomerRow.phone_ct
        rows = session.execute(
            select(CustomerRow.id, token_column)
            .where(column == self._bidx.index(field, normalised))
            .where(CustomerRow.status.in_(_READABLE))
            .where(self._gate.clause(session))
            .order_by(CustomerRow.created_at, CustomerRow.id)
        ).all()
        keys = self._keys.get_many(session, [r[0] for r in rows])
        hits = [
            cid
            for cid, token in rows
            if token is not None and matches(keys[cid].decrypt_text(token, field=field))
        ]
        buffer_of(session).add(
            AuditAction.CUSTOMER_LOOKUP,
            fields={field.value: "searched"},
            detail={"by": field.value, "matches": len(hits)},
        )
        return self.get_many(session, hits) if hits else []

    def page(
        self,
        session: Session,
        *,
        first: int = 20,
        after: str | None = None,
        filter_: CustomerFilter | None = None,
    ) -> Page[Customer]:
        """Customers oldest first, keyset-paginated on (created_at, id); every one returned
        is read (and audited) under the caller's policy. Not for data subjects."""
        self._authz.check_listing(session)
        if not 1 <= first <= MAX_PAGE:
            raise InvalidInput("first", f"must be between 1 and {MAX_PAGE}")
        f = filter_ or CustomerFilter()
        stmt = select(CustomerRow.id, CustomerRow.created_at).where(
            CustomerRow.status.in_([s.value for s in f.statuses] if f.statuses else _READABLE)
        )
        stmt = stmt.where(self._gate.clause(session))
        if f.tier is not None:
            stmt = stmt.where(CustomerRow.tier == f.tier)
        if f.locale is not None:
            stmt = stmt.where(CustomerRow.locale == f.locale)
        if f.created_after is not None:
            stmt = stmt.where(CustomerRow.created_at >= f.created_after)
        if f.created_before is not None:
            stmt = stmt.where(CustomerRow.created_at < f.created_before)
        if after is not None:
            when, row_id = decode_cursor(after)
            stmt = stmt.where(tuple_(CustomerRow.created_at, CustomerRow.id) > tuple_(when, row_id))
        rows = session.execute(
            stmt.order_by(CustomerRow.created_at, CustomerRow.id).limit(first + 1)
        ).all()
        page, more = rows[:first], len(rows) > first
        items = self.get_many(session, [r[0] for r in page]) if page else []
        if f.tag is not None:  # tags are JSON: filtered here, after the page is cut
            items = [c for c in items if f.tag in c.tags]
        end = encode_cursor(page[-1][1], page[-1][0]) if page else None
        return Page(items=items, end_cursor=end, has_next_page=more)

    def find_by_external_id(self, session: Session, ref: ExternalId) -> Customer:
        buffer_of(session)
        customer_id = session.scalar(
            select(CustomerExternalIdRow.customer_id).where(
                CustomerExternalIdRow.source == ref.source,
                CustomerExternalIdRow.external_id == ref.external_id,
            )
        )
        if customer_id is None:
            raise CustomerNotFound("<external id>")
        buffer_of(session).add(
            AuditAction.CUSTOMER_LOOKUP,
            fields={"external_id": "searched"},
            detail={"by": "external_id", "matches": 1},
        )
        return self.get(session, customer_id)

    # -- update -----------------------------------------------------------

    def update(self, session: Session, customer_id: uuid.UUID, patch: CustomerPatch) -> Customer:
        audit = buffer_of(session)
        self._authz.check_writes(session, _patched_resources(patch), customer_id)
        reads = self._authz.reads(session)
        row = self._load(session, customer_id, for_update=True)
        self._authz.check_owner(session, row.id)
        if row.status not in _READABLE:
            raise CustomerNotFound(customer_id)
        self._gate.check(session, [(row.id, row.status)])
        key = self._keys.get(session, row.id)
        for name in PiiField:
            value = getattr(patch, name.value)
            if value is not UNSET:
                self._set_pii(row, key, name, value)
        if patch.locale is not UNSET:
            row.locale = _check_locale(patch.locale)
        if patch.tier is not UNSET:
            row.tier = _check_tier(patch.tier)
        if patch.tags is not UNSET:
            row.tags = _check_tags(patch.tags)
        if patch.attributes is not UNSET:
            row.attributes = _check_attributes(patch.attributes)
        self._add_external_ids(session, row.id, patch.add_external_ids)
        row.updated_at = self._clock()
        session.flush()
        changed = [
            f.name
            for f in fields(patch)
            if getattr(patch, f.name) is not UNSET
            and not (f.name == "add_external_ids" and not getattr(patch, f.name))
        ]
        log.info("customer.updated", customer_id=str(row.id), fields=changed)
        audit.add(
            AuditAction.CUSTOMER_UPDATE,
            customer_id=row.id,
            fields={
                name: "cleared" if getattr(patch, name) is None else "written" for name in changed
            },
        )
        return self._decrypt(session, row, key, reads=reads)

    # -- merge ------------------------------------------------------------

    def merge(self, session: Session, keep_id: uuid.UUID, merge_id: uuid.UUID) -> MergeResult:
        """Fold ``merge_id`` into ``keep_id``: interactions and external ids move, empty
        fields of the kept record are filled, and the merged record becomes a redirect
        whose data key is destroyed. Nothing is lost; the whole merge is one transaction."""
        audit = buffer_of(session)
        self._authz.check_writes(session, [*_PII, PROFILE, "interactions", "interaction_payload"])
        reads = self._authz.reads(session)
        if keep_id == merge_id:
            raise InvalidInput("mergeId", "must differ from keepId")
        keep = self._load(session, keep_id, for_update=True, follow=False)
        gone = self._load(session, merge_id, for_update=True, follow=False)
        for row, name in ((keep, "keepId"), (gone, "mergeId")):
            if row.status not in _READABLE:
                raise InvalidInput(name, f"customer is {row.status} and cannot be merged")
        self._gate.check(session, [(keep.id, keep.status), (gone.id, gone.status)])
        now = self._clock()
        keys = self._keys.get_many(session, [keep.id, gone.id])
        keep_key, gone_key = keys[keep.id], keys[gone.id]

        filled: list[str] = []
        for name in PiiField:
            token = getattr(gone, f"{name}_ct")
            if getattr(keep, f"{name}_ct") is None and token is not None:
                value = gone_key.decrypt_text(token, field=name)
                self._set_pii(keep, keep_key, name, value)
                filled.append(name.value)
        keep.tags = _check_tags([*keep.tags, *gone.tags])
        keep.attributes = {**gone.attributes, **keep.attributes}
        keep.locale = keep.locale or gone.locale
        keep.tier = keep.tier or gone.tier
        keep.updated_at = now

        moved = self._move_interactions(session, gone_key, keep_key)
        stricter = _merge_refusals(session, keep.id, gone.id)
        moved_ext = session.execute(
            update(CustomerExternalIdRow)
            .where(CustomerExternalIdRow.customer_id == gone.id)
            .values(customer_id=keep.id)
        )
        session.execute(
            update(CustomerRow)
            .where(CustomerRow.merged_into_id == gone.id)
            .values(merged_into_id=keep.id)
        )
        for name in PiiField:
            setattr(gone, f"{name}_ct", None)
        gone.email_bidx = None
        gone.phone_bidx = None
        gone.status = CustomerStatus.MERGED.value
        gone.merged_into_id = keep.id
        gone.updated_at = now
        self._keys.destroy(session, gone.id, now)
        session.flush()
        detail = {
            "kept": str(keep.id),
            "merged": str(gone.id),
            "moved_interactions": moved,
            "refusals_carried": stricter,
        }
        for subject in (keep.id, gone.id):
            audit.add(
                AuditAction.CUSTOMER_MERGE,
                customer_id=subject,
                fields=dict.fromkeys(filled, "written"),
                detail=detail,
            )
        log.info(
            "customer.merged",
            customer_id=str(keep.id),
            merged_id=str(gone.id),
            moved_interactions=moved,
            filled_fields=filled,
        )
        return MergeResult(
            customer=self._decrypt(session, keep, keep_key, reads=reads),
            merged_id=gone.id,
            moved_interactions=moved,
            moved_external_ids=int(getattr(moved_ext, "rowcount", 0) or 0),
            filled_fields=filled,
        )

    def _move_interactions(self, session: Session, old: DataKey, new: DataKey) -> int:
        """Re-seal payloads under the surviving customer's key, then re-point the rows."""
        rows = session.execute(
            select(InteractionRow.id, InteractionRow.payload_ct).where(
                InteractionRow.customer_id == old.customer_id,
                InteractionRow.payload_ct.is_not(None),
            )
        ).all()
        params = []
        for interaction_id, token in rows:
            if token is None:
                continue
            plain = old.decrypt(token, field=PAYLOAD_FIELD, record_id=interaction_id)
            params.append(
                {
                    "row_id": interaction_id,
                    "payload": new.encrypt(plain, field=PAYLOAD_FIELD, record_id=interaction_id),
                }
            )
        if params:
            session.connection().execute(
                update(InteractionRow.__table__)  # type: ignore[arg-type]
                .where(InteractionRow.__table__.c.id == bindparam("row_id"))
                .values(payload_ct=bindparam("payload")),
                params,
            )
        result = session.execute(
            update(InteractionRow)
            .where(InteractionRow.customer_id == old.customer_id)
            .values(customer_id=new.customer_id)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    # -- helpers ----------------------------------------------------------

    def _load(
        self,
        session: Session,
        customer_id: uuid.UUID,
        *,
        for_update: bool = False,
        follow: bool = True,
    ) -> CustomerRow:
        seen: set[uuid.UUID] = set()
        current = customer_id
        while True:
            stmt = select(CustomerRow).where(CustomerRow.id == current)
            if for_update:
                stmt = stmt.with_for_update()
            row = session.scalar(stmt)
            if row is None:
                raise CustomerNotFound(customer_id)
            if not follow or row.merged_into_id is None or row.merged_into_id in seen:
                return row
            seen.add(current)
            current = row.merged_into_id

    @staticmethod
    def _read(session: Session, customer_id: uuid.UUID) -> Row[Any]:
        """The customer's columns (a plain row, not an ORM object), following merges."""
        seen: set[uuid.UUID] = set()
        current = customer_id
        while True:
            dialect = session.get_bind().dialect.name
            found = _ROW_BY_ID[dialect].rows(session, {"id": current})
            if not found:
                raise CustomerNotFound(customer_id)
            row = found[0]
            if row.merged_into_id is None or row.merged_into_id in seen:
                return row
            seen.add(current)
            current = row.merged_into_id

    def _key_for(
        self, session: Session, row: CustomerRow | Row[Any], reads: Mapping[str, str]
    ) -> DataKey | None:
        """The row's data key, when it is readable and the caller may see some PII field."""
        if row.status not in _READABLE or not _needs_keys(reads):
            return None
        return self._keys.get(session, row.id)

    def _external_ids(
        self, session: Session, customer_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ExternalId]]:
        out: dict[uuid.UUID, list[ExternalId]] = {}
        if not customer_ids:
            return out
        rows = session.execute(
            select(
                CustomerExternalIdRow.customer_id,
                CustomerExternalIdRow.source,
                CustomerExternalIdRow.external_id,
            )
            .where(CustomerExternalIdRow.customer_id.in_(customer_ids))
            .order_by(CustomerExternalIdRow.source, CustomerExternalIdRow.external_id)
        ).all()
        for cid, source, ext in rows:
            out.setdefault(cid, []).append(ExternalId(source, ext))
        return out

    def _add_external_ids(
        self, session: Session, customer_id: uuid.UUID, refs: Sequence[ExternalId]
    ) -> None:
        for ref in dict.fromkeys(refs):
            source, ext = _check_external_id(ref)
            owner = session.scalar(
                select(CustomerExternalIdRow.customer_id).where(
                    CustomerExternalIdRow.source == source,
                    CustomerExternalIdRow.external_id == ext,
                )
            )
            if owner is not None and owner != customer_id:
                raise Conflict("externalIds: an external id belongs to another customer")
            if owner is None:
                session.add(
                    CustomerExternalIdRow(source=source, external_id=ext, customer_id=customer_id)
                )

    def _decrypt(
        self,
        session: Session,
        row: CustomerRow | Row[Any],
        key: DataKey | None,
        external_ids: list[ExternalId] | None = None,
        *,
        reads: Mapping[str, str],
    ) -> Customer:
        """The caller's view: hidden fields are None (and never decrypted), masked ones
        are decrypted and masked here; ``resolutions`` says which is which."""
        resolutions = {name: str(reads.get(name, _HIDDEN)) for name in _PII}

        def clear(name: PiiField) -> str | None:
            """The decrypted value; None when absent or hidden (then never decrypted)."""
            token = getattr(row, f"{name}_ct")
            if token is None or key is None or resolutions[name.value] == _HIDDEN:
                return None
            return key.decrypt_text(token, field=name)

        def text(name: PiiField) -> str | None:
            value = clear(name)
            if value is None or resolutions[name.value] == Resolution.CLEAR.value:
                return value
            return mask(name.value, value)

        address, postal_address = _address_view(
            clear(PiiField.ADDRESS), resolutions[PiiField.ADDRESS.value]
        )
        if external_ids is None:
            external_ids = self._external_ids(session, [row.id]).get(row.id, [])
        return Customer(
            id=row.id,
            status=CustomerStatus(row.status),
            email=text(PiiField.EMAIL),
            phone=text(PiiField.PHONE),
            first_name=text(PiiField.FIRST_NAME),
            last_name=text(PiiField.LAST_NAME),
            birth_date=text(PiiField.BIRTH_DATE),
            address=address,
            locale=row.locale,
            tier=row.tier,
            tags=list(row.tags or []),
            attributes=dict(row.attributes or {}),
            external_ids=external_ids,
            created_at=row.created_at,
            updated_at=row.updated_at,
            resolutions=resolutions,
            postal_address=postal_address,
        )


def _address_view(value: str | None, how: str) -> tuple[str | None, PostalAddress | None]:
    """What the caller sees of a decrypted address, as one line and as parts: in clear
    all of it; masked, the city and country; free text has no parts (and masks whole)."""
    if value is None:
        return None, None
    parts = parse_address(value)
    if how == Resolution.CLEAR.value:
        return (value, None) if parts is None else (parts.formatted(), parts)
    if parts is None:
        return mask(PiiField.ADDRESS.value, value), None
    shown = PostalAddress(city=parts.city, country=parts.country)
    return mask_postal_address(parts.city, parts.country), shown


def _merge_refusals(session: Session, keep_id: uuid.UUID, gone_id: uuid.UUID) -> int:
    """Carry the merged record's refusals to the kept one, so a merge never reopens what
    the person closed: its objections, and each consent it withdrew or denied (the
    stricter state wins; a grant is never carried, and of two grants the earlier expiry
    holds). The state points at the merged record's event, which stays in its ledger.
    Returns how many objections and consent states changed."""
    changed = 0
    kept_scopes = set(
        session.scalars(select(ObjectionRow.scope).where(ObjectionRow.customer_id == keep_id))
    )
    for row in session.scalars(select(ObjectionRow).where(ObjectionRow.customer_id == gone_id)):
        if row.scope not in kept_scopes:
            session.add(
                ObjectionRow(
                    customer_id=keep_id,
                    scope=row.scope,
                    objected_at=row.objected_at,
                    request_id=row.request_id,
                )
            )
            changed += 1
    kept = {
        r.purpose: r
        for r in session.scalars(
            select(ConsentStateRow).where(ConsentStateRow.customer_id == keep_id)
        )
    }
    granted = ConsentState.GRANTED.value
    for theirs in session.scalars(
        select(ConsentStateRow).where(ConsentStateRow.customer_id == gone_id)
    ).all():
        mine = kept.get(theirs.purpose)
        if theirs.state != granted:
            if mine is None:
                mine = ConsentStateRow(customer_id=keep_id, purpose=theirs.purpose)
                session.add(mine)
            elif mine.state != granted:
                continue  # both refuse: the kept record's own refusal stands
            mine.state, mine.changed_at = theirs.state, theirs.changed_at
            mine.expires_at, mine.event_id = None, theirs.event_id
            changed += 1
        elif (
            mine is not None
            and mine.state == granted
            and theirs.expires_at is not None
            and (mine.expires_at is None or theirs.expires_at < mine.expires_at)
        ):
            mine.expires_at = theirs.expires_at
            changed += 1
    session.flush()
    return changed


def _needs_keys(reads: Mapping[str, str]) -> bool:
    return any(reads.get(name, _HIDDEN) != _HIDDEN for name in _PII)


def _written_resources(data: CustomerInput) -> list[str]:
    resources = [name for name in _PII if getattr(data, name) is not None]
    if data.locale or data.tier or data.tags or data.attributes or data.external_ids:
        resources.append(PROFILE)
    return resources or [PROFILE]


def _patched_resources(patch: CustomerPatch) -> list[str]:
    resources = [name for name in _PII if getattr(patch, name) is not UNSET]
    profile = (patch.locale, patch.tier, patch.tags, patch.attributes)
    if any(v is not UNSET for v in profile) or patch.add_external_ids:
        resources.append(PROFILE)
    return resources


def _check_external_id(ref: ExternalId) -> tuple[str, str]:
    source = check_text(ref.source, field="externalIds.source", max_length=64).strip()
    return source, check_text(ref.external_id, field="externalIds.externalId", max_length=200)


def _as_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(name, "must be a string")
    return value


def _check_locale(value: str | None) -> str | None:
    if value is None:
        return None
    if not _LOCALE.match(value):
        raise InvalidInput("locale", "must be a BCP 47 language tag such as 'fa-IR'")
    return value.replace("_", "-")


def _check_tier(value: str | None) -> str | None:
    if value is None:
        return None
    return check_text(value, field="tier", max_length=64).strip()


def _check_tags(values: Sequence[str]) -> list[str]:
    if isinstance(values, str):
        raise InvalidInput("tags", "must be a list of strings")
    tags = [check_text(_as_str(t, "tags"), field="tags", max_length=64).strip() for t in values]
    unique = list(dict.fromkeys(tags))
    if len(unique) > _MAX_TAGS:
        raise InvalidInput("tags", f"must hold at most {_MAX_TAGS} tags")
    return unique


def _check_attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise InvalidInput("attributes", "must be a JSON object")
    try:
        encoded = json.dumps(dict(values), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInput("attributes", "must be JSON-serialisable without NaN") from None
    if len(encoded.encode("utf-8")) > _MAX_ATTRIBUTES_BYTES:
        raise InvalidInput("attributes", f"must be at most {_MAX_ATTRIBUTES_BYTES} bytes as JSON")
    result: dict[str, Any] = json.loads(encoded)
    return result
