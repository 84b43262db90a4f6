"""First start: data directory, keyring and schema, each created only if missing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from vault.config import Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer, load_signer, save_signer
from vault.storage.db import make_engine
from vault.storage.migrate import current_revision, upgrade
from vault.storage.models import CustomerRow

__all__ = ["InitReport", "customer_count", "initialise", "migrate"]


@dataclass(frozen=True, slots=True)
class InitReport:
    keyring_created: bool
    revision_before: str | None
    revision_after: str | None


def initialise(settings: Settings) -> InitReport:
    """Create the data directory (0700) and keyring (0600) if absent, then migrate."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    created = False
    if not settings.keyring_path.exists():
        Keyring.create(settings.keyring_path, population=settings.blind_index_population)
        created = True
    else:
        Keyring.open(settings.keyring_path)  # refuses a keyring others can read
    if not settings.audit_signing_key.exists():
        save_signer(settings.audit_signing_key, Ed25519Signer.generate(settings.audit_origin))
    else:
        load_signer(settings.audit_signing_key)
    before, after = migrate(settings)
    return InitReport(keyring_created=created, revision_before=before, revision_after=after)


def migrate(settings: Settings) -> tuple[str | None, str | None]:
    """Apply pending migrations; return the revisions before and after."""
    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        return before, current_revision(engine)
    finally:
        engine.dispose()


def customer_count(settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(CustomerRow)) or 0)
    finally:
        engine.dispose()
