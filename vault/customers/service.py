"""Customers: create, read, update, look up by email or phone, merge duplicates.

Each PII field is encrypted on its own under the customer's data key; email
and phone also get a blind index for exact lookup, re-checked after decryption.
The values exchanged live in ``models``, the input rules in ``validation``, the row
reads in ``queries``, the caller's view in ``views`` and the merge's data moves in
``merge``; ``CustomerService`` authorizes, gates, audits and logs around them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from audit.entries import AuditAction
from policies.attributes import AttributeRegistry, default_attributes
from vault.authorization.authorizer import PROFILE, Authorizer
from vault.authorization.context import buffer_of
from vault.crypto import DataKey
from vault.crypto.handles import Handles
from vault.customers.custom_attributes import AttributeRules, CheckedAttributes, apply_attributes
from vault.customers.duplicates import Duplicates
from vault.customers.identity import Identities
from vault.customers.merge import fold, record_merge
from vault.customers.models import (
    PII,
    READABLE,
    UNSET,
    Customer,
    CustomerFilter,
    CustomerInput,
    CustomerPatch,
    ExternalId,
    MergeResult,
)
from vault.customers.normalize import normalise_email, normalise_phone
from vault.customers.queries import (
    by_blind_index,
    count_rows,
    external_ids,
    load,
    owner_of,
    page_rows,
    pairs,
    read,
    rows_by_ids,
)
from vault.customers.validation import (
    PiiRules,
    check_external_id,
    check_locale,
    check_not_empty,
    check_tags,
    check_tier,
    patched_resources,
    written_resources,
)
from vault.customers.views import audited_fields, customer_view, needs_keys
from vault.errors import CustomerNotFound, InvalidInput, VersionConflict
from vault.keys import DataKeys
from vault.logs import get_logger
from vault.pagination import Page, Window
from vault.privacy.processing import ProcessingGate
from vault.storage.models import CustomerRow
from vault.types import CustomerStatus, PiiField

__all__ = ["CustomerService"]

log = get_logger("vault.customers.service")


def utc_now() -> datetime:
    return datetime.now(UTC)


class CustomerService:
    """Customer operations. Every method takes the unit of work's session."""

    def __init__(
        self,
        keys: DataKeys,
        authz: Authorizer,
        *,
        handles: Handles,
        clock: Callable[[], datetime] = utc_now,
        phone_region: str | None = None,
        gate: ProcessingGate | None = None,
        attributes: AttributeRegistry | None = None,
    ) -> None:
        self._keys = keys
        self.attributes = attributes if attributes is not None else default_attributes()
        self._attribute_rules = AttributeRules(self.attributes)
        self._authz = authz
        self._handles = handles
        self._gate = gate or ProcessingGate(authz, clock)
        self._bidx = keys.keyring.blind_indexer
        self._rules = PiiRules(self._bidx, clock, phone_region)
        self._clock = clock
        self._region = phone_region
        self.identities = Identities(keys, self._gate, self._bidx, phone_region)
        self.duplicates = Duplicates(keys, authz, self._gate, self.identities)

    def __repr__(self) -> str:
        return "CustomerService()"

    # -- validation -------------------------------------------------------

    def _set_pii(self, row: CustomerRow, key: DataKey, name: PiiField, value: object) -> None:
        if value is None:
            setattr(row, f"{name}_ct", None)
            if name in (PiiField.EMAIL, PiiField.PHONE):
                setattr(row, f"{name}_bidx", None)
            return
        text, index = self._rules.check(name, value)
        setattr(row, f"{name}_ct", key.encrypt_text(text, field=name))
        if name in (PiiField.EMAIL, PiiField.PHONE):
            setattr(row, f"{name}_bidx", index)

    def validate(self, data: CustomerInput) -> None:
        """Apply every rule ``create`` applies, without writing; raises InvalidInput."""
        check_not_empty(data)
        for name in PiiField:
            value = getattr(data, name.value)
            if value is not None:
                self._rules.check(name, value)
        check_locale(data.locale)
        check_tier(data.tier)
        check_tags(data.tags)
        self._attribute_rules.check(data.attributes)
        for i, ref in enumerate(data.external_ids):
            check_external_id(ref, f"external_ids[{i}]")

    # -- create / read ----------------------------------------------------

    def create(
        self, session: Session, data: CustomerInput, *, check_duplicates: bool = True
    ) -> Customer:
        """A new customer; one on file is refused and audited (unless imports checked)."""
        buffer_of(session)  # inside a unit of work (raises otherwise), before any check
        attributes = self._attribute_rules.check(data.attributes)
        self._authz.check_writes(
            session, written_resources(data, attributes.resources(self.attributes))
        )
        check_not_empty(data)
        reads = self._authz.reads(session)
        with self.identities.refusal(session, AuditAction.CUSTOMER_CREATE):
            return self._insert(session, data, attributes, reads, check=check_duplicates)

    def _insert(
        self,
        session: Session,
        data: CustomerInput,
        attributes: CheckedAttributes,
        reads: Mapping[str, str],
        *,
        check: bool,
    ) -> Customer:
        """:meth:`create`'s writes; ``check``: claim and check contacts and external ids."""
        if check:
            contacts = self.identities.contacts(data.email, data.phone)
            self.identities.claim(session, contacts, data.external_ids)
            self.identities.check_free(session, contacts)
        now = self._clock()
        customer_id = uuid.uuid4()
        row = CustomerRow(
            id=customer_id,
            status=CustomerStatus.ACTIVE.value,
            locale=check_locale(data.locale),
            tier=check_tier(data.tier),
            tags=check_tags(data.tags),
            attributes=attributes.clear,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        key = self._keys.create(session, customer_id, now)
        for name in PiiField:
            value = getattr(data, name.value)
            if value is not None:
                self._set_pii(row, key, name, value)
        apply_attributes(row, key, attributes)
        row.match_bidx = self.identities.match_key(data.first_name, data.last_name, data.birth_date)
        session.flush()  # one INSERT: a new record is at version 1
        self.identities.add_external_ids(session, customer_id, data.external_ids, "external_ids")
        session.flush()
        log.debug("customer.created", customer_id=str(customer_id))
        written = {n.value: "written" for n in PiiField if getattr(data, n.value) is not None}
        written.update(dict.fromkeys(attributes.resources(self.attributes), "written"))
        buffer_of(session).add(AuditAction.CUSTOMER_CREATE, customer_id=customer_id, fields=written)
        return self._decrypt(session, row, key, reads=reads)

    def get(self, session: Session, customer_id: uuid.UUID) -> Customer:
        """The customer, following a merge to the surviving record."""
        audit = buffer_of(session)
        reads = self._authz.reads(session)
        row = read(session, customer_id)
        self._authz.check_owner(session, row.id)
        # An erasure undone by a restored backup reads as the tombstone: nothing decrypted.
        erased = row.status in READABLE and bool(self._keys.shredded([row.id]))
        if row.status in READABLE and not erased:
            self._gate.check(session, [(row.id, row.status)])
        key = None if erased else self._key_for(session, row, reads)
        customer = self._decrypt(
            session, row, key, pairs(row.external_id_pairs), reads=reads, erased=erased
        )
        audit.read(customer.id, audited_fields(customer))
        return customer

    def get_many(self, session: Session, customer_ids: Sequence[uuid.UUID]) -> list[Customer]:
        """Customers in the order asked, in a bounded number of statements; unknown ids raise."""
        audit = buffer_of(session)
        reads = self._authz.reads(session)
        rows = rows_by_ids(session, customer_ids)
        for cid in customer_ids:
            if cid not in rows:
                raise CustomerNotFound(cid)
        for cid in customer_ids:
            self._authz.check_owner(session, cid)
        live = [r.id for r in rows.values() if r.status in READABLE]
        # Erasures undone by a restored backup read as tombstones; the others carry on.
        erased = self._keys.shredded(live) if live else set()
        live = [cid for cid in live if cid not in erased]
        self._gate.check(session, [(cid, rows[cid].status) for cid in live])
        keys = self._keys.get_many(session, live) if live and needs_keys(reads) else {}
        ext = external_ids(session, list(rows))
        found = [
            self._decrypt(
                session, rows[c], keys.get(c), ext.get(c, []), reads=reads, erased=c in erased
            )
            for c in customer_ids
        ]
        for customer in found:
            audit.read(customer.id, audited_fields(customer))
        return found

    def find_by_email(self, session: Session, email: str) -> list[Customer]:
        wanted = normalise_email(email)
        return self._by_blind_index(
            session, PiiField.EMAIL, wanted, lambda value: normalise_email(value) == wanted
        )

    def find_by_phone(self, session: Session, phone: str) -> list[Customer]:
        wanted = normalise_phone(phone, region=self._region)
        return self._by_blind_index(session, PiiField.PHONE, wanted, lambda value: value == wanted)

    def contact_owners(
        self, session: Session, field: PiiField, value: str
    ) -> list[tuple[uuid.UUID, str]]:
        """The live customers whose email or phone equals ``value``: each id with the value
        on record (to send a sign-in code to), and nothing else of them. For the privacy
        page's sign-in, which must not read a record before its owner proved who they are.
        Audited as a lookup (the count, never the value)."""
        if field is PiiField.EMAIL:
            wanted = normalise_email(value)
            return self._matching(
                session, field, wanted, lambda found: normalise_email(found) == wanted
            )
        if field is PiiField.PHONE:
            wanted = normalise_phone(value, region=self._region)
            return self._matching(session, field, wanted, lambda found: found == wanted)
        raise InvalidInput("field", "a contact is an email address or a phone number")

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
        hits = [cid for cid, _value in self._matching(session, field, normalised, matches)]
        return self.get_many(session, hits) if hits else []

    def _matching(
        self,
        session: Session,
        field: PiiField,
        normalised: str,
        matches: Callable[[str], bool],
    ) -> list[tuple[uuid.UUID, str]]:
        self._authz.check_listing(session)
        self._authz.reads(session)
        index = self._bidx.index(field, normalised)
        rows = by_blind_index(session, field, index, self._gate.clause(session))
        if rows:  # an erasure undone by a restored backup is found by nothing
            erased = self._keys.shredded([r[0] for r in rows])
            rows = [r for r in rows if r[0] not in erased]
        keys = self._keys.get_many(session, [r[0] for r in rows]) if rows else {}
        candidates = [
            (cid, keys[cid].decrypt_text(token, field=field))
            for cid, token in rows
            if token is not None
        ]
        hits = [(cid, found) for cid, found in candidates if matches(found)]
        buffer_of(session).add(
            AuditAction.CUSTOMER_LOOKUP,
            fields={field.value: "searched"},
            detail={"by": field.value, "matches": len(hits)},
        )
        return hits

    def page(
        self,
        session: Session,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter_: CustomerFilter | None = None,
    ) -> Page[Customer]:
        """Customers oldest first, keyset-paginated on (created_at, id) in either
        direction (see :class:`~vault.pagination.Window`; 20 from the start by default),
        filtered in SQL before the page is cut; exactly the customers returned are read
        (and audited) under the caller's policy. Not for data subjects."""
        self._authz.check_listing(session)
        window = Window.of(first=first, after=after, last=last, before=before, default=20)
        f = self._listing_filter(session, filter_)
        rows = page_rows(
            session, f, self._gate.clause(session), handles=self._handles, window=window
        )
        ids = [r.id for r in rows.items]
        return rows.with_items(self.get_many(session, ids) if ids else [])

    def count(self, session: Session, *, filter_: CustomerFilter | None = None) -> int:
        """How many customers :meth:`page` would list under this filter for the caller
        (the same policy, filter and processing gate), without reading any of them:
        audited as one ``customers.count`` entry with the number, not as reads."""
        self._authz.check_listing(session)
        f = self._listing_filter(session, filter_)
        found = count_rows(session, f, self._gate.clause(session))
        buffer_of(session).add(AuditAction.CUSTOMERS_COUNT, detail={"count": found})
        return found

    def _listing_filter(self, session: Session, given: CustomerFilter | None) -> CustomerFilter:
        """The filter of a listing, once the caller may read what it filters on."""
        f = given or CustomerFilter()
        for name in ("tier", "locale", "tag"):  # a filter reads the field: only if shown
            if getattr(f, name) is not None:
                self._authz.check_reads(session, "tags" if name == "tag" else name)
        return f

    def find_by_external_id(self, session: Session, ref: ExternalId) -> Customer:
        buffer_of(session)
        customer_id = owner_of(session, ref.source, ref.external_id)
        if customer_id is None or self._keys.shredded([customer_id]):
            raise CustomerNotFound("<external id>")
        buffer_of(session).add(
            AuditAction.CUSTOMER_LOOKUP,
            fields={"external_id": "searched"},
            detail={"by": "external_id", "matches": 1},
        )
        return self.get(session, customer_id)

    # -- update -----------------------------------------------------------

    def update(
        self,
        session: Session,
        customer_id: uuid.UUID,
        patch: CustomerPatch,
        *,
        expected_version: int | None = None,
    ) -> Customer:
        """Apply the fields the patch sets, on the row locked for the unit of work (FOR
        UPDATE on PostgreSQL; SQLite runs one writer at a time), so concurrent patches of
        different fields all apply. With ``expected_version``, a record that moved on since
        the caller read it is refused (:class:`VersionConflict`, nothing written); the
        write itself is a compare-and-set on ``version``, which grows by one."""
        audit = buffer_of(session)
        attributes = (
            CheckedAttributes()
            if patch.attributes is UNSET
            else self._attribute_rules.check(patch.attributes, patch=True)
        )
        resources = patched_resources(patch, attributes.resources(self.attributes))
        self._authz.check_writes(session, resources, customer_id)
        reads = self._authz.reads(session)
        contacts = self.identities.contacts(patch.email, patch.phone)
        self.identities.claim(session, contacts, patch.add_external_ids)  # before the row lock
        row = load(session, customer_id, for_update=True)
        self._authz.check_owner(session, row.id)
        if row.status not in READABLE:
            raise CustomerNotFound(customer_id)
        self._gate.check(session, [(row.id, row.status)])
        if expected_version is not None and expected_version != row.version:
            raise VersionConflict(row.id, expected=expected_version, current=row.version)
        target, seen = row.id, row.version  # what the refusal names, were the write to fail
        refs, refused = patch.add_external_ids, self.identities.refusal
        with refused(session, AuditAction.CUSTOMER_UPDATE, row.id):
            self.identities.check_free(session, contacts, exclude=row.id)
        key = self._keys.get(session, row.id)
        for name in PiiField:
            value = getattr(patch, name.value)
            if value is not UNSET:
                self._set_pii(row, key, name, value)
        if any(v is not UNSET for v in (patch.first_name, patch.last_name, patch.birth_date)):
            self.identities.refresh_match_key(row, key)
        if patch.locale is not UNSET:
            row.locale = check_locale(patch.locale)
        if patch.tier is not UNSET:
            row.tier = check_tier(patch.tier)
        if patch.tags is not UNSET:
            row.tags = check_tags(patch.tags)
        apply_attributes(row, key, attributes)
        with refused(session, AuditAction.CUSTOMER_UPDATE, row.id):
            self.identities.add_external_ids(session, row.id, refs, "add_external_ids")
        row.updated_at = self._clock()
        flag_modified(row, "updated_at")  # an update always moves the version on
        try:
            session.flush()
        except StaleDataError:  # another writer changed the row after it was read
            raise VersionConflict(target, expected=seen, current=None) from None
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
        self._authz.check_writes(session, [*PII, PROFILE, "interactions", "interaction_payload"])
        reads = self._authz.reads(session)
        if keep_id == merge_id:
            raise InvalidInput("mergeId", "must differ from keepId")
        keep = load(session, keep_id, for_update=True, follow=False)
        gone = load(session, merge_id, for_update=True, follow=False)
        for row, name in ((keep, "keepId"), (gone, "mergeId")):
            if row.status not in READABLE:
                raise InvalidInput(name, f"customer is {row.status} and cannot be merged")
        self._gate.check(session, [(keep.id, keep.status), (gone.id, gone.status)])
        now = self._clock()
        keys = self._keys.get_many(session, [keep.id, gone.id])
        keep_key, gone_key = keys[keep.id], keys[gone.id]
        folded = fold(session, keep, gone, (keep_key, gone_key), seal=self._set_pii, now=now)
        self.identities.refresh_match_key(keep, keep_key)
        self._keys.destroy(session, gone.id, now)
        session.flush()
        record_merge(audit, keep.id, gone.id, folded)
        return MergeResult(
            customer=self._decrypt(session, keep, keep_key, reads=reads),
            merged_id=gone.id,
            moved_interactions=folded.moved_interactions,
            moved_external_ids=folded.moved_external_ids,
            filled_fields=folded.filled_fields,
        )

    # -- helpers ----------------------------------------------------------

    def _key_for(
        self, session: Session, row: CustomerRow | Row[Any], reads: Mapping[str, str]
    ) -> DataKey | None:
        """The row's data key, when it is readable and the caller may see some PII field."""
        if row.status not in READABLE or not needs_keys(reads):
            return None
        return self._keys.get(session, row.id)

    def _decrypt(
        self,
        session: Session,
        row: CustomerRow | Row[Any],
        key: DataKey | None,
        ids: list[ExternalId] | None = None,
        *,
        reads: Mapping[str, str],
        erased: bool = False,
    ) -> Customer:
        """The caller's view of the row (see :func:`views.customer_view`), with its
        external ids read when not given."""
        if ids is None:
            ids = external_ids(session, [row.id]).get(row.id, [])
        formats = self._authz.mask_formats(session)
        return customer_view(
            row, key, ids, reads=reads, formats=formats, attributes=self.attributes, erased=erased
        )
