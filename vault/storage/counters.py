"""Rate limit counters every server process shares (decision 15): a ``limits`` storage.

:func:`shared_limits_storage` picks where the counters live: Redis when
``CVAULT_REDIS_URL`` is set (``limits``' own Redis storage), else PostgreSQL's
``rate_limit_counters`` table (:class:`DatabaseCounters`), else, on SQLite, nothing
shared (None: each process counts in memory; one host).

:class:`DatabaseCounters` implements the sliding window counter of ``limits`` (a
counter per key and fixed window; a hit is allowed while the previous window's count,
weighted by how much of it still overlaps the sliding window, plus the current one stays
within the limit). Each hit is one statement: an UPSERT whose condition is checked
against the row it locks, so concurrent processes never both take the last slot. The
fixed window operations (``incr``, ``get``...) work too.

:meth:`DatabaseCounters.acquire_windows` hits several sliding windows of one caller (the
GraphQL limiter's burst and minute windows) in ONE statement on PostgreSQL: chained
data-modifying CTEs, each the same conditional UPSERT as a single hit, each window
counted only when every window before it took the hit (what ``limits`` does with one
call per window). Each UPSERT's condition is still checked against the row it locks,
so the limits hold exactly across processes. :meth:`DatabaseCounters.acquire_windows_on`
sends that statement on the event loop's pool (``vault.storage.aio``, autocommit: one
round trip, no BEGIN/COMMIT, no worker thread); :class:`WindowsHit` is the same hit
left for another statement on that pool to carry (``WINDOWS_CTES``: the hot profile
read's), or to send alone, counted once either way. Keys are what the caller gives:
callers pass keyed digests, never a token, an address or a contact. The table is
portable (SQLite passes the same tests) but only PostgreSQL vaults use it.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import psycopg
import psycopg_pool
from limits.storage import RedisStorage, SlidingWindowCounterSupport, Storage
from limits.storage.base import TimestampedSlidingWindow
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from vault.config import Settings
from vault.storage.db import Database, StorageUnavailable

if TYPE_CHECKING:
    from vault.storage.aio import AsyncPool

__all__ = [
    "WINDOWS_CTES",
    "WINDOWS_TAKEN",
    "DatabaseCounters",
    "WindowsHit",
    "shared_limits_storage",
]

_ACQUIRE = text(
    "INSERT INTO rate_limit_counters (key, hits, expires_at) "
    "SELECT :current, :amount, :expires "
    "WHERE coalesce((SELECT hits FROM rate_limit_counters WHERE key = :previous "
    "AND expires_at > :now), 0) * :weight + :amount < :limit + 1 "
    "ON CONFLICT (key) DO UPDATE SET hits = rate_limit_counters.hits + excluded.hits "
    "WHERE coalesce((SELECT p.hits FROM rate_limit_counters AS p WHERE p.key = :previous "
    "AND p.expires_at > :now), 0) * :weight + rate_limit_counters.hits + excluded.hits "
    "< :limit + 1 "
    "RETURNING hits"
)
_INCR = text(
    "INSERT INTO rate_limit_counters (key, hits, expires_at) VALUES (:key, :amount, :expires) "
    "ON CONFLICT (key) DO UPDATE SET "
    "hits = CASE WHEN rate_limit_counters.expires_at > :now "
    "THEN rate_limit_counters.hits + excluded.hits ELSE excluded.hits END, "
    "expires_at = CASE WHEN rate_limit_counters.expires_at > :now "
    "THEN rate_limit_counters.expires_at ELSE excluded.expires_at END "
    "RETURNING hits"
)


def _acquire(n: int, after: str | None) -> str:
    """The conditional UPSERT of window ``n`` (parameters suffixed ``_n``); when
    ``after`` names a CTE, only if that CTE took its hit. Built from window numbers
    and fixed text only: every value is a bound parameter."""
    gate = f"EXISTS (SELECT 1 FROM {after}) AND " if after else ""  # noqa: S608
    return (
        "INSERT INTO rate_limit_counters (key, hits, expires_at) "  # noqa: S608 - no input
        f"SELECT :current_{n}, :amount, :expires_{n} "
        f"WHERE {gate}coalesce((SELECT hits FROM rate_limit_counters WHERE key = :previous_{n} "
        f"AND expires_at > :now), 0) * :weight_{n} + :amount < :limit_{n} + 1 "
        "ON CONFLICT (key) DO UPDATE SET hits = rate_limit_counters.hits + excluded.hits "
        "WHERE coalesce((SELECT p.hits FROM rate_limit_counters AS p "
        f"WHERE p.key = :previous_{n} AND p.expires_at > :now), 0) * :weight_{n} "
        f"+ rate_limit_counters.hits + excluded.hits < :limit_{n} + 1 "
        "RETURNING hits"
    )


def _windows_ctes(windows: int) -> str:
    """The CTEs ``w0``, ``w1``... hitting ``windows`` windows in order (PostgreSQL)."""
    return ", ".join(f"w{n} AS ({_acquire(n, f'w{n - 1}' if n else None)})" for n in range(windows))


def _windows_taken(windows: int) -> str:
    """How many of those CTEs took the hit."""
    return " + ".join(f"(SELECT count(*) FROM w{n})" for n in range(windows))  # noqa: S608


def _acquire_all(windows: int) -> str:
    """One statement hitting ``windows`` windows in order (PostgreSQL): how many took it."""
    return f"WITH {_windows_ctes(windows)} SELECT {_windows_taken(windows)} AS taken"


def _psycopg(statement: str) -> str:
    """``:name`` parameters as psycopg's ``%(name)s``."""
    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", statement)


