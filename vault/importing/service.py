"""Bulk import of customers and interactions from CSV or JSONL files: the entry points
and the writer.

Files are read as a stream, one batch at a time, so memory stays flat however
large the file. Each batch is one transaction: its good rows land together or
not at all. A bad row is skipped and reported with its line number and a reason
that names the column and the rule it broke, never the value. Problems with the
file itself (missing, unreadable, unknown format, bad header) raise
:class:`ImportFileError` before anything is written.

Both imports are idempotent: a customer whose ``(source, external_id)`` is
already stored, and an interaction whose ``external_id`` is, count as
duplicates, so importing a file twice adds nothing the second time. A customer
whose email or phone is on file, or is the same person as an earlier row of the
batch, is a duplicate too (:mod:`vault.importing.matching`, one lookup per batch):
``on_duplicate`` skips it, links it (its external id goes to the customer on file)
or fails it (rejected with its line). ``detect_duplicates=False`` recognises only
stored external ids, as before identity resolution.

The file formats are read in :mod:`vault.importing.reader`; a row's values are checked
and converted in :mod:`vault.importing.validation`. What is left here needs the vault:
the customer service's rules, the known customers and stored external ids, the writes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from vault.authorization.context import AccessContext
from vault.customers import CustomerInput, ExternalId
from vault.errors import Conflict, InvalidInput
from vault.importing.errors import BadRow
from vault.importing.matching import (
    OnDuplicate,
    audit_refusals,
    claim_batch,
    match_batch,
    ref_owners,
)
from vault.importing.models import (
    ADDRESS_PARTS,
    CUSTOMER_COLUMNS,
    INTERACTION_COLUMNS,
    ImportReport,
    Record,
    RowError,
)
from vault.importing.reader import file_format, records
from vault.importing.validation import (
    customer_input,
    interaction_header,
    interaction_input,
    no_required,
)
from vault.interactions import MAX_BATCH, InteractionInput
from vault.runtime import Vault
from vault.storage.models import CustomerExternalIdRow, CustomerRow
from vault.text import check_text

__all__ = ["import_customers", "import_interactions"]

_ITEM_FIELD = re.compile(r"^interactions\[(\d+)\](?:\.(\w+))?")
_SERVICE_FIELDS: Final = {
    **{f"address.{part}": f"address_{part}" for part in ADDRESS_PARTS},
    "external_ids[0].source": "source",
    "external_ids[0].external_id": "external_id",
    "input": "record",
    "occurredAt": "occurred_at",
    "externalId": "external_id",
    "customerId": "customer_id",
    "customer": "customer_id",
}
_SQL_CHUNK = 500


# -- public entry points ------------------------------------------------------


def import_customers(
    vault: Vault,
    path: Path,
    *,
    fmt: str | None = None,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    on_duplicate: OnDuplicate = OnDuplicate.SKIP,
    detect_duplicates: bool = True,
) -> ImportReport:
    """Create the customers in ``path``; a row for a customer on file (by external id,
    email or phone) or twice in the file is a duplicate, handled as ``on_duplicate`` says."""
    importer = _Importer(vault, path, fmt, batch_size, progress)
    importer.on_duplicate = OnDuplicate(on_duplicate)
    importer.detect = detect_duplicates
    return importer.run_customers()


def import_interactions(
    vault: Vault,
    path: Path,
    *,
    fmt: str | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Record the interactions in ``path`` (idempotent on ``external_id``).

    A row names its customer by ``customer_id`` or by ``source`` + ``customer_external_id``.
    ``occurred_at`` must be ISO 8601 with an offset or ``Z``.
    """
    size = min(batch_size, MAX_BATCH)
    return _Importer(vault, path, fmt, size, progress).run_interactions()


# -- the import loop ------------------------------------------------------------


