"""The offline verifier: an export file and a trusted public key, no database.

It checks the signatures of every checkpoint in the file, recomputes each
entry's leaf hash from its canonical bytes, rebuilds the tree (a full export)
or checks each inclusion proof (a filtered export), and checks consistency
with an earlier checkpoint the verifier already trusts. The first thing that
does not hold raises :class:`VerificationError`.

What it can name: an entry whose bytes no longer match the leaf hash written beside it
(edited in place) is named by position and id. An entry edited *and* given a recomputed
leaf hash is consistent with itself; only the next signed checkpoint catches it, and a
checkpoint commits to the root of all leaves, not to any one of them, so the verifier
names the interval of positions that checkpoint covers since the previous one that held
(``positions 256 to 511``): one or more entries in it were changed, added, removed or
reordered. A filtered export checks each entry's inclusion proof, which names the entry.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import multiprocessing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.checkpoint import Checkpoint, CheckpointError, open_checkpoint, parse_vkey
from audit.entries import EntryError, canonical_json
from audit.export import FORMAT, unb64
from audit.merkle import (
    Frontier,
    ProofError,
    leaf_hash,
    perfect_root,
    verify_consistency,
    verify_inclusion,
)

__all__ = ["VerificationError", "VerifyReport", "verify_file", "verify_lines"]

Verify = Callable[[bytes, bytes, bytes], None]


class VerificationError(Exception):
    """The export does not verify. ``position`` / ``entry_id`` name the bad entry when one
    entry can be named; ``positions`` (first, last) the interval a signed checkpoint
    refutes when it cannot (a leaf hash was recomputed)."""

    def __init__(
        self,
        message: str,
        *,
        position: int | None = None,
        entry_id: str | None = None,
        positions: tuple[int, int] | None = None,
    ) -> None:
        where = ""
        if position is not None:
            where = f"entry at position {position}" + (f" (id {entry_id})" if entry_id else "")
            where += ": "
        super().__init__(where + message)
        self.position = position
        self.entry_id = entry_id
        self.positions = positions


@dataclass(frozen=True, slots=True)
class VerifyReport:
    entries: int
    tree_size: int
    root_hash: bytes
    full: bool
    checkpoints: int
    previous_size: int | None


def _json(line: str | bytes, number: int) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except ValueError:
        raise VerificationError(f"line {number} is not JSON") from None
    if not isinstance(obj, dict):
        raise VerificationError(f"line {number} is not a JSON object")
    return obj


class _Verifier:
    def __init__(self, trusted_vkey: str, verify: Verify, previous_note: str | None) -> None:
        try:
            self.key_name, _ = parse_vkey(trusted_vkey)
        except CheckpointError as exc:
            raise VerificationError(f"the public key is malformed: {exc}") from None
        self.vkey = trusted_vkey
        self.verify = verify
        self.previous = (
            self.open(previous_note, "the previous checkpoint") if previous_note else None
        )

    def open(self, note: str, what: str) -> Checkpoint:
        try:
            return open_checkpoint(note, self.vkey, self.verify)
        except CheckpointError as exc:
            raise VerificationError(f"{what} does not verify with the trusted key: {exc}") from None


def verify_lines(
    lines: Iterable[str | bytes],
    *,
    trusted_vkey: str,
    verify: Verify,
    previous_note: str | None = None,
) -> VerifyReport:
    """Verify an export, streaming: memory stays constant for a full export."""
    checker = _Verifier(trusted_vkey, verify, previous_note)
    numbered = enumerate(lines, start=1)
    first = next(numbered, None)
    if first is None:
        raise VerificationError("the file is empty")
    raw_first = first[1].encode("utf-8") if isinstance(first[1], str) else first[1]
    header, head = _header(checker, raw_first, trusted_vkey)
    run = _Run(checker, head, full=header.get("filter") is None)
    for number, line in numbered:
        raw = line.encode("utf-8") if isinstance(line, str) else line
        if raw.startswith(_ENTRY_PREFIX) and run.full:
            run.fast_entry(raw, number)
        else:
            run.line(_json(raw, number), number)
    run.finish()
    _check_previous(checker, header, head, run.previous_root, run.full)
    return VerifyReport(
        entries=run.count,
        tree_size=head.size,
        root_hash=head.root_hash,
        full=run.full,
        checkpoints=run.checkpoints + 1,
        previous_size=None if checker.previous is None else checker.previous.size,
    )


def verify_file(
    path: Path,
    *,
    trusted_vkey: str,
    verify: Verify,
    previous_note: str | None = None,
    workers: int = 2,
    parallel_from: int = 8 * 1024 * 1024,
) -> VerifyReport:
    """Verify an export file. A large full export has its entry lines hashed by several
    processes at once (each checks its lines' hashes and order); the tree, the signed
    checkpoints and everything else are then checked in order, as :func:`verify_lines`
    does. Whenever anything does not hold, the file is verified again by
    :func:`verify_lines`, which names the first bad entry."""

    def streamed() -> VerifyReport:
        with path.open("rb") as fh:
            return verify_lines(
                fh, trusted_vkey=trusted_vkey, verify=verify, previous_note=previous_note
            )

    size = path.stat().st_size
    if workers < 2 or size < parallel_from:
        return streamed()
    with path.open("rb") as fh:
        first = fh.readline()
        bounds = [len(first)]
        for i in range(1, workers):
            fh.seek(len(first) + (size - len(first)) * i // workers)
            fh.readline()
            bounds.append(max(fh.tell(), bounds[-1]))
        bounds.append(size)
    checker = _Verifier(trusted_vkey, verify, previous_note)
    header, head = _header(checker, first, trusted_vkey)
    if header.get("filter") is not None:
        return streamed()
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        parts = pool.starmap(
            _hash_range, [(str(path), bounds[i], bounds[i + 1]) for i in range(workers)]
        )
    run = _Run(checker, head, full=True)
    try:
        _replay(run, parts)
        run.finish()
        _check_previous(checker, header, head, run.previous_root, run.full)
    except (_Slow, VerificationError):
        return streamed()
    return VerifyReport(
        entries=run.count,
        tree_size=head.size,
        root_hash=head.root_hash,
        full=True,
        checkpoints=run.checkpoints + 1,
        previous_size=None if checker.previous is None else checker.previous.size,
    )


def _replay(run: _Run, parts: list[_Part | None]) -> None:
    """Feed the workers' results to the run in file order: digests as entries, the other
    lines (checkpoints, the end marker) where they stood."""
    number = 1
    for part in parts:
        if part is None:
            raise _Slow
        digests, first_position, others, total = part
        done = 0
        for before, index, raw in [*others, (len(digests) // 32, -1, b"")]:
            if before > done and first_position + done != run.expected:
                raise _Slow
            for offset in range(done * 32, before * 32, 32):
                run.accept(digests[offset : offset + 32])
            done = before
            if index >= 0:
                run.line(_json(raw, number + index + 1), number + index + 1)
        number += total


_Part = tuple[bytes, int, list[tuple[int, int, bytes]], int]


class _Slow(Exception):
    """The fast path met something it does not judge: verify again line by line."""


def _hash_range(path: str, start: int, end: int) -> _Part | None:
    """Hash the entry lines between two byte offsets (a worker process): their digests in
    order, the first position, the other lines with where they stand, the line count."""
    digests = bytearray()
    others: list[tuple[int, int, bytes]] = []
    first_position = expected = -1
    index = 0
    with open(path, "rb") as fh:  # noqa: PTH123 - a plain path string across processes
        fh.seek(start)
        offset = start
        while offset < end:
            line = fh.readline()
            if not line:
                break
            offset += len(line)
            if line.startswith(_ENTRY_PREFIX):
                found = _entry_digest(line)
                if found is None:
                    return None
                position, digest = found
                if expected == -1:
                    first_position = position
                elif position != expected:
                    return None
                expected = position + 1
                digests += digest
            else:
                others.append((len(digests) // 32, index, line))
            index += 1
    return bytes(digests), first_position, others, index


def _entry_digest(line: bytes) -> tuple[int, bytes] | None:
    """An entry line's position and leaf hash, if its listed hash matches its bytes."""
    try:
        cut = line.index(_LEAF_KEY, _PREFIX_LEN)
        position = int(line[_PREFIX_LEN:cut])
        start = cut + _LEAF_KEY_LEN
        end = line.index(_ENTRY_KEY, start)
    except ValueError:
        return None
    tail = -2 if line.endswith(b"}\n") else -1
    if line[tail] != _CLOSE:
        return None
    digest = _sha256(b"\x00" + line[end + _ENTRY_KEY_LEN : tail]).digest()
    if _b64(digest, newline=False) != line[start:end]:
        return None
    return position, digest


def _header(
    checker: _Verifier, first: bytes, trusted_vkey: str
) -> tuple[dict[str, Any], Checkpoint]:
    header = _json(first, 1)
    if header.get("type") != FORMAT or header.get("version") != 1:
        raise VerificationError("line 1 is not a customer-vault audit export header")
    if header.get("vkey") != trusted_vkey:
        raise VerificationError("the export names another signing key than the trusted one")
    head = checker.open(str(header.get("checkpoint")), "the export's checkpoint")
    if head.size != header.get("tree_size"):
        raise VerificationError("the header's tree size differs from its signed checkpoint")
    return header, head


_ENTRY_PREFIX = b'{"type":"entry","position":'
_LEAF_KEY = b',"leaf_hash":"'
_ENTRY_KEY = b'","entry":'
_PREFIX_LEN = len(_ENTRY_PREFIX)
_LEAF_KEY_LEN = len(_LEAF_KEY)
_ENTRY_KEY_LEN = len(_ENTRY_KEY)
_CLOSE = ord("}")
_sha256 = hashlib.sha256
_b64 = binascii.b2a_base64
_CHUNK_BITS = 8
_CHUNK = 1 << _CHUNK_BITS


class _Run:
    """The state of one pass over the entry lines."""

    def __init__(self, checker: _Verifier, head: Checkpoint, *, full: bool) -> None:
        self.checker = checker
        self.head = head
        self.full = full
        self.frontier = Frontier()
        self.pending: list[bytes] = []
        self.expected = self.count = self.checkpoints = self.last_good = 0
        self.ended = False
        previous = checker.previous
        self.previous_root = Frontier().root() if previous and previous.size == 0 else None

    def line(self, obj: dict[str, Any], number: int) -> None:
        if self.ended:
            raise VerificationError(f"line {number} follows the end marker")
        kind = obj.get("type")
        if kind == "entry":
            self.entry(obj, number)
        elif kind == "checkpoint" and self.full:
            self.checkpoint(obj, number)
        elif kind == "end":
            if obj.get("entries") != self.count:
                raise VerificationError("the end marker counts a different number of entries")
            self.ended = True
        else:
            raise VerificationError(f"line {number} has an unknown type")

    def entry(self, obj: dict[str, Any], number: int) -> None:
        position, entry_id, digest = _entry(obj, number)
        if self.full:
            if position != self.expected:
                raise VerificationError(
                    f"expected position {self.expected}: an entry is missing, added or moved",
                    position=position,
                    entry_id=entry_id,
                )
            self.add_leaf(digest)
        else:
            if position < self.expected:
                raise VerificationError(
                    "entries are out of order", position=position, entry_id=entry_id
                )
            _check_proof(obj, position, entry_id, digest, self.head)
        self.expected = position + 1
        self.count += 1

    def fast_entry(self, line: bytes, number: int) -> None:
        """A full export's entry line, taken apart without a JSON parser: the canonical
        entry bytes are hashed exactly as they stand (they were spliced in verbatim)."""
        found = _entry_digest(line)
        if found is None or found[0] != self.expected:
            self.entry(_json(line, number), number)  # the slow path names the problem
            return
        self.add_leaf(found[1])
        self.expected += 1
        self.count += 1

    def accept(self, digest: bytes) -> None:
        """A full export's next entry, already hashed and checked by a worker."""
        if self.ended:
            raise _Slow
        self.add_leaf(digest)
        self.expected += 1
        self.count += 1

    def add_leaf(self, digest: bytes) -> None:
        """Append a leaf; complete, aligned runs of 256 are folded at once."""
        if self.pending or self.frontier.size % _CHUNK == 0:
            self.pending.append(digest)
            if len(self.pending) == _CHUNK:
                self.frontier.append_subtree(perfect_root(self.pending), _CHUNK_BITS)
                self.pending.clear()
        else:
            self.frontier.append(digest)
        previous = self.checker.previous
        if previous is not None and self.size == previous.size:
            self.flush()
            self.previous_root = self.frontier.root()

    @property
    def size(self) -> int:
        return self.frontier.size + len(self.pending)

    def flush(self) -> None:
        for digest in self.pending:
            self.frontier.append(digest)
        self.pending.clear()

    def checkpoint(self, obj: dict[str, Any], number: int) -> None:
        self.flush()
        cp = self.checker.open(str(obj.get("note")), f"the checkpoint on line {number}")
        if cp.size != self.frontier.size or cp.root_hash != self.frontier.root():
            raise self.interval(f"the checkpoint signed for tree size {cp.size}", cp.size)
        self.last_good = cp.size
        self.checkpoints += 1

    def finish(self) -> None:
        self.flush()
        if not self.ended:
            raise VerificationError("the file is truncated: no end marker")
        if self.full and (
            self.frontier.size != self.head.size or self.frontier.root() != self.head.root_hash
        ):
            raise self.interval(
                f"the export's signed checkpoint (tree size {self.head.size})", self.head.size
            )

    def interval(self, checkpoint: str, signed_size: int) -> VerificationError:
        """The error for a checkpoint the entries since the last good one do not rebuild:
        it names the interval, as no single entry can be told (each matches its own,
        possibly recomputed, leaf hash)."""
        last = max(signed_size, self.frontier.size) - 1
        return VerificationError(
            f"entries at positions {self.last_good} to {last} do not rebuild {checkpoint}: "
            "one or more of them were changed (with a recomputed leaf hash), added, removed "
            "or reordered; a checkpoint proves the interval, not which entry",
            positions=(self.last_good, last),
        )


def _entry(obj: dict[str, Any], number: int) -> tuple[int, str | None, bytes]:
    position = obj.get("position")
    entry = obj.get("entry")
    if not isinstance(position, int) or not isinstance(entry, dict):
        raise VerificationError(f"line {number} is not a well-formed entry")
    entry_id = entry.get("id") if isinstance(entry.get("id"), str) else None
    try:
        digest = leaf_hash(canonical_json(entry))
    except (TypeError, ValueError, EntryError):
        raise VerificationError("the entry cannot be serialised", position=position) from None
    try:
        listed = unb64(obj.get("leaf_hash"))
    except ValueError:
        raise VerificationError(
            "the leaf hash is malformed", position=position, entry_id=entry_id
        ) from None
    if listed != digest:
        raise VerificationError(
            "the entry's content does not match its recorded leaf hash (edited)",
            position=position,
            entry_id=entry_id,
        )
    return position, entry_id, digest


def _check_proof(
    obj: dict[str, Any], position: int, entry_id: str | None, digest: bytes, head: Checkpoint
) -> None:
    try:
        proof = [unb64(p) for p in obj.get("proof") or []]
        verify_inclusion(digest, position, head.size, proof, head.root_hash)
    except (ProofError, ValueError):
        raise VerificationError(
            "the entry is not included in the signed tree (its proof fails)",
            position=position,
            entry_id=entry_id,
        ) from None


def _check_previous(
    checker: _Verifier,
    header: dict[str, Any],
    head: Checkpoint,
    previous_root: bytes | None,
    full: bool,
) -> None:
    previous = checker.previous
    if previous is None:
        return
    if previous.size > head.size:
        raise VerificationError("the previous checkpoint is larger than the exported tree")
    if full:
        if previous_root != previous.root_hash:
            raise VerificationError(
                f"the log is not consistent with the previous checkpoint (tree size "
                f"{previous.size}): entries before that position were changed",
                position=0,
            )
        return
    given = header.get("previous")
    if not isinstance(given, dict) or given.get("tree_size") != previous.size:
        raise VerificationError(
            "a filtered export needs a consistency proof for the previous checkpoint: "
            "export again with --previous-checkpoint"
        )
    try:
        proof = [unb64(p) for p in given.get("consistency") or []]
        verify_consistency(previous.size, head.size, previous.root_hash, head.root_hash, proof)
    except (ProofError, ValueError):
        raise VerificationError("the log is not consistent with the previous checkpoint") from None