_ACQUIRE_TWO = _acquire_all(2)
_ACQUIRE_TWO_PSYCOPG = _psycopg(_ACQUIRE_TWO)
# The same two hits as CTEs to put before another statement (``WINDOWS_CTES``, then
# ``, rl AS (SELECT {WINDOWS_TAKEN} AS taken)``): psycopg parameters prefixed ``rl_``
# (:meth:`WindowsHit.params`) so they never meet the other statement's own.
WINDOWS_CTES: Final = _psycopg(_windows_ctes(2)).replace("%(", "%(rl_")
WINDOWS_TAKEN: Final = _windows_taken(2)
_ROW = text(
    "SELECT hits, expires_at FROM rate_limit_counters WHERE key = :key AND expires_at > :now"
)
_DELETE = text("DELETE FROM rate_limit_counters WHERE key = :key")
_EXPIRED = text("DELETE FROM rate_limit_counters WHERE expires_at <= :now")
_ALL = text("DELETE FROM rate_limit_counters")
_SWEEP_EVERY = 60.0  # seconds between deletions of expired rows, per process
# Seconds a hit waits for a connection of the event loop's pool: with the database down
# the pool only reconnects, and the request must answer 503 soon, not after 30 s.
_POOL_WAIT = 2.0


class WindowsHit:
    """One hit of two sliding windows (:meth:`DatabaseCounters.acquire_windows`) not sent
    yet: a statement on the event loop's pool carries it (``WINDOWS_CTES``, its
    parameters from :meth:`params`, then :meth:`record` of what it counted), or
    :meth:`send` sends it alone. Either way it is counted once: ``taken`` (how many
    windows took it, 2: allowed) stays None until then."""

    __slots__ = ("_counters", "_windows", "taken")

    def __init__(self, counters: DatabaseCounters, windows: Sequence[tuple[str, int, int]]) -> None:
        if len(windows) != 2 or min(limit for _, limit, _ in windows) < 1:
            raise ValueError("a pending hit is of exactly two windows")
        self._counters = counters
        self._windows = tuple(windows)
        self.taken: int | None = None

    def __repr__(self) -> str:  # the keys are digests of a caller: not shown either
        return f"WindowsHit(taken={self.taken})"

    def params(self) -> dict[str, Any]:
        """The bound parameters of ``WINDOWS_CTES``, at this instant."""
        own = self._counters.windows_params(self._windows, 1)
        return {f"rl_{name}": value for name, value in own.items()}

    def record(self, taken: int) -> None:
        """What the statement that carried the hit counted."""
        if self.taken is not None:
            raise RuntimeError("this hit was already counted")
        self.taken = taken

    async def send(self, pool: AsyncPool) -> int:
        """Send the hit alone (one statement) unless it went already: ``taken``."""
        if self.taken is None:
            self.taken = await self._counters.acquire_windows_on(pool, self._windows)
        return self.taken


