"""Keys in storage: crypto-shredding and key rotation against a real database."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import CTX, FrozenClock
from vault.config import Settings
from vault.crypto import DecryptionError, Keyring, token_key_id
from vault.customers import Customer, CustomerInput
from vault.interactions import InteractionInput
from vault.keys import DataKeys
from vault.runtime import Vault
from vault.storage.db import Database
from vault.storage.models import CustomerRow, DataKeyRow, InteractionRow
from vault.types import PiiField

PAYLOAD_FIELD = "interaction.payload"
Snapshot = dict[tuple[str, uuid.UUID], bytes | None]

PEOPLE = [
    CustomerInput(
        email="ada@example.com",
        phone="+442079460958",
        first_name="Ada",
        last_name="Lovelace",
        birth_date="1985-12-10",
        address="12 St James's Square, London",
    ),
    CustomerInput(
        email="zahra@example.com", first_name="Zahra", last_name="\u0645\u062d\u0645\u062f\u06cc"
    ),
    CustomerInput(phone="+14155550132", first_name="\u4f1f", last_name="\u738b"),
]


def _create(
    vault: Vault, data: CustomerInput, *, payload: dict[str, str] | None = None
) -> Customer:
    with vault.unit(CTX) as s:
        customer = vault.customers.create(s, data)
    if payload is not None:
        with vault.unit(CTX) as s:
            result = vault.interactions.record_many(
                s,
                [
                    InteractionInput(
                        channel="web",
                        type="page_view",
                        occurred_at=vault.clock(),
                        customer_id=customer.id,
                        payload=payload,
                    )
                ],
            )
        assert 1 == result.inserted
    return customer


def _ciphertexts(vault: Vault) -> Snapshot:
    """Every stored field token and interaction payload token, by column and row id."""
    out: Snapshot = {}
    with vault.unit(CTX) as s:
        for row in s.scalars(select(CustomerRow)):
            for name in PiiField:
                out[(f"{name}_ct", row.id)] = getattr(row, f"{name}_ct")
        for irow in s.scalars(select(InteractionRow)):
            out[("payload_ct", irow.id)] = irow.payload_ct
    return out


def _wrapped(vault: Vault) -> dict[uuid.UUID, tuple[int | None, bytes | None]]:
    with vault.unit(CTX) as s:
        return {
            r.customer_id: (r.kek_version, r.wrapped_key) for r in s.scalars(select(DataKeyRow))
        }


# -- crypto-shredding --------------------------------------------------------------


def test_destroyed_data_key_kills_every_token_of_the_customer(
    vault: Vault, clock: FrozenClock
) -> None:
    """After destroy, the customer's tokens stay in the database but no key opens them:
    the wrapped key is NULL (there is nothing to unwrap), the service's cache forgot
    the key, and a fresh DataKeys without a cache cannot load it either."""
    ada = _create(vault, PEOPLE[0], payload={"page": "/checkout", "note": "Ada Lovelace"})
    with vault.unit(CTX) as s:
        row = s.get(CustomerRow, ada.id)
        assert row is not None
        tokens = {name: getattr(row, f"{name}_ct") for name in PiiField}
        payload_ct = s.scalars(
            select(InteractionRow.payload_ct).where(InteractionRow.customer_id == ada.id)
        ).one()
        key = vault.keys.get(s, ada.id)
    assert payload_ct is not None
    assert "ada@example.com" == key.decrypt_text(tokens[PiiField.EMAIL], field="email")

    clock.advance(hours=1)
    with vault.unit(CTX) as s:
        vault.keys.destroy(s, ada.id, clock.now)

    with vault.unit(CTX) as s:
        key_row = s.get(DataKeyRow, ada.id)
        assert key_row is not None
        assert (None, None, clock.now) == (
            key_row.kek_version,
            key_row.wrapped_key,
            key_row.destroyed_at,
        )
        row = s.get(CustomerRow, ada.id)
        assert row is not None
        assert tokens == {name: getattr(row, f"{name}_ct") for name in PiiField}
        assert [1] * 6 == [token_key_id(t) for t in tokens.values() if t is not None]
        with pytest.raises(DecryptionError):
            vault.keys.get(s, ada.id)
        with pytest.raises(DecryptionError):
            DataKeys(vault.keyring).get(s, ada.id)
        with pytest.raises(DecryptionError):
            DataKeys(vault.keyring).get_many(s, [ada.id])


def test_a_fresh_vault_cannot_open_shredded_tokens(
    vault: Vault, settings: Settings, database: Database, clock: FrozenClock
) -> None:
    """A separately opened vault (no shared cache, same keyring and database) cannot
    read the data key of a shredded customer, nor the interaction payload."""
    ada = _create(vault, PEOPLE[0], payload={"page": "/account"})
    with vault.unit(CTX) as s:
        vault.keys.destroy(s, ada.id, clock.now)
    fresh = Vault.open(settings, keyring=vault.keyring, database=database, clock=clock)
    with fresh.unit(CTX) as s:
        with pytest.raises(DecryptionError):
            fresh.keys.get(s, ada.id)
        with pytest.raises(DecryptionError):
            fresh.interactions.timeline(s, ada.id)
    with fresh.unit(CTX) as s:
        page = fresh.interactions.timeline(s, ada.id, with_payload=False)
    assert [None] == [i.payload for i in page.items]


def test_shredding_one_customer_leaves_the_others_readable(
    vault: Vault, clock: FrozenClock
) -> None:
    """Destroying one data key changes no other customer's key or tokens."""
    ada, zahra = (_create(vault, p) for p in PEOPLE[:2])
    before = _wrapped(vault)[zahra.id]
    with vault.unit(CTX) as s:
        vault.keys.destroy(s, ada.id, clock.now)
    assert before == _wrapped(vault)[zahra.id]
    with vault.unit(CTX) as s:
        assert zahra == vault.customers.get(s, zahra.id)
        assert [zahra.id] == list(DataKeys(vault.keyring).get_many(s, [zahra.id]))
        status = vault.keys.status(s)
    assert (1, {1: 1}) == (status.destroyed_data_keys, status.data_keys_by_kek_version)


