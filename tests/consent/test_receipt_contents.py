"""What receipts state, on SQLite and PostgreSQL: the notice version a consent was given
under (given, or the purpose's current one), the configured language and jurisdiction,
and, for an erasure, the fields the record actually held, by name, never a value."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from consent import ConsentChange, Privacy
from consent.receipts import ReceiptKind, verify_receipt
from policies.purposes import PurposeInfo, purpose_info
from tests.conftest import CTX, FrozenClock
from tests.consent.test_dsr import OFFICER, _verified
from vault.config import ConfigError, Settings
from vault.crypto import Keyring
from vault.crypto.signing import Ed25519Signer, ed25519_verify
from vault.customers import CustomerInput
from vault.errors import InvalidInput
from vault.runtime import Vault
from vault.storage.db import Database

CONTROLLER = "\u0634\u0631\u06a9\u062a \u0646\u0645\u0648\u0646\u0647"  # a company, in Persian
NOTICE = "\u0e1b\u0e23\u0e30\u0e01\u0e32\u0e28-2"  # notice-2, in Thai
NICKNAME = "\u5c0f\u660e"  # Xiaoming, in Chinese
EMAIL = "receipt.canary@example.com"


@pytest.fixture
def local_vault(
    settings: Settings,
    database: Database,
    session_keyring: Keyring,
    audit_signer: Ed25519Signer,
    clock: FrozenClock,
) -> Iterator[Vault]:
    """A vault whose receipts are in Persian, under German law, from a Persian controller."""
    configured = dataclasses.replace(
        settings, receipt_language="fa", receipt_jurisdiction="DE", controller=CONTROLLER
    )
    v = Vault.open(
        configured, keyring=session_keyring, database=database, signer=audit_signer, clock=clock
    )
    yield v
    v.close()


def _customer(vault: Vault, **values: object) -> uuid.UUID:
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(**values)).id  # type: ignore[arg-type]


def test_a_change_without_a_notice_version_takes_the_purposes_current_one(vault: Vault) -> None:
    """No version given: the registry's; one given (in Thai): that one, exactly."""
    ledger = Privacy.of(vault).ledger
    cid = _customer(vault, first_name="Noor")
    with vault.unit(CTX) as s:
        by_default = ledger.grant(s, cid, "marketing_email")
        given = ledger.record(
            s, cid, ConsentChange("marketing_sms", "granted", notice_version=NOTICE)
        )
    current = purpose_info("marketing_email").notice_version
    assert (by_default.notice_version, by_default.receipt["receipt"]["noticeVersion"]) == (
        current, current,
    )  # fmt: skip
    assert (given.notice_version, given.receipt["receipt"]["noticeVersion"]) == (NOTICE, NOTICE)
    assert current is not None


