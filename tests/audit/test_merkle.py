"""RFC 6962 Merkle tree: published vectors, proofs, tampering, and the frontier."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_hashes,
    verify_consistency,
    verify_inclusion,
)

# -- published vectors ---------------------------------------------------------
# From transparency-dev/merkle, testonly/constants.go (LeafInputs, NodeHashes,
# RootHashes, CompactTrees); the same values appear in proof/verify_test.go and
# descend from the certificate-transparency C++ tests.

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]

# NODE_HASHES[level][index]: every complete subtree of the 8-leaf tree.
NODE_HASHES = [
    [
        bytes.fromhex(h)
        for h in [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ]
    ],
    [
        bytes.fromhex(h)
        for h in [
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ]
    ],
    [
        bytes.fromhex(h)
        for h in [
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ]
    ],
    [bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# ROOTS[n]: the root of the tree over LEAVES[:n].
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]

_NH = NODE_HASHES
# COMPACT_TREES[n]: the right-edge subtree roots of the tree over LEAVES[:n].
COMPACT_TREES: list[list[bytes]] = [
    [],
    [_NH[0][0]],
    [_NH[1][0]],
    [_NH[1][0], _NH[0][2]],
    [_NH[2][0]],
    [_NH[2][0], _NH[0][4]],
    [_NH[2][0], _NH[1][2]],
    [_NH[2][0], _NH[1][2], _NH[0][6]],
    [_NH[3][0]],
]

# From transparency-dev/merkle, proof/verify_test.go (inclusionProofs,
# consistencyProofs). The Go file numbers leaves from 1; INDEX here is 0-based.
# Each vector reads: leaf index, tree size, audit path.
INCLUSION_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (
        0,
        8,
        [
            bytes.fromhex("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            bytes.fromhex("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            bytes.fromhex("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            bytes.fromhex("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            bytes.fromhex("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            bytes.fromhex("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        3,
        [bytes.fromhex("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")],
    ),
    (
        1,
        5,
        [
            bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            bytes.fromhex("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            bytes.fromhex("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# Each vector reads: old size, new size, consistency proof.
CONSISTENCY_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (
        1,
        8,
        [
            bytes.fromhex("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            bytes.fromhex("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            bytes.fromhex("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            bytes.fromhex("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            bytes.fromhex("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            bytes.fromhex("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            bytes.fromhex("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            bytes.fromhex("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            bytes.fromhex("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            bytes.fromhex("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            bytes.fromhex("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
HASHES = [leaf_hash(leaf) for leaf in LEAVES]


def _raises_proof_error(check: Callable[[], None]) -> bool:
    try:
        check()
    except ProofError:
        return True
    return False


def _flip(proof: Sequence[bytes], i: int, mask: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ mask]) + out[i][1:]
    return out


def _hashes(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


# -- hashing and roots ---------------------------------------------------------


def test_leaf_and_node_hashes_use_rfc6962_prefixes() -> None:
    """A leaf hashes as SHA-256(0x00 || data), a node as SHA-256(0x01 || left || right)."""
    assert hashlib.sha256(b"\x00abc").digest() == leaf_hash(b"abc")
    assert hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest() == node_hash(
        b"L" * 32, b"R" * 32
    )


def test_leaf_hashes_match_the_published_level_zero() -> None:
    """The published leaf inputs hash to the published level-0 node hashes."""
    assert NODE_HASHES[0] == HASHES


def test_interior_nodes_match_the_published_levels() -> None:
    """Each published node at level l+1 is node_hash of its two children at level l."""
    for level in range(1, len(NODE_HASHES)):
        below = NODE_HASHES[level - 1]
        expected = NODE_HASHES[level]
        actual = [node_hash(below[2 * i], below[2 * i + 1]) for i in range(len(expected))]
        assert expected == actual


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_roots_match_the_published_roots(size: int) -> None:
    """root over raw entries and root_from_hashes over leaf hashes give the published roots."""
    assert ROOTS[size] == root(LEAVES[:size])
    assert ROOTS[size] == root_from_hashes(HASHES[:size])


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    """The root of the empty tree is SHA-256 of the empty string."""
    assert hashlib.sha256(b"").digest() == root([])
    assert EMPTY_ROOT == root_from_hashes([])


def test_root_from_hashes_rejects_hashes_of_the_wrong_length() -> None:
    """Leaf hashes are 32 bytes; anything else is a ValueError, not a silent root."""
    with pytest.raises(ValueError, match="32 bytes"):
        root_from_hashes([*HASHES[:3], b"short"])


def _reference_root(hashes: Sequence[bytes]) -> bytes:
    """RFC 6962 MTH written as the recursion in the RFC, for cross-checking."""
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(_reference_root(hashes[:k]), _reference_root(hashes[k:]))


def test_level_by_level_root_equals_the_rfc_recursion() -> None:
    """The iterative root equals RFC 6962's recursive MTH for every size up to 300."""
    hashes = _hashes(300)
    for n in range(301):
        assert _reference_root(hashes[:n]) == root_from_hashes(hashes[:n])


