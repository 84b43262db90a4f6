"""The offline verifier refuses malformed, truncated, re-keyed or padded exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.checkpoint import Checkpoint, sign_checkpoint, vkey
from audit.entries import AuditAction, AuditEntry, Outcome, canonical_json
from audit.export import checkpoint_line, end_line, entry_line, header_line
from audit.merkle import Frontier, leaf_hash
from audit.verify import VerificationError, verify_file, verify_lines
from vault.crypto.signing import Ed25519Signer, ed25519_verify

SIGNER = Ed25519Signer.from_private_bytes("test/audit", bytes(range(32)))
OTHER = Ed25519Signer.from_private_bytes("test/audit", bytes(range(1, 33)))
VKEY = vkey(SIGNER.name, SIGNER.public_key_bytes())


def _entries(n: int) -> list[bytes]:
    from datetime import UTC, datetime  # noqa: PLC0415

    return [
        AuditEntry(
            action=AuditAction.PII_ACCESS, outcome=Outcome.SUCCESS, actor=f"a{i}", role="r",
            purpose="support", request_id=f"q{i}", time=datetime(2026, 1, 1, tzinfo=UTC),
        ).canonical()
        for i in range(n)
    ]  # fmt: skip


def _export(n: int = 4, signer: Ed25519Signer = SIGNER) -> list[str]:
    canon = _entries(n)
    frontier = Frontier.from_hashes(leaf_hash(c) for c in canon)
    note = sign_checkpoint(Checkpoint("test/audit", n, frontier.root()), signer)
    lines = [
        header_line(
            origin="test/audit", vkey=vkey(signer.name, signer.public_key_bytes()),
            tree_size=n, checkpoint=note, filter_=None, previous=None,
        )
    ]  # fmt: skip
    lines += [entry_line(i, leaf_hash(c), c) for i, c in enumerate(canon)]
    lines.append(end_line(n))
    return lines


def _verify(lines: list[str]) -> None:
    verify_lines(lines, trusted_vkey=VKEY, verify=ed25519_verify)


def test_a_well_formed_export_verifies() -> None:
    """The reference export built here verifies."""
    report = verify_lines(_export(), trusted_vkey=VKEY, verify=ed25519_verify)
    assert (report.entries, report.tree_size, report.full) == (4, 4, True)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda ls: [], "empty"),
        (lambda ls: ["not json\n", *ls[1:]], "not JSON"),
        (lambda ls: ['{"type":"other"}\n', *ls[1:]], "not a customer-vault audit export"),
        (lambda ls: ls[:-1], "truncated"),
        (lambda ls: ls[:-2] + ls[-1:], "end marker counts"),
        (lambda ls: [*ls, end_line(4)], "follows the end marker"),
        (lambda ls: [*ls[:2], '{"type":"mystery"}\n', *ls[2:]], "unknown type"),
        (lambda ls: [*ls[:1], *ls[2:-1], end_line(3)], "missing, added or moved"),
    ],
)
def test_malformed_exports_fail(mangle: object, message: str) -> None:
    """Each malformation raises VerificationError saying what is wrong."""
    with pytest.raises(VerificationError) as info:
        _verify(mangle(_export()))  # type: ignore[operator]
    assert message in str(info.value)


def test_an_export_signed_by_another_key_fails() -> None:
    """A log re-signed with a key the verifier does not trust is refused."""
    with pytest.raises(VerificationError) as info:
        _verify(_export(signer=OTHER))
    assert "another signing key" in str(info.value)


def test_a_forged_checkpoint_line_fails() -> None:
    """An interleaved checkpoint that does not verify with the trusted key is refused."""
    forged = sign_checkpoint(Checkpoint("test/audit", 2, b"\x00" * 32), OTHER)
    lines = _export()
    lines.insert(3, checkpoint_line(forged))
    with pytest.raises(VerificationError) as info:
        _verify(lines)
    assert "does not verify" in str(info.value)


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "trail.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_the_parallel_file_verifier_agrees_with_the_streaming_one(tmp_path: Path) -> None:
    """verify_file, hashing entry lines in worker processes, reports what verify_lines does
    for a good export, checkpoints included."""
    canon = _entries(600)
    frontier = Frontier()
    lines = [""]
    for i, c in enumerate(canon):
        lines.append(entry_line(i, leaf_hash(c), c))
        frontier.append(leaf_hash(c))
        if (i + 1) % 256 == 0:
            note = sign_checkpoint(Checkpoint("test/audit", i + 1, frontier.root()), SIGNER)
            lines.append(checkpoint_line(note))
    head = sign_checkpoint(Checkpoint("test/audit", 600, frontier.root()), SIGNER)
    lines[0] = header_line(
        origin="test/audit", vkey=VKEY, tree_size=600, checkpoint=head, filter_=None,
        previous=None,
    )  # fmt: skip
    lines.append(end_line(600))
    path = _write(tmp_path, lines)
    fast = verify_file(path, trusted_vkey=VKEY, verify=ed25519_verify, parallel_from=0)
    slow = verify_lines(lines, trusted_vkey=VKEY, verify=ed25519_verify)
    assert fast == slow
    assert (fast.entries, fast.checkpoints) == (600, 3)


@pytest.mark.parametrize("line", [1, 2, 3, 4])
def test_the_parallel_file_verifier_names_the_same_bad_entry(tmp_path: Path, line: int) -> None:
    """A tampered line makes verify_file fail with the streaming verifier's message."""
    lines = _export(4)
    lines[line] = lines[line].replace('"actor":"a', '"actor":"z')
    path = _write(tmp_path, lines)
    with pytest.raises(VerificationError) as slow:
        _verify(lines)
    with pytest.raises(VerificationError) as fast:
        verify_file(path, trusted_vkey=VKEY, verify=ed25519_verify, parallel_from=0)
    assert str(fast.value) == str(slow.value)


