"""Custom attributes are declared in a strictly checked file, and the policy knows the PII
ones: each is a resource ``attr:<name>``; the clear profile has no mask."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

from pathlib import Path

import pytest

from policies import PolicyEnforcer, PolicyError, Resolution, default_policy_lines
from policies.attributes import (
    AttributeFileError,
    AttributeInfo,
    AttributeType,
    default_attributes,
    parse_attributes,
)
from policies.masking import mask_attribute
from vault.attributes import AttributesConfigError, attributes_path, load_attributes
from vault.config import Settings

GOOD = """\
# two attributes
[[attribute]]
name = "plan"
type = "string"
pii = false
description = "The subscription plan."

[[attribute]]
name = "loyalty_number"
type = "string"
pii = true
description = "A loyalty card number."
"""


def test_a_declaration_file_gives_each_attribute_its_type_and_pii_flag() -> None:
    """Each [[attribute]] table becomes one declaration; the PII ones are policy
    resources attr:<name>."""
    registry = parse_attributes(GOOD, source="a.toml")
    assert {
        "plan": AttributeInfo("plan", AttributeType.STRING, False, "The subscription plan."),
        "loyalty_number": AttributeInfo(
            "loyalty_number", AttributeType.STRING, True, "A loyalty card number."
        ),
    } == dict(registry)
    assert ("attr:loyalty_number",) == registry.pii_resources
    assert ("attributes", "attr:loyalty_number") == (
        registry["plan"].resource,
        registry["loyalty_number"].resource,
    )


def test_the_shipped_file_declares_what_the_demo_writes() -> None:
    """The built-in declarations parse, and hold the demo's attributes (all non-PII)."""
    registry = default_attributes()
    demo = ("demo_seed", "signup_channel", "marketing_opt_in", "activity")
    assert [False] * 4 == [registry[name].pii for name in demo]
    assert {"loyalty_number", "nickname", "anniversary", "household_size"} == set(
        registry.pii_names
    )


BROKEN = [
    pytest.param(
        GOOD + '\n[[attribute]]\nname = "plan"\ntype = "integer"\npii = false\n'
        'description = "again"\n',
        "a.toml:15: attribute 'plan' is declared twice",
        id="duplicate-name",
    ),
    pytest.param(
        GOOD.replace('type = "string"\npii = false', 'type = "text"\npii = false'),
        "a.toml:4: attribute 'plan': type must be one of: string, integer, decimal, boolean, date",
        id="bad-type",
    ),
    pytest.param(
        GOOD.replace("pii = true\n", "pii = true\nsearchable = true\n"),
        "a.toml:12: unknown key 'searchable' (allowed: name, type, pii, description)",
        id="unknown-key",
    ),
    pytest.param(
        GOOD.replace("pii = true\n", 'pii = "yes"\n'),
        "a.toml:11: attribute 'loyalty_number': pii must be true or false",
        id="pii-not-a-boolean",
    ),
    pytest.param(
        GOOD.replace('description = "A loyalty card number."\n', ""),
        "a.toml:8: the attribute lacks 'description'",
        id="missing-key",
    ),
    pytest.param(
        GOOD.replace('name = "plan"', 'name = "Plan Name"'),
        "a.toml:3: name must be 1-64 lower-case letters, digits or underscores, "
        "starting with a letter",
        id="bad-name",
    ),
    pytest.param(
        "strict = true\n" + GOOD,
        "a.toml:1: unknown top-level key 'strict'; declare [[attribute]] tables",
        id="unknown-top-level-key",
    ),
]


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_a_broken_declaration_is_refused_with_its_line(text: str, message: str) -> None:
    """Unknown keys, duplicate names, bad types (and the like) are refused, naming the file
    and the line."""
    with pytest.raises(AttributeFileError) as caught:
        parse_attributes(text, source="a.toml")
    assert message == str(caught.value)


def test_not_toml_is_refused_with_the_position() -> None:
    """A file that is not TOML is refused with tomllib's position."""
    with pytest.raises(AttributeFileError) as caught:
        parse_attributes("[[attribute]\n", source="a.toml")
    assert str(caught.value).startswith("a.toml: is not valid TOML:")
    assert "line 1" in str(caught.value)


