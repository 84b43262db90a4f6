"""The Casbin field policy: the default table, deny over allow, default deny, explain, caching."""

# ruff: noqa: SIM300 - assertions read `expected == actual`.

from __future__ import annotations

import ast
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from policies import (
    AccessDenied,
    Explanation,
    PolicyEnforcer,
    PolicyError,
    PolicyLines,
    Purpose,
    PurposeNotAllowed,
    Resolution,
    Resource,
    Role,
    default_policy_lines,
)
from policies import enforcer as enforcer_module

C, M, H = Resolution.CLEAR, Resolution.MASKED, Resolution.HIDDEN
FIELDS = (
    Resource.EMAIL,
    Resource.PHONE,
    Resource.FIRST_NAME,
    Resource.LAST_NAME,
    Resource.BIRTH_DATE,
    Resource.ADDRESS,
    Resource.INTERACTIONS,
    Resource.INTERACTION_PAYLOAD,
    Resource.LOCALE,
    Resource.TIER,
    Resource.TAGS,
    Resource.ATTRIBUTES,
    Resource.UNDECLARED_ATTRIBUTES,
    "attr:loyalty_number",
)
# The declared PII attribute the enforcers below know.
PII_ATTRIBUTES = ("loyalty_number",)

# Issue 3's table (and issue 13's clear profile and attributes), written out again here
# rather than read from the CSV: email, phone, first_name, last_name, birth_date, address,
# interactions, payload | locale, tier, tags, attributes, undeclared, a PII attribute.
TABLE: dict[tuple[Role, Purpose], tuple[Resolution, ...]] = {
    (Role.SUPPORT_AGENT, Purpose.SUPPORT): (M, M, C, C, H, M, C, H, C, C, C, C, H, M),
    (Role.MARKETING, Purpose.MARKETING_EMAIL): (C, H, C, H, M, H, C, H, C, C, C, C, H, H),
    (Role.MARKETING, Purpose.MARKETING_SMS): (H, C, C, H, M, H, C, H, C, C, C, C, H, H),
    (Role.MARKETING, Purpose.PERSONALIZATION): (H, H, C, H, H, H, C, H, C, C, C, C, H, H),
    (Role.ANALYST, Purpose.ANALYTICS): (H, H, H, H, H, H, C, H, H, C, C, C, H, H),
    (Role.COMPLIANCE_OFFICER, Purpose.COMPLIANCE): (M, M, M, M, H, H, C, H, C, C, C, C, H, M),
    (Role.ADMIN, Purpose.ADMINISTRATION): (M, M, M, M, H, H, H, H, C, C, C, C, C, M),
    (Role.INGEST_SERVICE, Purpose.SERVICE_DELIVERY): (H,) * 14,
    (Role.DATA_SUBJECT, Purpose.SELF): (C,) * 14,
}
WRITERS = {(Role.INGEST_SERVICE, Purpose.SERVICE_DELIVERY)}
# What a write names: the PII fields, interactions, the clear profile, a PII attribute.
WRITE_FIELDS = (*FIELDS[:8], Resource.PROFILE, "attr:loyalty_number")

READ_CASES = [
    pytest.param(role, purpose, field, expected, id=f"{role}-{purpose}-{field}")
    for (role, purpose), row in TABLE.items()
    for field, expected in zip(FIELDS, row, strict=True)
]
WRITE_CASES = [
    pytest.param(role, purpose, field, (role, purpose) in WRITERS, id=f"{role}-{purpose}-{field}")
    for role, purpose in TABLE
    for field in WRITE_FIELDS
]
REFUSED_PURPOSES = [
    pytest.param(role, purpose, id=f"{role}-{purpose}")
    for role in Role
    for purpose in Purpose
    if (role, purpose) not in TABLE
]


@pytest.fixture(scope="module")
def default() -> PolicyEnforcer:
    return PolicyEnforcer.from_default(attributes=PII_ATTRIBUTES)


def _with(*extra: str) -> PolicyEnforcer:
    return PolicyEnforcer.from_lines([*default_policy_lines(), *extra], attributes=PII_ATTRIBUTES)