# -- inclusion proofs ----------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_published_inclusion_proofs_are_built_and_verify(
    index: int, size: int, proof: list[bytes]
) -> None:
    """inclusion_proof reproduces each published audit path, and it verifies."""
    assert proof == inclusion_proof(index, HASHES[:size])
    verify_inclusion(HASHES[index], index, size, proof, ROOTS[size])


# Audit paths by node position, from transparency-dev/merkle proof/proof_test.go
# (TestInclusion), resolved against NODE_HASHES. Where the Go test "rehashes"
# the ephemeral node l = hash(i, j) of a 7-leaf tree, we expect that hash.
_L7 = node_hash(_NH[1][2], _NH[0][6])


@pytest.mark.parametrize(
    ("index", "size", "expected"),
    [
        (0, 1, []),
        (0, 2, [_NH[0][1]]),
        (1, 2, [_NH[0][0]]),
        (1, 3, [_NH[0][0], _NH[0][2]]),
        (0, 7, [_NH[0][1], _NH[1][1], _L7]),
        (2, 7, [_NH[0][3], _NH[1][0], _L7]),
        (4, 7, [_NH[0][5], _NH[0][6], _NH[2][0]]),
        (5, 7, [_NH[0][4], _NH[0][6], _NH[2][0]]),
        (6, 7, [_NH[1][2], _NH[2][0]]),
        (2, 4, [_NH[0][3], _NH[1][0]]),
        (3, 5, [_NH[0][2], _NH[1][0], _NH[0][4]]),
        (3, 6, [_NH[0][2], _NH[1][0], _NH[1][2]]),
        (4, 6, [_NH[0][5], _NH[2][0]]),
    ],
)
def test_inclusion_paths_pick_the_published_nodes(
    index: int, size: int, expected: list[bytes]
) -> None:
    """Each audit path lists the sibling subtrees from the leaf up, as proof_test.go does."""
    assert expected == inclusion_proof(index, HASHES[:size])


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root_hash: bytes, leaf: bytes
) -> list[tuple[str, Callable[[], None]]]:
    """The corruptions of transparency-dev/merkle proof/verify_test.go, corruptInclusionProof."""

    def probe(i: int, n: int, p: Sequence[bytes], r: bytes, lf: bytes) -> Callable[[], None]:
        return lambda: verify_inclusion(lf, i, n, p, r)

    probes = [
        ("index - 1", probe(index - 1, size, proof, root_hash, leaf)),
        ("index + 1", probe(index + 1, size, proof, root_hash, leaf)),
        ("index ^ 2", probe(index ^ 2, size, proof, root_hash, leaf)),
        ("size * 2", probe(index, size * 2, proof, root_hash, leaf)),
        ("size // 2", probe(index, size // 2, proof, root_hash, leaf)),
        ("wrong leaf", probe(index, size, proof, root_hash, b"WrongLeaf")),
        ("other leaf", probe(index, size, proof, root_hash, SOME_HASH)),
        ("empty root", probe(index, size, proof, EMPTY_ROOT, leaf)),
        ("random root", probe(index, size, proof, SOME_HASH, leaf)),
        ("trailing garbage", probe(index, size, [*proof, b""], root_hash, leaf)),
        ("trailing root", probe(index, size, [*proof, root_hash], root_hash, leaf)),
        ("preceding garbage", probe(index, size, [b"", *proof], root_hash, leaf)),
        ("preceding root", probe(index, size, [root_hash, *proof], root_hash, leaf)),
    ]
    probes.extend(
        (f"flip proof[{i}]", probe(index, size, _flip(proof, i, 8), root_hash, leaf))
        for i in range(len(proof))
    )
    flipped_leaf = bytes([leaf[0] ^ 1]) + leaf[1:]
    flipped_root = root_hash[:-1] + bytes([root_hash[-1] ^ 1])
    probes.append(("flip leaf", probe(index, size, proof, root_hash, flipped_leaf)))
    probes.append(("flip root", probe(index, size, proof, flipped_root, leaf)))
    if proof:
        probes.append(("removed component", probe(index, size, proof[:-1], root_hash, leaf)))
    if len(proof) > 1:
        inserted = [proof[0], SOME_HASH, *proof[1:]]
        probes.append(("inserted component", probe(index, size, inserted, root_hash, leaf)))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_corrupted_inclusion_proofs_raise(index: int, size: int, proof: list[bytes]) -> None:
    """Wrong index or size, a changed leaf or root, and an edited proof all raise ProofError."""
    probes = _inclusion_probes(index, size, proof, ROOTS[size], HASHES[index])
    accepted = [name for name, check in probes if not _raises_proof_error(check)]
    assert [] == accepted


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_rejects_wrong_length_hashes(index: int, size: int) -> None:
    """A leaf or root that is not 32 bytes fails, whatever the index and size (verify_test.go)."""
    with pytest.raises(ProofError):
        verify_inclusion(SOME_HASH, index, size, [], b"")
    with pytest.raises(ProofError):
        verify_inclusion(b"", index, size, [], EMPTY_ROOT)
    with pytest.raises(ProofError):
        verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)


def test_single_leaf_tree_proves_its_leaf_with_an_empty_path() -> None:
    """In a one-leaf tree the root is the leaf hash and the proof is empty."""
    only = leaf_hash(b"data")
    assert [] == inclusion_proof(0, [only])
    verify_inclusion(only, 0, 1, [], only)
    with pytest.raises(ProofError):
        verify_inclusion(only, 0, 1, [only], only)


def test_inclusion_proof_longer_than_the_tree_is_high_raises() -> None:
    """A path with a node past the root is rejected as too long, before any root comparison."""
    proof = inclusion_proof(5, HASHES)
    with pytest.raises(ProofError, match="longer than the tree is high"):
        verify_inclusion(HASHES[5], 5, 8, [*proof, SOME_HASH], ROOTS[8])
    with pytest.raises(ProofError, match="shorter than the tree is high"):
        verify_inclusion(HASHES[5], 5, 8, proof[:-1], ROOTS[8])


@pytest.mark.parametrize(("index", "size"), [(-1, 8), (8, 8), (9, 8), (0, 0)])
def test_inclusion_proof_rejects_an_index_outside_the_tree(index: int, size: int) -> None:
    """Building a path for a leaf the tree does not hold is a ValueError."""
    with pytest.raises(ValueError, match="within the tree"):
        inclusion_proof(index, HASHES[:size])


def test_verify_inclusion_rejects_an_index_outside_the_tree() -> None:
    """Verifying index >= size, or a negative index, raises ProofError."""
    with pytest.raises(ProofError, match="outside the tree"):
        verify_inclusion(HASHES[0], 8, 8, [], ROOTS[8])
    with pytest.raises(ProofError, match="outside the tree"):
        verify_inclusion(HASHES[0], -1, 8, [], ROOTS[8])


# -- consistency proofs --------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_published_consistency_proofs_are_built_and_verify(
    old: int, new: int, proof: list[bytes]
) -> None:
    """consistency_proof reproduces each published proof, and it verifies."""
    assert proof == consistency_proof(old, HASHES[:new])
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


