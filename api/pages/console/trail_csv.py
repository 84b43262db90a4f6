"""The audit trail as a spreadsheet: one CSV row per entry, for reading (the verifiable
form is the JSON lines export).

Columns: ``position`` (in the signed log; empty while the entry awaits sequencing),
``entry_id``, ``time`` (ISO 8601, UTC), ``actor``, ``role``, ``purpose``, ``action``,
``outcome``, ``customer_id`` (pseudonymous), ``fields`` (JSON: resource -> how it
resolved), ``request_id``, ``detail`` (JSON: counts, ids, words), ``entry_hash`` (hex
SHA-256 leaf hash, ``0x00 || canonical entry``, as in the Merkle tree). Entries hold no
PII value (``audit.entries`` refuses free text), so neither does the file; the client
pseudonym is left out all the same.

A cell that a spreadsheet would read as a formula (it starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) is written with a leading ``'``, so opening the file
never runs anything (CSV injection).
"""

from __future__ import annotations

import csv
import json
from typing import Final, TextIO

from vault.audit_trail.queries import AuditRecord

__all__ = ["COLUMNS", "TrailCsv", "spreadsheet_safe"]

COLUMNS: Final = (
    "position", "entry_id", "time", "actor", "role", "purpose", "action", "outcome",
    "customer_id", "fields", "request_id", "detail", "entry_hash",
)  # fmt: skip
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """``cell``, with a leading ``'`` when a spreadsheet would take it for a formula."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


class TrailCsv:
    """Writes the header, then one row per entry kept (RFC 4180: CRLF, quoted as needed)."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")
        self._writer.writerow(COLUMNS)

    def __repr__(self) -> str:
        return "TrailCsv()"

    def row(self, record: AuditRecord, entry_hash: bytes) -> None:
        cells = [
            "" if record.position is None else str(record.position),
            str(record.entry_id),
            record.time.isoformat(),
            record.actor,
            record.role,
            record.purpose,
            record.action,
            record.outcome,
            "" if record.customer_id is None else str(record.customer_id),
            json.dumps(record.fields, ensure_ascii=False),
            record.request_id,
            json.dumps(record.detail, ensure_ascii=False),
            entry_hash.hex(),
        ]
        self._writer.writerow([spreadsheet_safe(cell) for cell in cells])
