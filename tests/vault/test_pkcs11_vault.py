"""A vault whose keys are in a PKCS#11 token (SoftHSM2), on SQLite and PostgreSQL:
create, read, search by e-mail and phone, rotate, erase; the PIN reaches no log line."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import structlog
from sqlalchemy import select

from audit.checkpoint import Signer
from tests.conftest import CTX, FrozenClock
from tests.hsm import HsmToken
from vault.config import Settings
from vault.crypto import DecryptionError, Keyring, WrappedKey
from vault.customers import CustomerInput
from vault.runtime import Vault
from vault.storage.db import Database
from vault.storage.models import CustomerRow, DataKeyRow
from vault.types import PiiField

PEOPLE = [
    CustomerInput(
        email="maryam.tehrani@example.ir",
        phone="+989121234567",
        first_name="مریم",
        last_name="تهرانی",
    ),
    CustomerInput(
        email="somchai.k@example.co.th",
        phone="+66812345678",
        first_name="สมชาย",
        last_name="ใจดี",
    ),
    CustomerInput(email="wang.xiuying@example.cn", first_name="秀英", last_name="王"),
    CustomerInput(email="Zoë.Ñúñez@Example.com", first_name="Zoë", last_name="Ñúñez"),
]


@pytest.fixture
def hsm_vault(
    settings: Settings,
    database: Database,
    hsm_token: HsmToken,
    audit_signer: Signer,
    clock: FrozenClock,
) -> Iterator[Vault]:
    """A vault over the test's database whose keyring names the test's token."""
    ring, made = Keyring.create_pkcs11(
        settings.keyring_path,
        module=hsm_token.module,
        token=hsm_token.label,
        pin=hsm_token.pin,
        population=1_000_000,
    )
    assert made
    vault = Vault.open(settings, keyring=ring, database=database, signer=audit_signer, clock=clock)
    yield vault
    vault.close()
    ring.close()


def _create_all(vault: Vault) -> list[uuid.UUID]:
    with vault.unit(CTX) as s:
        return [vault.customers.create(s, person).id for person in PEOPLE]


def _wrapped(vault: Vault, customer_id: uuid.UUID) -> tuple[int, WrappedKey]:
    with vault.db.transaction() as s:
        key_id, version, blob = s.execute(
            select(DataKeyRow.key_id, DataKeyRow.kek_version, DataKeyRow.wrapped_key).where(
                DataKeyRow.customer_id == customer_id
            )
        ).one()
    assert version is not None
    assert blob is not None
    return key_id, WrappedKey(version, blob)


def test_customers_round_trip_and_are_found_by_email_and_phone(hsm_vault: Vault) -> None:
    """Names in Persian, Thai, Chinese and accented Latin come back exactly; an e-mail in
    another case and a phone find their customer through the token's blind indexes."""
    ids = _create_all(hsm_vault)
    with hsm_vault.unit(CTX) as s:
        read = [hsm_vault.customers.get(s, cid) for cid in ids]
        by_email = hsm_vault.customers.find_by_email(s, "ZOË.ñúñez@example.COM")
        by_phone = hsm_vault.customers.find_by_phone(s, "+66 81 234 5678")
        nobody = hsm_vault.customers.find_by_email(s, "nobody@example.org")
    assert [(p.first_name, p.last_name) for p in PEOPLE] == [
        (c.first_name, c.last_name) for c in read
    ]
    assert [ids[3]] == [c.id for c in by_email]
    assert [ids[1]] == [c.id for c in by_phone]
    assert [] == nobody
    assert {2} == {w.blob[0] for w in (_wrapped(hsm_vault, cid)[1] for cid in ids)}


def test_erasure_shreds_the_data_key_for_good(
    hsm_vault: Vault, settings: Settings, hsm_token: HsmToken
) -> None:
    """After erasure the customer is no longer found, its data key row is destroyed, and
    a ciphertext and wrapped key copied before (a backup) open neither in this process
    nor through a keyring opened afresh on the token; the other customers still read."""
    ids = _create_all(hsm_vault)
    target = ids[0]
    with hsm_vault.db.transaction() as s:
        token = s.scalar(select(CustomerRow.email_ct).where(CustomerRow.id == target))
    assert token is not None
    key_id, wrapped = _wrapped(hsm_vault, target)
    before = hsm_vault.keyring.open_data_key(target, key_id, wrapped)
    assert PEOPLE[0].email == before.decrypt_text(token, field=PiiField.EMAIL)

    with hsm_vault.unit(CTX) as s:
        hsm_vault.erasure.erase(s, target)
    with hsm_vault.unit(CTX) as s:
        assert [] == hsm_vault.customers.find_by_email(s, PEOPLE[0].email or "")
        assert "สมชาย" == hsm_vault.customers.get(s, ids[1]).first_name
    with hsm_vault.db.transaction() as s:
        row = s.execute(
            select(DataKeyRow.wrapped_key, DataKeyRow.destroyed_at).where(
                DataKeyRow.customer_id == target
            )
        ).one()
    assert (None, True) == (row.wrapped_key, row.destroyed_at is not None)
    fresh = Keyring.open(settings.keyring_path, pin=hsm_token.pin)
    try:
        for ring in (hsm_vault.keyring, fresh):
            with pytest.raises(DecryptionError):
                ring.open_data_key(target, key_id, wrapped)
    finally:
        fresh.close()


def test_rotation_rewraps_every_data_key_in_the_token(hsm_vault: Vault) -> None:
    """Rotating makes a new KEK in the token, re-wraps every data key under it, retires
    the old version; every customer still reads."""
    ids = _create_all(hsm_vault)
    report = hsm_vault.rotate_keys(CTX, retire_old=True)
    assert (2, len(ids), [1]) == (report.new_version, report.rewrapped, report.retired)
    assert [2] == hsm_vault.keyring.versions()
    with hsm_vault.db.transaction() as s:
        status = hsm_vault.keys.status(s)
    assert ({2: len(ids)}, 0) == (status.data_keys_by_kek_version, status.pending_rewrap)
    with hsm_vault.unit(CTX) as s:
        names = [hsm_vault.customers.get(s, cid).first_name for cid in ids]
    assert [p.first_name for p in PEOPLE] == names


def test_the_pin_reaches_no_log_line_or_repr(hsm_vault: Vault, hsm_token: HsmToken) -> None:
    """Create, search, rotate and erase log nothing of the token's PIN; neither do the
    reprs of the vault, its keyring and provider."""
    with structlog.testing.capture_logs() as logs:
        ids = _create_all(hsm_vault)
        with hsm_vault.unit(CTX) as s:
            hsm_vault.customers.find_by_email(s, PEOPLE[2].email or "")
        hsm_vault.rotate_keys(CTX)
        with hsm_vault.unit(CTX) as s:
            hsm_vault.erasure.erase(s, ids[2])
    shown = (
        repr(logs) + repr(hsm_vault) + repr(hsm_vault.keyring) + repr(hsm_vault.keyring.provider)
    )
    assert hsm_token.pin not in shown
    assert hsm_token.label in repr(hsm_vault.keyring.provider)