# Consistency proofs by node position, from transparency-dev/merkle
# proof/proof_test.go (TestConsistency), resolved against NODE_HASHES.
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (1, 2, [_NH[0][1]]),
        (1, 4, [_NH[0][1], _NH[1][1]]),
        (1, 6, [_NH[0][1], _NH[1][1], _NH[1][2]]),
        (2, 3, [_NH[0][2]]),
        (2, 8, [_NH[1][1], _NH[2][1]]),
        (3, 7, [_NH[0][2], _NH[0][3], _NH[1][0], _L7]),
        (4, 7, [_L7]),
        (5, 7, [_NH[0][4], _NH[0][5], _NH[0][6], _NH[2][0]]),
        (6, 7, [_NH[1][2], _NH[0][6], _NH[2][0]]),
        (7, 8, [_NH[0][6], _NH[0][7], _NH[1][2], _NH[2][0]]),
        (2, 4, [_NH[1][1]]),
        (3, 5, [_NH[0][2], _NH[0][3], _NH[1][0], _NH[0][4]]),
        (3, 6, [_NH[0][2], _NH[0][3], _NH[1][0], _NH[1][2]]),
        (4, 6, [_NH[1][2]]),
        (1, 7, [_NH[0][1], _NH[1][1], _L7]),
    ],
)
def test_consistency_proofs_pick_the_published_nodes(
    old: int, new: int, expected: list[bytes]
) -> None:
    """Each consistency proof lists the published subtree roots in RFC 6962 order."""
    assert expected == consistency_proof(old, HASHES[:new])
    verify_consistency(old, new, ROOTS[old], ROOTS[new], expected)


