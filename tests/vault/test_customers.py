"""Customers: create, read, update, find by email/phone, merge; PII never leaks."""

from __future__ import annotations

import pytest

from tests.conftest import CTX, FrozenClock
from vault.customers import CustomerInput, CustomerPatch, ExternalId
from vault.errors import Conflict, CustomerNotFound, InvalidInput
from vault.runtime import Vault
from vault.types import CustomerStatus

NAMES = [
    ("Zahra", "\u0645\u062d\u0645\u062f\u06cc"),  # Persian surname
    ("\u0e2a\u0e21\u0e0a\u0e32\u0e22", "\u0e43\u0e08\u0e14\u0e35"),  # Thai
    ("\u4f1f", "\u738b"),  # Chinese
    ("Ren\u00e9e", "Fran\u00e7ois-L\u00f8kke"),  # accented Latin
    ("Zo\u0308e", "A\u030angstr\u00f6m"),  # combining marks kept as given
]


def test_create_and_get_round_trips_every_field(vault: Vault) -> None:
    """Every PII field and clear attribute comes back exactly as stored."""
    data = CustomerInput(
        email="Ada.Lovelace@Example.com",
        phone="+44 20 7946 0958",
        first_name="Ada",
        last_name="Lovelace",
        birth_date="1985-12-10",
        address="12 St James's Square, London",
        locale="en-GB",
        tier="gold",
        tags=["vip", "newsletter"],
        attributes={"favourite_colour": "teal", "score": 7},
        external_ids=[ExternalId("shopify", "8812")],
    )
    with vault.unit(CTX) as s:
        created = vault.customers.create(s, data)
    with vault.unit(CTX) as s:
        got = vault.customers.get(s, created.id)
    assert got == created
    assert (got.email, got.phone) == ("Ada.Lovelace@Example.com", "+442079460958")
    assert (got.first_name, got.last_name, got.birth_date) == (
        "Ada",
        "Lovelace",
        "1985-12-10",
    )
    assert got.address == "12 St James's Square, London"
    assert (got.locale, got.tier, got.tags) == ("en-GB", "gold", ["vip", "newsletter"])
    assert got.attributes == {"favourite_colour": "teal", "score": 7}
    assert got.external_ids == [ExternalId("shopify", "8812")]
    assert got.status is CustomerStatus.ACTIVE


def test_external_ids_come_back_sorted_by_source_then_id(vault: Vault) -> None:
    """A customer read by id lists every external id, ordered by source then id, whatever
    the order they were given in; one without any has an empty list."""
    given = [ExternalId("shop", "9"), ExternalId("crm", "b"), ExternalId("crm", "aé伟")]
    with vault.unit(CTX) as s:
        created = vault.customers.create(s, CustomerInput(external_ids=given))
        bare = vault.customers.create(s, CustomerInput(first_name="Ana"))
    with vault.unit(CTX) as s:
        got, none = vault.customers.get(s, created.id), vault.customers.get(s, bare.id)
    expected = [ExternalId("crm", "aé伟"), ExternalId("crm", "b"), ExternalId("shop", "9")]
    assert expected == got.external_ids
    assert not none.external_ids


@pytest.mark.parametrize(("first", "last"), NAMES)
def test_names_in_any_script_round_trip_exactly(vault: Vault, first: str, last: str) -> None:
    """Persian, Thai, Chinese and accented Latin names come back byte for byte."""
    with vault.unit(CTX) as s:
        created = vault.customers.create(s, CustomerInput(first_name=first, last_name=last))
    with vault.unit(CTX) as s:
        got = vault.customers.get(s, created.id)
    assert (got.first_name, got.last_name) == (first, last)
    assert got.first_name is not None
    assert got.first_name.encode() == first.encode()


def test_find_by_email_is_case_and_width_insensitive(vault: Vault) -> None:
    """Lookup normalises with NFKC and case folding; other customers are not returned."""
    with vault.unit(CTX) as s:
        ada = vault.customers.create(s, CustomerInput(email="Ada@Example.com"))
        vault.customers.create(s, CustomerInput(email="grace@example.com"))
    with vault.unit(CTX) as s:
        found = vault.customers.find_by_email(s, "  ADA@example.COM ")
        fullwidth = vault.customers.find_by_email(s, "\uff41da@example.com")
        nobody = vault.customers.find_by_email(s, "nobody@example.com")
    assert [c.id for c in found] == [ada.id]
    assert [c.id for c in fullwidth] == [ada.id]
    assert nobody == []


def test_find_by_phone_uses_e164(vault: Vault) -> None:
    """Different spellings of one number find the same customer."""
    with vault.unit(CTX) as s:
        c = vault.customers.create(s, CustomerInput(phone="+1 (415) 555-0132"))
    with vault.unit(CTX) as s:
        assert [x.id for x in vault.customers.find_by_phone(s, "+14155550132")] == [c.id]
        assert vault.customers.find_by_phone(s, "+14155550133") == []


