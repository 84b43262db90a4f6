"""Consent ledger and data subject rights, on top of the vault's domain services.

:class:`Privacy` bundles the services of this package for one open
:class:`vault.runtime.Vault`; the edges (GraphQL, CLI) build it once per process.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consent.dsr.desk import DsrDesk
    from consent.ledger import ConsentChange, ConsentLedger, ConsentRecord, ConsentStatus
    from vault.runtime import Vault

__all__ = [
    "ConsentChange",
    "ConsentLedger",
    "ConsentRecord",
    "ConsentStatus",
    "DsrDesk",
    "Privacy",
]


@dataclass(slots=True)
class Privacy:
    """The consent ledger and the data subject request desk of one vault."""

    vault: Vault
    ledger: ConsentLedger
    desk: DsrDesk

    def __repr__(self) -> str:
        return f"Privacy(vault={self.vault!r})"

    @classmethod
    def of(cls, vault: Vault) -> Privacy:
        from consent.dsr.desk import DsrDesk  # noqa: PLC0415 - see _LAZY
        from consent.ledger import ConsentLedger  # noqa: PLC0415

        settings = vault.settings
        ledger = ConsentLedger(
            vault.authz,
            vault.keyring.blind_indexer,
            vault.audit.signer,
            clock=vault.clock,
            controller=settings.controller,
            policy_url=settings.privacy_policy_url,
            language=settings.receipt_language,
            jurisdiction=settings.receipt_jurisdiction,
        )
        return cls(vault=vault, ledger=ledger, desk=DsrDesk(vault, ledger))


# Imported on first use, so that what needs one light module of this package (the
# offline receipt check, ``cvault consent verify-receipt``) does not load the vault.
_LAZY = {
    "ConsentChange": "consent.ledger",
    "ConsentLedger": "consent.ledger",
    "ConsentRecord": "consent.ledger",
    "ConsentStatus": "consent.ledger",
    "DsrDesk": "consent.dsr.desk",
}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - a class of this package's API
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'consent' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
