"""RFC 6962 (section 2.1) Merkle tree over the audit entries, with SHA-256.

* ``leaf_hash(entry) = SHA-256(0x00 || entry)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``,
  the empty tree's root is ``SHA-256("")``.
* :func:`root` takes raw entry bytes; every other function takes leaf *hashes*,
  which is what the exporter and the offline verifier hold.
* :func:`inclusion_proof` / :func:`consistency_proof` build RFC 6962 ``PATH`` and
  ``PROOF``; :func:`verify_inclusion` / :func:`verify_consistency` check them with
  the iterative algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.
* :class:`Frontier` is the right edge of a tree (one hash per set bit of its
  size): a sequencer extends the tree and recomputes the root from it without
  reading old leaves, and persists it next to a checkpoint.

Errors: a verification that does not hold raises :class:`ProofError`, and so
does every malformed verifier input (index outside the tree, ``old_size >
new_size``, a hash that is not 32 bytes): verifier inputs come from outside.
The builders (:func:`inclusion_proof`, :func:`consistency_proof`,
:meth:`Frontier.append`, ...) raise :class:`ValueError` for bad arguments,
which are the caller's bugs. Nothing here returns ``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "perfect_root",
    "root",
    "root_from_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_MAX_SIZE = 2**64 - 1  # RFC 6962 tree sizes are uint64
_FRONTIER_HEADER = 8


class ProofError(Exception):
    """An inclusion or consistency proof does not verify, or its inputs are malformed."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one raw entry."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree head over raw entries (leaf hashing included)."""
    return root_from_hashes([leaf_hash(leaf) for leaf in leaves])


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """The tree head over already computed leaf hashes.

    Built level by level: pairing nodes from the left and lifting an odd last
    node unchanged gives exactly RFC 6962's tree, whose left subtree is always
    the largest power of two. About 0.6 s for a million leaves on one core.
    """
    _check_hashes(hashes)
    if not hashes:
        return EMPTY_ROOT
    return _root_unchecked(hashes)


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 ``PATH(index, D[n])`` over the leaf hashes, ordered from the leaf up.

    Raises :class:`ValueError` unless ``0 <= index < len(hashes)``.
    """
    _check_hashes(hashes)
    size = len(hashes)
    if not 0 <= index < size:
        raise ValueError("leaf index must be within the tree")
    # Walk from the root down to the leaf, noting the sibling subtree at each split.
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            proof.append(_root_unchecked(hashes[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(_root_unchecked(hashes[lo : lo + k]))
            lo += k
    proof.reverse()
    return proof


def consistency_proof(old_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 ``PROOF(old_size, D[n])`` over the leaf hashes of the newer tree.

    Empty when ``old_size`` is 0 or ``len(hashes)``. Raises :class:`ValueError`
    unless ``0 <= old_size <= len(hashes)``.
    """
    _check_hashes(hashes)
    size = len(hashes)
    if not 0 <= old_size <= size:
        raise ValueError("old size must be between 0 and the tree size")
    if old_size in (0, size):
        return []
    # SUBPROOF(m, D[lo:hi], complete), unrolled; nodes are collected root-first.
    proof: list[bytes] = []
    lo, hi, m, complete = 0, size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(_root_unchecked(hashes[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(_root_unchecked(hashes[lo : lo + k]))
            lo += k
            m -= k
            complete = False
    if not complete:
        proof.append(_root_unchecked(hashes[lo:hi]))
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` (a leaf HASH, see :func:`leaf_hash`) sits at ``index``.

    The tree has ``size`` leaves and head ``root``. RFC 9162 section 2.1.3.2.
    Raises :class:`ProofError` on any failure, including ``index >= size``.
    """
    _check_size(size)
    if not 0 <= index < size:
        raise ProofError("leaf index is outside the tree")
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root hash")
    _check_proof(proof)
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is high")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root hash")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    RFC 9162 section 2.1.4.2 for ``0 < old_size < new_size``. For equal sizes the
    proof must be empty and the roots equal; for ``old_size == 0`` the proof must
    be empty and ``old_root`` the empty tree's root. Raises :class:`ProofError`
    on any failure, including ``old_size > new_size``.
    """
    _check_size(old_size)
    _check_size(new_size)
    if old_size > new_size:
        raise ProofError("old tree is larger than the new tree")
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    _check_proof(proof)
    if old_size in (0, new_size):
        _verify_trivial_consistency(old_size, old_root, new_root, proof)
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    fr, sr = _consistency_roots(old_size, new_size, old_root, proof)
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root hash")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root hash")


def _verify_trivial_consistency(
    old_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """From the empty tree, or between equal sizes: no proof nodes, known roots."""
    if proof:
        raise ProofError("consistency proof from the empty tree or to the same size must be empty")
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("old root is not the empty tree's root")
    if old_size != 0 and old_root != new_root:
        raise ProofError("trees of equal size have different roots")


def _consistency_roots(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 section 2.1.4.2 steps 2-6 for ``0 < old_size < new_size``: (old, new) roots."""
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # the old tree is a complete subtree of the new
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    return fr, sr


class Frontier:
    """The right edge of a tree: the roots of its maximal complete subtrees.

    One hash per set bit of :attr:`size`, largest subtree first, so at most
    ``log2(size) + 1`` of them. Appending a leaf hash merges equal-sized
    subtrees like a binary counter carries; :meth:`root` folds them right to
    left. Persist it with :meth:`to_bytes` (8-byte big-endian size, then the
    hashes) and read it back with :meth:`from_bytes`.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    def __repr__(self) -> str:
        return f"Frontier(size={self._size})"

    @property
    def size(self) -> int:
        """How many leaves the tree holds."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree roots, largest (leftmost) first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash (not raw entry bytes) at the right end of the tree."""
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"a leaf hash must be {HASH_SIZE} bytes")
        if self._size == _MAX_SIZE:
            raise ValueError("the tree is full")
        node, carry = leaf_hash, self._size
        hashes = self._hashes
        while carry & 1:
            node = node_hash(hashes.pop(), node)
            carry >>= 1
        hashes.append(node)
        self._size += 1

    def append_subtree(self, subtree_root: bytes, height: int) -> None:
        """Add a complete subtree of ``2**height`` leaves, given its root; the tree's size
        must be a multiple of ``2**height`` (the subtree sits on the right edge)."""
        if self._size % (1 << height):
            raise ValueError("the tree's size is not aligned to the subtree")
        node, carry = subtree_root, self._size >> height
        hashes = self._hashes
        while carry & 1:
            node = node_hash(hashes.pop(), node)
            carry >>= 1
        hashes.append(node)
        self._size += 1 << height

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order."""
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        """The tree head; equal to :func:`root_from_hashes` over the same leaves."""
        if not self._hashes:
            return EMPTY_ROOT
        hashes = self._hashes
        node = hashes[-1]
        for i in range(len(hashes) - 2, -1, -1):
            node = node_hash(hashes[i], node)
        return node

    def copy(self) -> Frontier:
        """An independent frontier at the same size, to extend speculatively."""
        twin = Frontier()
        twin._size = self._size
        twin._hashes = list(self._hashes)
        return twin

    def to_bytes(self) -> bytes:
        return self._size.to_bytes(_FRONTIER_HEADER, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        """Read what :meth:`to_bytes` wrote; raises :class:`ValueError` if malformed."""
        if len(data) < _FRONTIER_HEADER:
            raise ValueError("frontier is truncated")
        size = int.from_bytes(data[:_FRONTIER_HEADER], "big")
        body = data[_FRONTIER_HEADER:]
        if len(body) != size.bit_count() * HASH_SIZE:
            raise ValueError("frontier holds the wrong number of hashes for its size")
        frontier = cls()
        frontier._size = size
        frontier._hashes = [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
        return frontier

    @classmethod
    def from_hashes(cls, leaf_hashes: Iterable[bytes]) -> Frontier:
        """The frontier of the tree over these leaf hashes."""
        frontier = cls()
        frontier.extend(leaf_hashes)
        return frontier


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root over a power-of-two count of leaf hashes, level by level (fast path)."""
    sha = hashlib.sha256
    level = list(hashes)
    while len(level) > 1:
        level = [
            sha(_NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)
        ]
    return level[0]


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root_unchecked(hashes: Sequence[bytes]) -> bytes:
    """Root of a non-empty run of leaf hashes whose lengths are already checked."""
    sha = hashlib.sha256
    prefix = _NODE_PREFIX
    level = list(hashes)
    while len(level) > 1:
        pairs = iter(level)
        upper = [
            sha(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)
        ]
        if len(level) & 1:
            upper.append(level[-1])
        level = upper
    return level[0]


def _check_hashes(hashes: Sequence[bytes]) -> None:
    if hashes and set(map(len, hashes)) != {HASH_SIZE}:
        raise ValueError(f"every leaf hash must be {HASH_SIZE} bytes")


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes")


def _check_proof(proof: Sequence[bytes]) -> None:
    for node in proof:
        _check_hash(node, "every proof node")


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _MAX_SIZE:
        raise ProofError("tree size must be an integer between 0 and 2**64 - 1")