def _consistency_probes(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> list[tuple[str, Callable[[], None]]]:
    """The corruptions of transparency-dev/merkle proof/verify_test.go, corruptConsistencyProof."""

    def probe(m: int, n: int, a: bytes, b: bytes, p: Sequence[bytes]) -> Callable[[], None]:
        return lambda: verify_consistency(m, n, a, b, p)

    probes = [
        ("old - 1", probe(old - 1, new, r1, r2, proof)),
        ("old + 1", probe(old + 1, new, r1, r2, proof)),
        ("old ^ 2", probe(old ^ 2, new, r1, r2, proof)),
        ("new * 2", probe(old, new * 2, r1, r2, proof)),
        ("new // 2", probe(old, new // 2, r1, r2, proof)),
        ("swapped sizes", probe(new, old, r1, r2, proof)),
        ("wrong root1", probe(old, new, b"WrongRoot", r2, proof)),
        ("wrong root2", probe(old, new, r1, b"WrongRoot", proof)),
        ("swapped roots", probe(old, new, r2, r1, proof)),
        ("swapped sizes and roots", probe(new, old, r2, r1, proof)),
        ("empty proof", probe(old, new, r1, r2, [])),
        ("trailing garbage", probe(old, new, r1, r2, [*proof, b""])),
        ("trailing root1", probe(old, new, r1, r2, [*proof, r1])),
        ("trailing root2", probe(old, new, r1, r2, [*proof, r2])),
        ("preceding garbage", probe(old, new, r1, r2, [b"", *proof])),
        ("preceding root1", probe(old, new, r1, r2, [r1, *proof])),
        ("preceding root2", probe(old, new, r1, r2, [r2, *proof])),
        ("preceding proof[0]", probe(old, new, r1, r2, [proof[0], *proof])),
        ("truncated proof", probe(old, new, r1, r2, proof[:-1])),
        ("flip root1", probe(old, new, bytes([r1[0] ^ 1]) + r1[1:], r2, proof)),
        ("flip root2", probe(old, new, r1, bytes([r2[0] ^ 1]) + r2[1:], proof)),
    ]
    probes.extend(
        (f"flip proof[{i}]", probe(old, new, r1, r2, _flip(proof, i, 16)))
        for i in range(len(proof))
    )
    return probes


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_corrupted_consistency_proofs_raise(old: int, new: int, proof: list[bytes]) -> None:
    """Wrong sizes, swapped or changed roots and an edited proof all raise ProofError."""
    probes = _consistency_probes(old, new, ROOTS[old], ROOTS[new], proof)
    accepted = [name for name, check in probes if not _raises_proof_error(check)]
    assert [] == accepted


def test_consistency_from_the_empty_tree_needs_no_proof() -> None:
    """old_size 0: the proof is empty and the old root must be the empty tree's root."""
    assert [] == consistency_proof(0, HASHES)
    verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError, match="empty tree's root"):
        verify_consistency(0, 8, ROOTS[1], ROOTS[8], [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [EMPTY_ROOT])


def test_consistency_between_equal_sizes_needs_equal_roots_and_no_proof() -> None:
    """Equal sizes: the proof is empty and the two roots must be identical."""
    for size in range(1, 9):
        assert [] == consistency_proof(size, HASHES[:size])
        verify_consistency(size, size, ROOTS[size], ROOTS[size], [])
    with pytest.raises(ProofError, match="different roots"):
        verify_consistency(5, 5, ROOTS[5], ROOTS[6], [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(5, 5, ROOTS[5], ROOTS[5], [EMPTY_ROOT])


@pytest.mark.parametrize(("old", "new"), [(1, 0), (2, 1), (8, 5)])
def test_consistency_backwards_in_time_raises(old: int, new: int) -> None:
    """An old tree larger than the new one is a ProofError (old_size > new_size)."""
    with pytest.raises(ProofError, match="larger than the new tree"):
        verify_consistency(old, new, ROOTS[old], ROOTS[new], [])


def test_consistency_with_an_empty_proof_between_different_sizes_raises() -> None:
    """Two different non-zero sizes always need at least one proof node."""
    with pytest.raises(ProofError, match="is empty"):
        verify_consistency(1, 2, ROOTS[1], ROOTS[2], [])


@pytest.mark.parametrize("old", [-1, 9])
def test_consistency_proof_rejects_an_old_size_outside_the_tree(old: int) -> None:
    """Building a proof from a size the tree never had is a ValueError."""
    with pytest.raises(ValueError, match="old size"):
        consistency_proof(old, HASHES)


def test_verifiers_reject_sizes_that_are_not_uint64() -> None:
    """Negative sizes, sizes past 2**64 - 1 and booleans raise ProofError."""
    with pytest.raises(ProofError, match="tree size"):
        verify_inclusion(HASHES[0], 0, 2**64, [], ROOTS[1])
    with pytest.raises(ProofError, match="tree size"):
        verify_consistency(-1, 8, EMPTY_ROOT, ROOTS[8], [])
    with pytest.raises(ProofError, match="tree size"):
        verify_consistency(True, 8, ROOTS[1], ROOTS[8], [])


# -- every proof of every small tree -------------------------------------------


def test_every_proof_of_every_tree_up_to_40_leaves_verifies() -> None:
    """Exhaustively: each inclusion and consistency proof for n <= 40 verifies."""
    hashes = _hashes(40)
    roots = [root_from_hashes(hashes[:n]) for n in range(41)]
    for n in range(41):
        for i in range(n):
            verify_inclusion(hashes[i], i, n, inclusion_proof(i, hashes[:n]), roots[n])
        for m in range(n + 1):
            verify_consistency(m, n, roots[m], roots[n], consistency_proof(m, hashes[:n]))


@st.composite
def _tree_and_index(draw: st.DrawFn) -> tuple[list[bytes], int]:
    size = draw(st.integers(min_value=1, max_value=200))
    salt = draw(st.binary(max_size=8))
    return _hashes(size, salt), draw(st.integers(min_value=0, max_value=size - 1))


@given(_tree_and_index(), st.data())
def test_any_inclusion_proof_verifies_and_any_tampering_fails(
    tree: tuple[list[bytes], int], data: st.DataObject
) -> None:
    """For random trees of up to 200 leaves, a proof verifies; a flipped bit anywhere fails."""
    hashes, index = tree
    size = len(hashes)
    head = root_from_hashes(hashes)
    proof = inclusion_proof(index, hashes)
    verify_inclusion(hashes[index], index, size, proof, head)
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=255))
        tampered = list(proof)
        node = bytearray(tampered[at])
        node[bit // 8] ^= 1 << (bit % 8)
        tampered[at] = bytes(node)
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index], index, size, tampered, head)
        with pytest.raises(ProofError):
            verify_inclusion(hashes[index], index, size, proof[:-1], head)
    with pytest.raises(ProofError):
        verify_inclusion(hashes[index], index, size, [*proof, head], head)
    other = (index + 1) % size
    if hashes[other] != hashes[index]:
        with pytest.raises(ProofError):
            verify_inclusion(hashes[other], index, size, proof, head)


@given(
    st.integers(min_value=1, max_value=200).flatmap(
        lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
    ),
    st.binary(max_size=8),
    st.data(),
)
def test_any_consistency_proof_verifies_and_any_tampering_fails(
    sizes: tuple[int, int], salt: bytes, data: st.DataObject
) -> None:
    """For random m <= n <= 200, the proof verifies; a flipped bit or a dropped node fails."""
    old, new = sizes
    hashes = _hashes(new, salt)
    old_root, new_root = root_from_hashes(hashes[:old]), root_from_hashes(hashes)
    proof = consistency_proof(old, hashes)
    verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=255))
        tampered = list(proof)
        node = bytearray(tampered[at])
        node[bit // 8] ^= 1 << (bit % 8)
        tampered[at] = bytes(node)
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, tampered)
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, proof[:-1])
    with pytest.raises(ProofError):
        verify_consistency(old, new, old_root, new_root, [*proof, new_root])
    if old < new:
        with pytest.raises(ProofError):
            verify_consistency(new, old, new_root, old_root, proof)
        with pytest.raises(ProofError):
            verify_consistency(old, new, new_root, new_root, proof)


