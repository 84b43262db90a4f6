"""Mask formats (issue 18, item 4): each format's output in every script, the fields each
takes, and the policy's p3 lines: loaded, explained, refused when wrong."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import (
    PolicyEnforcer,
    PolicyError,
    PolicyLines,
    Resolution,
    default_model_text,
    default_policy_lines,
)
from policies.mask_formats import (
    FORMATS,
    MaskFormat,
    format_country_code,
    format_domain_only,
    format_first_letter,
    format_initials,
    format_last4,
    format_local_hidden,
    format_year_only,
    mask_as,
    mask_postal_address_as,
)
from policies.masking import MASK, mask

SUPPORT_PHONE: Final = "p3, support_agent, phone, support, last4"
MARKETING_PHONE: Final = "p3, marketing, phone, marketing_sms, country_code"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+989123456789", "***6789"),
        ("+98 912 345 6789", "***6789"),
        ("+3612345678", "***5678"),  # ten digits: the default mask shows the same
        ("+35312345", "***2345"),  # eight digits: the default mask shows only "***45"
        ("+1234567", MASK),  # seven: four must stay hidden
        ("۰۹۱۲۳۴۵۶۷۸۹", "***۶۷۸۹"),  # Persian digits
        ("", MASK),
    ],
)
def test_last4_shows_the_last_four_digits(value: str, expected: str) -> None:
    """last4: the last four digits whenever four others stay hidden."""
    assert expected == format_last4(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+989123456789", "+98 ***"),
        ("+66812345678", "+66 ***"),
        ("+8613812345678", "+86 ***"),
        ("+14155550199", "+1 ***"),
        ("09123456789", MASK),  # not E.164: no country can be told
        ("not a number", MASK),
    ],
)
def test_country_code_shows_the_calling_code_of_an_e164_number(value: str, expected: str) -> None:
    """country_code: the country calling code of the stored (E.164) number, nothing else."""
    assert expected == format_country_code(value)


@pytest.mark.parametrize(
    ("value", "first_letter", "local_hidden", "domain_only"),
    [
        ("jane.doe@example.com", "j***@example.com", "***@example.com", "example.com"),
        ("زهرا@مثال.ایران", "ز***@مثال.ایران", "***@مثال.ایران", "مثال.ایران"),
        ("สมชาย@ตัวอย่าง.ไทย", "ส***@ตัวอย่าง.ไทย", "***@ตัวอย่าง.ไทย", "ตัวอย่าง.ไทย"),
        ("张伟@例子.中国", "张***@例子.中国", "***@例子.中国", "例子.中国"),
        ("a@x.com", "***@x.com", "***@x.com", "x.com"),  # a one-letter local part stays hidden
        ("not-an-address", MASK, MASK, MASK),
    ],
)
def test_email_formats(value: str, first_letter: str, local_hidden: str, domain_only: str) -> None:
    """first_letter, local_hidden and domain_only show the domain; the local part shows at
    most its first letter (a whole user-perceived character in any script)."""
    assert (first_letter, local_hidden, domain_only) == (
        format_first_letter(value),
        format_local_hidden(value),
        format_domain_only(value),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mary Ann", "M. A."),
        ("زهرا", "ز."),
        ("محمد رضا", "م. ر."),
        ("จิตรภักดี", "จิ."),  # the first letter keeps its vowel mark
        ("王小明", "王."),
        ("Ét\u0301ienne", "É."),
        ("王", MASK),  # the initial of a one-character name is all of it
        ("  ", MASK),
    ],
)
def test_initials_keep_each_words_first_character(value: str, expected: str) -> None:
    """initials: each word's first user-perceived character and a full stop."""
    assert expected == format_initials(value)


def test_year_only_shows_the_year() -> None:
    """year_only: the year of a birth date, given as a date or as ISO text."""
    assert ["1990", "0999", MASK] == [
        format_year_only("1990-04-17"),
        format_year_only(date(999, 1, 2)),
        format_year_only("17/04/1990"),
    ]


def test_addresses_in_parts_follow_their_format() -> None:
    """An address in parts: default city and country, country_only the country,
    redacted nothing."""
    assert ["تهران, IR", "IR", MASK, MASK] == [
        mask_postal_address_as("تهران", "IR", "default"),
        mask_postal_address_as("تهران", "IR", "country_only"),
        mask_postal_address_as("تهران", "IR", "redacted"),
        mask_postal_address_as("تهران", None, "country_only"),
    ]