class _Importer:
    def __init__(
        self,
        vault: Vault,
        path: Path,
        fmt: str | None,
        batch_size: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.vault = vault
        self.context = AccessContext.system("import")
        self.path = path
        self.fmt = file_format(path, fmt)
        self.batch_size = batch_size
        self.progress = progress
        self.read = self.accepted = self.duplicates = self.linked = 0
        self.rejected: list[RowError] = []
        self.on_duplicate = OnDuplicate.SKIP
        self.detect = True

    def report(self) -> ImportReport:
        return ImportReport(
            read=self.read,
            accepted=self.accepted,
            duplicates=self.duplicates,
            rejected=sorted(self.rejected, key=lambda r: r.line),
            linked=self.linked,
        )

    def _batches(
        self,
        columns: Sequence[str],
        required: Callable[[set[str]], list[str]],
        convert: Callable[[Record], Any],
    ) -> Generator[tuple[list[tuple[int, Any]], int], None, None]:
        """(converted rows with their lines, rows read) per batch; bad rows are noted here."""
        batch: list[tuple[int, Any]] = []
        seen = 0
        for item in records(self.path, self.fmt, columns, required):
            self.read += 1
            seen += 1
            if isinstance(item, RowError):
                self.rejected.append(item)
            else:
                try:
                    batch.append((item.line, convert(item)))
                except BadRow as bad:
                    self.rejected.append(RowError(item.line, bad.reason))
            if len(batch) >= self.batch_size:
                yield batch, seen
                batch, seen = [], 0
        if batch or seen:
            yield batch, seen

    def _done(self, rows: int) -> None:
        if self.progress is not None and rows:
            self.progress(rows)

    # -- customers

    def run_customers(self) -> ImportReport:
        batches = self._batches(CUSTOMER_COLUMNS, no_required, self._customer_row)
        with closing(batches):  # closes the file at once, even when a batch fails
            for batch, rows in batches:
                if batch:
                    self._write_customers(batch)
                self._done(rows)
        return self.report()

    def _customer_row(self, record: Record) -> tuple[CustomerInput, ExternalId | None]:
        data, ref = customer_input(record)
        _check_customer(self.vault, data, ref)
        return data, ref

    def _write_customers(self, batch: list[tuple[int, Any]]) -> None:
        """One transaction; a row the service still refuses is dropped and the batch redone."""
        pending: list[tuple[int, tuple[CustomerInput, ExternalId | None]]] = list(batch)
        while True:
            try:
                with self.vault.unit(self.context) as session:
                    if self.detect:
                        done = self._create_or_match(session, pending)
                    else:
                        done = _Done(*self._create_customers(session, pending))
            except _RowRefused as refused:
                line = pending[refused.index][0]
                self.rejected.append(RowError(line, refused.reason))
                del pending[refused.index]
                continue
            self.accepted += done.accepted
            self.duplicates += done.duplicates
            self.linked += done.linked
            self.rejected.extend(done.refused)
            return

    def _create_or_match(
        self, session: Session, pending: list[tuple[int, tuple[CustomerInput, ExternalId | None]]]
    ) -> _Done:
        """Create the batch's new customers; its duplicates (see ``matching``) are skipped,
        linked or refused, all decided before anything is written."""
        rows = [row for _, row in pending]
        identities = self.vault.customers.identities
        contacts = claim_batch(session, identities, rows)  # before any look-up
        owners = ref_owners(session, [ref for _, ref in rows if ref is not None])
        matches = match_batch(session, identities, rows, owners, contacts)
        created: dict[int, uuid.UUID] = {}
        done = _Done()
        denied: list[tuple[int, str, uuid.UUID]] = []  # (line, field, whom), audited
        for index, ((line, (data, ref)), match) in enumerate(zip(pending, matches, strict=True)):
            if match is None:
                created[index] = self._create(session, index, data, check=False)
                done.accepted += 1
                continue
            target = match.target if isinstance(match.target, uuid.UUID) else created[match.target]
            where = (
                f"the same customer as line {pending[match.target][0]}"
                if isinstance(match.target, int)
                else f"a customer with this value is already on file ({target})"
            )
            if self.on_duplicate is OnDuplicate.FAIL:
                done.refused.append(RowError(line, f"{match.field}: {where}"))
                denied.append((line, match.field, target))
            elif match.others and self.on_duplicate is OnDuplicate.LINK:
                ids = ", ".join(str(i) for i in (target, *match.others))
                rule = f"matches several customers on file ({ids}); merge them first"
                done.refused.append(RowError(line, f"{match.field}: {rule}"))
                denied.append((line, match.field, target))
            elif self.on_duplicate is OnDuplicate.LINK and ref is not None:
                owner = owners.get((ref.source, ref.external_id))
                if owner is not None and owner != target:
                    rule = f"belongs to another customer ({owner})"
                    done.refused.append(RowError(line, f"external_id: {rule}"))
                    denied.append((line, "external_id", owner))
                    continue
                if owner is None:
                    self.vault.customers.identities.add_external_ids(
                        session, target, [ref], "external_ids"
                    )
                    owners[(ref.source, ref.external_id)] = target
                done.duplicates += 1
                done.linked += 1
            else:
                done.duplicates += 1
        audit_refusals(session, identities, denied)
        return done

    def _create(
        self, session: Session, index: int, data: CustomerInput, *, check: bool
    ) -> uuid.UUID:
        try:
            return self.vault.customers.create(session, data, check_duplicates=check).id
        except InvalidInput as exc:
            column = _SERVICE_FIELDS.get(exc.field, exc.field)
            raise _RowRefused(index, f"{column}: {exc.rule}") from None
        except Conflict:
            rule = "this external id belongs to another customer"
            raise _RowRefused(index, f"external_id: {rule}") from None

    def _create_customers(
        self, session: Session, pending: list[tuple[int, tuple[CustomerInput, ExternalId | None]]]
    ) -> tuple[int, int]:
        refs = [ref for _, (_, ref) in pending if ref is not None]
        stored = _stored_refs(session, refs)
        accepted = duplicates = 0
        for index, (_, (data, ref)) in enumerate(pending):
            key = None if ref is None else (ref.source, ref.external_id)
            if key is not None and key in stored:
                duplicates += 1
                continue
            self._create(session, index, data, check=False)
            if key is not None:
                stored.add(key)
            accepted += 1
        return accepted, duplicates

    # -- interactions

    def run_interactions(self) -> ImportReport:
        batches = self._batches(INTERACTION_COLUMNS, interaction_header, interaction_input)
        with closing(batches):
            for batch, rows in batches:
                if batch:
                    with self.vault.unit(self.context) as session:
                        self._record(session, batch)
                self._done(rows)
        return self.report()

    def _record(self, session: Session, batch: list[tuple[int, Any]]) -> None:
        """Record a batch; items the service refuses are dropped one by one and the rest retried.

        ``record_many`` validates the whole batch before it writes anything, so a refusal
        leaves nothing behind and the same transaction carries on.
        """
        pending = list(_known_customers(session, batch, self.rejected))
        while pending:
            try:
                result = self.vault.interactions.record_many(session, [i for _, i in pending])
            except InvalidInput as exc:
                match = _ITEM_FIELD.match(exc.field)
                if match is None or int(match[1]) >= len(pending):
                    raise
                line, item = pending.pop(int(match[1]))
                column = _SERVICE_FIELDS.get(match[2] or "", match[2] or "record")
                if column == "customer_id" and item.customer_id is None:
                    column = "customer_external_id"
                self.rejected.append(RowError(line, f"{column}: {exc.rule}"))
                continue
            self.accepted += result.inserted
            self.duplicates += result.duplicates
            return


@dataclass(slots=True)
class _Done:
    """What one batch's transaction did."""

    accepted: int = 0
    duplicates: int = 0
    linked: int = 0
    refused: list[RowError] = field(default_factory=list)


class _RowRefused(Exception):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


def _check_customer(vault: Vault, data: CustomerInput, ref: ExternalId | None) -> None:
    """The customer service's own rules, applied before the batch is written, so a bad
    row is caught here instead of failing the batch's transaction."""
    try:
        vault.customers.validate(data)
        if ref is not None:
            check_text(ref.source, field="source", max_length=64)
            check_text(ref.external_id, field="external_id", max_length=200)
    except InvalidInput as exc:
        raise BadRow(_SERVICE_FIELDS.get(exc.field, exc.field), exc.rule) from None


# -- database look-ups ------------------------------------------------------------------


def _stored_refs(session: Session, refs: Sequence[ExternalId]) -> set[tuple[str, str]]:
    pairs = list(dict.fromkeys((r.source, r.external_id) for r in refs))
    found: set[tuple[str, str]] = set()
    for start in range(0, len(pairs), _SQL_CHUNK):
        chunk = pairs[start : start + _SQL_CHUNK]
        rows = session.execute(
            select(CustomerExternalIdRow.source, CustomerExternalIdRow.external_id).where(
                tuple_(CustomerExternalIdRow.source, CustomerExternalIdRow.external_id).in_(chunk)
            )
        )
        found.update((source, ext) for source, ext in rows)
    return found


def _known_customers(
    session: Session, batch: list[tuple[int, Any]], rejected: list[RowError]
) -> Iterator[tuple[int, InteractionInput]]:
    """The rows whose customer exists; the others are rejected here, in one pass of queries."""
    items: list[tuple[int, InteractionInput]] = batch
    ids = list({i.customer_id for _, i in items if i.customer_id is not None})
    refs = [ExternalId(i.customer_source or "", i.customer_external_id or "") for _, i in items]
    known_ids: set[uuid.UUID] = set()
    for start in range(0, len(ids), _SQL_CHUNK):
        chunk = ids[start : start + _SQL_CHUNK]
        known_ids.update(session.scalars(select(CustomerRow.id).where(CustomerRow.id.in_(chunk))))
    wanted = [r for (_, i), r in zip(items, refs, strict=True) if i.customer_id is None]
    known_refs = _stored_refs(session, wanted)
    for (line, item), ref in zip(items, refs, strict=True):
        if item.customer_id is not None:
            if item.customer_id in known_ids:
                yield line, item
            else:
                rejected.append(RowError(line, "customer_id: names no known customer"))
        elif (ref.source, ref.external_id) in known_refs:
            yield line, item
        else:
            rule = "names no known customer of that source"
            rejected.append(RowError(line, f"customer_external_id: {rule}"))