def test_the_setting_names_the_file_and_a_bad_one_never_falls_back(tmp_path: Path) -> None:
    """CVAULT_ATTRIBUTES_FILE wins, then $CVAULT_DATA_DIR/attributes.toml, then the built-in
    file; a named file that is missing or broken is an error, not the default."""
    env = {"CVAULT_DATA_DIR": str(tmp_path)}
    assert attributes_path(Settings.from_env(env)) is None
    (tmp_path / "attributes.toml").write_text(GOOD, encoding="utf-8")
    assert tmp_path / "attributes.toml" == attributes_path(Settings.from_env(env))
    named = tmp_path / "mine.toml"
    settings = Settings.from_env({**env, "CVAULT_ATTRIBUTES_FILE": str(named)})
    assert named == attributes_path(settings)
    with pytest.raises(AttributesConfigError) as missing:
        load_attributes(named)
    assert str(missing.value).startswith(f"{named}: cannot be read")
    named.write_text(GOOD.replace('"string"', '"str"', 1), encoding="utf-8")
    with pytest.raises(AttributesConfigError) as broken:
        load_attributes(named)
    assert str(broken.value).startswith(f"{named}:4: attribute 'plan': type must be")
    named.write_text(GOOD, encoding="utf-8")
    assert {"plan", "loyalty_number"} == set(load_attributes(named))


# -- the policy knows them ---------------------------------------------------------------


def test_a_policy_line_on_an_undeclared_pii_attribute_is_refused() -> None:
    """attr:<name> must name a declared PII attribute (a pattern such as attr:* is fine)."""
    lines = [
        *default_policy_lines(),
        "p, support_agent, attr:shoe_size, read:clear, support, allow",
    ]
    with pytest.raises(PolicyError) as caught:
        PolicyEnforcer.from_lines(lines, attributes=("loyalty_number",))
    assert "unknown resource 'attr:shoe_size': not a declared PII attribute" in str(caught.value)
    allowed = [
        *default_policy_lines(),
        "p, marketing, attr:loy*, read:masked, personalization, allow",
    ]
    enforcer = PolicyEnforcer.from_lines(allowed, attributes=("loyalty_number",))
    assert Resolution.MASKED == enforcer.resolve(
        "marketing", "personalization", "attr:loyalty_number"
    )


def test_declaring_attributes_later_revalidates_and_resolves_them() -> None:
    """declare_attributes adds attr:<name> to every role's resolutions (the vault does it
    with its attribute file)."""
    enforcer = PolicyEnforcer.from_default()
    assert "attr:nickname" not in enforcer.resolve_all("data_subject", "self")
    enforcer.declare_attributes(["nickname"])
    assert Resolution.CLEAR == enforcer.resolve_all("data_subject", "self")["attr:nickname"]
    assert Resolution.HIDDEN == enforcer.resolve_all("analyst", "analytics")["attr:nickname"]


@pytest.mark.parametrize("resource", ["locale", "tier", "tags", "attributes"])
def test_the_clear_profile_has_no_mask(resource: str) -> None:
    """A line granting read:masked on the clear profile is refused; a pattern that grants
    only read:masked leaves it hidden, never shown."""
    with pytest.raises(PolicyError) as caught:
        PolicyEnforcer.from_lines(
            [
                "p2, analyst, analytics, allow",
                f"p, analyst, {resource}, read:masked, analytics, allow",
            ]
        )
    assert f"resource {resource!r} has no mask" in str(caught.value)
    pattern = PolicyEnforcer.from_lines(
        ["p2, analyst, analytics, allow", "p, analyst, *, read:masked, analytics, allow"]
    )
    assert Resolution.HIDDEN == pattern.resolve("analyst", "analytics", resource)
    assert Resolution.HIDDEN == pattern.explain("analyst", resource, "analytics").resolution


def test_a_masked_pii_attribute_shows_a_date_as_month_and_day_and_nothing_else() -> None:
    """Masks of PII attributes: a date keeps --MM-DD, every other type is ***."""
    assert ["--06-20", "***", "***", "***", "***"] == [
        mask_attribute("date", "2015-06-20"),
        mask_attribute("string", "LN-0042"),
        mask_attribute("integer", 4),
        mask_attribute("decimal", 1.5),
        mask_attribute("boolean", True),
    ]
