"""Wires settings into a running vault: database, keyring and services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from vault.config import Settings
from vault.crypto import Keyring
from vault.customers import CustomerService
from vault.interactions import InteractionService
from vault.keys import DataKeys
from vault.storage.db import Database, make_engine

__all__ = ["Vault"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Vault:
    """Everything a request or a command needs, built once per process."""

    settings: Settings
    db: Database
    keyring: Keyring
    keys: DataKeys
    customers: CustomerService
    interactions: InteractionService
    clock: Callable[[], datetime]

    def __repr__(self) -> str:
        return f"Vault(db={self.db!r})"

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        keyring: Keyring | None = None,
        database: Database | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> Vault:
        ring = keyring if keyring is not None else Keyring.open(settings.keyring_path)
        db = database if database is not None else Database(make_engine(settings.database_url))
        keys = DataKeys(ring)
        return cls(
            settings=settings,
            db=db,
            keyring=ring,
            keys=keys,
            customers=CustomerService(
                keys, clock=clock, phone_region=settings.default_phone_region
            ),
            interactions=InteractionService(keys, clock=clock),
            clock=clock,
        )

    def close(self) -> None:
        self.db.dispose()
