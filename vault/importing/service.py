"""Bulk import of customers and interactions from CSV or JSONL files.

Files are read as a stream, one batch at a time, so memory stays flat however
large the file. Each batch is one transaction: its good rows land together or
not at all. A bad row is skipped and reported with its line number and a reason
that names the column and the rule it broke, never the value. Problems with the
file itself (missing, unreadable, unknown format, bad header) raise
:class:`ImportFileError` before anything is written.

Both imports are idempotent: a customer whose ``(source, external_id)`` is
already stored, and an interaction whose ``external_id`` is, count as
duplicates, so importing a file twice adds nothing the second time. Customers
without an external id cannot be recognised and are created again.

CSV: UTF-8 (a BOM is allowed), comma separated, RFC 4180 quoting, a header on
line 1; ``tags`` are separated by ``|``, ``attributes`` and ``payload`` hold a
JSON object. JSONL (``.jsonl`` / ``.ndjson``): one JSON object per line, with
``tags`` a list and ``attributes`` / ``payload`` objects. Empty cells and JSON
``null`` mean "not given".
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Final, NoReturn

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from vault.authorization.context import AccessContext
from vault.customers import (
    CustomerInput,
    ExternalId,
)
from vault.customers.addresses import PostalAddress
from vault.errors import Conflict, InvalidInput, VaultError
from vault.interactions.service import MAX_BATCH, InteractionInput
from vault.money import check_currency, exponent, to_minor
from vault.runtime import Vault
from vault.storage.models import CustomerExternalIdRow, CustomerRow
from vault.text import check_text
from vault.types import MONETARY_TYPES, Channel, InteractionType

__all__ = [
    "CUSTOMER_COLUMNS",
    "INTERACTION_COLUMNS",
    "ImportFileError",
    "ImportReport",
    "RowError",
    "import_customers",
    "import_interactions",
]

CUSTOMER_COLUMNS: Final = (
    "email", "phone", "first_name", "last_name", "birth_date", "address", "address_street",
    "address_city", "address_region", "address_postal_code", "address_country", "locale",
    "tier", "tags", "attributes", "source", "external_id",
)  # fmt: skip
_ADDRESS_PARTS: Final = ("street", "city", "region", "postal_code", "country")
INTERACTION_COLUMNS: Final = (
    "customer_id", "source", "customer_external_id", "channel", "type", "occurred_at",
    "amount", "currency", "external_id", "payload",
)  # fmt: skip
_FORMATS: Final = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of invalid UTF-8
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
_ITEM_FIELD = re.compile(r"^interactions\[(\d+)\](?:\.(\w+))?")
_SERVICE_FIELDS: Final = {
    **{f"address.{part}": f"address_{part}" for part in _ADDRESS_PARTS},
    "externalIds.source": "source",
    "externalIds.externalId": "external_id",
    "occurredAt": "occurred_at",
    "externalId": "external_id",
    "customerId": "customer_id",
    "customer": "customer_id",
}
_CHANNELS = {c.value: c for c in Channel}
_TYPES = {t.value: t for t in InteractionType}
_SQL_CHUNK = 500


class ImportFileError(VaultError):
    """The file as a whole cannot be imported: missing, unreadable, unknown format or header."""

    code = "BAD_USER_INPUT"


@dataclass(frozen=True, slots=True)
class RowError:
    """A skipped row: the 1-based line it starts on and what is wrong, without its values."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """``read == accepted + duplicates + len(rejected)``; ``rejected`` is sorted by line."""

    read: int
    accepted: int
    duplicates: int
    rejected: list[RowError] = field(default_factory=list)


class _BadRow(Exception):
    """One row broke one rule; ``reason`` names the column and the rule."""

    def __init__(self, column: str, rule: str) -> None:
        super().__init__(f"{column}: {rule}")
        self.reason = f"{column}: {rule}"


@dataclass(frozen=True, slots=True)
class _Record:
    """One data row: CSV cells are strings, JSONL values any JSON; absent keys mean null."""

    line: int
    values: Mapping[str, object]
    is_csv: bool


# -- public entry points ------------------------------------------------------


def import_customers(
    vault: Vault,
    path: Path,
    *,
    fmt: str | None = None,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create the customers in ``path``; rows whose (source, external_id) exists are duplicates."""
    return _Importer(vault, path, fmt, batch_size, progress).run_customers()


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
        self.fmt = _format(path, fmt)
        self.batch_size = batch_size
        self.progress = progress
        self.read = self.accepted = self.duplicates = 0
        self.rejected: list[RowError] = []

    def report(self) -> ImportReport:
        return ImportReport(
            read=self.read,
            accepted=self.accepted,
            duplicates=self.duplicates,
            rejected=sorted(self.rejected, key=lambda r: r.line),
        )

    def _batches(
        self,
        columns: Sequence[str],
        required: Callable[[set[str]], list[str]],
        convert: Callable[[_Record], Any],
    ) -> Generator[tuple[list[tuple[int, Any]], int], None, None]:
        """(converted rows with their lines, rows read) per batch; bad rows are noted here."""
        batch: list[tuple[int, Any]] = []
        seen = 0
        for item in _records(self.path, self.fmt, columns, required):
            self.read += 1
            seen += 1
            if isinstance(item, RowError):
                self.rejected.append(item)
            else:
                try:
                    batch.append((item.line, convert(item)))
                except _BadRow as bad:
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
        batches = self._batches(CUSTOMER_COLUMNS, _no_required, self._customer_row)
        with closing(batches):  # closes the file at once, even when a batch fails
            for batch, rows in batches:
                if batch:
                    self._write_customers(batch)
                self._done(rows)
        return self.report()

    def _customer_row(self, record: _Record) -> tuple[CustomerInput, ExternalId | None]:
        data, ref = _customer_input(record)
        _check_customer(self.vault, data, ref)
        return data, ref

    def _write_customers(self, batch: list[tuple[int, Any]]) -> None:
        """One transaction; a row the service still refuses is dropped and the batch redone."""
        pending: list[tuple[int, tuple[CustomerInput, ExternalId | None]]] = list(batch)
        while True:
            try:
                with self.vault.unit(self.context) as session:
                    accepted, duplicates = self._create_customers(session, pending)
            except _RowRefused as refused:
                line = pending[refused.index][0]
                self.rejected.append(RowError(line, refused.reason))
                del pending[refused.index]
                continue
            self.accepted += accepted
            self.duplicates += duplicates
            return

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
            try:
                self.vault.customers.create(session, data)
            except InvalidInput as exc:
                column = _SERVICE_FIELDS.get(exc.field, exc.field)
                raise _RowRefused(index, f"{column}: {exc.rule}") from None
            except Conflict:
                rule = "this external id belongs to another customer"
                raise _RowRefused(index, f"external_id: {rule}") from None
            if key is not None:
                stored.add(key)
            accepted += 1
        return accepted, duplicates

    # -- interactions

    def run_interactions(self) -> ImportReport:
        batches = self._batches(INTERACTION_COLUMNS, _interaction_header, _interaction_input)
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


