"""Addresses in parts: stored encrypted as one field, shown whole, masked to city + country."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent.dsr.export import _profile
from tests.conftest import CTX
from vault.customers import UNSET, Customer, CustomerInput, CustomerPatch, ExternalId
from vault.customers.addresses import PostalAddress, address_text, parse_address
from vault.errors import InvalidInput
from vault.importing import ImportReport, RowError, import_customers
from vault.runtime import Vault

ADDRESSES = [
    PostalAddress(street="خیابان ولیعصر، پلاک ۱۲", city="تهران", country="IR"),
    PostalAddress(street="๙๙ ถนนสุขุมวิท", city="กรุงเทพมหานคร", postal_code="10110", country="TH"),
    PostalAddress(street="朝阳区建国路88号", city="北京市", region="北京", country="CN"),
    PostalAddress(street="ul. Floriańska 7\nm. 3", city="Kraków", postal_code="31-019",
                  country="PL"),
]  # fmt: skip


def _create(vault: Vault, address: str | PostalAddress | None) -> Customer:
    with vault.unit(CTX) as s:
        return vault.customers.create(s, CustomerInput(first_name="Ana", address=address))


def _get(vault: Vault, customer: Customer) -> Customer:
    with vault.unit(CTX) as s:
        return vault.customers.get(s, customer.id)


@pytest.mark.parametrize("address", ADDRESSES, ids=["fa", "th", "zh", "pl"])
def test_an_address_in_parts_round_trips_exactly(vault: Vault, address: PostalAddress) -> None:
    """Every part in any script comes back exactly as given, and as one line in clear."""
    stored = _get(vault, _create(vault, address))
    assert address == stored.postal_address
    parts = [address.street, address.city, address.region, address.postal_code, address.country]
    expected = ", ".join(p.replace("\n", ", ") for p in parts if p)
    assert expected == stored.address


def test_the_country_code_is_upper_cased_and_checked(vault: Vault) -> None:
    """A lower-case code is stored upper-case; a country name is refused, naming the part."""
    stored = _get(vault, _create(vault, PostalAddress(city="Lyon", country="fr")))
    assert stored.postal_address == PostalAddress(city="Lyon", country="FR")
    with pytest.raises(InvalidInput) as caught:
        _create(vault, PostalAddress(city="Lyon", country="France"))
    assert (caught.value.field, "France" in str(caught.value)) == ("address.country", False)


def test_an_address_without_any_part_is_refused(vault: Vault) -> None:
    """Blank parts do not make an address: the caller is told to give one."""
    with pytest.raises(InvalidInput) as caught:
        _create(vault, PostalAddress(street="  ", city=""))
    assert caught.value.field == "address"


def test_a_free_text_address_stays_free_text(vault: Vault) -> None:
    """A string is kept as given; it has no parts."""
    stored = _get(vault, _create(vault, "Flat 3\nRose Court\nLondon"))
    assert (stored.address, stored.postal_address) == ("Flat 3\nRose Court\nLondon", None)


def test_an_update_switches_between_free_text_parts_and_nothing(vault: Vault) -> None:
    """A patch may replace free text with parts, and clear the address."""
    made = _create(vault, "somewhere")
    with vault.unit(CTX) as s:
        parts = vault.customers.update(
            s, made.id, CustomerPatch(address=PostalAddress(city="Berlin", country="DE"))
        )
    with vault.unit(CTX) as s:
        cleared = vault.customers.update(s, made.id, CustomerPatch(address=None))
    with vault.unit(CTX) as s:
        kept = vault.customers.update(s, made.id, CustomerPatch(address=UNSET, tier="gold"))
    berlin = PostalAddress(city="Berlin", country="DE")
    assert (parts.address, parts.postal_address) == ("Berlin, DE", berlin)
    assert (cleared.address, cleared.postal_address) == (None, None)
    assert (kept.address, kept.tier) == (None, "gold")


def test_stored_text_and_parsing() -> None:
    """Parts are stored as a versioned JSON object; anything else reads as free text."""
    address = PostalAddress(city="Göteborg", country="SE")
    text = address_text(address)
    assert text == '{"v":1,"city":"Göteborg","country":"SE"}'
    assert parse_address(text) == address
    assert parse_address("Göteborg") is None
    assert parse_address('{"v":2,"city":"x"}') is None
    assert parse_address('{"v":1, not json') is None


def test_an_address_repr_shows_no_part() -> None:
    """Logs and exceptions never see an address through its repr."""
    assert repr(PostalAddress(street="Baker Street 221B", city="London")) == "PostalAddress()"


def test_the_export_carries_the_parts(vault: Vault) -> None:
    """A data subject's export has the one-line address and its parts."""
    stored = _get(vault, _create(vault, ADDRESSES[1]))
    profile = _profile(stored)
    assert profile["address"] == "๙๙ ถนนสุขุมวิท, กรุงเทพมหานคร, 10110, TH"
    assert profile["postal_address"] == {
        "street": "๙๙ ถนนสุขุมวิท", "city": "กรุงเทพมหานคร", "postal_code": "10110",
        "country": "TH",
    }  # fmt: skip


CSV = (
    "email,first_name,address,address_street,address_city,address_postal_code,"
    "address_country,source,external_id\n"
    "a@example.com,Ana,,Rua Augusta 10,São Paulo,01305-000,br,crm,1\n"
    "b@example.com,Bo,Somewhere 1,,,,,crm,2\n"
    "c@example.com,Cy,Somewhere 2,Main St 1,,,,crm,3\n"
    "d@example.com,Di,,,Lyon,,France,crm,4\n"
)


def test_import_takes_address_parts_and_reports_bad_ones(vault: Vault, tmp_path: Path) -> None:
    """address_* columns make an address in parts; free text and parts together, or a bad
    country code, reject the row with its line number."""
    path = tmp_path / "customers.csv"
    path.write_text(CSV, encoding="utf-8")
    report = import_customers(vault, path)
    assert report == ImportReport(
        read=4,
        accepted=2,
        duplicates=0,
        rejected=[
            RowError(4, "address: give the address as free text or in parts, not both"),
            RowError(
                5, "address_country: is not an ISO 3166-1 alpha-2 country code (TH, DE, US, ...)"
            ),
        ],
    )
    with vault.unit(CTX) as s:
        parts = vault.customers.find_by_external_id(s, ExternalId("crm", "1"))
        free = vault.customers.find_by_external_id(s, ExternalId("crm", "2"))
    assert parts.postal_address == PostalAddress(
        street="Rua Augusta 10", city="São Paulo", postal_code="01305-000", country="BR"
    )
    assert (free.address, free.postal_address) == ("Somewhere 1", None)