def test_rolled_back_destroy_destroys_nothing(vault: Vault, clock: FrozenClock) -> None:
    """Crypto-shredding is part of the unit of work: if it rolls back, the key survives."""
    ada = _create(vault, PEOPLE[0])

    class Abort(Exception):
        pass

    def destroy_then_fail() -> None:
        with vault.unit(CTX) as s:
            vault.keys.destroy(s, ada.id, clock.now)
            raise Abort

    with pytest.raises(Abort):
        destroy_then_fail()
    with vault.unit(CTX) as s:
        assert ada == vault.customers.get(s, ada.id)
        assert ada.id == DataKeys(vault.keyring).get(s, ada.id).customer_id


# -- rotation --------------------------------------------------------------------


@pytest.fixture
def own_vault(
    settings: Settings, database: Database, keyring: Keyring, clock: FrozenClock
) -> Iterator[Vault]:
    """A vault on this test's own keyring (file at settings.keyring_path), safe to rotate."""
    v = Vault.open(settings, keyring=keyring, database=database, clock=clock)
    yield v
    v.close()


def _fresh_vault(settings: Settings, database: Database, clock: FrozenClock) -> Vault:
    """A vault as a newly started process sees it: keyring re-read from its file, no cache."""
    return Vault.open(settings, database=database, clock=clock)


