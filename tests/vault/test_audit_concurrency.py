"""Several processes appending at once, each also running the sequencer, end with one
log in which every entry has exactly one position, and whose export verifies."""

from __future__ import annotations

import io
import multiprocessing as mp
from urllib.parse import quote

from sqlalchemy import func, select

from tests.conftest import CTX
from vault.audit_trail.export import export_audit
from vault.config import Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer, ed25519_verify
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.db import Database, make_engine
from vault.storage.models import AuditEntryRow, AuditLogRow

PROCESSES = 4
UNITS = 25


def _writer(url: str, settings: Settings, keyring: Keyring, signer: Ed25519Signer) -> None:
    vault = Vault.open(
        settings, keyring=keyring, database=Database(make_engine(url)), signer=signer
    )
    for n in range(UNITS):
        with vault.unit(CTX) as s:
            vault.customers.create(s, CustomerInput(first_name=f"W{n}"))
        if n % 5 == 0:
            vault.audit.sequence(vault.db)
    vault.audit.sequence(vault.db)
    vault.close()


def test_concurrent_writers_and_sequencers_make_one_consistent_log(
    vault: Vault,
    database_url: tuple[str, str | None],
    settings: Settings,
    session_keyring: Keyring,
    audit_signer: Ed25519Signer,
) -> None:
    """4 processes x 25 units, sequencing as they go: 100 entries, positions 0..99 each
    used once, and a full export verifies against the final signed checkpoint."""
    url, schema = database_url
    if schema is not None:
        url = f"{url}?options={quote(f'-csearch_path={schema}')}"
    context = mp.get_context("fork")
    workers = [
        context.Process(target=_writer, args=(url, settings, session_keyring, audit_signer))
        for _ in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    vault.audit.sequence(vault.db)
    with vault.db.transaction() as s:
        entries = s.scalar(select(func.count()).select_from(AuditEntryRow))
        positions = s.scalars(select(AuditLogRow.position).order_by(AuditLogRow.position)).all()
    assert entries == PROCESSES * UNITS
    assert list(positions) == list(range(PROCESSES * UNITS))
    buffer = io.StringIO()
    export_audit(vault, buffer, context=CTX)
    from audit.verify import verify_lines  # noqa: PLC0415

    report = verify_lines(
        buffer.getvalue().splitlines(keepends=True),
        trusted_vkey=vault.audit.public_vkey,
        verify=ed25519_verify,
    )
    assert (report.entries, report.tree_size) == (PROCESSES * UNITS, PROCESSES * UNITS)