# -- the default table ------------------------------------------------------------------


@pytest.mark.parametrize(("role", "purpose", "field", "expected"), READ_CASES)
def test_default_policy_resolves_every_field_as_the_table_says(
    default: PolicyEnforcer, role: Role, purpose: Purpose, field: str, expected: Resolution
) -> None:
    """Every role x allowed purpose x field resolves exactly as issue 3's table says."""
    assert expected == default.resolve(role, purpose, field)


@pytest.mark.parametrize(("role", "purpose"), list(TABLE))
def test_resolve_all_returns_the_whole_row(
    default: PolicyEnforcer, role: Role, purpose: Purpose
) -> None:
    """resolve_all gives every field of a row at once, the same as resolve one by one."""
    assert dict(zip(FIELDS, TABLE[(role, purpose)], strict=True)) == default.resolve_all(
        role, purpose
    )


@pytest.mark.parametrize(("role", "purpose", "field", "allowed"), WRITE_CASES)
def test_only_the_ingest_service_writes(
    default: PolicyEnforcer, role: Role, purpose: Purpose, field: str, allowed: bool
) -> None:
    """ingest_service (service_delivery) may write every field; every other row raises."""
    if allowed:
        default.check_write(role, purpose, field)  # raises if refused
        return
    with pytest.raises(AccessDenied) as caught:
        default.check_write(role, purpose, field)
    assert "FORBIDDEN" == caught.value.code
    assert field == caught.value.resource


@pytest.mark.parametrize(("role", "purpose"), list(TABLE))
def test_listed_purposes_are_allowed(default: PolicyEnforcer, role: Role, purpose: Purpose) -> None:
    """check_purpose passes silently for every role x purpose the table lists."""
    default.check_purpose(role, purpose)  # raises if refused


@pytest.mark.parametrize(("role", "purpose"), REFUSED_PURPOSES)
def test_unlisted_purposes_raise_everywhere(
    default: PolicyEnforcer, role: Role, purpose: Purpose
) -> None:
    """A purpose not in the role's row raises PurposeNotAllowed from every entry point."""
    with pytest.raises(PurposeNotAllowed):
        default.check_purpose(role, purpose)
    with pytest.raises(PurposeNotAllowed):
        default.resolve(role, purpose, Resource.EMAIL)
    with pytest.raises(PurposeNotAllowed):
        default.resolve_all(role, purpose)
    with pytest.raises(PurposeNotAllowed):
        default.check_write(role, purpose, Resource.EMAIL)


def test_purpose_not_allowed_is_an_access_denied_without_values() -> None:
    """PurposeNotAllowed is a FORBIDDEN AccessDenied whose message names role and purpose only."""
    error = PurposeNotAllowed(Role.ANALYST, Purpose.SUPPORT)
    assert isinstance(error, AccessDenied)
    assert isinstance(error, PolicyError)
    assert "FORBIDDEN" == error.code
    assert "purpose 'support' is not allowed for role 'analyst'" == str(error)


def test_default_constructor_and_default_files_agree(default: PolicyEnforcer) -> None:
    """PolicyEnforcer() and from_file(default_policy.csv) load the same default policy."""
    path = Path(__file__).resolve().parents[2] / "policies" / "default_policy.csv"
    from_file = PolicyEnforcer.from_file(path, attributes=PII_ATTRIBUTES)
    plain = PolicyEnforcer(attributes=PII_ATTRIBUTES)
    for role, purpose in TABLE:
        assert default.resolve_all(role, purpose) == from_file.resolve_all(role, purpose)
        assert default.resolve_all(role, purpose) == plain.resolve_all(role, purpose)


# -- deny overrides allow ------------------------------------------------------------------


@pytest.mark.parametrize("deny_first", [True, False], ids=["deny-before", "deny-after"])
def test_deny_overrides_allow_whatever_the_order(deny_first: bool) -> None:
    """A matching deny line hides a field an allow line shows, before or after the allow."""
    deny = "p, support_agent, first_name, read:*, support, deny"
    lines = default_policy_lines()
    enforcer = PolicyEnforcer.from_lines([deny, *lines] if deny_first else [*lines, deny])
    assert H == enforcer.resolve(Role.SUPPORT_AGENT, Purpose.SUPPORT, Resource.FIRST_NAME)
    assert C == enforcer.resolve(Role.SUPPORT_AGENT, Purpose.SUPPORT, Resource.LAST_NAME)


