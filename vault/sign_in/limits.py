"""Rate limits of the sign-in, with the ``limits`` library.

Keys are keyed digests (of the contact, of the client address), never the values. The
storage is the vault's shared one (``vault.storage.counters``: Redis, or PostgreSQL's
table), so the limits hold across every server process; on SQLite without Redis, memory
(one process). Moving windows where the storage keeps them (memory, Redis); the sliding
window counter on PostgreSQL's table (the previous fixed window weighted by its overlap:
an approximation that may let a hit or so more through at a window's edge). A storage
that cannot be reached raises ``StorageUnavailable``: the sign-in fails closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, MovingWindowSupport, Storage
from limits.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)

from vault.sign_in.errors import SignInLimited
from vault.storage.db import StorageUnavailable

_T = TypeVar("_T")

__all__ = ["SignInLimits"]


class SignInLimits:
    """Per contact: code requests; per client: code requests and code tries."""

    def __init__(
        self,
        *,
        per_contact: str = "5/15 minutes",
        per_client: str = "20/10 minutes",
        tries_per_client: str = "30/10 minutes",
        storage: Storage | None = None,
    ) -> None:
        chosen = storage or MemoryStorage()
        self._limiter: RateLimiter = (
            MovingWindowRateLimiter(chosen)
            if isinstance(chosen, MovingWindowSupport)
            else SlidingWindowCounterRateLimiter(chosen)
        )
        self._contact: RateLimitItem = parse(per_contact)
        self._client: RateLimitItem = parse(per_client)
        self._tries: RateLimitItem = parse(tries_per_client)

    def __repr__(self) -> str:
        return f"SignInLimits(contact={self._contact}, client={self._client})"

    def request(self, contact_key: str, client_key: str) -> None:
        """Count one code request; raise :class:`SignInLimited` past either limit. Neither
        window is charged when the other refuses."""
        limiter = self._limiter
        if not _reached(lambda: limiter.test(self._client, "request-client", client_key)):
            raise SignInLimited("client")
        if not _reached(lambda: limiter.test(self._contact, "request-contact", contact_key)):
            raise SignInLimited("contact")
        if not _reached(lambda: limiter.hit(self._client, "request-client", client_key)):
            raise SignInLimited("client")  # another process took the last one meanwhile
        if not _reached(lambda: limiter.hit(self._contact, "request-contact", contact_key)):
            raise SignInLimited("contact")

    def attempt(self, client_key: str) -> None:
        """Count one code typed in; raise :class:`SignInLimited` past the client's limit."""
        if not _reached(lambda: self._limiter.hit(self._tries, "try-client", client_key)):
            raise SignInLimited("client")


def _reached(call: Callable[[], _T]) -> _T:
    """``call()``; a storage that cannot be reached is the vault's storage trouble (the
    storage's own message stays out: it may name the server)."""
    try:
        return call()
    except StorageError:
        raise StorageUnavailable("the rate limit store is unreachable") from None
