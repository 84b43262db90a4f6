"""The gateway's rate limits: per token subject, and per client for failed tokens.

:class:`RateLimiter` is a token bucket per caller in this process's memory (one process
on SQLite). :class:`SharedRateLimiter` counts in the vault's shared store (Redis, or
PostgreSQL's table: ``vault.storage.counters``), so N processes together allow what one
would: the same ``per_minute`` as two sliding window counters, a minute and a burst
window of 6 seconds holding a tenth of it (the bucket's burst). Its keys are keyed
digests of the caller (``ratelimit`` pseudonyms under the vault's blind-index key), never
a subject or an address. :func:`rate_limiter_for` picks the one the vault calls for.

On PostgreSQL's table both windows are hit by one statement
(``DatabaseCounters.acquire_windows``), sent on the event loop's pool when the endpoint
has one open (:meth:`SharedRateLimiter.allow_on`): one round trip per request, where
``limits`` sent two statements each in a transaction of its own on a worker thread.
Counting stays in the shared table on every hit (no local pre-counting), so N
processes allow exactly what one would.

With that pool open the endpoint does not even send it alone: :func:`pending_admission`
gives each request an :class:`Admission`, its hit pending, which the hot profile read's
statement carries (``vault.profiles.reader.LIMITED_SQL``: read and limit, one round
trip; a refused caller reads nothing); every other request, or one the hot path declines
before its statement, sends it by :func:`admit` before any work. One hit per HTTP request
either way; the answer (429 with its Retry-After) is the same.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeGuard

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import Storage
from limits.strategies import SlidingWindowCounterRateLimiter

from api.graphql.problems import Problem
from vault.runtime import Vault
from vault.storage.counters import DatabaseCounters, WindowsHit
from vault.storage.db import StorageUnavailable

if TYPE_CHECKING:
    from vault.storage.aio import AsyncPool

__all__ = [
    "Admission",
    "Limiter",
    "RateLimiter",
    "SharedRateLimiter",
    "admit",
    "limit_wait",
    "pending_admission",
    "rate_limiter_for",
    "refuse",
]

_REMEMBERED = 10_000  # digests kept per process (the blind-index key may live in a KMS)


class Limiter(Protocol):
    """What the endpoint asks: ``allow(key)`` is 0 when the request may go ahead, else
    the seconds until it may. ``blocking``: it does I/O (run it off the event loop)."""

    blocking: bool

    def allow(self, key: str) -> float: ...


class RateLimiter:
    """A token bucket per caller: ``per_minute`` requests, bursts up to a tenth of that."""

    blocking = False

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._burst = max(1.0, per_minute / 10.0)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(per_minute={round(self._rate * 60)})"

    def allow(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.pop(key, (self._burst, now))
            tokens = min(self._burst, tokens + (now - stamp) * self._rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self._rate
            self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > 100_000:
                self._buckets.popitem(last=False)
        return wait


class SharedRateLimiter:
    """``per_minute`` requests per caller across every process sharing ``storage``: a
    burst window (a tenth of it in 6 seconds) and a minute window, both sliding window
    counters. ``digest`` turns a caller's key into the stored one."""

    blocking = True

    def __init__(self, storage: Storage, per_minute: int, digest: Callable[[str], str]) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._windows: tuple[RateLimitItem, ...] = (
            RateLimitItemPerSecond(max(1, per_minute // 10), 6),
            RateLimitItemPerMinute(per_minute),
        )
        self._digest = digest
        self._known: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._table = storage if isinstance(storage, DatabaseCounters) else None

    @property
    def on_the_loop(self) -> bool:
        """Whether :meth:`allow_on` can answer on the event loop (PostgreSQL's table)."""
        return self._table is not None

    def _keyed(self, stored: str) -> list[tuple[str, int, int]]:
        return [(w.key_for("graphql", stored), w.amount, w.get_expiry()) for w in self._windows]

    def _retry_after(self, window: RateLimitItem, stored: str) -> float:
        reset = self._limiter.get_window_stats(window, "graphql", stored).reset_time
        return max(1.0, reset - time.time())

    async def allow_on(self, pool: AsyncPool, key: str) -> float:
        """:meth:`allow` on the event loop: both windows in one prepared statement on
        ``pool`` (PostgreSQL's table only, see :attr:`on_the_loop`); the rare refusal and
        the once-a-minute sweep of expired rows go to a worker thread."""
        return await self.pending(pool, key).check()

    def pending(self, pool: AsyncPool, key: str) -> Admission:
        """``key``'s hit, not counted yet (PostgreSQL's table only): an :class:`Admission`
        whose statement another statement on ``pool`` may carry (the hot profile read)."""
        table = self._table
        if table is None:
            raise ValueError("only PostgreSQL's counters answer on the event loop")
        stored = self._stored(key)
        return Admission(self, table, pool, stored, table.pending_windows(self._keyed(stored)))

    async def _answer(self, table: DatabaseCounters, stored: str, taken: int) -> float:
        """After a hit of ``taken`` windows: the sweep when due, the wait when refused."""
        if table.sweep_due():
            await asyncio.to_thread(table.sweep)
        if taken < len(self._windows):
            return await asyncio.to_thread(self._retry_after, self._windows[taken], stored)
        return 0.0

    def __repr__(self) -> str:
        return f"SharedRateLimiter(per_minute={self._windows[1].amount})"

    def allow(self, key: str) -> float:
        """0 when the request may go ahead (it is counted), else the seconds until it may
        (at least 1). Raises ``StorageUnavailable`` when the store cannot be reached."""
        stored = self._stored(key)
        try:
            if self._table is not None:
                taken = self._table.acquire_windows(self._keyed(stored))
                if taken < len(self._windows):
                    return self._retry_after(self._windows[taken], stored)
                return 0.0
            for window in self._windows:
                if not self._limiter.hit(window, "graphql", stored):
                    reset = self._limiter.get_window_stats(window, "graphql", stored).reset_time
                    return max(1.0, reset - time.time())
        except StorageError:
            raise StorageUnavailable("the rate limit store is unreachable") from None
        return 0.0

    def _stored(self, key: str) -> str:
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        stored = self._digest(key)
        with self._lock:
            self._known[key] = stored
            while len(self._known) > _REMEMBERED:
                self._known.popitem(last=False)
        return stored


class Admission:
    """One HTTP request's hit of the shared limit on PostgreSQL's table, pending:
    :attr:`hit` rides on the hot profile read's statement when that one runs (its
    ``WINDOWS_CTES``), else :meth:`check` sends it alone. Counted once either way;
    :meth:`check` then answers as :meth:`SharedRateLimiter.allow` does (0, or the
    seconds to wait) and answers the same on every later call."""

    __slots__ = ("_limiter", "_pool", "_stored", "_table", "_wait", "hit")

    def __init__(
        self,
        limiter: SharedRateLimiter,
        table: DatabaseCounters,
        pool: AsyncPool,
        stored: str,
        hit: WindowsHit,
    ) -> None:
        self._limiter = limiter
        self._table = table
        self._pool = pool
        self._stored = stored
        self.hit = hit
        self._wait: float | None = None

    def __repr__(self) -> str:
        return f"Admission(taken={self.hit.taken})"

    @property
    def pending(self) -> bool:
        """Whether the hit is still to be sent (a statement may carry it)."""
        return self.hit.taken is None

    async def check(self) -> float:
        """0 when the request may go ahead, else the seconds until it may (at least 1);
        the hit sent first if no statement carried it. Raises ``StorageUnavailable``."""
        if self._wait is None:
            taken = await self.hit.send(self._pool)
            self._wait = await self._limiter._answer(self._table, self._stored, taken)
        return self._wait


def _on_the_loop(limiter: Limiter) -> TypeGuard[SharedRateLimiter]:
    """Whether ``limiter`` hits PostgreSQL's table on the event loop's pool."""
    return isinstance(limiter, SharedRateLimiter) and limiter.on_the_loop


async def limit_wait(limiter: Limiter, pool: AsyncPool | None, key: str) -> float:
    """``limiter``'s answer for ``key`` now; a shared limiter (a round trip to its store)
    answers off the event loop, but PostgreSQL's table on the event loop's ``pool`` when
    it is open (one statement, no worker thread)."""
    if pool is not None and _on_the_loop(limiter):
        return await limiter.allow_on(pool, key)
    if limiter.blocking:
        return await asyncio.to_thread(limiter.allow, key)
    return limiter.allow(key)


async def pending_admission(limiter: Limiter, pool: AsyncPool | None, key: str) -> Admission | None:
    """The rate limit of ``key``: on PostgreSQL's shared table with the event loop's
    ``pool`` open, a pending hit (carried by the hot read's statement, or sent by
    :func:`admit`: one statement either way); otherwise hit now (429 if refused)."""
    if pool is not None and _on_the_loop(limiter):
        return limiter.pending(pool, key)
    refuse(await limit_wait(limiter, pool, key))
    return None


async def admit(admission: Admission | None) -> None:
    """A pending hit counted (once per request, whichever statement carries it): 429
    RATE_LIMITED when the caller was refused. None: nothing pending."""
    if admission is not None:
        refuse(await admission.check())


def refuse(wait: float) -> None:
    """429 RATE_LIMITED when the rate limit said to wait ``wait`` seconds (0: go ahead)."""
    if wait:
        raise Problem(429, "RATE_LIMITED", "too many requests",
                      {"Retry-After": str(math.ceil(wait))})  # fmt: skip


def rate_limiter_for(vault: Vault) -> Limiter:
    """The vault's shared limiter when it has a shared store, else one in memory."""
    per_minute = vault.settings.rate_limit_per_minute
    if vault.shared_limits is None:
        return RateLimiter(per_minute)
    indexer = vault.keyring.blind_indexer
    return SharedRateLimiter(
        vault.shared_limits, per_minute, lambda key: indexer.pseudonym("ratelimit", key)
    )