def test_rotation_rewraps_keys_without_touching_values(
    own_vault: Vault, settings: Settings, database: Database, clock: FrozenClock
) -> None:
    """Rotate, then rewrap_all: every live data key moves to the new KEK version, stored
    tokens are byte-for-byte unchanged, and customers decrypt in a fresh process before
    and after the old version is retired."""
    vault = own_vault
    people = [_create(vault, p, payload={"n": str(i)}) for i, p in enumerate(PEOPLE)]
    shredded = _create(vault, CustomerInput(email="gone@example.com"))
    with vault.unit(CTX) as s:
        vault.keys.destroy(s, shredded.id, clock.now)
    values_before = _ciphertexts(vault)
    wrapped_before = _wrapped(vault)
    with vault.unit(CTX) as s:
        status = vault.keys.status(s)
    assert (1, [1], {1: 3}, 0, 1) == (
        status.current_kek_version,
        status.keyring_versions,
        status.data_keys_by_kek_version,
        status.pending_rewrap,
        status.destroyed_data_keys,
    )

    assert 2 == vault.keyring.rotate()
    with vault.unit(CTX) as s:
        status = vault.keys.status(s)
    assert (2, [1, 2], {1: 3}, 3) == (
        status.current_kek_version,
        status.keyring_versions,
        status.data_keys_by_kek_version,
        status.pending_rewrap,
    )

    clock.advance(minutes=10)
    batches: list[int] = []
    done = vault.keys.rewrap_all(
        lambda: Session(vault.db.engine), clock, batch_size=2, progress=batches.append
    )
    assert (3, [2, 1]) == (done, batches)
    with vault.unit(CTX) as s:
        status = vault.keys.status(s)
        stamps = {r.customer_id: r.rewrapped_at for r in s.scalars(select(DataKeyRow))}
    assert (2, [1, 2], {2: 3}, 0, 1) == (
        status.current_kek_version,
        status.keyring_versions,
        status.data_keys_by_kek_version,
        status.pending_rewrap,
        status.destroyed_data_keys,
    )
    assert {**{p.id: clock.now for p in people}, shredded.id: None} == stamps

    assert values_before == _ciphertexts(vault)
    wrapped_after = _wrapped(vault)
    assert (None, None) == wrapped_after[shredded.id]
    for p in people:
        assert 2 == wrapped_after[p.id][0]
        assert wrapped_before[p.id][1] != wrapped_after[p.id][1]

    assert 0 == vault.keys.rewrap_all(lambda: Session(vault.db.engine), clock)

    fresh = _fresh_vault(settings, database, clock)
    with fresh.unit(CTX) as s:
        assert people == [fresh.customers.get(s, p.id) for p in people]

    vault.keyring.retire(1)
    fresh = _fresh_vault(settings, database, clock)
    assert [2] == fresh.keyring.versions()
    with fresh.unit(CTX) as s:
        assert people == [fresh.customers.get(s, p.id) for p in people]
        payloads = [[i.payload for i in fresh.interactions.timeline(s, p.id).items] for p in people]
        with pytest.raises(DecryptionError):
            fresh.keys.get(s, shredded.id)
    assert [[{"n": "0"}], [{"n": "1"}], [{"n": "2"}]] == payloads
    with vault.unit(CTX) as s:
        assert people == [vault.customers.get(s, p.id) for p in people]


def test_cached_keys_survive_rewrap(own_vault: Vault, clock: FrozenClock) -> None:
    """Re-wrapping does not change a data key, so keys cached before it stay valid and
    values written afterwards open in a fresh DataKeys."""
    vault = own_vault
    ada = _create(vault, PEOPLE[0])
    vault.keyring.rotate()
    vault.keys.rewrap_all(lambda: Session(vault.db.engine), clock)
    with vault.unit(CTX) as s:
        token = vault.keys.get(s, ada.id).encrypt_text("after", field=PAYLOAD_FIELD)
        assert "after" == DataKeys(vault.keyring).get(s, ada.id).decrypt_text(
            token, field=PAYLOAD_FIELD
        )


def test_new_customers_after_rotation_use_the_new_version(own_vault: Vault) -> None:
    """Data keys created after a rotation are wrapped under the new version at once."""
    vault = own_vault
    vault.keyring.rotate()
    ada = _create(vault, PEOPLE[0])
    assert 2 == _wrapped(vault)[ada.id][0]
    with vault.unit(CTX) as s:
        assert 0 == vault.keys.status(s).pending_rewrap