class DatabaseCounters(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """``limits`` counters in the vault's database (one short transaction per call)."""

    STORAGE_SCHEME = None  # built by the vault, never from a URI

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(None, wrap_exceptions=False)
        self._db = db
        self._clock = clock
        self._swept = time.monotonic()
        self._sweep_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DatabaseCounters(dialect={self._db.dialect!r})"

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    # -- the sliding window counter -------------------------------------------------

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        now = self._clock()
        previous, current = self.sliding_window_keys(key, expiry, now)
        params = {
            "previous": previous,
            "current": current,
            "amount": amount,
            "limit": limit,
            "now": now,
            # The share of the previous window still inside the sliding one.
            "weight": 1.0 - (now / expiry) % 1.0,
            # The current window counts while it is itself the previous one.
            "expires": (math.floor(now / expiry) + 2) * expiry,
        }
        with self._db.engine.begin() as conn:
            taken = conn.execute(_ACQUIRE, params).first() is not None
        self._sweep(now)
        return taken

    def windows_params(
        self, windows: Sequence[tuple[str, int, int]], amount: int
    ) -> dict[str, Any]:
        """The parameters of the two windows' statement (unprefixed), at this instant."""
        now = self._clock()
        params: dict[str, Any] = {"amount": amount, "now": now}
        for n, (key, limit, expiry) in enumerate(windows):
            previous, current = self.sliding_window_keys(key, expiry, now)
            params[f"previous_{n}"] = previous
            params[f"current_{n}"] = current
            params[f"limit_{n}"] = limit
            params[f"weight_{n}"] = 1.0 - (now / expiry) % 1.0
            params[f"expires_{n}"] = (math.floor(now / expiry) + 2) * expiry
        return params

    def acquire_windows(self, windows: Sequence[tuple[str, int, int]], amount: int = 1) -> int:
        """Hit each ``(key, limit, expiry)`` window in order, stopping at the first that
        refuses: how many took the hit (``len(windows)``: allowed). Two windows on
        PostgreSQL: one statement; otherwise one hit (statement) per window."""
        if (
            len(windows) != 2
            or self._db.dialect != "postgresql"
            or amount > min(limit for _, limit, _ in windows)
        ):
            for n, (key, limit, expiry) in enumerate(windows):
                if not self.acquire_sliding_window_entry(key, limit, expiry, amount):
                    return n
            return len(windows)
        params = self.windows_params(windows, amount)
        with self._db.engine.begin() as conn:
            taken = int(conn.execute(text(_ACQUIRE_TWO), params).scalar_one())
        self._sweep(params["now"])
        return taken

    def pending_windows(self, windows: Sequence[tuple[str, int, int]]) -> WindowsHit:
        """A hit of two windows (``(key, limit, expiry)``, in order) to send later, alone
        or inside another statement on the event loop's pool (:class:`WindowsHit`)."""
        return WindowsHit(self, windows)

    async def acquire_windows_on(
        self, pool: AsyncPool, windows: Sequence[tuple[str, int, int]], amount: int = 1
    ) -> int:
        """:meth:`acquire_windows` (two windows) as one prepared statement on the event
        loop's pool: one round trip, no transaction of its own (one statement is atomic).
        Sweeping expired rows, once a minute, is left to the next call off the loop."""
        if len(windows) != 2 or amount > min(limit for _, limit, _ in windows):
            raise ValueError("the event-loop path hits exactly two windows")
        params = self.windows_params(windows, amount)
        try:
            rows = await pool.rows(_ACQUIRE_TWO_PSYCOPG, params, wait=_POOL_WAIT)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StorageUnavailable("the rate limit store is unreachable") from exc
        return int(rows[0]["taken"])

    def sweep_due(self) -> bool:
        """Whether expired rows are due to be deleted (:meth:`sweep`)."""
        return time.monotonic() - self._swept >= _SWEEP_EVERY

    def sweep(self) -> None:
        """Delete expired rows if a minute has passed since the last sweep (blocking)."""
        self._sweep(self._clock())

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        now = self._clock()
        previous, current = self.sliding_window_keys(key, expiry, now)
        with self._db.engine.connect() as conn:
            before = conn.execute(_ROW, {"key": previous, "now": now}).first()
            this = conn.execute(_ROW, {"key": current, "now": now}).first()
        previous_hits = int(before.hits) if before is not None else 0
        previous_ttl = (1.0 - (now / expiry) % 1.0) * expiry if previous_hits else 0.0
        current_ttl = (1.0 - (now / expiry) % 1.0) * expiry + expiry
        return previous_hits, previous_ttl, int(this.hits) if this else 0, current_ttl

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        for each in self.sliding_window_keys(key, expiry, self._clock()):
            self.clear(each)

    # -- fixed windows (``limits``' base interface) -----------------------------------

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = self._clock()
        params = {"key": key, "amount": amount, "expires": now + expiry, "now": now}
        with self._db.engine.begin() as conn:
            hits = conn.execute(_INCR, params).scalar_one()
        return int(hits)

    def get(self, key: str) -> int:
        row = self._row(key)
        return int(row.hits) if row is not None else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return float(row.expires_at) if row is not None else self._clock()

    def clear(self, key: str) -> None:
        with self._db.engine.begin() as conn:
            conn.execute(_DELETE, {"key": key})

    def reset(self) -> int | None:
        with self._db.engine.begin() as conn:
            return int(getattr(conn.execute(_ALL), "rowcount", 0) or 0)

    def check(self) -> bool:
        try:
            with self._db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def _row(self, key: str) -> Any:  # noqa: ANN401 - a result row
        with self._db.engine.connect() as conn:
            return conn.execute(_ROW, {"key": key, "now": self._clock()}).first()

    def _sweep(self, now: float) -> None:
        """Delete expired rows, at most once a minute per process."""
        if time.monotonic() - self._swept < _SWEEP_EVERY or not self._sweep_lock.acquire(
            blocking=False
        ):
            return
        try:
            self._swept = time.monotonic()
            with self._db.engine.begin() as conn:
                conn.execute(_EXPIRED, {"now": now})
        finally:
            self._sweep_lock.release()


def shared_limits_storage(
    settings: Settings,
    db: Database,
    *,
    redis_prefix: str = "cvault",
    clock: Callable[[], float] = time.time,
) -> Storage | None:
    """Where this vault's rate limits are counted across processes: Redis when
    ``CVAULT_REDIS_URL`` is set (Redis keeps its own time), else the database's table on
    PostgreSQL, on ``clock`` (the vault's clock, so tests can hold time still); None on
    SQLite without Redis (each process counts in memory)."""
    if settings.redis_url is not None:
        return RedisStorage(settings.redis_url, key_prefix=redis_prefix, wrap_exceptions=True)
    if db.dialect == "postgresql":
        return DatabaseCounters(db, clock=clock)
    return None