def _rehashed(lines: list[str], line: int) -> list[str]:
    """The export with the entry on ``line`` edited and its leaf hash recomputed, as a
    forger with write access to the file (but not the signing key) would do."""
    obj = json.loads(lines[line])
    obj["entry"]["actor"] = "someone-else"
    canonical = canonical_json(obj["entry"])
    forged = entry_line(obj["position"], leaf_hash(canonical), canonical)
    return [*lines[:line], forged, *lines[line + 1 :]]


def test_an_edited_entry_with_its_hash_kept_is_named() -> None:
    """An entry edited in place, its recorded leaf hash left alone, is named by position:
    its bytes no longer match the hash beside it."""
    lines = _export(4)
    lines[3] = lines[3].replace('"actor":"a', '"actor":"z')
    with pytest.raises(VerificationError) as info:
        _verify(lines)
    assert (info.value.position, info.value.positions) == (2, None)
    assert str(info.value).startswith("entry at position 2")


def test_an_edited_entry_with_a_recomputed_hash_names_the_interval(tmp_path: Path) -> None:
    """With its leaf hash recomputed, an edited entry matches itself; only the signed
    checkpoint refutes it, and the error names the interval that checkpoint covers
    (positions 0 to 3), not one entry. The parallel file verifier says the same."""
    lines = _rehashed(_export(4), 3)
    with pytest.raises(VerificationError) as slow:
        _verify(lines)
    with pytest.raises(VerificationError) as fast:
        verify_file(_write(tmp_path, lines), trusted_vkey=VKEY, verify=ed25519_verify,
                    parallel_from=0)  # fmt: skip
    assert (slow.value.position, slow.value.positions) == (None, (0, 3))
    assert str(slow.value).startswith("entries at positions 0 to 3 do not rebuild")
    assert "not which entry" in str(slow.value)
    assert str(fast.value) == str(slow.value)


def test_the_interval_starts_after_the_last_checkpoint_that_held() -> None:
    """In an export with a checkpoint after every two entries, a recomputed entry at
    position 2 is placed in the interval 2 to 3: the checkpoint at size 2 still holds."""
    canon = _entries(4)
    frontier = Frontier()
    lines = [""]
    for i, c in enumerate(canon):
        lines.append(entry_line(i, leaf_hash(c), c))
        frontier.append(leaf_hash(c))
        if i == 1:
            note = sign_checkpoint(Checkpoint("test/audit", 2, frontier.root()), SIGNER)
            lines.append(checkpoint_line(note))
    head = sign_checkpoint(Checkpoint("test/audit", 4, frontier.root()), SIGNER)
    lines[0] = header_line(
        origin="test/audit", vkey=VKEY, tree_size=4, checkpoint=head, filter_=None,
        previous=None,
    )  # fmt: skip
    lines.append(end_line(4))
    with pytest.raises(VerificationError) as info:
        _verify(_rehashed(lines, 4))  # line 4: the entry at position 2
    assert info.value.positions == (2, 3)
