"""`cvault backup` and `cvault restore` on SQLite and PostgreSQL.

A backup is a folder (0700) holding the dump and a manifest (0600) with checksums, never
the keyring; a restore refuses a tampered or incomplete backup, a vault in use and (without
--force) a target holding data, and re-applies the erasures done after the backup.
PostgreSQL runs in the test's own schema (restored in place) or in a database the test
creates and drops; never in another schema of the shared database.
"""

from __future__ import annotations

import base64
import json
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from api.cli import app
from tests.api.test_cli import cli_env
from tests.conftest import CTX
from tests.vault.test_audit_trail import _export, _verify
from vault.config import Settings
from vault.customers import CustomerInput
from vault.errors import CustomerNotFound
from vault.interactions import InteractionInput
from vault.runtime import Vault
from vault.storage.db import make_engine
from vault.storage.inuse import InUse
from vault.storage.migrate import head_revision, upgrade
from vault.types import CustomerStatus

# An older vault's schema revision (its backup is migrated to head on restore).
OLD_REVISION = "0006"


def _cli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env, terminal_width=400)


@pytest.fixture
def env(tmp_path: Path, database_url: tuple[str, str | None]) -> dict[str, str]:
    environment = cli_env(tmp_path, database_url)
    assert _cli(environment, "init").exit_code == 0
    return environment


def _person(vault: Vault, name: str, visits: int = 0) -> uuid.UUID:
    with vault.unit(CTX) as s:
        cid = vault.customers.create(
            s, CustomerInput(first_name=name, email=f"{name.lower()}@example.com")
        ).id
        if visits:
            vault.interactions.record_many(
                s,
                [InteractionInput(customer_id=cid, channel="web", type="page_view",
                                  occurred_at=datetime(2026, 5, 1, tzinfo=UTC))] * visits,
            )  # fmt: skip
    return cid


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_backup_holds_the_dump_and_a_manifest_but_not_the_keyring(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The folder is 0700, its files 0600; the manifest lists the dump with its SHA-256 and
    size, the database kind, the Alembic revision, the time, the vault version and the
    keyring's key ids, and no key; a warning names the keyring and says to keep it apart."""
    folder = tmp_path / "backup"
    result = _cli(env, "backup", "--to", str(folder))
    assert result.exit_code == 0, result.output
    settings = Settings.from_env(env)
    dump_name = "vault.db" if settings.is_sqlite else "vault.pgdump"
    assert sorted(p.name for p in folder.iterdir()) == sorted([dump_name, "manifest.json"])
    assert [_mode(folder), *(_mode(p) for p in folder.iterdir())] == [0o700, 0o600, 0o600]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["database"]["kind"], manifest["database"]["alembic_revision"]) == (
        "sqlite" if settings.is_sqlite else "postgresql",
        head_revision(),
    )
    assert [f["name"] for f in manifest["files"]] == [dump_name]
    assert manifest["files"][0]["bytes"] == (folder / dump_name).stat().st_size
    assert manifest["keyring"] == {"included": False, "kek_versions": [1], "current_kek_version": 1}
    assert {"created_at", "vault_version"} <= set(manifest)
    keys = json.loads(settings.keyring_path.read_text())
    secrets = [keys["keks"]["1"]["key"], keys["blind_index"]["key"]]
    stored = b"".join(p.read_bytes() for p in folder.iterdir())
    assert [s for s in secrets if s.encode() in stored or base64.b64decode(s) in stored] == []
    assert "keyring is NOT in this backup" in result.output
    assert str(settings.keyring_path) in result.output
    again = _cli(env, "backup", "--to", str(folder))
    assert (again.exit_code, "is not empty" in again.output) == (1, True)


def test_restore_refuses_a_tampered_or_incomplete_backup(
    env: dict[str, str], tmp_path: Path
) -> None:
    """One changed byte, a missing dump or a missing manifest: one line, exit 1, and the
    vault is left as it was."""
    vault = Vault.open(Settings.from_env(env))
    try:
        kept = _person(vault, "Roya")
    finally:
        vault.close()
    folder = tmp_path / "backup"
    assert _cli(env, "backup", "--to", str(folder)).exit_code == 0
    manifest = json.loads((folder / "manifest.json").read_text())
    dump = folder / manifest["files"][0]["name"]
    original = dump.read_bytes()
    dump.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    tampered = _cli(env, "restore", "--from", str(folder), "--force")
    dump.unlink()
    missing = _cli(env, "restore", "--from", str(folder), "--force")
    (folder / "manifest.json").unlink()
    no_manifest = _cli(env, "restore", "--from", str(folder), "--force")
    outcomes = [
        (r.exit_code, len(r.output.strip().splitlines())) for r in (tampered, missing, no_manifest)
    ]
    assert outcomes == [(1, 1)] * 3
    assert "does not match its SHA-256 checksum" in tampered.output
    assert "incomplete backup" in missing.output
    assert "manifest.json is missing" in no_manifest.output
    vault = Vault.open(Settings.from_env(env))
    try:
        with vault.unit(CTX) as s:
            assert vault.customers.get(s, kept).first_name == "Roya"
    finally:
        vault.close()