def test_a_wildcard_deny_hides_a_field_from_every_role() -> None:
    """``p, *, email, read:*, *, deny`` hides email for every row, even the data subject's own."""
    enforcer = _with("p, *, email, read:*, *, deny")
    for (role, purpose), row in TABLE.items():
        resolved = enforcer.resolve_all(role, purpose)
        assert H == resolved[Resource.EMAIL]
        expected_rest = dict(zip(FIELDS, row, strict=True))
        del expected_rest[Resource.EMAIL]
        del resolved[Resource.EMAIL]
        assert expected_rest == resolved


def test_a_deny_on_read_clear_downgrades_to_masked() -> None:
    """Denying read:clear where read:masked is granted leaves the field masked, not clear."""
    enforcer = PolicyEnforcer.from_lines(
        [
            "p2, admin, administration, allow",
            "p, admin, email, read:clear, administration, allow",
            "p, admin, email, read:masked, administration, allow",
            "p, admin, email, read:clear, administration, deny",
        ]
    )
    assert M == enforcer.resolve(Role.ADMIN, Purpose.ADMINISTRATION, Resource.EMAIL)


def test_a_deny_on_read_masked_hides_even_a_clear_grant() -> None:
    """Denying read:masked hides the field, even where read:clear is allowed."""
    enforcer = _with("p, marketing, email, read:masked, marketing_email, deny")
    assert H == enforcer.resolve(Role.MARKETING, Purpose.MARKETING_EMAIL, Resource.EMAIL)


def test_a_deny_on_write_refuses_the_ingest_service() -> None:
    """A deny line on write overrides the ingest service's write grant."""
    enforcer = _with("p, ingest_service, address, write, service_delivery, deny")
    with pytest.raises(AccessDenied):
        enforcer.check_write(Role.INGEST_SERVICE, Purpose.SERVICE_DELIVERY, Resource.ADDRESS)
    enforcer.check_write(Role.INGEST_SERVICE, Purpose.SERVICE_DELIVERY, Resource.EMAIL)


def test_a_purpose_deny_line_revokes_a_purpose() -> None:
    """A p2 deny line takes a purpose away from a role that the default policy grants it."""
    enforcer = _with("p2, marketing, marketing_sms, deny")
    with pytest.raises(PurposeNotAllowed):
        enforcer.resolve_all(Role.MARKETING, Purpose.MARKETING_SMS)
    assert C == enforcer.resolve(Role.MARKETING, Purpose.MARKETING_EMAIL, Resource.EMAIL)


# -- default deny -------------------------------------------------------------------------


def test_an_unknown_role_is_refused_every_purpose(default: PolicyEnforcer) -> None:
    """A role no line names may use no purpose: it is refused, not an error of its own."""
    for purpose in Purpose:
        with pytest.raises(PurposeNotAllowed):
            default.resolve_all("auditor", purpose)


def test_an_unknown_resource_is_hidden_and_not_writable(default: PolicyEnforcer) -> None:
    """A resource no line names is hidden on read and refused on write, even to the data subject."""
    assert H == default.resolve(Role.DATA_SUBJECT, Purpose.SELF, "national_id")
    with pytest.raises(AccessDenied):
        default.check_write(Role.INGEST_SERVICE, Purpose.SERVICE_DELIVERY, "national_id")


def test_an_unknown_resource_follows_wildcard_lines() -> None:
    """Resources outside the enum are still decided by Casbin, so a wildcard line reaches them."""
    enforcer = _with("p, data_subject, *, read:clear, self, allow")
    assert C == enforcer.resolve(Role.DATA_SUBJECT, Purpose.SELF, "loyalty_number")


