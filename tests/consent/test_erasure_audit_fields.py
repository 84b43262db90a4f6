"""The customer.erase audit entry and the erasure receipt agree, on SQLite and PostgreSQL:
every field the receipt names as erased (PII fields and PII custom attributes that held a
value) is marked ``erased`` in the entry, beside every PII field as before; a legal hold
erases nothing (it refuses the whole erasure, audited as a refusal: no field is kept
back while others go); no entry holds a value."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from consent import Privacy
from consent.receipts import ReceiptKind, verify_receipt
from tests.conftest import CTX
from tests.consent.test_dsr import OFFICER, _audit, _verified
from vault.crypto.signing import ed25519_verify
from vault.customers import CustomerInput
from vault.errors import LegalHoldActive
from vault.runtime import Vault
from vault.types import PiiField

EMAIL = "erase.fields.canary@example.com"
NICKNAME = "\u5c0f\u7ea2"  # Xiaohong, in Chinese
NAME = "Chidinma"


def _customer(vault: Vault) -> uuid.UUID:
    values: dict[str, Any] = {
        "email": EMAIL, "first_name": NAME,
        "attributes": {"nickname": NICKNAME, "favourite_colour": "teal"},
    }  # fmt: skip
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(**values)).id


def test_the_entry_marks_every_field_the_receipt_names_as_erased(vault: Vault) -> None:
    """Email, first name and the PII attribute nickname held a value: the receipt names
    those three; the entry marks them erased, with the other PII fields as before, and no
    clear attribute (favourite_colour is not PII, the receipt does not name it either)."""
    cid = _customer(vault)
    rid = _verified(vault, cid, "erasure")
    with vault.unit(OFFICER) as s:
        outcome = Privacy.of(vault).desk.process(s, rid)
    assert outcome.receipt is not None
    body = verify_receipt(
        outcome.receipt, ed25519_verify, trusted_key=vault.audit.public_vkey,
        kind=ReceiptKind.ERASURE,
    )  # fmt: skip

    [entry] = [e for e in _audit(vault, "customer.erase") if e["customer"] == str(cid)]
    expected = {**{f.value: "erased" for f in PiiField}, "attr:nickname": "erased"}
    assert expected == entry["fields"]
    assert body["erased"]["piiFields"] == ["email", "first_name", "attr:nickname"]
    assert dict.fromkeys(body["erased"]["piiFields"], "erased") == {
        n: entry["fields"][n] for n in body["erased"]["piiFields"]
    }
    dumped = json.dumps(_audit(vault), ensure_ascii=False)
    assert [v for v in (EMAIL, NICKNAME, NAME, "teal") if v in dumped] == []


def test_an_erasure_already_done_marks_the_pii_fields_as_before(vault: Vault) -> None:
    """Erased again (idempotent): the second entry says already_erased and marks the six
    PII fields erased, as it always did (the record holds no attribute any more)."""
    cid = _customer(vault)
    with vault.unit(OFFICER) as s:
        vault.erasure.erase(s, cid)
    with vault.unit(OFFICER) as s:
        vault.erasure.erase(s, cid)
    first, again = [e for e in _audit(vault, "customer.erase") if e["customer"] == str(cid)]
    assert first["fields"]["attr:nickname"] == "erased"
    assert {f.value: "erased" for f in PiiField} == again["fields"]
    assert True is again["detail"]["already_erased"]


def test_a_legal_hold_keeps_everything_and_no_field_is_marked_erased(vault: Vault) -> None:
    """Holds are per customer: with one active, processing the erasure raises LEGAL_HOLD,
    no customer.erase entry is written (so no field is claimed erased), the refusal is
    an access.denied entry for the customer, and the record still reads in full."""
    cid = _customer(vault)
    rid = _verified(vault, cid, "erasure")
    with vault.unit(OFFICER) as s:
        Privacy.of(vault).desk.place_hold(s, cid, "litigation 2026-17")
    with pytest.raises(LegalHoldActive), vault.unit(OFFICER) as s:
        Privacy.of(vault).desk.process(s, rid)

    assert [e for e in _audit(vault, "customer.erase") if e["customer"] == str(cid)] == []
    denied = [e for e in _audit(vault, "access.denied") if e["customer"] == str(cid)]
    assert len(denied) == 1
    with vault.unit(CTX) as s:
        seen = vault.customers.get(s, cid)
    assert (seen.email, seen.first_name) == (EMAIL, NAME)
