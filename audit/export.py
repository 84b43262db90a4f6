"""The export file format, shared by the exporter (vault side) and the offline verifier.

JSON lines, one object per line:

1. ``{"type": "cvault-audit-export", "version": 1, "origin", "vkey", "tree_size",
   "checkpoint": <signed note>, "filter": null | {...}, "previous": null | {...}}``
2. ``{"type": "entry", "position": n, "leaf_hash": b64, "entry": {...}}`` in position
   order; ``entry`` is the canonical entry, byte for byte; a filtered export adds
   ``"proof": [b64, ...]`` (inclusion in the header's tree).
3. in a full export, ``{"type": "checkpoint", "note": ...}`` after the entry that
   completes the tree the note signs, so a verifier can localise tampering.
4. ``{"type": "end", "entries": count}``.

A CSV export holds the entries as rows (the canonical entry in its last column)
and the other lines in a ``FILE.meta.jsonl`` beside it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from audit.merkle import node_hash

__all__ = [
    "CSV_COLUMNS",
    "FORMAT",
    "ProofTree",
    "b64",
    "checkpoint_line",
    "end_line",
    "entry_line",
    "header_line",
    "unb64",
]

FORMAT = "cvault-audit-export"
VERSION = 1
CSV_COLUMNS = (
    "position", "time", "actor", "role", "purpose", "action", "outcome", "customer",
    "fields", "request", "client", "detail", "leaf_hash", "proof", "entry",
)  # fmt: skip


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")  # noqa: TRY004 - callers catch ValueError
    return base64.b64decode(text, validate=True)


def _line(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def header_line(
    *,
    origin: str,
    vkey: str,
    tree_size: int,
    checkpoint: str,
    filter_: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None,
) -> str:
    return _line(
        {
            "type": FORMAT,
            "version": VERSION,
            "origin": origin,
            "vkey": vkey,
            "tree_size": tree_size,
            "checkpoint": checkpoint,
            "filter": filter_,
            "previous": previous,
        }
    )


def entry_line(
    position: int, leaf_hash: bytes, canonical: bytes, proof: Sequence[bytes] | None = None
) -> str:
    """The canonical entry is spliced in verbatim, so the line carries its exact bytes."""
    head = f'{{"type":"entry","position":{position},"leaf_hash":"{b64(leaf_hash)}"'
    tail = "" if proof is None else ',"proof":' + json.dumps([b64(p) for p in proof])
    return f'{head}{tail},"entry":{canonical.decode("utf-8")}}}\n'


def checkpoint_line(note: str) -> str:
    return _line({"type": "checkpoint", "note": note})


def end_line(entries: int) -> str:
    return _line({"type": "end", "entries": entries})


class ProofTree:
    """Every level of an RFC 6962 tree built once, so many inclusion proofs cost
    O(log n) each (a filtered export proves each of its entries)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.size = len(leaf_hashes)
        levels = [list(leaf_hashes)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])  # an unpaired right node moves up unchanged
            levels.append(above)
        self._levels = levels

    def __repr__(self) -> str:
        return f"ProofTree(size={self.size})"

    def inclusion_proof(self, index: int) -> list[bytes]:
        if not 0 <= index < self.size:
            raise ValueError("index outside the tree")
        proof = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        return proof
