"""Masks for ``masked`` fields: the documented rules, counted in characters in every script."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import Resolution, Resource
from policies.masking import (
    MASK,
    apply,
    characters,
    mask,
    mask_address,
    mask_birth_date,
    mask_email,
    mask_name,
    mask_phone,
    mask_postal_address,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jane.doe@example.com", "j***@e***.com"),
        ("Jane.Doe@Mail.Example.co.uk", "J***@M***.uk"),
        ("زهرا@مثال.ایران", "ز***@م***.ایران"),
        ("张伟@例子.中国", "张***@例***.中国"),
        ("สมชาย@ตัวอย่าง.ไทย", "ส***@ตั***.ไทย"),
        ("a@x.com", "***@***.com"),
        ("not-an-address", MASK),
        ("@example.com", MASK),
        ("jane@localhost", MASK),
        ("jane@example..com", MASK),
    ],
)
def test_email_keeps_first_characters_and_the_top_level_domain(value: str, expected: str) -> None:
    """Email: first character of local part and of domain, then the TLD; never a whole part."""
    assert expected == mask_email(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+98 912 345 6789", "***6789"),
        ("+66812345678", "***5678"),
        ("۰۹۱۲۳۴۵۶۷۸۹", "***۶۷۸۹"),
        ("+1 555 0199", "***99"),
        ("123456", MASK),
        ("12", MASK),
        ("", MASK),
    ],
)
def test_phone_keeps_the_last_four_digits_and_hides_six(value: str, expected: str) -> None:
    """Phone: *** and the last four digits; at least six digits always stay hidden."""
    assert expected == mask_phone(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jane", "J***"),
        ("زهرا", "ز***"),
        ("สมชาย", "ส***"),
        ("王小明", "王***"),
        ("Ελένη", "\N{GREEK CAPITAL LETTER EPSILON}***"),
        ("李", MASK),
        ("  Jane  ", "J***"),
        ("", MASK),
    ],
)
def test_name_keeps_its_first_character(value: str, expected: str) -> None:
    """Names: first character and ***; a one-character name is masked whole."""
    assert expected == mask_name(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("นุ่น", "นุ่***"),  # Thai: base, vowel sign and tone mark are one character
        ("e\u0301lodie", "e\u0301***"),  # decomposed é keeps its accent
        ("क्षत्रिय", "क्***"),  # Devanagari virama stays with its consonant
        ("مُحَمَّد", "مُ***"),  # Arabic harakat stay with their letter
        ("\U0001f469\u200d\U0001f4bbAda", "\U0001f469\u200d\U0001f4bb***"),  # ZWJ sequence
    ],
)
def test_masks_never_split_a_character_from_its_marks(value: str, expected: str) -> None:
    """A mask keeps marks, joiners and what they join with the character they belong to."""
    assert expected == mask_name(value)


@given(st.text(min_size=1))
def test_the_kept_prefix_is_never_followed_by_one_of_its_marks(value: str) -> None:
    """Whatever the text, the character after the kept prefix is not a mark that belonged to it."""
    masked = mask_name(value)
    kept = masked.removesuffix(MASK)
    assert masked.endswith(MASK)
    rest = value.strip()[len(kept) :]
    if kept and rest:
        assert not unicodedata.combining(rest[0])
        assert unicodedata.category(rest[0]) not in ("Mn", "Mc", "Me")
        assert not kept.endswith("\u200d")


def test_characters_counts_user_perceived_characters() -> None:
    """characters() groups a base with its marks: Thai "นุ่น" is two, not four, code points."""
    assert ["นุ่", "น"] == characters("นุ่น")
    assert 4 == len(characters("زهرا"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(1990, 4, 17), "--04-17"),
        ("1990-04-17", "--04-17"),
        ("2000-12-01", "--12-01"),
        ("17/04/1990", MASK),
    ],
)
def test_birth_date_keeps_month_and_day(value: date | str, expected: str) -> None:
    """Birth date: ISO 8601's year-less form --MM-DD; anything not a date is masked whole."""
    assert expected == mask_birth_date(value)


@pytest.mark.parametrize(
    "value",
    [
        "تهران، خیابان ولیعصر، پلاک 12",
        "北京市朝阳区建国路12号",
        "221B Baker Street, London NW1 6XE",
    ],
)
def test_a_free_text_address_is_masked_whole(value: str) -> None:
    """Free text: nothing in it can be told to be the city, so nothing is shown."""
    assert MASK == mask_address(value)


@pytest.mark.parametrize(
    ("city", "country", "expected"),
    [
        ("تهران", "IR", "تهران, IR"),
        ("北京市", "CN", "北京市, CN"),
        ("กรุงเทพมหานคร", "TH", "กรุงเทพมหานคร, TH"),
        ("Kraków", "PL", "Kraków, PL"),
        (None, "FR", "FR"),
        ("Lyon", None, "Lyon"),
        (None, None, MASK),
    ],
)
def test_an_address_in_parts_shows_city_and_country_only(
    city: str | None, country: str | None, expected: str
) -> None:
    """Address in parts: the city and the country code, nothing of the street."""
    assert expected == mask_postal_address(city, country)


def test_mask_dispatches_by_resource() -> None:
    """mask() applies the rule of the field it is given."""
    assert "j***@e***.com" == mask(Resource.EMAIL, "jane@example.com")
    assert "***6789" == mask(Resource.PHONE, "+98 912 345 6789")
    assert "J***" == mask(Resource.LAST_NAME, "Jones")
    assert "--04-17" == mask(Resource.BIRTH_DATE, date(1990, 4, 17))


@pytest.mark.parametrize("resource", [Resource.INTERACTIONS, Resource.INTERACTION_PAYLOAD, "ssn"])
def test_mask_refuses_resources_without_a_rule(resource: str) -> None:
    """Interactions and unknown resources have no mask: asking for one is an error."""
    with pytest.raises(ValueError, match="no mask"):
        mask(resource, "anything")


def test_apply_gives_value_mask_or_nothing() -> None:
    """apply(): clear gives the value, masked its mask, hidden (or no value) gives None."""
    assert "Jane" == apply(Resolution.CLEAR, Resource.FIRST_NAME, "Jane")
    assert "J***" == apply(Resolution.MASKED, Resource.FIRST_NAME, "Jane")
    assert apply(Resolution.HIDDEN, Resource.FIRST_NAME, "Jane") is None
    assert apply(Resolution.MASKED, Resource.FIRST_NAME, None) is None
