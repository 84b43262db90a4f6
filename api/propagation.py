"""Changes made in one process reach every other (decision 15): a policy version stored,
a customer erased, trusted documents registered or revoked.

Two ways, both running in every server process:

* **LISTEN/NOTIFY** (PostgreSQL, ``CVAULT_LISTEN=on``, the default): the change is
  announced in its own transaction (``vault.storage.notify``), and this process's
  listener, on a dedicated connection, applies it as it arrives: the policy and the
  trusted documents are reloaded, an erased customer's data key leaves the cache. A
  lost connection is opened again with a growing pause (0.1 s doubling to 5 s); after
  every connect, the first included, everything is refreshed in full (policy, trusted
  documents, and the whole data key cache emptied), since notifications sent meanwhile
  were missed.
* **Polling** every ``CVAULT_REFRESH_SECONDS`` (2 s): the policy and the trusted
  documents are reloaded when the database holds newer ones. The fallback on
  PostgreSQL, the only way on SQLite (one host, whose processes share the keyring's shred
  list: an erased customer's cached key is refused there by every lookup).

Metrics (no label is an id): ``cvault_changes_applied_total{kind, via}`` counts changes
applied (``via``: notify, poll, reconnect), ``cvault_change_listener_connected`` is 1
while the listener is connected, ``cvault_change_listener_connects_total`` counts its
connections (more than one: it lost some), and ``cvault_data_keys_cached`` is the
cache's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from vault.logs import get_logger
from vault.runtime import Vault
from vault.storage.notify import Change, ChangeKind, ChangeListener

__all__ = ["Propagation", "Refreshable"]

log = get_logger("api.propagation")
_FIRST_PAUSE = 0.1
_LONGEST_PAUSE = 5.0


class Refreshable(Protocol):
    """Something reloaded from the database when it changed (the trusted documents)."""

    def refresh(self) -> bool: ...


class Propagation:
    """The change loops of one server process: :meth:`start` them in the app's lifespan,
    cancel the tasks at shutdown."""

    def __init__(
        self,
        vault: Vault,
        documents: Refreshable,
        registry: CollectorRegistry,
        *,
        every: float | None = None,
        listen: bool | None = None,
    ) -> None:
        settings = vault.settings
        self.vault = vault
        self.documents = documents
        self.every = float(settings.refresh_seconds) if every is None else every
        wanted = settings.listen if listen is None else listen
        self.listens = wanted and vault.db.dialect == "postgresql"
        self.applied = Counter(
            "cvault_changes_applied", "Changes from other processes applied here",
            ["kind", "via"], registry=registry,
        )  # fmt: skip
        self.connects = Counter(
            "cvault_change_listener_connects", "Connections the change listener opened",
            registry=registry,
        )  # fmt: skip
        self.connected = Gauge(
            "cvault_change_listener_connected",
            "1 while this process listens for changes (PostgreSQL LISTEN)",
            registry=registry,
        )
        self._cached = Gauge(
            "cvault_data_keys_cached", "Unwrapped data keys in this process's cache",
            registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.count_cached()

    def count_cached(self) -> None:
        """Set ``cvault_data_keys_cached`` to this process's cache size (before a scrape:
        a function gauge would not reach the multiprocess folder)."""
        self._cached.set(self.vault.keys.cached)

    def __repr__(self) -> str:
        return f"Propagation(every={self.every}, listens={self.listens})"

    def start(self) -> list[asyncio.Task[None]]:
        tasks = [asyncio.create_task(self._poll_forever())]
        if self.listens:
            tasks.append(asyncio.create_task(self._listen_forever()))
        return tasks

    # -- applying ---------------------------------------------------------------------

    async def apply(self, change: Change, via: str) -> None:
        """Apply one change announced by another process (or this one)."""
        if change.kind is ChangeKind.ERASURE:
            self.vault.keys.forget(change.customer_id)
            self.applied.labels(change.kind.value, via).inc()
        elif change.kind is ChangeKind.POLICY:
            await self._reload(ChangeKind.POLICY, self.vault.policies.refresh, via)
        else:
            await self._reload(ChangeKind.DOCUMENTS, self.documents.refresh, via)

    async def refresh_all(self, via: str) -> None:
        """Everything that may have changed unheard: the policy, the trusted documents,
        and every cached data key (an erasure may have been missed)."""
        self.vault.keys.forget_all()
        await self._reload(ChangeKind.POLICY, self.vault.policies.refresh, via)
        await self._reload(ChangeKind.DOCUMENTS, self.documents.refresh, via)

    async def _reload(self, kind: ChangeKind, refresh: Callable[[], bool], via: str) -> None:
        if await asyncio.to_thread(refresh):
            self.applied.labels(kind.value, via).inc()
            if kind is ChangeKind.POLICY:
                log.info("policy reloaded", version=self.vault.policies.version, via=via)

    async def _apply_heard(self, change: Change) -> None:
        try:
            await self.apply(change, "notify")
        except Exception as exc:  # noqa: BLE001 - the next poll tries again
            log.error("applying a change failed", kind=change.kind.value, error=type(exc).__name__)  # noqa: TRY400

    # -- the loops --------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        """Reload the policy and the trusted documents when the database holds newer ones."""
        while True:
            await asyncio.sleep(self.every)
            for kind, refresh in (
                (ChangeKind.POLICY, self.vault.policies.refresh),
                (ChangeKind.DOCUMENTS, self.documents.refresh),
            ):
                try:
                    await self._reload(kind, refresh, "poll")
                except Exception as exc:  # noqa: BLE001 - the loop survives it
                    # The class only: a driver's message can quote statement parameters.
                    log.error("refresh failed", kind=kind.value, error=type(exc).__name__)  # noqa: TRY400

    async def _listen_forever(self) -> None:
        """Listen on a dedicated connection; reconnect with a growing pause when it is
        lost, and refresh everything after each connect."""
        pause = _FIRST_PAUSE
        while True:
            try:
                listener = await ChangeListener.connect(self.vault.db.direct)
            except Exception as exc:  # noqa: BLE001 - the database may be down: retry
                log.warning("change listener cannot connect", error=type(exc).__name__)
                await asyncio.sleep(pause)
                pause = min(_LONGEST_PAUSE, pause * 2)
                continue
            try:
                async with listener:
                    self.connected.set(1)
                    self.connects.inc()
                    await self.refresh_all("reconnect")
                    pause = _FIRST_PAUSE
                    async for change in listener.changes(idle=max(1.0, self.every)):
                        if change is not None:
                            await self._apply_heard(change)
            except Exception as exc:  # noqa: BLE001 - lost: connect again
                log.warning("change listener lost its connection", error=type(exc).__name__)
            finally:
                self.connected.set(0)
            await asyncio.sleep(pause)
            pause = min(_LONGEST_PAUSE, pause * 2)
