"""`cvault dsr` end to end on SQLite and PostgreSQL: file, verify, process, reject, extend,
list and show, with exit codes 0 (done), 1 (refused or invalid) and 2 (usage)."""

from __future__ import annotations

import io
import json
import re
import stat
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner, Result

from api.cli import app
from consent import Privacy
from consent.receipts import verify_receipt
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from vault.config import Settings
from vault.crypto.signing import ed25519_verify
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.models import DsrRequestRow

NAME = "\u0e2a\u0e21\u0e0a\u0e32\u0e22"  # Somchai, in Thai
EMAIL = "cli.dsr.canary@example.com"


@pytest.fixture
def env(tmp_path: Path, database_url: tuple[str, str | None]) -> dict[str, str]:
    environment = cli_env(tmp_path, database_url)
    assert CliRunner().invoke(app, ["init"], env=environment).exit_code == 0
    return environment


def _customer(env: dict[str, str]) -> uuid.UUID:
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as s:
            return vault.customers.create(s, CustomerInput(first_name=NAME, email=EMAIL)).id
    finally:
        vault.close()


def _dsr(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, ["dsr", *args], env=env)


def _field(output: str, name: str) -> str:
    found = re.search(rf"^{name}\s+(\S+)", output, flags=re.MULTILINE)
    assert found is not None, output
    return found.group(1)


def _create(env: dict[str, str], kind: str, customer: uuid.UUID, *extra: str) -> tuple[str, str]:
    result = _dsr(env, "create", "--type", kind, "--customer", str(customer), *extra)
    assert result.exit_code == 0, result.output
    return _field(result.output, "request"), _field(result.output, "token")


def test_an_access_request_is_filed_verified_and_exported_to_a_private_zip(
    env: dict[str, str], tmp_path: Path
) -> None:
    """create prints the id, due date and token; a wrong token exits 1; process without
    --output exits 2 and changes nothing; with it, a 0600 zip holds the bundle."""
    cid = _customer(env)
    created = _dsr(env, "create", "--type", "access", "--customer", str(cid))
    assert created.exit_code == 0, created.output
    rid, token = _field(created.output, "request"), _field(created.output, "token")
    received = datetime.fromisoformat(_field(created.output, "received"))
    due = datetime.fromisoformat(_field(created.output, "due"))
    assert received + timedelta(days=28) <= due <= received + timedelta(days=31)
    wrong = _dsr(env, "verify", rid, "--token", "nope")
    assert (wrong.exit_code, "does not match" in wrong.output) == (1, True)
    assert _dsr(env, "verify", rid, "--token", token).exit_code == 0
    no_output = _dsr(env, "process", rid)
    assert (no_output.exit_code, "--output" in no_output.output) == (2, True)
    assert "verified" in _dsr(env, "show", rid).output
    bundle = tmp_path / "bundle.zip"
    processed = _dsr(env, "process", rid, "--output", str(bundle))
    assert processed.exit_code == 0, processed.output
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    archive = zipfile.ZipFile(io.BytesIO(bundle.read_bytes()))
    document = json.loads(archive.read("bundle.json"))
    assert (document["profile"]["first_name"], document["profile"]["email"]) == (NAME, EMAIL)
    assert "interactions.csv" in archive.namelist()
    shown = _dsr(env, "show", rid)
    assert shown.exit_code == 0
    assert _field(shown.output, "status") == "completed"
    assert [w for w in ("received", "verified", "in_progress") if w not in shown.output] == []
    assert NAME not in shown.output + processed.output


def test_erasure_prints_a_signed_receipt_and_a_legal_hold_refuses_it(
    env: dict[str, str],
) -> None:
    """Under a legal hold `process` exits 1 naming the hold and the request stays verified;
    once lifted, it prints a receipt that verifies with the vault's public key."""
    cid = _customer(env)
    rid, token = _create(env, "erasure", cid)
    assert _dsr(env, "verify", rid, "--token", token).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    desk = Privacy.of(vault).desk
    with vault.unit(CTX) as s:
        hold = desk.place_hold(s, cid, "tax audit")
    held = _dsr(env, "process", rid)
    assert (held.exit_code, "legal hold" in held.output) == (1, True)
    assert _field(_dsr(env, "show", rid).output, "status") == "verified"
    with vault.unit(CTX) as s:
        desk.lift_hold(s, hold.id)
    public_key = vault.audit.public_vkey
    vault.close()
    erased = _dsr(env, "process", rid)
    assert erased.exit_code == 0, erased.output
    printed = erased.stdout
    receipt = json.loads(printed[printed.index("{") : printed.rindex("}") + 1])
    body = verify_receipt(receipt, ed25519_verify, trusted_key=public_key)
    assert (body["requestId"], body["piiPrincipalId"]) == (rid, str(cid))
    assert EMAIL not in erased.output


