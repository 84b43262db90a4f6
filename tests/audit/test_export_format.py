"""The export format's builders and the level-built proof tree."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.export import ProofTree, entry_line
from audit.merkle import inclusion_proof, leaf_hash, root_from_hashes, verify_inclusion


def _hashes(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=1, max_value=300), data=st.data())
def test_proof_tree_gives_the_rfc6962_audit_path(size: int, data: st.DataObject) -> None:
    """For any tree size and leaf, the proof from the level-built tree equals RFC 6962's
    PATH and verifies against the root."""
    hashes = _hashes(size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    tree = ProofTree(hashes)
    proof = tree.inclusion_proof(index)
    assert proof == inclusion_proof(index, hashes)
    verify_inclusion(hashes[index], index, size, proof, root_from_hashes(hashes))


def test_entry_line_carries_the_canonical_bytes_verbatim() -> None:
    """The canonical entry is spliced into the line unchanged, so re-serialising the parsed
    entry canonically gives back the exact bytes that were hashed."""
    canonical = b'{"a":"\xd9\x85","b":1}'
    line = entry_line(7, leaf_hash(canonical), canonical)
    parsed = json.loads(line)
    again = json.dumps(parsed["entry"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert (parsed["position"], again.encode()) == (7, canonical)
