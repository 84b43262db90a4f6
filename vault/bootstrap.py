"""First start: data directory, keyring and schema, each created only if missing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from vault.config import Settings
from vault.crypto import Keyring, KeyringError, KeyringSource, keyring_source
from vault.crypto.signing import Ed25519Signer, load_signer, save_signer
from vault.storage.db import direct_url, make_engine
from vault.storage.migrate import current_revision, upgrade
from vault.storage.models import CustomerRow

__all__ = ["InitReport", "customer_count", "initialise", "migrate"]


_FILE = KeyringSource("file")


@dataclass(frozen=True, slots=True)
class InitReport:
    keyring_created: bool
    revision_before: str | None
    revision_after: str | None
    source: KeyringSource = _FILE
    token_keys_made: bool = False  # PKCS#11: keys generated now (else the token had them)


def initialise(settings: Settings, *, source: KeyringSource | None = None) -> InitReport:
    """Create the data directory (0700) and keyring (0600) if absent, then migrate.

    ``source`` picks what holds the keys of a new keyring: a key file (the default) or a
    PKCS#11 token (its user PIN from the settings), whose keys are made in the token
    unless it holds them already (another host made them). An existing keyring is kept;
    a ``source`` it does not match is refused (nothing converts a keyring)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    wanted = source or _FILE
    created = made = False
    path = settings.keyring_path
    if not path.exists():
        if wanted.provider == "pkcs11":
            if not (wanted.module and wanted.token):
                raise KeyringError("a PKCS#11 keyring needs a module path and a token label")
            ring, made = Keyring.create_pkcs11(
                path,
                module=wanted.module,
                token=wanted.token,
                pin=settings.pkcs11_pin,
                population=settings.blind_index_population,
            )
            ring.close()
        else:
            Keyring.create(path, population=settings.blind_index_population)
        created = True
    else:
        found = keyring_source(path)
        if source is not None and found != source:
            raise KeyringError(
                f"keyring {path} exists and names another key provider; 'cvault init' "
                "keeps a keyring, it does not convert one"
            )
        wanted = found
        # Refuses a keyring file others can read, or a token that refuses the PIN.
        Keyring.open(path, pin=settings.pkcs11_pin).close()
    if not settings.audit_signing_key.exists():
        save_signer(settings.audit_signing_key, Ed25519Signer.generate(settings.audit_origin))
    else:
        load_signer(settings.audit_signing_key)
    before, after = migrate(settings)
    return InitReport(
        keyring_created=created,
        revision_before=before,
        revision_after=after,
        source=wanted,
        token_keys_made=made,
    )


def migrate(settings: Settings) -> tuple[str | None, str | None]:
    """Apply pending migrations (over the direct URL when one is set: DDL and long
    transactions stay off the pooler); return the revisions before and after."""
    engine = make_engine(direct_url(settings))
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
