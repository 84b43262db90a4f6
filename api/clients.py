"""The client address as the audit trail and the rate limits see it: a keyed pseudonym,
never the address, remembered per address (an HMAC per new address, a dict lookup after).

One instance per edge (GraphQL, the privacy page, the console); used on the event loop's
thread only.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import HTTPConnection

from vault.crypto import BlindIndexer

__all__ = ["ClientPseudonyms"]

_REMEMBERED: Final = 4096


class ClientPseudonyms:
    def __init__(self, indexer: BlindIndexer) -> None:
        self._indexer = indexer
        self._known: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"ClientPseudonyms(<{len(self._known)} remembered>)"

    def of(self, connection: HTTPConnection) -> str | None:
        """The pseudonym of the connection's client address (None when it has none)."""
        host = connection.client.host if connection.client else None
        if host is None:
            return None
        pseudonym = self._known.get(host)
        if pseudonym is not None:
            return pseudonym
        pseudonym = self._indexer.pseudonym("audit.client", host)
        self._known[host] = pseudonym
        if len(self._known) > _REMEMBERED:
            self._known.pop(next(iter(self._known)))  # the oldest address goes
        return pseudonym