class _RowRefused(Exception):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


def _format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        wanted = fmt.strip().lower()
        if wanted == "ndjson":
            wanted = "jsonl"
        if wanted not in ("csv", "jsonl"):
            raise ImportFileError("unknown import format; use csv or jsonl")
        return wanted
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        raise ImportFileError(
            f"{path.name}: unknown file type; name it .csv, .jsonl or .ndjson, or give the format"
        )
    return found


# -- reading ----------------------------------------------------------------------


def _records(
    path: Path,
    fmt: str,
    columns: Sequence[str],
    required: Callable[[set[str]], list[str]],
) -> Iterator[_Record | RowError]:
    """Data rows of the file, in order, each with the line it starts on."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ImportFileError(f"{path.name}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path.name}: is a directory, not a file") from None
    except PermissionError:
        raise ImportFileError(f"{path.name}: permission denied") from None
    except OSError:
        raise ImportFileError(f"{path.name}: cannot be opened") from None
    with handle:
        try:
            if fmt == "csv":
                yield from _csv_records(handle, path.name, columns, required)
            else:
                yield from _jsonl_records(handle, columns)
        except OSError:
            raise ImportFileError(f"{path.name}: reading failed") from None


def _physical_lines(handle: IO[bytes]) -> Iterator[str]:
    """Each line as text; bytes that are not UTF-8 become lone surrogates, caught per cell."""
    first = True
    for raw in handle:
        if first:
            raw = raw.removeprefix(codecs.BOM_UTF8)  # noqa: PLW2901 - the BOM is not data
            first = False
        yield raw.decode("utf-8", "surrogateescape")


def _csv_records(
    handle: IO[bytes],
    name: str,
    allowed: Sequence[str],
    required: Callable[[set[str]], list[str]],
) -> Iterator[_Record | RowError]:
    # The reader is fed one physical line at a time, so ``line_num`` counts file lines and
    # the line a record starts on is one past where the previous record ended.
    reader = csv.reader(_physical_lines(handle), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{name}: the file is empty; line 1 must be a header") from None
    except csv.Error:
        raise ImportFileError(f"{name}: line 1: the header is not well-formed CSV") from None
    columns = _check_header(name, header, allowed, required)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(start, _csv_problem(exc))
            continue
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(cells) != len(columns):
            yield RowError(start, f"record: has {len(cells)} fields; the header has {len(columns)}")
            continue
        broken = [
            col for col, cell in zip(columns, cells, strict=True) if _UNDECODABLE.search(cell)
        ]
        if broken:
            yield RowError(start, f"{broken[0]}: is not valid UTF-8")
            continue
        values = {col: cell for col, cell in zip(columns, cells, strict=True) if cell.strip()}
        yield _Record(start, values, is_csv=True)


def _csv_problem(exc: csv.Error) -> str:
    # The csv module's messages carry no cell values, but they are not for end users.
    if "field larger than field limit" in str(exc):
        return f"record: a field is longer than {csv.field_size_limit()} characters"
    return "record: is not well-formed CSV (check the quotes)"


def _check_header(
    name: str,
    header: Sequence[str],
    allowed: Sequence[str],
    required: Callable[[set[str]], list[str]],
) -> list[str]:
    if any(_UNDECODABLE.search(h) for h in header):
        raise ImportFileError(f"{name}: line 1: the header is not valid UTF-8")
    columns = [h.strip().lower() for h in header]
    if not any(columns):
        raise ImportFileError(f"{name}: line 1: the header is empty")
    if "" in columns:
        raise ImportFileError(f"{name}: line 1: header column {columns.index('') + 1} has no name")
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        if len(unknown) == len(columns):
            # Probably no header at all: the first row would be data, so name nothing.
            raise ImportFileError(
                f"{name}: line 1: no known column in the header (is it missing?); "
                f"expected some of: {', '.join(allowed)}"
            )
        raise ImportFileError(f"{name}: line 1: unknown column(s): {_names(unknown)}")
    doubled = sorted({c for c in columns if columns.count(c) > 1})
    if doubled:
        raise ImportFileError(f"{name}: line 1: column(s) given twice: {', '.join(doubled)}")
    missing = required(set(columns))
    if missing:
        raise ImportFileError(f"{name}: line 1: missing column(s): {', '.join(missing)}")
    return columns


def _names(keys: Sequence[str]) -> str:
    """Unknown column names, shown only when they look like names (never like data)."""
    shown = list(dict.fromkeys(k for k in keys if _COLUMN_NAME.match(k)))
    hidden = len(keys) - sum(1 for k in keys if _COLUMN_NAME.match(k))
    if hidden:
        shown.append(f"{hidden} whose name looks like data (not shown)")
    return ", ".join(shown)


def _reject_constant(_: str) -> NoReturn:
    raise ValueError("NaN and Infinity are not JSON")


def _jsonl_records(handle: IO[bytes], allowed: Sequence[str]) -> Iterator[_Record | RowError]:
    for number, raw in enumerate(handle, start=1):
        line = raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield RowError(number, "record: is not valid UTF-8")
            continue
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            yield RowError(number, "record: is not valid JSON")
            continue
        if not isinstance(value, dict):
            yield RowError(number, "record: must be a JSON object")
            continue
        unknown = [k for k in value if k not in allowed]
        if unknown:
            yield RowError(number, f"record: unknown key(s): {_names(unknown)}")
            continue
        yield _Record(number, {k: v for k, v in value.items() if v is not None}, is_csv=False)


# -- converting values ------------------------------------------------------------------


def _text(record: _Record, column: str) -> str | None:
    """A text value exactly as given (names keep every character)."""
    value = record.values.get(column)
    if value is None or isinstance(value, str):
        return value
    raise _BadRow(column, "must be a string")


def _ident(record: _Record, column: str) -> str | None:
    """An identifier or code: surrounding white space dropped; JSON integers allowed."""
    value = record.values.get(column)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = _text(record, column)
    return text.strip() if text is not None and text.strip() else None


def _object(record: _Record, column: str) -> dict[str, Any] | None:
    value = record.values.get(column)
    if value is None:
        return None
    if record.is_csv:
        try:
            value = json.loads(str(value), parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            raise _BadRow(column, "must be a JSON object") from None
    if not isinstance(value, dict):
        raise _BadRow(column, "must be a JSON object")
    return value


def _tags(record: _Record) -> list[str]:
    value = record.values.get("tags")
    if value is None:
        return []
    if record.is_csv:
        return [t.strip() for t in str(value).split("|") if t.strip()]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise _BadRow("tags", "must be a list of strings")
    return value


def _address(record: _Record) -> str | PostalAddress | None:
    """Free text in ``address``, or the parts in ``address_street`` ... ``address_country``."""
    parts = {part: _text(record, f"address_{part}") for part in _ADDRESS_PARTS}
    free = _text(record, "address")
    if not any(value and value.strip() for value in parts.values()):
        return free
    if free is not None and free.strip():
        raise _BadRow("address", "give the address as free text or in parts, not both")
    return PostalAddress(**parts)


def _customer_input(record: _Record) -> tuple[CustomerInput, ExternalId | None]:
    source, external_id = _ident(record, "source"), _ident(record, "external_id")
    if (source is None) != (external_id is None):
        missing = "source" if source is None else "external_id"
        raise _BadRow(missing, "is required when the other of source and external_id is given")
    ref = None if source is None or external_id is None else ExternalId(source, external_id)
    email, phone = _text(record, "email"), _text(record, "phone")
    data = CustomerInput(
        email=None if email is None else email.strip(),
        phone=None if phone is None else phone.strip(),
        first_name=_text(record, "first_name"),
        last_name=_text(record, "last_name"),
        birth_date=_ident(record, "birth_date"),
        address=_address(record),
        locale=_ident(record, "locale"),
        tier=_ident(record, "tier"),
        tags=_tags(record),
        attributes=_object(record, "attributes") or {},
        external_ids=() if ref is None else (ref,),
    )
    return data, ref


def _check_customer(vault: Vault, data: CustomerInput, ref: ExternalId | None) -> None:
    """The customer service's own rules, applied before the batch is written, so a bad
    row is caught here instead of failing the batch's transaction."""
    try:
        vault.customers.validate(data)
        if ref is not None:
            check_text(ref.source, field="source", max_length=64)
            check_text(ref.external_id, field="external_id", max_length=200)
    except InvalidInput as exc:
        raise _BadRow(_SERVICE_FIELDS.get(exc.field, exc.field), exc.rule) from None


