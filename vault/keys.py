"""Data keys in the database: create, open (cached), destroy, shred, re-wrap, status.

A key shredded in the keyring (an erased customer) is refused even from this
process's cache or from another process's: every lookup checks the keyring's
shred list (one ``stat`` call while it is unchanged). On PostgreSQL a destroyed key is
also announced (:mod:`vault.storage.notify`): every server drops its cached copy when
the erasure commits, whether or not it shares the keyring file.

A live record whose id is on the shred list is an erasure that a restored database
backup undid: readers ask :meth:`DataKeys.shredded` first and read such a record as
erased (no decryption is tried); a key lookup for it raises :class:`KeyShredded` (a
``CustomerErased`` domain error and a ``DecryptionError``). Each one met is noted
(:attr:`DataKeys.restored_met`, for ``/readyz``) and logged once per process with the
command that repairs it, ``cvault erasure reapply``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from uuid import UUID

from sqlalchemy import Table, Uuid, bindparam, func, select, update
from sqlalchemy.orm import Session

from vault.crypto import DataKey, DecryptionError, Keyring, WrappedKey
from vault.errors import CustomerErased
from vault.logs import get_logger
from vault.storage.models import DataKeyRow
from vault.storage.notify import Change, announce
from vault.storage.sql import Prepared, id_in, id_in_param

__all__ = ["REAPPLY", "DataKeys", "KeyShredded", "KeyStatus", "StoredKey"]

# A data_keys row as read beside its customer: (key_id, kek_version, wrapped_key), all
# None when the customer has no key row.
StoredKey = tuple[int | None, int | None, bytes | None]


def _complete(row: StoredKey | None) -> tuple[int, int, bytes] | None:
    """A stored key row with every part present, else None (no row, or a destroyed key)."""
    if row is None:
        return None
    key_id, kek_version, blob = row
    if key_id is None or kek_version is None or blob is None:
        return None
    return key_id, kek_version, blob


log = get_logger("vault.keys")
REAPPLY = "cvault erasure reapply"


class KeyShredded(CustomerErased, DecryptionError):
    """The data key of a live record is on the keyring's shred list: its erasure was
    undone by a restored database backup. A domain error (code ``CUSTOMER_ERASED``, one
    clear line) and a decryption failure (no key is handed out)."""

    def __init__(self, customer_id: UUID) -> None:
        CustomerErased.__init__(self, customer_id, restored=True)


_keys_table = cast("Table", DataKeyRow.__table__)
_KEYS = select(
    DataKeyRow.customer_id, DataKeyRow.key_id, DataKeyRow.kek_version, DataKeyRow.wrapped_key
)
_KEYS_BY_IDS_PG = Prepared(_KEYS.where(id_in_param(DataKeyRow.customer_id, "ids")))
_DESTROY = (
    update(_keys_table)
    .where(_keys_table.c.customer_id == bindparam("cid", type_=Uuid()))
    .where(_keys_table.c.wrapped_key.is_not(None))  # a destroyed key keeps its destroyed_at
    .values(wrapped_key=None, kek_version=None, destroyed_at=bindparam("now"))
)


@dataclass(frozen=True, slots=True)
class KeyStatus:
    current_kek_version: int
    keyring_versions: list[int]
    data_keys_by_kek_version: dict[int, int]
    destroyed_data_keys: int
    blind_index_bits: int

    @property
    def pending_rewrap(self) -> int:
        current = self.current_kek_version
        return sum(n for v, n in self.data_keys_by_kek_version.items() if v != current)


class DataKeys:
    """Per-customer data keys, unwrapped on demand and kept in a bounded cache."""

    def __init__(self, keyring: Keyring, *, cache_size: int = 50_000) -> None:
        self.keyring = keyring
        self._cache: OrderedDict[UUID, DataKey] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._restored: set[UUID] = set()

    def __repr__(self) -> str:
        return f"DataKeys(cached={len(self._cache)})"

    def _remember(self, key: DataKey) -> None:
        with self._lock:
            self._cache[key.customer_id] = key
            self._cache.move_to_end(key.customer_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def forget(self, customer_id: UUID) -> None:
        with self._lock:
            self._cache.pop(customer_id, None)

    def forget_all(self) -> None:
        """Empty the cache: erasures announced while this process was not listening may
        have been missed (keys are unwrapped again on demand)."""
        with self._lock:
            self._cache.clear()

    @property
    def cached(self) -> int:
        """How many unwrapped keys the cache holds (a count: for metrics)."""
        return len(self._cache)

    def shredded(self, live_ids: Iterable[UUID]) -> set[UUID]:
        """Those of ``live_ids`` (records live in the database) whose key the keyring
        shredded: erasures a restored backup undid. Read them as erased; each is noted
        for ``/readyz`` and logged once. No database access (one ``stat`` of the list)."""
        found = self.keyring.shredded(live_ids)
        if found:
            self.note_restored(found)
        return found

    def note_restored(self, customer_ids: Iterable[UUID], *, quiet: bool = False) -> None:
        """Remember live records the shred list names (logged the first time each, unless
        ``quiet``: the start-up scan logs one line for all)."""
        with self._lock:
            new = sorted(set(customer_ids) - self._restored)
            self._restored.update(new)
        for cid in [] if quiet else new:
            log.warning(
                "customer.erasure_undone",
                customer_id=str(cid),
                detail="a restored backup brought an erased customer back; it reads as erased",
                run=REAPPLY,
            )

    @property
    def restored_met(self) -> frozenset[UUID]:
        """The undone erasures noted so far (some may have been erased again since)."""
        with self._lock:
            return frozenset(self._restored)

    def settled(self, customer_ids: Iterable[UUID]) -> None:
        """Forget noted records that are erased again (or gone)."""
        with self._lock:
            self._restored.difference_update(customer_ids)

    def create(self, session: Session, customer_id: UUID, now: datetime) -> DataKey:
        key, wrapped = self.keyring.new_data_key(customer_id)
        session.add(
            DataKeyRow(
                customer_id=customer_id,
                key_id=key.key_id,
                kek_version=wrapped.kek_version,
                wrapped_key=wrapped.blob,
                created_at=now,
            )
        )
        self._remember(key)
        return key

    def get(self, session: Session, customer_id: UUID) -> DataKey:
        return self.get_many(session, [customer_id])[customer_id]

    def hot(
        self, customer_id: UUID, stored: tuple[int | None, int | None, bytes | None]
    ) -> DataKey | None:
        """The key of a live customer whose ids the shred list does not name: from the
        cache, else unwrapped from its stored row ``(key_id, kek_version, wrapped_key)``
        read beside the customer (and cached). None whenever :meth:`get_many` would
        raise or note something: the caller then takes the ordinary path, which does."""
        with self._lock:
            key = self._cache.get(customer_id)
        if self.keyring.shredded([customer_id]):
            return None
        if key is not None:
            return key
        key_id, kek_version, blob = stored
        if key_id is None or blob is None or kek_version is None:
            return None
        key = self.keyring.open_data_key(customer_id, key_id, WrappedKey(kek_version, blob))
        self._remember(key)
        return key

    def read_beside(
        self,
        session: Session,
        customer_ids: list[UUID],
        stored: Mapping[UUID, StoredKey],
    ) -> dict[UUID, DataKey]:
        """:meth:`get_many` for distinct ids whose stored key rows ``(key_id, kek_version,
        wrapped_key)`` were read beside their customers in the same statement (bulk
        ingest), so no key statement is sent. One shred-list check for the batch; a
        cached key is used only while its row is live (a key destroyed in the database
        is never handed out, even from the cache). Anything else (no row, a destroyed or
        shredded key) takes :meth:`get_many`, which raises as it always does."""
        dead = self.keyring.shredded(customer_ids)
        usable = {
            cid: row
            for cid in customer_ids
            if cid not in dead and (row := _complete(stored.get(cid))) is not None
        }
        with self._lock:
            found = {
                cid: key
                for cid, row in usable.items()
                if (key := self._cache.get(cid)) is not None and key.key_id == row[0]
            }
        for cid, (key_id, kek_version, blob) in usable.items():
            if cid not in found:
                key = self.keyring.open_data_key(cid, key_id, WrappedKey(kek_version, blob))
                self._remember(key)
                found[cid] = key
        slow = [cid for cid in customer_ids if cid not in usable]
        if slow:
            for cid in slow:
                self.forget(cid)
            found.update(self.get_many(session, slow))
        return found

    def get_many(self, session: Session, customer_ids: Iterable[UUID]) -> dict[UUID, DataKey]:
        """Keys for every id; raises :class:`DecryptionError` if one is missing or destroyed,
        :class:`KeyShredded` for a key that a restored backup brought back after erasure."""
        found: dict[UUID, DataKey] = {}
        missing: list[UUID] = []
        with self._lock:
            for cid in dict.fromkeys(customer_ids):
                key = self._cache.get(cid)
                if key is None:
                    missing.append(cid)
                else:
                    found[cid] = key
        if found:
            # Another process may have erased one of them since we cached its key.
            for cid in self.keyring.shredded(found):
                del found[cid]
                self.forget(cid)
                missing.append(cid)
        undone = self._open_stored(session, missing, found)
        if undone:
            self.note_restored(undone)
            raise KeyShredded(min(undone))
        for cid in missing:
            if cid not in found:
                raise DecryptionError(f"data key of customer {cid} is destroyed or missing")
        return found

    def _open_stored(
        self, session: Session, missing: list[UUID], found: dict[UUID, DataKey]
    ) -> list[UUID]:
        """Unwrap the stored keys of ``missing`` into ``found`` (and the cache); returns
        the ids whose live key the shred list names (an erasure undone by a restore)."""
        dialect = session.get_bind().dialect.name
        dead = self.keyring.shredded(missing) if missing else set()
        undone: list[UUID] = []
        for start in range(0, len(missing), 1000):
            chunk = missing[start : start + 1000]
            if dialect == "postgresql":
                rows = _KEYS_BY_IDS_PG.rows(session, {"ids": chunk})
            else:
                rows = list(
                    session.execute(_KEYS.where(id_in(DataKeyRow.customer_id, chunk, dialect)))
                )
            for cid, key_id, kek_version, blob in rows:
                if blob is None or kek_version is None:
                    continue
                if cid in dead:  # live key, shredded id: never unwrapped
                    undone.append(cid)
                    continue
                key = self.keyring.open_data_key(cid, key_id, WrappedKey(kek_version, blob))
                self._remember(key)
                found[cid] = key
        return undone

    def destroy(self, session: Session, customer_id: UUID, now: datetime) -> None:
        """Crypto-shredding: the wrapped key is overwritten; every token of the customer is dead."""
        session.connection().execute(_DESTROY, {"cid": customer_id, "now": now})
        # Every other process drops its cached copy when this commits (PostgreSQL).
        announce(session, Change.erasure(customer_id))
        self.forget(customer_id)

    def shred(self, session: Session, customer_id: UUID, now: datetime) -> None:
        """Erasure: the id goes on the keyring's shred list (durable when this returns, so
        an older database backup cannot bring the key back), then the key is destroyed."""
        self.keyring.shred(customer_id)
        self.destroy(session, customer_id, now)

    def rewrap_all(
        self,
        session_factory: Callable[[], Session],
        now: Callable[[], datetime],
        *,
        batch_size: int = 1000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Re-wrap every live data key under the current key-encryption key, batch by batch.

        Each batch commits on its own, so an interrupted rotation resumes where it stopped.
        """
        done = 0
        while True:
            # Re-read each batch: another process may rotate while this one runs, and
            # rewrap() always wraps under the live current version.
            current = self.keyring.current_version()
            with session_factory() as session, session.begin():
                rows = session.execute(
                    select(
                        DataKeyRow.customer_id,
                        DataKeyRow.key_id,
                        DataKeyRow.kek_version,
                        DataKeyRow.wrapped_key,
                    )
                    .where(DataKeyRow.kek_version != current, DataKeyRow.wrapped_key.is_not(None))
                    .limit(batch_size)
                ).all()
                if not rows:
                    return done
                stamp = now()
                shredded = self.keyring.shredded(r[0] for r in rows)
                for cid, key_id, kek_version, blob in rows:
                    if kek_version is None or blob is None:  # destroyed meanwhile
                        continue
                    if cid in shredded:  # an erased customer's key, back from a backup
                        session.execute(
                            update(DataKeyRow)
                            .where(DataKeyRow.customer_id == cid)
                            .values(wrapped_key=None, kek_version=None, destroyed_at=stamp)
                        )
                        continue
                    wrapped = self.keyring.rewrap(cid, key_id, WrappedKey(kek_version, blob))
                    session.execute(
                        update(DataKeyRow)
                        .where(DataKeyRow.customer_id == cid)
                        .values(
                            kek_version=wrapped.kek_version,
                            wrapped_key=wrapped.blob,
                            rewrapped_at=stamp,
                        )
                    )
                done += len(rows)
            if progress is not None:
                progress(len(rows))

    def status(self, session: Session) -> KeyStatus:
        counts = session.execute(
            select(DataKeyRow.kek_version, func.count())
            .where(DataKeyRow.wrapped_key.is_not(None))
            .group_by(DataKeyRow.kek_version)
        ).all()
        destroyed = session.scalar(
            select(func.count()).select_from(DataKeyRow).where(DataKeyRow.wrapped_key.is_(None))
        )
        return KeyStatus(
            current_kek_version=self.keyring.current_version(),
            keyring_versions=self.keyring.versions(),
            data_keys_by_kek_version={int(v): int(n) for v, n in counts if v is not None},
            destroyed_data_keys=int(destroyed or 0),
            blind_index_bits=self.keyring.blind_indexer.bits,
        )