def test_blind_index_collisions_are_rechecked_after_decryption(vault: Vault) -> None:
    """Customers sharing a blind index value are told apart by their decrypted email."""
    bidx = vault.keyring.blind_indexer
    target = "collide-0@example.com"
    wanted = bidx.index("email", target)
    partner = next(
        f"collide-{i}@example.com"
        for i in range(1, 10_000_000)
        if bidx.index("email", f"collide-{i}@example.com") == wanted
    )
    with vault.unit(CTX) as s:
        a = vault.customers.create(s, CustomerInput(email=target))
        b = vault.customers.create(s, CustomerInput(email=partner))
    with vault.unit(CTX) as s:
        assert [c.id for c in vault.customers.find_by_email(s, target)] == [a.id]
        assert [c.id for c in vault.customers.find_by_email(s, partner)] == [b.id]


def test_update_sets_clears_and_leaves_fields(vault: Vault, clock: FrozenClock) -> None:
    """UNSET leaves a field, None clears it, a value replaces it and re-indexes email."""
    with vault.unit(CTX) as s:
        c = vault.customers.create(
            s, CustomerInput(email="old@example.com", phone="+33612345678", first_name="Jo")
        )
    clock.advance(minutes=5)
    with vault.unit(CTX) as s:
        updated = vault.customers.update(
            s, c.id, CustomerPatch(email="new@example.com", phone=None, tags=["b", "a", "b"])
        )
    assert (updated.email, updated.phone, updated.first_name) == ("new@example.com", None, "Jo")
    assert updated.tags == ["b", "a"]
    assert updated.updated_at == clock.now
    with vault.unit(CTX) as s:
        assert vault.customers.find_by_email(s, "old@example.com") == []
        assert [x.id for x in vault.customers.find_by_email(s, "new@example.com")] == [c.id]
        assert vault.customers.find_by_phone(s, "+33612345678") == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (CustomerInput(email="not-an-email"), "email"),
        (CustomerInput(phone="12"), "phone"),
        (CustomerInput(birth_date="1990-13-01"), "birth_date"),
        (CustomerInput(birth_date="2999-01-01"), "birth_date"),
        (CustomerInput(first_name="   "), "first_name"),
        (CustomerInput(locale="not a locale"), "locale"),
        (CustomerInput(attributes={"x": float("nan")}), "attributes"),
    ],
)
def test_bad_input_names_the_field_and_never_the_value(
    vault: Vault, data: CustomerInput, field: str
) -> None:
    """Validation errors say which field broke which rule, without echoing the value."""
    with pytest.raises(InvalidInput) as info, vault.unit(CTX) as s:
        vault.customers.create(s, data)
    assert info.value.field == field
    for value in ("not-an-email", "1990-13-01", "2999-01-01", "not a locale"):
        assert value not in str(info.value)


def test_rejected_create_writes_nothing(vault: Vault) -> None:
    """A create that fails validation leaves no row, no key and no external id behind."""
    from sqlalchemy import func, select  # noqa: PLC0415

    from vault.storage.models import CustomerExternalIdRow, CustomerRow, DataKeyRow  # noqa: PLC0415

    with pytest.raises(InvalidInput), vault.unit(CTX) as s:
        vault.customers.create(
            s, CustomerInput(first_name="Ok", external_ids=[ExternalId("crm", "1")], email="bad")
        )
    with vault.unit(CTX) as s:
        counts = [
            s.scalar(select(func.count()).select_from(t))
            for t in (CustomerRow, DataKeyRow, CustomerExternalIdRow)
        ]
    assert counts == [0, 0, 0]


def test_external_id_belongs_to_one_customer(vault: Vault) -> None:
    """A second customer cannot claim an external id that is already linked."""
    with vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(external_ids=[ExternalId("crm", "42")]))
    with pytest.raises(Conflict), vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(external_ids=[ExternalId("crm", "42")]))
    with vault.unit(CTX) as s:
        found = vault.customers.find_by_external_id(s, ExternalId("crm", "42"))
    assert found.external_ids == [ExternalId("crm", "42")]


def test_unknown_customer_raises_not_found(vault: Vault) -> None:
    """Reading an id that does not exist raises CustomerNotFound."""
    import uuid  # noqa: PLC0415

    with pytest.raises(CustomerNotFound), vault.unit(CTX) as s:
        vault.customers.get(s, uuid.uuid4())


def test_repr_shows_ids_only(vault: Vault) -> None:
    """Neither a customer nor its input shows a PII value in its repr."""
    data = CustomerInput(
        email="secret@example.com", first_name="Secretname", phone="+4915112345678"
    )
    with vault.unit(CTX) as s:
        c = vault.customers.create(s, data)
    for text in (repr(c), repr(data), str(c)):
        assert "secret" not in text.lower()
        assert "4915112345678" not in text
    assert str(c.id) in repr(c)