def _no_required(_: set[str]) -> list[str]:
    return []


def _interaction_header(columns: set[str]) -> list[str]:
    missing = [c for c in ("channel", "type", "occurred_at") if c not in columns]
    if "customer_id" not in columns and not {"source", "customer_external_id"} <= columns:
        missing.append("customer_id (or source and customer_external_id)")
    return missing


def _interaction_input(record: _Record) -> InteractionInput:
    """Parse and check a row as far as possible without the database."""
    customer_text = _ident(record, "customer_id")
    source = _ident(record, "source")
    customer_ref = _ident(record, "customer_external_id")
    customer_id = None
    if customer_text is not None:
        if source is not None or customer_ref is not None:
            rule = "give it, or source and customer_external_id, not both"
            raise _BadRow("customer_id", rule)
        try:
            customer_id = uuid.UUID(customer_text)
        except ValueError:
            raise _BadRow("customer_id", "must be a UUID") from None
    elif source is None or customer_ref is None:
        rule = "is required (or source and customer_external_id)"
        raise _BadRow("customer_id", rule)

    channel = _choice(record, "channel", _CHANNELS)
    kind = _choice(record, "type", _TYPES)
    occurred_at = _timestamp(record)
    amount, currency = _money(record, kind)
    external_id = _ident(record, "external_id")
    if external_id is not None and len(external_id) > 200:
        raise _BadRow("external_id", "must be at most 200 characters")
    return InteractionInput(
        channel=channel.value,
        type=kind.value,
        occurred_at=occurred_at,
        customer_id=customer_id,
        customer_source=source,
        customer_external_id=customer_ref,
        amount=amount,
        currency=currency,
        external_id=external_id,
        payload=_object(record, "payload"),
    )