def test_no_notice_version_anywhere_is_refused_naming_the_purpose(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A purpose whose registry entry has no notice version needs one given: the change
    is refused (BAD_USER_INPUT) and nothing is written."""
    unversioned = dataclasses.replace(purpose_info("personalization"), notice_version=None)

    def lookup(name: str) -> PurposeInfo:
        return unversioned if name == "personalization" else purpose_info(name)

    monkeypatch.setattr("consent.ledger.purpose_info", lookup)
    ledger = Privacy.of(vault).ledger
    cid = _customer(vault, first_name="Noor")
    with pytest.raises(InvalidInput) as caught, vault.unit(CTX) as s:
        ledger.grant(s, cid, "personalization")
    assert (caught.value.code, str(caught.value)) == (
        "BAD_USER_INPUT",
        "noticeVersion: is required: purpose personalization has no current notice version "
        "in purposes.toml",
    )
    with vault.unit(CTX) as s:
        assert ledger.history(s, cid) == []
        recorded = ledger.record(
            s, cid, ConsentChange("personalization", "granted", notice_version="v7")
        )
    assert recorded.notice_version == "v7"


def test_consent_receipts_carry_the_configured_language_and_jurisdiction(
    local_vault: Vault,
) -> None:
    """language and jurisdiction come from the settings; Persian and Thai text verifies."""
    ledger = Privacy.of(local_vault).ledger
    cid = _customer(local_vault, first_name="Noor")
    with local_vault.unit(CTX) as s:
        record = ledger.record(
            s, cid, ConsentChange("marketing_email", "granted", notice_version=NOTICE)
        )
        stored = ledger.receipt(s, record.id)
    body = verify_receipt(
        json.loads(json.dumps(stored, ensure_ascii=False)), ed25519_verify,
        trusted_key=local_vault.audit.public_vkey, kind=ReceiptKind.CONSENT,
    )  # fmt: skip
    assert (body["language"], body["jurisdiction"], body["noticeVersion"]) == ("fa", "DE", NOTICE)
    assert body["piiControllers"][0]["piiController"] == CONTROLLER


def test_the_erasure_receipt_lists_the_fields_the_record_held_by_name(local_vault: Vault) -> None:
    """A record holding an e-mail, a first name and one PII attribute: exactly those three
    names (no value) on a receipt in the configured language and jurisdiction."""
    cid = _customer(
        local_vault, email=EMAIL, first_name=NICKNAME,
        attributes={"nickname": NICKNAME, "shoe_size": 42},
    )  # fmt: skip
    rid = _verified(local_vault, cid, "erasure")
    with local_vault.unit(OFFICER) as s:
        outcome = Privacy.of(local_vault).desk.process(s, rid)
    assert outcome.receipt is not None
    body = verify_receipt(
        outcome.receipt, ed25519_verify, trusted_key=local_vault.audit.public_vkey,
        kind=ReceiptKind.ERASURE,
    )  # fmt: skip
    assert body["erased"]["piiFields"] == ["email", "first_name", "attr:nickname"]
    assert (body["language"], body["jurisdiction"]) == ("fa", "DE")
    text = json.dumps(outcome.receipt, ensure_ascii=False)
    assert [v for v in (EMAIL, NICKNAME) if v in text] == []


def test_an_erasure_of_a_record_without_pii_lists_no_field(vault: Vault) -> None:
    """Nothing held, nothing claimed: the list is empty."""
    cid = _customer(vault, locale="th-TH")
    rid = _verified(vault, cid, "erasure")
    with vault.unit(OFFICER) as s:
        outcome = Privacy.of(vault).desk.process(s, rid)
    assert outcome.receipt is not None
    assert outcome.receipt["receipt"]["erased"]["piiFields"] == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CVAULT_RECEIPT_LANGUAGE", "english please"),
        ("CVAULT_RECEIPT_LANGUAGE", "e"),
        ("CVAULT_RECEIPT_JURISDICTION", "de"),
        ("CVAULT_RECEIPT_JURISDICTION", "Europe"),
    ],
)
def test_a_bad_receipt_setting_is_a_configuration_error(
    tmp_path: Path, name: str, value: str
) -> None:
    """The setting is named; nothing starts with a receipt that would state nonsense."""
    with pytest.raises(ConfigError, match=f"Config '{name}'"):
        Settings.from_env({"CVAULT_DATA_DIR": str(tmp_path), name: value})


def test_receipt_settings_default_to_english_and_the_eu(tmp_path: Path) -> None:
    """Unset: en / EU, as before; set: taken as given."""
    default = Settings.from_env({"CVAULT_DATA_DIR": str(tmp_path)})
    chosen = Settings.from_env({
        "CVAULT_DATA_DIR": str(tmp_path), "CVAULT_RECEIPT_LANGUAGE": "zh-Hans",
        "CVAULT_RECEIPT_JURISDICTION": "TH",
    })  # fmt: skip
    assert (default.receipt_language, default.receipt_jurisdiction) == ("en", "EU")
    assert (chosen.receipt_language, chosen.receipt_jurisdiction) == ("zh-Hans", "TH")