def test_an_empty_policy_denies_everything() -> None:
    """With no lines at all, every purpose is refused and every field hidden."""
    enforcer = PolicyEnforcer.from_lines([])
    for role, purpose in TABLE:
        with pytest.raises(PurposeNotAllowed):
            enforcer.check_purpose(role, purpose)
        assert H == enforcer.explain(role, Resource.EMAIL, purpose).resolution


def test_a_purpose_alone_grants_no_field() -> None:
    """A p2 line without p lines lets the role in, and every field stays hidden."""
    enforcer = PolicyEnforcer.from_lines(
        ["p2, analyst, analytics, allow"], attributes=PII_ATTRIBUTES
    )
    assert dict.fromkeys(FIELDS, H) == enforcer.resolve_all(Role.ANALYST, Purpose.ANALYTICS)


# -- explain ------------------------------------------------------------------------------


def test_explain_names_the_line_that_shows_a_field_in_clear(default: PolicyEnforcer) -> None:
    """A clear field is explained by the allow line on read:clear that granted it."""
    assert Explanation(
        C,
        ("p", "support_agent", "first_name", "read:clear", "support", "allow"),
        "an allow line on read:clear",
    ) == default.explain(Role.SUPPORT_AGENT, Resource.FIRST_NAME, Purpose.SUPPORT)


def test_explain_names_the_line_that_masks_a_field(default: PolicyEnforcer) -> None:
    """A masked field is explained by the allow line on read:masked."""
    explanation = default.explain(Role.SUPPORT_AGENT, Resource.EMAIL, Purpose.SUPPORT)
    assert M == explanation.resolution
    assert ("p", "support_agent", "email", "read:masked", "support", "allow") == explanation.rule


def test_explain_names_the_deny_line_that_hides_a_field() -> None:
    """A field hidden by a deny line is explained by that deny line."""
    enforcer = _with("p, *, email, read:*, *, deny")
    explanation = enforcer.explain(Role.DATA_SUBJECT, Resource.EMAIL, Purpose.SELF)
    assert H == explanation.resolution
    assert ("p", "*", "email", "read:*", "*", "deny") == explanation.rule


def test_explain_says_when_no_line_decided(default: PolicyEnforcer) -> None:
    """A field hidden because nothing grants it has no rule and says "default deny"."""
    explanation = default.explain(Role.SUPPORT_AGENT, Resource.BIRTH_DATE, Purpose.SUPPORT)
    assert H == explanation.resolution
    assert explanation.rule is None
    assert "default deny" in explanation.reason


def test_explain_reports_a_refused_purpose_instead_of_raising(default: PolicyEnforcer) -> None:
    """explain is a diagnosis: a refused purpose comes back hidden, with the reason."""
    explanation = default.explain(Role.ANALYST, Resource.EMAIL, Purpose.SUPPORT)
    assert H == explanation.resolution
    assert explanation.rule is None
    assert "purpose 'support' is not allowed for role 'analyst'" in explanation.reason
    revoked = _with("p2, analyst, analytics, deny").explain(
        Role.ANALYST, Resource.INTERACTIONS, Purpose.ANALYTICS
    )
    assert ("p2", "analyst", "analytics", "deny") == revoked.rule


def test_explain_names_the_deny_that_downgrades_to_masked_in_its_reason() -> None:
    """A masked field whose clear read is denied names the masked grant and says clear is denied."""
    enforcer = _with(
        "p, marketing, email, read:clear, marketing_email, deny",
        "p, marketing, email, read:masked, marketing_email, allow",
    )
    explanation = enforcer.explain(Role.MARKETING, Resource.EMAIL, Purpose.MARKETING_EMAIL)
    assert M == explanation.resolution
    assert (
        "p",
        "marketing",
        "email",
        "read:masked",
        "marketing_email",
        "allow",
    ) == explanation.rule
    assert "read:clear is denied" in explanation.reason


@pytest.mark.parametrize(("role", "purpose", "field", "expected"), READ_CASES)
def test_explain_agrees_with_resolve(
    default: PolicyEnforcer, role: Role, purpose: Purpose, field: str, expected: Resolution
) -> None:
    """For every cell of the table, explain reaches the same resolution as resolve."""
    explanation = default.explain(role, field, purpose)
    assert expected == explanation.resolution
    if expected is not H:
        assert explanation.rule is not None
        granted = "attr:*" if field.startswith("attr:") else field  # one line grants them all
        assert (role, granted) == (explanation.rule[1], explanation.rule[2])