def _choice(record: _Record, column: str, options: Mapping[str, Any]) -> Any:  # noqa: ANN401
    value = _ident(record, column)
    if value is None:
        raise _BadRow(column, "is required")
    found = options.get(value.lower())
    if found is None:
        raise _BadRow(column, f"must be one of: {', '.join(options)}")
    return found


def _timestamp(record: _Record) -> datetime:
    value = _ident(record, "occurred_at")
    if value is None:
        raise _BadRow("occurred_at", "is required")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _BadRow("occurred_at", "must be an ISO 8601 date and time") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise _BadRow("occurred_at", "must carry a time zone offset or Z")
    return when


def _money(record: _Record, kind: InteractionType) -> tuple[Decimal | None, str | None]:
    raw = record.values.get("amount")
    code = _ident(record, "currency")
    if raw is None and code is None:
        if kind in MONETARY_TYPES:
            raise _BadRow("amount", "is required for purchases and refunds")
        return None, None
    if raw is None:
        raise _BadRow("amount", "is required when a currency is given")
    if code is None:
        raise _BadRow("currency", "is required when an amount is given")
    try:
        currency = check_currency(code)
    except InvalidInput as exc:
        raise _BadRow("currency", exc.rule) from None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _BadRow("amount", "must be a decimal number")
    try:
        amount = Decimal(raw.strip() if isinstance(raw, str) else repr(raw))
    except InvalidOperation:
        raise _BadRow("amount", "must be a decimal number") from None
    if not amount.is_finite():
        raise _BadRow("amount", "must be a finite number")
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise _BadRow("amount", "has more decimals than the currency allows")
    try:
        to_minor(amount, currency)
    except InvalidInput as exc:
        raise _BadRow("amount", exc.rule) from None
    return amount, currency


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
