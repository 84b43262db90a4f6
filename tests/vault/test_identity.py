"""Identity resolution in the customer service: create and update refuse a customer on
file (DUPLICATE), lookups that must name one customer answer AMBIGUOUS, duplicate
candidates pair customers that may be one person; no value ever reaches an error or a
log line."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update
from structlog.testing import capture_logs

from tests.conftest import CTX, FrozenClock
from vault.authorization.context import AccessContext, Actor
from vault.customers import (
    CandidatePair,
    CustomerInput,
    CustomerPatch,
    DuplicateReason,
    ExternalId,
    only_one,
)
from vault.errors import AmbiguousMatch, DuplicateCustomer
from vault.runtime import Vault
from vault.storage.models import CustomerRow

EMAIL = "Parisa.Ahmadi@Example.com"
PHONE = "+44 20 7946 0958"
NAMES = [
    ("\u067e\u0631\u06cc\u0633\u0627", "\u0627\u062d\u0645\u062f\u06cc"),  # Persian
    ("\u0e2a\u0e21\u0e0a\u0e32\u0e22", "\u0e43\u0e08\u0e14\u0e35"),  # Thai
    ("\u4f1f", "\u738b"),  # Chinese
    ("Ren\u00e9e", "Fran\u00e7ois"),  # accented Latin
]


@pytest.fixture(autouse=True)
def _ticking(clock: FrozenClock) -> None:
    """Each record created a second after the one before: "older" is well defined."""
    _CLOCKS[:] = [clock]


_CLOCKS: list[FrozenClock] = []


def _create(vault: Vault, data: CustomerInput, *, check: bool = True) -> uuid.UUID:
    _CLOCKS[0].advance(seconds=1)
    with vault.unit(CTX) as s:
        return vault.customers.create(s, data, check_duplicates=check).id


def _count(vault: Vault) -> int:
    with vault.db.transaction() as s:
        return len(s.scalars(select(CustomerRow.id)).all())


@pytest.mark.parametrize(
    ("field", "given"),
    [
        ("email", CustomerInput(email="  parisa.ahmadi@EXAMPLE.com ")),
        ("phone", CustomerInput(phone="+442079460958")),
        ("externalIds", CustomerInput(external_ids=[ExternalId("shop", "17")])),
    ],
)
def test_create_refuses_a_customer_on_file(vault: Vault, field: str, given: CustomerInput) -> None:
    """The same email (in another case and spacing), phone (in another format) or external
    id: DUPLICATE naming the field and the existing id; nothing is written."""
    existing = _create(
        vault, CustomerInput(email=EMAIL, phone=PHONE, external_ids=[ExternalId("shop", "17")])
    )
    with pytest.raises(DuplicateCustomer) as refused, vault.unit(CTX) as s:
        vault.customers.create(s, given)
    assert (field, existing) == (refused.value.field, refused.value.existing_id)
    assert refused.value.code == "DUPLICATE"
    assert {"field": field, "existingId": str(existing)} == refused.value.extensions()
    assert _count(vault) == 1


def test_update_refuses_another_customers_contact(vault: Vault) -> None:
    """Changing an email to one another customer has is DUPLICATE; keeping one's own
    email (in another case) is not."""
    first = _create(vault, CustomerInput(email=EMAIL))
    second = _create(vault, CustomerInput(email="other@example.com"))
    with pytest.raises(DuplicateCustomer) as refused, vault.unit(CTX) as s:
        vault.customers.update(s, second, CustomerPatch(email=EMAIL.upper()))
    assert (refused.value.field, refused.value.existing_id) == ("email", first)
    with vault.unit(CTX) as s:
        kept = vault.customers.update(s, first, CustomerPatch(email=EMAIL.lower()))
    assert kept.email == EMAIL.lower()


def test_merged_and_erased_customers_are_nobody(vault: Vault) -> None:
    """After a merge the redirect holds no contact: a new customer with the merged
    record's email duplicates the kept one only; candidates list no merged record."""
    keep = _create(vault, CustomerInput(email=EMAIL))
    gone = _create(vault, CustomerInput(email=EMAIL), check=False)
    with vault.unit(CTX) as s:
        vault.customers.merge(s, keep, gone)
    with pytest.raises(DuplicateCustomer) as refused, vault.unit(CTX) as s:
        vault.customers.create(s, CustomerInput(email=EMAIL))
    assert keep == refused.value.existing_id
    with vault.unit(CTX) as s:
        assert vault.customers.duplicates.candidates(s) == []


def test_the_existing_id_is_shown_only_to_who_may_read_it(vault: Vault) -> None:
    """A data subject learns no other customer's id; a consent-based purpose none of a
    customer who did not consent; the operator sees it."""
    mine = _create(vault, CustomerInput(email="me@example.com"))
    other = _create(vault, CustomerInput(email=EMAIL))
    subject = AccessContext(Actor("subject-1", "data_subject", mine), "self")
    marketing = AccessContext(Actor("mk-1", "marketing"), "marketing_email")
    shown = vault.customers.identities.shown
    with vault.unit(subject) as s:
        assert (shown(s, mine), shown(s, other)) == (mine, None)
    with vault.unit(marketing) as s:
        assert shown(s, other) is None
    with vault.unit(CTX) as s:
        assert shown(s, other) == other