# -- caching and reloading -------------------------------------------------------------------


def test_resolve_all_is_cached_until_reload() -> None:
    """resolve_all answers from its cache after the first call; reload() reads the source again."""
    source = PolicyLines(default_policy_lines())
    enforcer = PolicyEnforcer(source)
    assert M == enforcer.resolve_all(Role.SUPPORT_AGENT, Purpose.SUPPORT)[Resource.EMAIL]

    source.replace([*default_policy_lines(), "p, support_agent, email, read:*, support, deny"])
    assert M == enforcer.resolve_all(Role.SUPPORT_AGENT, Purpose.SUPPORT)[Resource.EMAIL]

    enforcer.reload()
    assert H == enforcer.resolve_all(Role.SUPPORT_AGENT, Purpose.SUPPORT)[Resource.EMAIL]
    assert H == enforcer.resolve(Role.SUPPORT_AGENT, Purpose.SUPPORT, Resource.EMAIL)


def test_reload_also_forgets_refused_purposes() -> None:
    """A purpose refused before a reload is granted after it, once the source grants it."""
    source = PolicyLines([])
    enforcer = PolicyEnforcer(source)
    with pytest.raises(PurposeNotAllowed):
        enforcer.check_purpose(Role.ANALYST, Purpose.ANALYTICS)
    source.replace(["p2, analyst, analytics, allow"])
    enforcer.reload()
    enforcer.check_purpose(Role.ANALYST, Purpose.ANALYTICS)  # raises if refused


def test_resolve_all_hands_out_copies(default: PolicyEnforcer) -> None:
    """Changing the dict resolve_all returned does not change the next answer."""
    first = default.resolve_all(Role.ANALYST, Purpose.ANALYTICS)
    first[Resource.EMAIL] = C
    assert H == default.resolve_all(Role.ANALYST, Purpose.ANALYTICS)[Resource.EMAIL]


