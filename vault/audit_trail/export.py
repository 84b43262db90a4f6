"""Export the audit trail from the database in the offline-verifiable format.

A full export streams every entry in log order (constant memory), with the
thinned checkpoints between them and the latest checkpoint in the header. A
filtered export carries an inclusion proof for each entry; building the proofs
holds the tree's leaf hashes in memory (32 bytes per entry).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.checkpoint import CheckpointError, open_checkpoint
from audit.entries import AuditAction
from audit.export import (
    CSV_COLUMNS,
    ProofTree,
    b64,
    checkpoint_line,
    end_line,
    entry_line,
    header_line,
    unb64,
)
from audit.merkle import consistency_proof
from vault.audit_trail.log import AuditFilter, AuditLog
from vault.authorization.context import AccessContext
from vault.crypto.signing import ed25519_verify
from vault.errors import InvalidInput
from vault.storage.db import Database
from vault.storage.models import AuditEntryRow, AuditLogRow

__all__ = ["AuditFilter", "ExportSummary", "csv_to_lines", "export_audit"]


class HasAuditTrail(Protocol):
    """What an export needs of an open vault (``vault.runtime.Vault`` has both)."""

    @property
    def audit(self) -> AuditLog: ...

    @property
    def db(self) -> Database: ...


@dataclass(frozen=True, slots=True)
class ExportSummary:
    entries: int
    tree_size: int
    full: bool


def export_audit(
    vault: HasAuditTrail,
    out: TextIO,
    *,
    context: AccessContext,
    filter_: AuditFilter | None = None,
    fmt: str = "jsonl",
    meta: TextIO | None = None,
    previous_note: str | None = None,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
    checkpoint_every: int = 4_096,  # localises tampering to 4,096 entries; few partial chunks
) -> ExportSummary:
    """Write an export to ``out`` (JSON lines; for CSV the rows go to ``out`` and the
    header, checkpoints and end marker to ``meta``). ``total`` hears how many entries will
    be written before the first is (a progress bar's total; one count when filtered)."""
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput("format", "must be jsonl or csv")
    if fmt == "csv" and meta is None:
        raise InvalidInput("format", "a CSV export needs a file for its checkpoints")
    filter_ = filter_ or AuditFilter()
    vault.audit.sequence(vault.db)
    with vault.db.transaction() as session:
        latest = vault.audit.latest_checkpoint(session)
        size = 0 if latest is None else latest.tree_size
        note = "" if latest is None else latest.note
        if latest is None:
            raise InvalidInput("audit", "the log has no checkpoint yet; nothing to export")
        writer = _Writer(out, meta, fmt)
        previous = None
        tree: ProofTree | None = None
        if not filter_.empty or previous_note is not None:
            hashes = list(
                session.scalars(
                    select(AuditLogRow.leaf_hash)
                    .where(AuditLogRow.position < size)
                    .order_by(AuditLogRow.position)
                    .execution_options(yield_per=10_000)
                )
            )
            tree = ProofTree(hashes) if not filter_.empty else None
            if previous_note is not None:
                previous = _previous(vault, previous_note, size, hashes)
        writer.meta(
            header_line(
                origin=vault.audit.origin,
                vkey=vault.audit.public_vkey,
                tree_size=size,
                checkpoint=note,
                filter_=None if filter_.empty else filter_.describe(),
                previous=previous,
            )
        )
        marks = iter(
            []
            if tree is not None
            else [
                c
                for c in vault.audit.checkpoints(session, every=checkpoint_every)
                if c.tree_size < size
            ]
        )
        mark = next(marks, None)
        if total is not None:
            total(size if filter_.empty else _count(session, filter_, size))
        stmt = filter_.apply(
            select(AuditLogRow.position, AuditLogRow.leaf_hash, AuditEntryRow.canonical)
            .join(AuditEntryRow, AuditEntryRow.id == AuditLogRow.entry_pk)
            .where(AuditLogRow.position < size)
            .order_by(AuditLogRow.position)
        ).execution_options(yield_per=5_000)
        count = 0
        for position, digest, canonical in session.execute(stmt):
            proof = None if tree is None else tree.inclusion_proof(position)
            writer.entry(position, digest, canonical, proof)
            count += 1
            while mark is not None and mark.tree_size == position + 1:
                writer.meta(checkpoint_line(mark.note))
                mark = next(marks, None)
            if progress is not None and count % 10_000 == 0:
                progress(10_000)
        writer.meta(end_line(count))
    if progress is not None:
        progress(count % 10_000)
    vault.audit.record_now(
        vault.db, context, AuditAction.AUDIT_EXPORT, customer_id=filter_.customer_id,
        detail={"entries": count, "tree_size": size, "filtered": not filter_.empty},
    )  # fmt: skip
    return ExportSummary(entries=count, tree_size=size, full=filter_.empty)


def _count(session: Session, filter_: AuditFilter, size: int) -> int:
    """How many entries below ``size`` the filter keeps."""
    stmt = filter_.apply(
        select(func.count())
        .select_from(AuditLogRow)
        .join(AuditEntryRow, AuditEntryRow.id == AuditLogRow.entry_pk)
        .where(AuditLogRow.position < size)
    )
    return int(session.scalar(stmt) or 0)


def _previous(vault: HasAuditTrail, note: str, size: int, hashes: list[bytes]) -> dict[str, Any]:
    try:
        old = open_checkpoint(note, vault.audit.public_vkey, ed25519_verify)
    except CheckpointError:
        raise InvalidInput("previousCheckpoint", "does not verify with this vault's key") from None
    if old.size > size:
        raise InvalidInput("previousCheckpoint", "is newer than the latest checkpoint")
    proof = consistency_proof(old.size, hashes[:size]) if old.size else []
    return {"tree_size": old.size, "consistency": [b64(p) for p in proof]}


class _Writer:
    def __init__(self, out: TextIO, meta: TextIO | None, fmt: str) -> None:
        self._out = out
        self._meta = meta if fmt == "csv" else out
        self._csv = csv.writer(out) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)

    def meta(self, line: str) -> None:
        assert self._meta is not None  # noqa: S101 - checked by export_audit
        self._meta.write(line)

    def entry(
        self, position: int, digest: bytes, canonical: bytes, proof: list[bytes] | None
    ) -> None:
        if self._csv is None:
            self._out.write(entry_line(position, digest, canonical, proof))
            return
        raw = json.loads(canonical)
        self._csv.writerow(
            [
                position, raw["time"], raw["actor"], raw["role"], raw["purpose"], raw["action"],
                raw["outcome"], raw["customer"] or "", json.dumps(raw["fields"]), raw["request"],
                raw["client"] or "", json.dumps(raw["detail"]), b64(digest),
                "" if proof is None else " ".join(b64(p) for p in proof), canonical.decode(),
            ]
        )  # fmt: skip


def csv_to_lines(rows: Path, meta: Path) -> Iterator[str]:
    """The JSON lines a CSV export stands for (header and checkpoints from its meta file)."""
    meta_lines = meta.read_text(encoding="utf-8").splitlines(keepends=True)
    if not meta_lines:
        return
    yield meta_lines[0]
    pending = meta_lines[1:]
    checkpoints = [line for line in pending if '"type":"checkpoint"' in line]
    ends = [line for line in pending if '"type":"end"' in line]
    sizes = []
    for line in checkpoints:
        body = json.loads(line)["note"].split("\n")
        sizes.append(int(body[1]) if len(body) > 1 and body[1].isdigit() else -1)
    queue = list(zip(sizes, checkpoints, strict=True))
    with rows.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            position = int(row["position"])
            proof = [unb64(p) for p in row["proof"].split()] if row["proof"] else None
            yield entry_line(position, unb64(row["leaf_hash"]), row["entry"].encode(), proof)
            while queue and queue[0][0] == position + 1:
                yield queue.pop(0)[1]
    yield from ends