def test_a_lookup_that_must_name_one_customer_is_ambiguous_when_several_match(
    vault: Vault,
) -> None:
    """Two records with one email (written before detection): AMBIGUOUS with both ids,
    oldest first; one record is returned as it is; none is None."""
    a = _create(vault, CustomerInput(email=EMAIL), check=False)
    b = _create(vault, CustomerInput(email=EMAIL.lower()), check=False)
    with vault.unit(CTX) as s:
        found = vault.customers.find_by_email(s, EMAIL)
        with pytest.raises(AmbiguousMatch) as ambiguous:
            only_one(found, "email")
        alone = only_one(vault.customers.find_by_email(s, "nobody@example.com"), "email")
    assert [a, b] == ambiguous.value.ids
    assert {"field": "email", "ids": [str(a), str(b)]} == ambiguous.value.extensions()
    assert alone is None


@pytest.mark.parametrize(("first", "last"), NAMES)
def test_candidates_pair_the_same_name_and_birth_date_in_any_script(
    vault: Vault, first: str, last: str
) -> None:
    """The same full name (case and spacing aside) and birth date make a candidate pair,
    and the names still round-trip exactly; another birth date does not."""
    a = _create(vault, CustomerInput(first_name=first, last_name=last, birth_date="1990-02-03"))
    b = _create(
        vault,
        CustomerInput(first_name=f" {first.upper()}", last_name=last, birth_date="1990-02-03"),
    )
    _create(vault, CustomerInput(first_name=first, last_name=last, birth_date="1991-02-03"))
    with vault.unit(CTX) as s:
        pairs = vault.customers.duplicates.candidates(s)
        got = vault.customers.get(s, b)
    assert [CandidatePair(a, b, (DuplicateReason.NAME_AND_BIRTH_DATE,))] == pairs
    assert (f" {first.upper()}", last) == (got.first_name, got.last_name)


def test_candidates_name_every_reason_and_merge_away(vault: Vault) -> None:
    """A pair sharing email and phone lists both reasons; merging it empties the list."""
    a = _create(vault, CustomerInput(email=EMAIL, phone=PHONE))
    b = _create(vault, CustomerInput(email=EMAIL.lower(), phone="+442079460958"), check=False)
    _create(vault, CustomerInput(email="else@example.com", phone="+4915112345678"))
    with vault.unit(CTX) as s:
        pairs = vault.customers.duplicates.candidates(s)
    assert [CandidatePair(a, b, (DuplicateReason.EMAIL, DuplicateReason.PHONE))] == pairs
    with vault.unit(CTX) as s:
        vault.customers.merge(s, pairs[0].keep_id, pairs[0].duplicate_id)
    with vault.unit(CTX) as s:
        assert vault.customers.duplicates.candidates(s) == []


def test_reindex_backfills_the_match_key(vault: Vault) -> None:
    """Records without a match key (written before migration 0017) get one from
    reindex, without moving their version; then they pair up."""
    a = _create(vault, CustomerInput(first_name="Ana", last_name="Silva", birth_date="1980-01-01"))
    b = _create(vault, CustomerInput(first_name="ana", last_name="SILVA", birth_date="1980-01-01"))
    _create(vault, CustomerInput(first_name="Ana"))
    with vault.db.transaction() as s:
        s.execute(update(CustomerRow).values(match_bidx=None))
    with vault.unit(CTX) as s:
        assert vault.customers.duplicates.candidates(s) == []
    with vault.unit(CTX) as s:
        assert vault.customers.duplicates.reindex(s, batch=1) == 2
    with vault.unit(CTX) as s:
        pairs = vault.customers.duplicates.candidates(s)
        versions = [vault.customers.get(s, c).version for c in (a, b)]
    assert [CandidatePair(a, b, (DuplicateReason.NAME_AND_BIRTH_DATE,))] == pairs
    assert versions == [1, 1]


def test_no_value_reaches_an_error_or_a_log_line(vault: Vault) -> None:
    """DUPLICATE and AMBIGUOUS messages, and everything logged on the way, name fields
    and ids, never the email or phone."""
    _create(vault, CustomerInput(email=EMAIL, phone=PHONE))
    _create(vault, CustomerInput(email=EMAIL), check=False)
    messages = []
    with capture_logs() as logs:
        for data in (CustomerInput(email=EMAIL), CustomerInput(phone=PHONE)):
            with pytest.raises(DuplicateCustomer) as refused, vault.unit(CTX) as s:
                vault.customers.create(s, data)
            messages.append(str(refused.value))
        with vault.unit(CTX) as s, pytest.raises(AmbiguousMatch) as ambiguous:
            only_one(vault.customers.find_by_email(s, EMAIL), "email")
        messages.append(str(ambiguous.value))
    text = " ".join(messages) + repr(logs)
    for value in (EMAIL, EMAIL.lower(), "parisa", "7946", "+442079460958"):
        assert value not in text.lower()
