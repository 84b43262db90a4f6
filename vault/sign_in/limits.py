"""Rate limits of the sign-in, with the ``limits`` library (moving windows).

Keys are keyed digests (of the contact, of the client address), never the values. The
storage is in memory, per process, for now (``limits`` has Redis and Memcached storages
for many processes: pass one as ``storage``).
"""

from __future__ import annotations

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from vault.sign_in.errors import SignInLimited

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
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())
        self._contact: RateLimitItem = parse(per_contact)
        self._client: RateLimitItem = parse(per_client)
        self._tries: RateLimitItem = parse(tries_per_client)

    def __repr__(self) -> str:
        return f"SignInLimits(contact={self._contact}, client={self._client})"

    def request(self, contact_key: str, client_key: str) -> None:
        """Count one code request; raise :class:`SignInLimited` past either limit. Neither
        window is charged when the other refuses."""
        if not self._limiter.test(self._client, "request-client", client_key):
            raise SignInLimited("client")
        if not self._limiter.test(self._contact, "request-contact", contact_key):
            raise SignInLimited("contact")
        self._limiter.hit(self._client, "request-client", client_key)
        self._limiter.hit(self._contact, "request-contact", contact_key)

    def attempt(self, client_key: str) -> None:
        """Count one code typed in; raise :class:`SignInLimited` past the client's limit."""
        if not self._limiter.hit(self._tries, "try-client", client_key):
            raise SignInLimited("client")
