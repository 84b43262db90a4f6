"""The purpose registry's notice versions: each consent purpose ships its current one;
a malformed one is refused naming the purpose and the key."""

from __future__ import annotations

from importlib import resources

import pytest

from policies.purposes import RegistryError, load_registry, registry

SHIPPED = resources.files("policies").joinpath("purposes.toml").read_text(encoding="utf-8")


def test_every_shipped_consent_purpose_has_a_current_notice_version() -> None:
    """A grant through any edge can name no version and still record one."""
    missing = [p.value for p, info in registry().items() if info.needs_consent and
               not info.notice_version]  # fmt: skip
    assert missing == []


@pytest.mark.parametrize("value", ['""', '"   "', "7", '"' + "v" * 65 + '"'])
def test_a_malformed_notice_version_names_the_purpose(value: str) -> None:
    """Empty, not a string, or longer than the 64 characters stored: refused."""
    block = '[purposes.marketing_sms]\nlegal_basis = "consent"\nnotice_version = '
    text = SHIPPED.replace(block + '"2026-01"', block + value, 1)
    assert text != SHIPPED
    with pytest.raises(RegistryError) as caught:
        load_registry(text)
    assert str(caught.value).startswith("purposes.marketing_sms.notice_version must be")


def test_a_notice_version_in_thai_is_kept_exactly() -> None:
    """Any script; surrounding spaces trimmed."""
    thai = "\u0e1b\u0e23\u0e30\u0e01\u0e32\u0e28-2"
    text = SHIPPED.replace('notice_version = "2026-01"', f'notice_version = " {thai} "', 1)
    loaded = load_registry(text)
    assert thai == loaded[next(p for p in loaded if p.value == "marketing_email")].notice_version