def test_an_erasure_done_after_the_backup_is_applied_again_on_restore(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Backup, then erase Roya and add Arash. Restore refuses a target holding data without
    --force and a vault in use (as a running server holds it); with --force, and the
    server gone, it brings Roya back, erases her again (her interactions purged), drops
    what came after the backup, and the audit export still verifies."""
    settings = Settings.from_env(env)
    vault = Vault.open(settings)
    try:
        roya, kept = _person(vault, "Roya", visits=2), _person(vault, "Sina")
    finally:
        vault.close()
    folder = tmp_path / "backup"
    assert _cli(env, "backup", "--to", str(folder)).exit_code == 0
    vault = Vault.open(settings)
    try:
        with vault.unit(CTX) as s:
            vault.erasure.erase(s, roya)
            vault.erasure.schedule_purge(s, vault.db, roya)
        later = _person(vault, "Arash")
    finally:
        vault.close()

    occupied = _cli(env, "restore", "--from", str(folder))
    assert (occupied.exit_code, "give --force" in occupied.output) == (1, True)
    engine = make_engine(settings.database_url)
    server = InUse(engine)
    server.share()  # what `cvault serve` holds while it runs
    try:
        busy = _cli(env, "restore", "--from", str(folder), "--force")
    finally:
        server.release()
        engine.dispose()
    assert (busy.exit_code, "the vault is in use" in busy.output) == (1, True)

    done = _cli(env, "restore", "--from", str(folder), "--force")
    assert done.exit_code == 0, done.output
    assert f"erased again: {roya}" in done.output
    assert "1 customers erased again, 2 interactions purged" in done.output
    vault = Vault.open(settings)
    try:
        with vault.unit(CTX) as s:
            seen = vault.customers.get(s, roya)
            assert (seen.status, seen.first_name, seen.email) == (CustomerStatus.ERASED, None, None)
            assert vault.customers.get(s, kept).email == "sina@example.com"
            assert vault.interactions.timeline(s, roya).items == []
        with pytest.raises(CustomerNotFound), vault.unit(CTX) as s:
            vault.customers.get(s, later)
        assert vault.erasure.restored(vault.db) == []
        vault.audit.sequence(vault.db)
        _verify(vault, _export(vault))
    finally:
        vault.close()


@pytest.fixture
def fresh_target(env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of an empty target: a new SQLite file, or a PostgreSQL database
    this test creates (and drops), working in its ``public`` schema."""
    target = {**env, "CVAULT_DATABASE_URL": f"sqlite:///{tmp_path / 'elsewhere' / 'vault.db'}"}
    if Settings.from_env(env).is_sqlite:
        yield target
        return
    url = make_url(Settings.from_env(env).database_url).difference_update_query(["options"])
    name = f"cvault_restore_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield {**env, "CVAULT_DATABASE_URL": url.set(database=name).render_as_string(False)}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_an_older_backup_is_restored_into_an_empty_vault_and_migrated(
    env: dict[str, str], tmp_path: Path, fresh_target: dict[str, str]
) -> None:
    """A backup of a vault at an older schema revision goes into an empty database
    (PostgreSQL: another database, another schema name) without --force and is migrated
    to head."""
    settings = Settings.from_env(env)
    old_home = {**env, "CVAULT_DATA_DIR": str(tmp_path / "old")}
    if settings.is_sqlite:
        old_home["CVAULT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'old' / 'vault.db'}"
    old_settings = Settings.from_env(old_home)
    engine = make_engine(old_settings.database_url)
    try:
        if engine.dialect.name == "postgresql":  # an older vault in the test's own schema
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS " + _schema(env) + " CASCADE"))
                conn.execute(text("CREATE SCHEMA " + _schema(env)))
        upgrade(engine, OLD_REVISION)
    finally:
        engine.dispose()
    old_home["CVAULT_KEYRING"] = str(settings.keyring_path)
    folder = tmp_path / "backup"
    made = _cli(old_home, "backup", "--to", str(folder))
    assert made.exit_code == 0, made.output
    assert json.loads((folder / "manifest.json").read_text())["database"]["alembic_revision"] == (
        OLD_REVISION
    )
    restored = _cli(fresh_target, "restore", "--from", str(folder))
    assert restored.exit_code == 0, restored.output
    assert f"schema migrated {OLD_REVISION} -> {head_revision()}" in restored.output
    vault = Vault.open(Settings.from_env(fresh_target))
    try:
        cid = _person(vault, "Nima")
        with vault.unit(CTX) as s:
            assert vault.customers.get(s, cid).first_name == "Nima"
    finally:
        vault.close()


def _schema(env: dict[str, str]) -> str:
    url = make_url(env["CVAULT_DATABASE_URL"])
    options = str(url.query.get("options", ""))
    return options.split("search_path=", 1)[1]