@pytest.mark.parametrize("resource", list(FORMATS))
def test_default_is_todays_mask_and_redacted_hides_all(resource: str) -> None:
    """Every field takes default (exactly today's mask) and redacted (``***``)."""
    value = "1990-04-17" if resource == "birth_date" else "jane.doe@example.com"
    assert (mask(resource, value), MASK) == (
        mask_as(resource, value, "default"),
        mask_as(resource, value, "redacted"),
    )


def test_a_format_outside_its_field_is_a_programming_error() -> None:
    """mask_as refuses a format the field does not take (a loaded policy never names one)."""
    with pytest.raises(ValueError, match="last4"):
        mask_as("email", "jane@example.com", "last4")


@given(st.text(max_size=30), st.sampled_from(sorted(MaskFormat)))
def test_no_format_shows_a_whole_value(value: str, fmt: MaskFormat) -> None:
    """Whatever the value and format, the mask is never the value itself."""
    for resource, allowed in FORMATS.items():
        if fmt in allowed and value.strip():
            assert value.strip() != mask_as(resource, value, fmt)


# -- p3 lines in a policy ------------------------------------------------------------------


def _policy(*extra: str) -> PolicyEnforcer:
    return PolicyEnforcer.from_lines([*default_policy_lines(), *extra])


def test_the_default_policy_masks_every_field_in_its_default_format() -> None:
    """The shipped policy names no format: every masked field shows today's mask."""
    default = PolicyEnforcer.from_default()
    formats = {
        (role, purpose): default.mask_formats(role, purpose)
        for role, purpose in [
            ("support_agent", "support"),
            ("compliance_officer", "compliance"),
            ("marketing", "marketing_sms"),
        ]
    }
    assert {
        ("support_agent", "support"): {
            "email": "default",
            "phone": "default",
            "address": "default",
        },
        ("compliance_officer", "compliance"): dict.fromkeys(
            ["email", "phone", "first_name", "last_name"], "default"
        ),
        ("marketing", "marketing_sms"): {"birth_date": "default"},
    } == formats


def test_p3_lines_pick_formats_per_role_field_and_purpose() -> None:
    """A p3 line picks the format for one role, field and purpose; patterns match like
    on p lines; a format for a field the role reads in clear changes nothing."""
    policy = _policy(
        SUPPORT_PHONE,
        "p3, *, email, compliance, local_hidden",
        "p3, marketing, phone, marketing_sms, country_code",  # phone is clear for SMS
    )
    assert (
        {"email": "default", "phone": "last4", "address": "default"},
        {"email": "local_hidden", "phone": "default", "first_name": "default",
         "last_name": "default"},
        {"birth_date": "default"},
        Resolution.CLEAR,
    ) == (
        policy.mask_formats("support_agent", "support"),
        policy.mask_formats("compliance_officer", "compliance"),
        policy.mask_formats("marketing", "marketing_sms"),
        policy.resolve("marketing", "marketing_sms", "phone"),
    )  # fmt: skip


def test_explain_names_the_format_and_its_line() -> None:
    """explain says which format a masked field shows and which p3 line names it; the
    default when none does; no format for a field in clear."""
    policy = _policy(SUPPORT_PHONE)
    phone = policy.explain("support_agent", "phone", "support")
    email = policy.explain("support_agent", "email", "support")
    name = policy.explain("support_agent", "first_name", "support")
    assert ("last4", ("p3", "support_agent", "phone", "support", "last4")) == (
        phone.mask_format,
        phone.format_rule,
    )
    assert "mask format last4 (p3, support_agent, phone, support, last4)" in phone.reason
    assert ("default", None, "mask format default") == (
        email.mask_format,
        email.format_rule,
        email.reason.split("; ")[-1].split(" (")[0],
    )
    assert (Resolution.CLEAR, None) == (name.resolution, name.mask_format)