def test_extend_reject_and_the_overdue_list(env: dict[str, str]) -> None:
    """extend moves the due date once (a second time exits 1), reject closes a request
    with its reason, list filters by status and shows overdue requests."""
    cid = _customer(env)
    slow, _ = _create(env, "portability", cid)
    dropped, _ = _create(env, "restriction", cid)
    late, _ = _create(env, "access", cid)
    extended = _dsr(env, "extend", slow, "--months", "2", "--reason", "three shops to search")
    assert extended.exit_code == 0, extended.output
    again = _dsr(env, "extend", slow, "--months", "1", "--reason", "still searching")
    assert (again.exit_code, "once" in again.output) == (1, True)
    assert _dsr(env, "extend", slow, "--months", "5", "--reason", "x").exit_code == 1
    rejected = _dsr(env, "reject", dropped, "--reason", "duplicate of an earlier request")
    assert rejected.exit_code == 0, rejected.output
    shown = _dsr(env, "show", dropped).output
    assert "duplicate of an earlier request" in shown
    vault = Vault.open(Settings.from_env(env))
    past = datetime.now(UTC) - timedelta(days=40)
    with vault.db.transaction() as s:
        s.execute(
            update(DsrRequestRow)
            .where(DsrRequestRow.id == uuid.UUID(late))
            .values(received_at=past, due_at=past + timedelta(days=31))
        )
    vault.close()
    overdue = _dsr(env, "list", "--overdue")
    assert overdue.exit_code == 0, overdue.output
    assert (late in overdue.output, slow in overdue.output) == (True, False)
    assert "1 request(s)" in overdue.output
    by_status = _dsr(env, "list", "--status", "rejected").output
    assert (dropped in by_status, late in by_status) == (True, False)
    everything = _dsr(env, "list").output
    assert "3 request(s)" in everything
    assert everything.index(late) < everything.index(slow)


def test_rectification_details_come_from_a_json_file(env: dict[str, str], tmp_path: Path) -> None:
    """--details-file carries the new values; a bad value exits 1 naming the field only;
    a file that is not JSON exits 2."""
    cid = _customer(env)
    good = tmp_path / "fix.json"
    good.write_text(json.dumps({"first_name": "Somchai J."}), encoding="utf-8")
    rid, token = _create(env, "rectification", cid, "--details-file", str(good))
    assert _dsr(env, "verify", rid, "--token", token).exit_code == 0
    assert _dsr(env, "process", rid).exit_code == 0
    vault = Vault.open(Settings.from_env(env))
    with vault.unit(CTX) as s:
        assert vault.customers.get(s, cid).first_name == "Somchai J."
    vault.close()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"email": "no-at-sign-4711"}), encoding="utf-8")
    refused = _dsr(
        env, "create", "--type", "rectification", "--customer", str(cid), "--details-file", str(bad)
    )
    assert (refused.exit_code, "email" in refused.output) == (1, True)
    assert "4711" not in refused.output
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    unusable = _dsr(
        env, "create", "--type", "rectification", "--customer", str(cid),
        "--details-file", str(broken),
    )  # fmt: skip
    assert unusable.exit_code == 2


def test_usage_errors_and_unknown_requests(env: dict[str, str]) -> None:
    """A malformed id or an unknown type is a usage error (2); an unknown request or an
    unknown customer is refused (1) with a message naming the id."""
    cid = _customer(env)
    assert _dsr(env, "show", "not-a-uuid").exit_code == 2
    assert _dsr(env, "create", "--type", "deletion", "--customer", str(cid)).exit_code == 2
    missing = str(uuid.uuid4())
    unknown = _dsr(env, "show", missing)
    assert (unknown.exit_code, missing in unknown.output) == (1, True)
    nobody = _dsr(env, "create", "--type", "access", "--customer", missing)
    assert (nobody.exit_code, "not found" in nobody.output) == (1, True)
    assert "Traceback" not in unknown.output + nobody.output