# -- frontier ------------------------------------------------------------------


@pytest.mark.parametrize("size", range(len(COMPACT_TREES)))
def test_frontier_holds_the_published_compact_ranges(size: int) -> None:
    """The frontier of LEAVES[:n] is the published CompactTrees()[n] (testonly/constants.go)."""
    frontier = Frontier.from_hashes(HASHES[:size])
    assert tuple(COMPACT_TREES[size]) == frontier.hashes
    assert ROOTS[size] == frontier.root()


def test_frontier_root_equals_the_tree_root_at_every_size_to_300() -> None:
    """Appending one leaf hash at a time, the frontier's root always equals root_from_hashes."""
    hashes = _hashes(300)
    frontier = Frontier()
    assert EMPTY_ROOT == frontier.root()
    for n, h in enumerate(hashes, start=1):
        frontier.append(h)
        assert n == frontier.size
        assert n.bit_count() == len(frontier.hashes)
        assert root_from_hashes(hashes[:n]) == frontier.root()


def test_frontier_survives_a_round_trip_through_bytes() -> None:
    """from_bytes(to_bytes()) restores a frontier that keeps extending identically."""
    hashes = _hashes(100)
    for n in (0, 1, 2, 37, 64, 99):
        restored = Frontier.from_bytes(Frontier.from_hashes(hashes[:n]).to_bytes())
        assert n == restored.size
        restored.extend(hashes[n:])
        assert root_from_hashes(hashes) == restored.root()