def test_resolve_all_asks_casbin_only_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first call, resolve_all answers from its cache: 2,000 more calls for the
    same role and purpose put no further question to Casbin."""
    enforcer = PolicyEnforcer.from_default()
    questions: list[str] = []

    def counting(name: str) -> Callable[..., Any]:
        original = getattr(enforcer_module, name)

        def ask(*args: Any, **kwargs: Any) -> Any:
            questions.append(name)
            return original(*args, **kwargs)

        return ask

    for name in ("_ask", "_ask_purpose"):
        monkeypatch.setattr(enforcer_module, name, counting(name))
    enforcer.resolve_all(Role.SUPPORT_AGENT, Purpose.SUPPORT)
    first = len(questions)
    for _ in range(2000):
        enforcer.resolve_all(Role.SUPPORT_AGENT, Purpose.SUPPORT)
    assert (first > 0, len(questions)) == (True, first)


def test_granted_resources_are_cached_until_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    """consent, data_requests and segments (granted, not customer fields) are resolved once
    per role and purpose: 2,000 more calls ask Casbin nothing; reload() forgets them."""
    source = PolicyLines(default_policy_lines())
    enforcer = PolicyEnforcer(source)
    questions: list[tuple[Any, ...]] = []
    original = enforcer_module._ask

    def ask(*args: Any) -> Any:
        questions.append(args[1:])
        return original(*args)

    monkeypatch.setattr(enforcer_module, "_ask", ask)
    granted = (Resource.CONSENT, Resource.DATA_REQUESTS, Resource.SEGMENTS)
    first = [enforcer.resolve(Role.DATA_SUBJECT, Purpose.SELF, r) for r in granted]
    asked = len(questions)
    for _ in range(2000):
        assert first == [enforcer.resolve(Role.DATA_SUBJECT, Purpose.SELF, r) for r in granted]
    assert (asked > 0, len(questions)) == (True, asked)

    source.replace([*default_policy_lines(), "p, data_subject, consent, read:*, self, deny"])
    assert C == enforcer.resolve(Role.DATA_SUBJECT, Purpose.SELF, Resource.CONSENT)
    enforcer.reload()
    assert H == enforcer.resolve(Role.DATA_SUBJECT, Purpose.SELF, Resource.CONSENT)


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "p, support_agent, email, read:masked, support",
        "p, suport_agent, email, read:masked, support, allow",
        "p, support_agent, e-mail, read:masked, support, allow",
        "p, support_agent, email, read, support, allow",
        "p, support_agent, email, read:masked, helpdesk, allow",
        "p, support_agent, email, read:masked, support, clear",
        "p, support_agent, *mail, read:masked, support, allow",
        "p2, support_agent, support",
        "p2, support_agent, support, maybe",
        "P, support_agent, email, read:*, support, deny",
        "g, support_agent, admin",
    ],
)
def test_malformed_lines_are_refused_at_load(line: str) -> None:
    """A line with a wrong type or field count, an unknown name or effect, or a bad pattern
    never loads (Casbin alone would skip a line of an unknown type without a word)."""
    with pytest.raises(PolicyError):
        PolicyEnforcer.from_lines([line])


def test_a_field_with_a_comma_is_refused() -> None:
    """A line given as fields may not smuggle a second field in through a comma."""
    with pytest.raises(PolicyError):
        PolicyEnforcer.from_lines([("p", "admin", "email, phone", "read:clear", "x", "allow")])


def test_a_failed_reload_keeps_the_policy_in_force() -> None:
    """reload() validates before it swaps: a bad source raises and the old policy stays."""
    source = PolicyLines(default_policy_lines())
    enforcer = PolicyEnforcer(source)
    source.replace(["p, support_agent, email, read:masked, support, perhaps"])
    with pytest.raises(PolicyError):
        enforcer.reload()
    assert M == enforcer.resolve(Role.SUPPORT_AGENT, Purpose.SUPPORT, Resource.EMAIL)


def test_a_missing_policy_file_is_refused(tmp_path: Path) -> None:
    """from_file names a file that must exist."""
    with pytest.raises(PolicyError):
        PolicyEnforcer.from_file(tmp_path / "nope.csv")


def test_a_policy_file_is_read_again_on_reload(tmp_path: Path) -> None:
    """A file-backed enforcer sees the file's new lines after reload(), and not before."""
    path = tmp_path / "policy.csv"
    path.write_text("\n".join(default_policy_lines()), encoding="utf-8")
    enforcer = PolicyEnforcer.from_file(path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\np, *, phone, read:*, *, deny\n")
    assert C == enforcer.resolve(Role.DATA_SUBJECT, Purpose.SELF, Resource.PHONE)
    enforcer.reload()
    assert H == enforcer.resolve(Role.DATA_SUBJECT, Purpose.SELF, Resource.PHONE)


# -- layering ----------------------------------------------------------------------------------


def test_policies_imports_no_other_layer() -> None:
    """policies is a bottom layer: no module in it imports vault, api, consent or audit."""
    root = Path(__file__).resolve().parents[2] / "policies"
    forbidden = ("vault", "api", "consent", "audit", "cryptography")
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] in forbidden
            ]
    assert [] == offenders


def test_threads_that_miss_the_grants_cache_together_get_the_same_answers() -> None:
    """Eight threads asking a fresh enforcer for every role and purpose at once (all cache
    misses, so all in Casbin) get exactly the answers one thread gets: no SystemError from
    CPython 3.11's parser entered twice, no torn decision."""
    pairs = [(role, purpose) for role in Role for purpose in Purpose]

    def answers(enforcer: PolicyEnforcer) -> list[object]:
        out: list[object] = []
        for role, purpose in pairs:
            try:
                out.append(enforcer.resolve_all(role, purpose))
            except PurposeNotAllowed:
                out.append("refused")
        return out

    expected = answers(PolicyEnforcer())
    for _ in range(3):
        fresh = PolicyEnforcer()
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(answers, [fresh] * 8))
        assert [expected] * 8 == got