BAD: Final = [
    (
        "p3, support_agent, phone, support, last5",
        "policy line {n} (p3, support_agent, phone, support, last5): unknown mask format "
        "'last5'; phone takes default, redacted, last4, country_code",
    ),
    (
        "p3, support_agent, email, support, last4",
        "policy line {n} (p3, support_agent, email, support, last4): mask format 'last4' is "
        "not for email; email takes default, redacted, first_letter, local_hidden, domain_only",
    ),
    (
        "p3, support_agent, birth_date, support, initials",
        "policy line {n} (p3, support_agent, birth_date, support, initials): mask format "
        "'initials' is not for birth_date; birth_date takes default, redacted, year_only",
    ),
    (
        "p3, support_agent, tier, support, redacted",
        "policy line {n} (p3, support_agent, tier, support, redacted): resource 'tier' has "
        "no mask formats; p3 lines name one of email, phone, first_name, last_name, "
        "birth_date, address",
    ),
    (
        "p3, support_agent, phone, support",
        "policy line {n} (p3, support_agent, phone, support): has 3 fields; p3 lines need 4",
    ),
    (
        "p3, support_agnt, phone, support, last4",
        "policy line {n} (p3, support_agnt, phone, support, last4): unknown role 'support_agnt'",
    ),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_a_bad_format_line_is_refused_at_load_naming_its_line(line: str, message: str) -> None:
    """A wrong p3 line is refused when the policy loads, with its line number among the
    lines given, its text and the rule it breaks."""
    lines = [*default_policy_lines(), line]
    with pytest.raises(PolicyError) as info:
        PolicyEnforcer.from_lines(lines)
    assert message.format(n=len(lines)) == str(info.value)


def test_two_formats_for_one_role_field_and_purpose_are_refused() -> None:
    """Lines that could give one role, field and purpose different formats are refused,
    naming both, whatever their order; the same format twice is fine."""
    lines = [*default_policy_lines(), "p3, *, phone, support, redacted", SUPPORT_PHONE]
    with pytest.raises(PolicyError) as info:
        PolicyEnforcer.from_lines(lines)
    n = len(lines)
    assert (
        f"policy line {n} (p3, support_agent, phone, support, last4): gives phone mask "
        f"format 'last4' where policy line {n - 1} (p3, *, phone, support, redacted) gives "
        "'redacted'; one format per role, field and purpose"
    ) == str(info.value)
    assert {"phone": "last4"}.items() <= _policy(SUPPORT_PHONE, SUPPORT_PHONE).mask_formats(
        "support_agent", "support"
    ).items()


def test_a_failed_reload_keeps_the_formats_in_force() -> None:
    """A reload with a bad format line raises and leaves the old policy and formats."""
    policy = _policy(SUPPORT_PHONE)
    policy.adapter.replace([*default_policy_lines(), "p3, support_agent, phone, support, x"])
    with pytest.raises(PolicyError):
        policy.reload()
    assert "last4" == policy.mask_formats("support_agent", "support")["phone"]


def test_a_policy_file_with_formats_loads(tmp_path: Path) -> None:
    """A CSV policy file carries p3 lines like any other; an old file without them
    (the shipped default) resolves exactly as before."""
    path = tmp_path / "policy.csv"
    path.write_text("\n".join([*default_policy_lines(), MARKETING_PHONE, SUPPORT_PHONE]))
    with_formats = PolicyEnforcer.from_file(path)
    default = PolicyEnforcer.from_default()
    assert "last4" == with_formats.mask_formats("support_agent", "support")["phone"]
    assert default.resolve_all("support_agent", "support") == with_formats.resolve_all(
        "support_agent", "support"
    )


def test_a_model_without_p3_refuses_format_lines() -> None:
    """An older custom model that does not know p3 refuses such a line as an unknown line
    type (it is never skipped without a word), and masks every field by default."""
    old_model = default_model_text().replace("p3 = role, resource, purpose, format\n", "")
    old = PolicyEnforcer(PolicyLines(default_policy_lines()), model_text=old_model)
    with pytest.raises(PolicyError, match="unknown line type 'p3'"):
        PolicyEnforcer(PolicyLines([*default_policy_lines(), SUPPORT_PHONE]), model_text=old_model)
    assert "default" == old.mask_formats("support_agent", "support")["phone"]


def test_a_policy_file_names_a_refused_line_by_its_line_number(tmp_path: Path) -> None:
    """A bad line in a policy file is named by its line number in the file."""
    path = tmp_path / "policy.csv"
    lines = [*default_policy_lines(), "", "# support: the last four", SUPPORT_PHONE + "s"]
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        PolicyEnforcer.from_file(path)
    assert str(info.value).startswith(f"policy line {len(lines)} (p3, support_agent, phone,")