def test_interrupted_rewrap_resumes(own_vault: Vault, clock: FrozenClock) -> None:
    """Each batch commits on its own: after an interruption, finished batches stay
    re-wrapped and a second run does the rest."""
    vault = own_vault
    people = [_create(vault, p) for p in PEOPLE]
    vault.keyring.rotate()

    class Interrupted(Exception):
        pass

    def stop(_: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        vault.keys.rewrap_all(lambda: Session(vault.db.engine), clock, batch_size=1, progress=stop)
    with vault.unit(CTX) as s:
        assert {1: 2, 2: 1} == vault.keys.status(s).data_keys_by_kek_version
    assert 2 == vault.keys.rewrap_all(lambda: Session(vault.db.engine), clock, batch_size=1)
    with vault.unit(CTX) as s:
        assert {2: 3} == vault.keys.status(s).data_keys_by_kek_version
        assert people == [vault.customers.get(s, p.id) for p in people]


def test_retiring_before_rewrap_is_visible_and_loses_access(
    own_vault: Vault, settings: Settings, database: Database, clock: FrozenClock
) -> None:
    """Retiring a version that still wraps data keys makes those keys unopenable; status
    reports them as pending under a version the keyring no longer holds."""
    vault = own_vault
    ada = _create(vault, PEOPLE[0])
    vault.keyring.rotate()
    vault.keyring.retire(1)
    fresh = _fresh_vault(settings, database, clock)
    with fresh.unit(CTX) as s:
        status = fresh.keys.status(s)
        with pytest.raises(DecryptionError):
            fresh.keys.get(s, ada.id)
    assert ([2], {1: 1}, 1) == (
        status.keyring_versions,
        status.data_keys_by_kek_version,
        status.pending_rewrap,
    )


class RewrapDidNotFinish(Exception):
    """Raised by the guard below when rewrap_all keeps going round in circles."""


def test_rewrap_terminates_when_another_process_rotated(
    own_vault: Vault, settings: Settings, database: Database, clock: FrozenClock
) -> None:
    """rewrap_all finishes, and leaves every live key under one version, even when
    another process rotated the keyring (and wrapped keys under the newer version)
    after this process loaded it."""
    vault = own_vault
    ada = _create(vault, PEOPLE[0])
    other_process = _fresh_vault(settings, database, clock)
    assert 2 == other_process.keyring.rotate()
    zahra = _create(other_process, PEOPLE[1])
    assert {ada.id: 1, zahra.id: 2} == {c: v for c, (v, _) in _wrapped(vault).items()}

    calls: list[int] = []

    def guard(n: int) -> None:
        calls.append(n)
        if len(calls) > 20:
            raise RewrapDidNotFinish

    vault.keys.rewrap_all(lambda: Session(vault.db.engine), clock, batch_size=1, progress=guard)
    with vault.unit(CTX) as s:
        assert {2: 2} == vault.keys.status(s).data_keys_by_kek_version


def test_status_counts_by_version_and_destroyed(own_vault: Vault, clock: FrozenClock) -> None:
    """status() counts live keys per KEK version and destroyed keys separately."""
    vault = own_vault
    a, b = (_create(vault, p) for p in PEOPLE[:2])
    vault.keyring.rotate()
    c = _create(vault, PEOPLE[2])
    clock.advance(days=1)
    with vault.unit(CTX) as s:
        vault.keys.destroy(s, a.id, clock.now - timedelta(hours=1))
    with vault.unit(CTX) as s:
        status = vault.keys.status(s)
    assert ({1: 1, 2: 1}, 1, 1, 18) == (
        status.data_keys_by_kek_version,
        status.destroyed_data_keys,
        status.pending_rewrap,
        status.blind_index_bits,
    )
    assert {b.id: 1, c.id: 2, a.id: None} == {k: v for k, (v, _) in _wrapped(vault).items()}