def test_frontier_bytes_layout_is_size_then_hashes() -> None:
    """to_bytes is an 8-byte big-endian size followed by the subtree roots, largest first."""
    frontier = Frontier.from_hashes(HASHES[:7])
    expected = (7).to_bytes(8, "big") + _NH[2][0] + _NH[1][2] + _NH[0][6]
    assert expected == frontier.to_bytes()


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x00" * 7,
        (1).to_bytes(8, "big"),
        (1).to_bytes(8, "big") + b"\x00" * 31,
        (3).to_bytes(8, "big") + b"\x00" * 32,
        (0).to_bytes(8, "big") + b"\x00" * 32,
    ],
)
def test_frontier_from_malformed_bytes_raises(blob: bytes) -> None:
    """A truncated header or a hash count that does not match the size is a ValueError."""
    with pytest.raises(ValueError, match="frontier"):
        Frontier.from_bytes(blob)


def test_frontier_rejects_a_leaf_hash_of_the_wrong_length() -> None:
    """Appending anything but a 32-byte hash is a ValueError and leaves the frontier as it was."""
    frontier = Frontier.from_hashes(HASHES[:3])
    with pytest.raises(ValueError, match="32 bytes"):
        frontier.append(b"raw entry bytes, not a hash")
    assert 3 == frontier.size
    assert ROOTS[3] == frontier.root()


def test_frontier_copy_is_independent() -> None:
    """Extending a copy leaves the original frontier untouched."""
    original = Frontier.from_hashes(HASHES[:5])
    twin = original.copy()
    twin.extend(HASHES[5:])
    assert (5, ROOTS[5]) == (original.size, original.root())
    assert (8, ROOTS[8]) == (twin.size, twin.root())
    assert "Frontier(size=5)" == repr(original)
