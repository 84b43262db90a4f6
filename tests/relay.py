"""Relay's global ids as the API spells them, for tests that compare answers with ids
they know as UUIDs (see :mod:`api.graphql.types.common`)."""

from __future__ import annotations

import uuid

from vault.runtime import Vault

__all__ = ["global_id"]


def global_id(vault: Vault, type_name: str, local: uuid.UUID | str) -> str:
    """The global id of the object of GraphQL type ``type_name`` with UUID ``local``."""
    return vault.handles.seal("node", f"{type_name}:{local}")
