"""`cvault consent verify-receipt` and `cvault dsr verify-receipt`: a receipt file and a
public key, no vault: exit 0 "valid", 1 with the reason (tampered, wrong key, malformed:
line or field named), 2 for an unreadable file or a malformed pinned key."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from api.cli import app
from consent.receipts import sign_receipt
from tests.api.test_cli_dsr import _create, _customer, _dsr, env
from tests.consent.test_receipt_verification import (
    KEY,
    OTHER,
    SIGNER,
    consent_body,
    erasure_body,
)

__all__ = ["env"]  # the fixture, shared with `cvault dsr`'s tests

# No CVAULT_* setting at all: verifying must not need the vault's configuration.
NO_VAULT = {"CVAULT_DATA_DIR": "/nonexistent/cvault", "CVAULT_DATABASE_URL": "sqlite:///:x:"}


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=NO_VAULT)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_consent_receipt_is_valid_with_its_own_key_and_with_the_pinned_key(
    tmp_path: Path,
) -> None:
    """Exit 0 both ways; the output says which key was used and whether it was pinned."""
    receipt = _write(tmp_path, "r.json", json.dumps(sign_receipt(SIGNER, consent_body()),
                                                   ensure_ascii=False, indent=2))  # fmt: skip
    key_file = _write(tmp_path, "vault.pub", KEY + "\n")
    unpinned = _run("consent", "verify-receipt", str(receipt))
    pinned = _run("consent", "verify-receipt", str(receipt), "--public-key", str(key_file))
    label = KEY.rsplit("+", 1)[0]
    receipt_id = consent_body()["consentReceiptID"]
    assert (unpinned.exit_code, unpinned.stdout.strip()) == (
        0, f"valid: consent receipt {receipt_id}, signed by {label} (the key the receipt "
        "names (not pinned))",
    )  # fmt: skip
    assert (pinned.exit_code, pinned.stdout.strip()) == (
        0, f"valid: consent receipt {receipt_id}, signed by {label} (the pinned key)",
    )  # fmt: skip


def test_an_erasure_receipt_is_valid_under_dsr_and_refused_under_consent(tmp_path: Path) -> None:
    """Each command checks its own kind of receipt and names the other."""
    receipt = _write(tmp_path, "e.json", json.dumps(sign_receipt(SIGNER, erasure_body())))
    good = _run("dsr", "verify-receipt", str(receipt), "--public-key", KEY)
    wrong = _run("consent", "verify-receipt", str(receipt))
    assert (good.exit_code, good.stdout.startswith("valid: erasure receipt")) == (0, True)
    assert wrong.exit_code == 1
    assert f"error: {receipt}: invalid: this is an erasure receipt, not a consent receipt" == (
        wrong.stderr.strip()
    )


def test_a_tampered_receipt_exits_1_saying_so(tmp_path: Path) -> None:
    """One Thai character changed in the notice version: exit 1, signature named."""
    signed = sign_receipt(SIGNER, consent_body())
    signed["receipt"]["noticeVersion"] = signed["receipt"]["noticeVersion"][:-1] + "3"
    receipt = _write(tmp_path, "t.json", json.dumps(signed, ensure_ascii=False))
    result = _run("consent", "verify-receipt", str(receipt), "--public-key", KEY)
    assert (result.exit_code, result.stderr.strip()) == (
        1, f"error: {receipt}: invalid: signature does not verify: the receipt was changed "
        "after it was signed",
    )  # fmt: skip


def test_a_receipt_signed_by_another_key_exits_1_naming_both_keys(tmp_path: Path) -> None:
    """Re-signed by a forger: valid on its own key, refused against the pinned one."""
    receipt = _write(tmp_path, "f.json", json.dumps(sign_receipt(OTHER, consent_body())))
    result = _run("consent", "verify-receipt", str(receipt), "--public-key", KEY)
    assert result.exit_code == 1
    assert "invalid: wrong key: signed by customer-vault+" in result.stderr
    assert f"not by the pinned key {KEY.rsplit('+', 1)[0]}" in result.stderr


def test_a_malformed_file_exits_1_naming_the_line(tmp_path: Path) -> None:
    """A JSON syntax error names its line and column; a missing part names the field."""
    broken = _write(tmp_path, "b.json", '{\n  "receipt": {}\n  "signature": {}\n}\n')
    bare = _write(tmp_path, "n.json", json.dumps({"receipt": consent_body()}))
    syntax = _run("consent", "verify-receipt", str(broken))
    missing = _run("dsr", "verify-receipt", str(bare))
    assert (syntax.exit_code, missing.exit_code) == (1, 1)
    assert "invalid: line 3, column 3: not JSON (Expecting ',' delimiter)" in syntax.stderr
    assert "invalid: field 'signature' is missing or not an object" in missing.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """A missing receipt file or a pinned key that is no verifier key: exit 2."""
    receipt = _write(tmp_path, "r.json", json.dumps(sign_receipt(SIGNER, consent_body())))
    absent = _run("consent", "verify-receipt", str(tmp_path / "absent.json"))
    bad_key = _run("consent", "verify-receipt", str(receipt), "--public-key", "not-a-key")
    assert (absent.exit_code, "cannot be read" in absent.stderr) == (2, True)
    assert (bad_key.exit_code, "--public-key: not a verifier key" in bad_key.stderr) == (2, True)


def test_an_erasure_receipt_from_dsr_process_verifies_with_the_exported_public_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    """End to end: `dsr process --output`, `audit public-key` into a file, then
    `dsr verify-receipt --public-key` with no vault settings at all: exit 0."""
    cid = _customer(env)
    rid, token = _create(env, "erasure", cid)
    assert _dsr(env, "verify", rid, "--token", token).exit_code == 0
    receipt = tmp_path / "erasure-receipt.json"
    assert _dsr(env, "process", rid, "--output", str(receipt)).exit_code == 0
    exported = CliRunner().invoke(app, ["audit", "public-key"], env=env)
    key_file = _write(tmp_path, "vault.pub", exported.stdout)
    result = _run("dsr", "verify-receipt", str(receipt), "--public-key", str(key_file))
    assert (result.exit_code, result.stdout.split(",")[0]) == (
        0, f"valid: erasure receipt {rid}",
    )  # fmt: skip
    held = json.loads(receipt.read_text(encoding="utf-8"))["receipt"]["erased"]["piiFields"]
    assert held == ["email", "first_name"]
